package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tailorhq/tailor/middleware/definitions"
)

// The variants of a slot are edited one at a time, like segments: a form
// with the key, the segment, the priority, an optional condition, the
// fields (a JSON object) and the template.

type variantItem struct {
	Key, Segment, Priority, Fields string
}

type slotView struct {
	editorBase
	Name     string
	Variants []variantItem
	Default  string
	Other    []string // members of the slot the editor shows as they are
}

// slotOf returns the draft's slot named name, its index, and its variants.
func slotOf(st draftState, name string) (int, object, []object, bool) {
	i := st.Slots.find(name)
	if i < 0 {
		return -1, nil, nil, false
	}
	o := st.Slots.items[i]
	raws, _ := parseArray(o.get("variants"))
	vars := make([]object, 0, len(raws))
	for _, raw := range raws {
		vo, err := parseObject(raw)
		if err != nil {
			return -1, nil, nil, false
		}
		vars = append(vars, vo)
	}
	return i, o, vars, true
}

func variantIndex(vars []object, key string) int {
	return slices.IndexFunc(vars, func(o object) bool { return o.str("key") == key })
}

func (h *Handler) slotPage(w http.ResponseWriter, r *http.Request) {
	d, st, ok := h.draft(w, r)
	if !ok {
		return
	}
	name := r.PathValue("slot")
	_, o, vars, ok := slotOf(st, name)
	if !ok {
		h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("The draft has no slot named %q (or it cannot be edited variant by variant: edit slots.json).", name))
		return
	}
	v := slotView{editorBase: h.editorBase(r, d, st.Draft), Name: name, Default: string(compact(o.get("default")))}
	for _, vo := range vars {
		seg := vo.str("segment")
		if s := vo.get("segments"); s != nil {
			seg = string(compact(s))
		}
		v.Variants = append(v.Variants, variantItem{Key: vo.str("key"), Segment: seg, Priority: string(vo.get("priority")), Fields: string(compact(vo.get("fields")))})
	}
	for _, m := range o {
		if m.Key != "name" && m.Key != "variants" && m.Key != "default" {
			v.Other = append(v.Other, m.Key)
		}
	}
	h.render(w, r, http.StatusOK, "editor_slot", "Slot "+name, "definitions", v)
}

type variantForm struct {
	Key, Segment, Priority, Condition, Fields, Template string
}

type variantView struct {
	editorBase
	Slot     string
	Original string // the key edited; "" for a new variant
	Form     variantForm
	Segments []string // the draft's segments, to choose from
	Problems []problem
}

func variantFormOf(o object) variantForm {
	f := variantForm{Key: o.str("key"), Segment: o.str("segment"), Template: o.str("template")}
	if s := o.get("segments"); s != nil {
		var names []string
		json.Unmarshal(s, &names)
		f.Segment = strings.Join(names, ", ")
	}
	if p := o.get("priority"); p != nil {
		f.Priority = string(p)
	}
	if c := o.get("condition"); c != nil {
		f.Condition = indent(c, "")
	}
	f.Fields = "{}"
	if fl := o.get("fields"); fl != nil {
		f.Fields = indent(fl, "")
	}
	return f
}

func (h *Handler) variantEdit(w http.ResponseWriter, r *http.Request) {
	d, st, ok := h.draft(w, r)
	if !ok {
		return
	}
	slot, key := r.PathValue("slot"), r.PathValue("key")
	_, _, vars, ok := slotOf(st, slot)
	if !ok {
		h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("The draft has no slot named %q.", slot))
		return
	}
	v := variantView{editorBase: h.editorBase(r, d, st.Draft), Slot: slot, Original: key, Segments: st.Segments.names()}
	switch {
	case key != "":
		i := variantIndex(vars, key)
		if i < 0 {
			h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("The slot %q has no variant %q.", slot, key))
			return
		}
		v.Form = variantFormOf(vars[i])
	case r.FormValue("from") != "":
		i := variantIndex(vars, r.FormValue("from"))
		if i < 0 {
			h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("The slot %q has no variant %q to clone.", slot, r.FormValue("from")))
			return
		}
		v.Form = variantFormOf(vars[i])
		k, n := v.Form.Key+"-copy", 2
		for variantIndex(vars, k) >= 0 {
			k, n = v.Form.Key+"-copy-"+strconv.Itoa(n), n+1
		}
		v.Form.Key = k
	default:
		v.Form.Fields = "{}"
	}
	title := "Slot " + slot + ": variant " + key
	if key == "" {
		title = "Slot " + slot + ": new variant"
	}
	h.render(w, r, http.StatusOK, "editor_variant", title, "definitions", v)
}

// build returns the variant's object from the form, over base.
func (f variantForm) build(base object, at string) (object, []problem) {
	var probs []problem
	bad := func(path, format string, args ...any) {
		probs = append(probs, problem{File: "form", Path: at + path, Msg: fmt.Sprintf(format, args...)})
	}
	o := slices.Clone(base)
	o.set("key", mustJSON(f.Key))
	var segs []string
	for _, s := range strings.Split(f.Segment, ",") {
		if s = strings.TrimSpace(s); s != "" {
			segs = append(segs, s)
		}
	}
	o.del("segment")
	o.del("segments")
	switch len(segs) {
	case 0:
	case 1:
		o.set("segment", mustJSON(segs[0]))
	default:
		o.set("segments", mustJSON(segs))
	}
	if f.Priority == "" {
		o.del("priority")
	} else if n, err := strconv.Atoi(f.Priority); err != nil {
		bad("/priority", "priority: want an integer, not %q", f.Priority)
	} else {
		o.set("priority", json.RawMessage(strconv.Itoa(n)))
	}
	for _, m := range []struct{ key, text string }{{"condition", f.Condition}, {"fields", f.Fields}} {
		t := strings.TrimSpace(m.text)
		switch {
		case t == "":
			o.del(m.key)
		case !json.Valid([]byte(t)):
			bad("/"+m.key, "%s: not valid JSON%s", m.key, jsonErrorAt(t))
		default:
			o.set(m.key, json.RawMessage(t))
		}
	}
	if f.Template == "" {
		o.del("template")
	} else {
		o.set("template", mustJSON(f.Template))
	}
	return o, probs
}

func (h *Handler) variantSave(w http.ResponseWriter, r *http.Request) {
	h.changeVariant(w, r, false)
}

func (h *Handler) variantDelete(w http.ResponseWriter, r *http.Request) {
	h.changeVariant(w, r, true)
}

// changeVariant saves (or deletes) a variant of a slot of the draft.
func (h *Handler) changeVariant(w http.ResponseWriter, r *http.Request, remove bool) {
	d, st, ok := h.draft(w, r)
	if !ok {
		return
	}
	slot, key := r.PathValue("slot"), r.PathValue("key")
	si, so, vars, ok := slotOf(st, slot)
	if !ok || st.Err != "" {
		h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("The draft has no slot named %q that can be edited variant by variant.", slot))
		return
	}
	idx := len(vars)
	var base object
	if key != "" {
		if idx = variantIndex(vars, key); idx < 0 {
			h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("The slot %q has no variant %q.", slot, key))
			return
		}
		base = vars[idx]
	}
	v := variantView{editorBase: h.editorBase(r, d, st.Draft), Slot: slot, Original: key, Segments: st.Segments.names()}
	at := "/slots/" + strconv.Itoa(si) + "/variants/" + strconv.Itoa(idx)
	if remove {
		vars = slices.Delete(vars, idx, idx+1)
	} else {
		v.Form = variantForm{Key: strings.TrimSpace(r.FormValue("key")), Segment: r.FormValue("segment"), Priority: strings.TrimSpace(r.FormValue("priority")),
			Condition: r.FormValue("condition"), Fields: r.FormValue("fields"), Template: strings.TrimSpace(r.FormValue("template"))}
		o, probs := v.Form.build(base, at)
		if len(probs) > 0 {
			v.Problems = probs
			h.render(w, r, http.StatusUnprocessableEntity, "editor_variant", "Slot "+slot+": variant "+cmpOr(key, "new"), "definitions", v)
			return
		}
		if idx == len(vars) {
			vars = append(vars, o)
		} else {
			vars[idx] = o
		}
	}
	raws := make([]json.RawMessage, len(vars))
	for i, vo := range vars {
		raws[i] = vo.marshal()
	}
	so = slices.Clone(so)
	so.set("variants", mustJSON(raws))
	st.Slots.items[si] = so
	c := definitions.Content{Segments: st.Draft.Content.Segments, Slots: st.Slots.text()}
	if err := h.saveDraft(r, d, st.Draft, st.Draft.Base, c); err != nil {
		if remove {
			h.problemPage(w, r, fmt.Sprintf("The variant %q cannot be deleted: the draft would not load without it.", key), err, c)
			return
		}
		v.Problems = problemsOf(err)
		place(v.Problems, definitions.SlotsFile, c.Slots)
		h.render(w, r, http.StatusUnprocessableEntity, "editor_variant", "Slot "+slot+": variant "+cmpOr(key, "new"), "definitions", v)
		return
	}
	if remove {
		h.redirect(w, r, "/slots/"+url.PathEscape(slot), "deleted variant "+key)
		return
	}
	h.redirect(w, r, "/slots/"+url.PathEscape(slot)+"/variants/"+url.PathEscape(v.Form.Key), "saved")
}
