package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tailorhq/tailor/middleware/definitions"
	"github.com/tailorhq/tailor/rules"
)

// Definitions is what the editor needs of the site's definitions: a
// *definitions.Definitions. Its draft is edited, checked, published; its
// history is the audit log; any version can be restored.
type Definitions interface {
	// Check parses a content as the site would serve it; its error lists
	// the problems as rules.ConditionErrors.
	Check(c definitions.Content) (*definitions.Parsed, error)
	// Draft returns the site's draft, SaveDraft keeps one that parses
	// (unless the draft changed since it was read:
	// definitions.ErrDraftChanged), DiscardDraft forgets it.
	Draft(ctx context.Context) (definitions.Draft, error)
	SaveDraft(ctx context.Context, dr definitions.Draft) error
	DiscardDraft(ctx context.Context) error
	// Publish makes c current, unless a version was published since base
	// (definitions.ErrConflict).
	Publish(ctx context.Context, c definitions.Content, base int, by, note string) (definitions.Version, error)
	// Restore publishes the content of version n again.
	Restore(ctx context.Context, n int, by, note string) (definitions.Version, error)
	// History returns the versions, newest first.
	History(ctx context.Context) ([]definitions.Version, error)
	// Content returns the content of version n (0: the files).
	Content(ctx context.Context, n int) (definitions.Content, error)
	// Current returns the version served and its content.
	Current(ctx context.Context) (definitions.Version, definitions.Content, error)
}

var _ Definitions = (*definitions.Definitions)(nil)

var editorPageNames = []string{"editor", "editor_segment", "editor_json", "editor_slot", "editor_variant",
	"editor_test", "editor_backtest", "editor_publish", "editor_versions", "editor_version"}

// addEditorPages parses the editor's templates into h.pages.
func (h *Handler) addEditorPages() error {
	for _, name := range editorPageNames {
		t, err := template.New("layout.html").Funcs(h.funcs()).Funcs(editorFuncs).ParseFS(files,
			"templates/layout.html", "templates/partials.html", "templates/editor_partials.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("tailor/admin: template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	return nil
}

var editorFuncs = template.FuncMap{
	"field":   fieldName,
	"fieldID": func(kind, arg string) string { return "arg-" + kind + "-" + arg },
	"kinds":   func() []ruleKind { return ruleKinds },
}

// editorRoutes adds the editor's pages to m. Its POST routes pass guard
// first (ServeHTTP): same origin, and an Editor.
func (h *Handler) editorRoutes(m *http.ServeMux) {
	p := h.cfg.Prefix + "definitions"
	m.HandleFunc("GET "+h.cfg.Prefix+"editor.js", h.static("static/editor.js", "text/javascript; charset=utf-8"))
	m.HandleFunc("GET "+p+"", h.editorIndex)
	m.HandleFunc("GET "+p+"/segments/new", h.segmentEdit)
	m.HandleFunc("POST "+p+"/segments/new", h.segmentSave)
	m.HandleFunc("GET "+p+"/segments/{name}", h.segmentEdit)
	m.HandleFunc("POST "+p+"/segments/{name}", h.segmentSave)
	m.HandleFunc("POST "+p+"/segments/{name}/delete", h.segmentDelete)
	m.HandleFunc("GET "+p+"/slots/{slot}", h.slotPage)
	m.HandleFunc("GET "+p+"/slots/{slot}/variants/new", h.variantEdit)
	m.HandleFunc("POST "+p+"/slots/{slot}/variants/new", h.variantSave)
	m.HandleFunc("GET "+p+"/slots/{slot}/variants/{key}", h.variantEdit)
	m.HandleFunc("POST "+p+"/slots/{slot}/variants/{key}", h.variantSave)
	m.HandleFunc("POST "+p+"/slots/{slot}/variants/{key}/delete", h.variantDelete)
	m.HandleFunc("GET "+p+"/json", h.jsonEdit)
	m.HandleFunc("POST "+p+"/json", h.jsonSave)
	m.HandleFunc("POST "+p+"/validate", h.validate)
	m.HandleFunc("GET "+p+"/test", h.testVisitor)
	m.HandleFunc("GET "+p+"/backtest", h.backtestPage)
	m.HandleFunc("POST "+p+"/backtest", h.backtestStart)
	m.HandleFunc("GET "+p+"/backtest/{id}", h.backtestPage)
	m.HandleFunc("GET "+p+"/backtest/{id}/progress.json", h.backtestJSON)
	m.HandleFunc("POST "+p+"/backtest/{id}/cancel", h.backtestCancel)
	m.HandleFunc("GET "+p+"/publish", h.publishPage)
	m.HandleFunc("POST "+p+"/publish", h.publish)
	m.HandleFunc("POST "+p+"/draft/discard", h.draftDiscard)
	m.HandleFunc("POST "+p+"/draft/rebase", h.draftRebase)
	m.HandleFunc("GET "+p+"/versions", h.versions)
	m.HandleFunc("GET "+p+"/versions/{n}", h.version)
	m.HandleFunc("POST "+p+"/versions/{n}/restore", h.restore)
}

// defs returns the site's Definitions, or writes the page that says the
// definitions come from files.
func (h *Handler) defs(w http.ResponseWriter, r *http.Request) (Definitions, bool) {
	if h.cfg.Definitions == nil {
		h.errorPage(w, r, http.StatusNotFound, "This site's segments and slots come from files (or from its code): "+
			"they are not kept in the store, so they cannot be edited or published here. The Rules page shows them.")
		return nil, false
	}
	return h.cfg.Definitions, true
}

// draft returns the site's definitions and its draft, or answers with an
// error page.
func (h *Handler) draft(w http.ResponseWriter, r *http.Request) (Definitions, draftState, bool) {
	d, ok := h.defs(w, r)
	if !ok {
		return nil, draftState{}, false
	}
	st, err := h.draftState(r.Context(), d)
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be read: "+err.Error())
		return nil, draftState{}, false
	}
	return d, st, true
}

// problem is a problem of a text, placed in it; File is "segments.json",
// "slots.json", "segment" (the text of one segment), or "form" (a field).
type problem struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Path   string `json:"path"`
	Msg    string `json:"msg"`
	// Source and Caret show the line of the problem, and a caret under
	// its column.
	Source string `json:"source,omitempty"`
	Caret  string `json:"caret,omitempty"`
}

// problemsOf returns err's problems: the rules.ConditionErrors of a check,
// or err itself.
func problemsOf(err error) []problem {
	if err == nil {
		return nil
	}
	var ces rules.ConditionErrors
	if errors.As(err, &ces) {
		out := make([]problem, 0, len(ces))
		for _, e := range ces {
			out = append(out, problem{File: e.File, Line: e.Line, Column: e.Column, Path: e.Path, Msg: e.Msg})
		}
		return out
	}
	var ce *rules.ConditionError
	if errors.As(err, &ce) {
		return []problem{{File: ce.File, Line: ce.Line, Column: ce.Column, Path: ce.Path, Msg: ce.Msg}}
	}
	return []problem{{Msg: err.Error()}}
}

// place fills the Source and Caret of the problems of file, from its text.
func place(ps []problem, file, text string) {
	lines := strings.Split(text, "\n")
	for i := range ps {
		p := &ps[i]
		if p.File != file || p.Line < 1 || p.Line > len(lines) {
			continue
		}
		src := strings.TrimRight(lines[p.Line-1], "\r")
		col := min(max(p.Column, 1), len(src)+1)
		p.Source = src
		// The caret goes under the column's byte: count the runes before it.
		p.Caret = strings.Repeat(" ", len([]rune(src[:col-1]))) + "^"
	}
}

// draftDocs returns the draft and its two files, read.
type draftState struct {
	Draft    definitions.Draft
	Segments *listDoc
	Slots    *listDoc
	// Err says why a file of the draft could not be read as objects (it
	// parses, but the editor cannot take it apart): edit it as JSON.
	Err string
}

func (h *Handler) draftState(ctx context.Context, d Definitions) (draftState, error) {
	dr, err := d.Draft(ctx)
	if err != nil {
		return draftState{}, err
	}
	st := draftState{Draft: dr}
	if st.Segments, err = parseListDoc(dr.Content.Segments, "segments"); err != nil {
		st.Err = "segments.json: " + err.Error()
		st.Segments = &listDoc{list: "segments"}
	}
	if st.Slots, err = parseListDoc(dr.Content.Slots, "slots"); err != nil {
		st.Err = "slots.json: " + err.Error()
		st.Slots = &listDoc{list: "slots"}
	}
	return st, nil
}

// saveDraft saves c as the draft read, on behalf of r's user, with base.
// If the draft changed since it was read, it is kept, and the error wraps
// definitions.ErrDraftChanged.
func (h *Handler) saveDraft(r *http.Request, d Definitions, read definitions.Draft, base int, c definitions.Content) error {
	return d.SaveDraft(r.Context(), definitions.Draft{Content: c, Base: base, By: userOf(r).Name, At: h.cfg.Now().UTC(), Rev: read.Rev})
}

// editorBase is what every editor page shows.
type editorBase struct {
	User    user
	Draft   definitions.Draft
	Current int
	Status  string // a message after a change ("saved")
}

func (h *Handler) editorBase(r *http.Request, d Definitions, dr definitions.Draft) editorBase {
	b := editorBase{User: userOf(r), Draft: dr, Status: r.FormValue("done")}
	if v, _, err := d.Current(r.Context()); err == nil {
		b.Current = v.Number
	}
	return b
}

// Base returns b, for the templates (the embedded field is unexported).
func (b editorBase) Base() editorBase { return b }

// Stale reports whether the draft is based on an older version than the
// current one: publishing it conflicts.
func (b editorBase) Stale() bool { return b.Draft.Base != b.Current }

// redirect sends the browser to a page of the editor after a change.
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, path, done string) {
	u := h.cfg.Prefix + "definitions" + path
	if done != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "done=" + url.QueryEscape(done)
	}
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// ---- index ----

type segmentItem struct {
	Name, Description, Group string
	Priority                 string
	Rule                     string // the rule's JSON, compact
}

type slotItem struct {
	Name     string
	Variants []string
}

type editorIndexView struct {
	editorBase
	Err      string
	Segments []segmentItem
	Slots    []slotItem
	HasSlots bool
}

func (h *Handler) editorIndex(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Definitions == nil {
		h.render(w, r, http.StatusOK, "editor", "Definitions", "definitions", editorIndexView{Err: "files"})
		return
	}
	d := h.cfg.Definitions
	st, err := h.draftState(r.Context(), d)
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be read: "+err.Error())
		return
	}
	v := editorIndexView{editorBase: h.editorBase(r, d, st.Draft), Err: st.Err, HasSlots: strings.TrimSpace(st.Draft.Content.Slots) != ""}
	for _, o := range st.Segments.items {
		it := segmentItem{Name: o.str("name"), Description: o.str("description"), Group: o.str("group"), Priority: string(o.get("priority"))}
		if c := o.get("condition"); c != nil {
			it.Rule = `{"condition": ` + string(compact(c)) + "}"
		} else {
			it.Rule = string(compact(o.get("rule")))
		}
		v.Segments = append(v.Segments, it)
	}
	for _, o := range st.Slots.items {
		it := slotItem{Name: o.str("name")}
		vars, _ := parseArray(o.get("variants"))
		for _, raw := range vars {
			vo, _ := parseObject(raw)
			it.Variants = append(it.Variants, vo.str("key"))
		}
		v.Slots = append(v.Slots, it)
	}
	h.render(w, r, http.StatusOK, "editor", "Definitions", "definitions", v)
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// ---- a segment ----

type segmentEditView struct {
	editorBase
	New      bool
	Original string // the name edited; "" for a new segment
	Form     segmentForm
	FormOK   bool   // the form can edit the rule
	JSON     string // the segment as JSON
	Mode     string // "form" or "json": which one the problems are of
	Problems []problem
}

func (h *Handler) segmentEdit(w http.ResponseWriter, r *http.Request) {
	d, st, ok := h.draft(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	v := segmentEditView{editorBase: h.editorBase(r, d, st.Draft), Original: name, New: name == "", FormOK: true, Mode: "form"}
	var o object
	switch {
	case name != "":
		i := st.Segments.find(name)
		if i < 0 {
			h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("The draft has no segment named %q.", name))
			return
		}
		o = st.Segments.items[i]
	case r.FormValue("from") != "":
		// A clone: the segment under a new name.
		i := st.Segments.find(r.FormValue("from"))
		if i < 0 {
			h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("The draft has no segment named %q to clone.", r.FormValue("from")))
			return
		}
		o = slices.Clone(st.Segments.items[i])
		o.set("name", mustJSON(uniqueName(st.Segments, o.str("name")+"-copy")))
	default:
		o = object{{"name", json.RawMessage(`""`)}, {"rule", json.RawMessage(`{"pageVisited": {}}`)}}
	}
	v.Form, v.FormOK = formOf(o)
	if !v.FormOK {
		v.Mode = "json"
	}
	v.JSON = indent(o.marshal(), "")
	title := "Segment " + name
	if name == "" {
		title = "New segment"
	}
	h.render(w, r, http.StatusOK, "editor_segment", title, "definitions", v)
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func uniqueName(d *listDoc, name string) string {
	n, try := 2, name
	for d.find(try) >= 0 {
		try = name + "-" + strconv.Itoa(n)
		n++
	}
	return try
}

// segmentSave saves a segment from the form (mode "form") or from its JSON
// (mode "json") into the draft, if the draft parses with it; otherwise it
// shows the form again with the problems, placed.
func (h *Handler) segmentSave(w http.ResponseWriter, r *http.Request) {
	d, st, ok := h.draft(w, r)
	if !ok {
		return
	}
	if st.Err != "" {
		h.errorPage(w, r, http.StatusConflict, "The draft cannot be edited segment by segment ("+st.Err+"): edit it as JSON.")
		return
	}
	name := r.PathValue("name")
	idx := len(st.Segments.items)
	var base object
	if name != "" {
		if idx = st.Segments.find(name); idx < 0 {
			h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("The draft has no segment named %q.", name))
			return
		}
		base = st.Segments.items[idx]
	}
	mode := r.FormValue("mode")
	v := segmentEditView{editorBase: h.editorBase(r, d, st.Draft), Original: name, New: name == "", Mode: mode}
	var text string
	if mode == "json" {
		text = strings.TrimSpace(r.FormValue("json"))
		v.JSON = r.FormValue("json")
		if o, err := parseObject([]byte(text)); err == nil {
			v.Form, v.FormOK = formOf(o)
		}
	} else {
		v.Mode = "form"
		v.Form, v.FormOK = readSegmentForm(r.PostForm), true
		o, probs := v.Form.build(base, "/segments/"+strconv.Itoa(idx))
		v.JSON = indent(o.marshal(), "")
		if len(probs) > 0 {
			v.Problems = probs
			h.render(w, r, http.StatusUnprocessableEntity, "editor_segment", "Segment "+cmpOr(name, "new"), "definitions", v)
			return
		}
		text = v.JSON
	}
	c, probs := h.checkSegment(d, st, idx, text)
	if len(probs) > 0 {
		v.Problems = probs
		h.render(w, r, http.StatusUnprocessableEntity, "editor_segment", "Segment "+cmpOr(name, "new"), "definitions", v)
		return
	}
	if err := h.saveDraft(r, d, st.Draft, st.Draft.Base, c); err != nil {
		v.Problems = problemsOf(err)
		h.render(w, r, http.StatusUnprocessableEntity, "editor_segment", "Segment "+cmpOr(name, "new"), "definitions", v)
		return
	}
	saved, _ := parseObject([]byte(text))
	h.redirect(w, r, "/segments/"+url.PathEscape(saved.str("name")), "saved")
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkSegment returns the draft's content with the segment at idx (a new
// one at len) replaced by text, written into the file as it is, and the
// problems of that content, those of the segment placed in text (file
// "segment").
func (h *Handler) checkSegment(d Definitions, st draftState, idx int, text string) (definitions.Content, []problem) {
	if !json.Valid([]byte(text)) {
		// Placed in the text alone: in the file, the parser would read on
		// into the segments after it.
		var v any
		err := json.Unmarshal([]byte(text), &v)
		p := problem{File: "segment", Line: 1, Column: 1, Msg: "invalid JSON"}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			p.Line, p.Column = lineCol(text, int(se.Offset))
			p.Msg = "invalid JSON: " + se.Error()
		}
		probs := []problem{p}
		place(probs, "segment", text)
		return definitions.Content{}, probs
	}
	file, start := st.Segments.textWith(idx, text)
	c := definitions.Content{Segments: file, Slots: st.Draft.Content.Slots}
	_, err := d.Check(c)
	if err == nil {
		// Saved indented, like the rest of the file.
		doc, perr := parseListDoc(file, "segments")
		if perr == nil {
			c.Segments = doc.text()
		}
		return c, nil
	}
	probs := problemsOf(err)
	n := strings.Count(text, "\n") + 1
	for i := range probs {
		p := &probs[i]
		if p.File == definitions.SegmentsFile && p.Line >= start && p.Line < start+n {
			p.File, p.Line = "segment", p.Line-start+1
			// The path within the segment.
			if rest, ok := strings.CutPrefix(p.Path, "/segments/"+strconv.Itoa(idx)); ok {
				p.Path = rest
			}
		}
	}
	place(probs, "segment", text)
	place(probs, definitions.SegmentsFile, file)
	place(probs, definitions.SlotsFile, c.Slots)
	return c, probs
}

func (h *Handler) segmentDelete(w http.ResponseWriter, r *http.Request) {
	d, st, ok := h.draft(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	i := st.Segments.find(name)
	if i < 0 || st.Err != "" {
		h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("The draft has no segment named %q.", name))
		return
	}
	st.Segments.items = slices.Delete(st.Segments.items, i, i+1)
	c := definitions.Content{Segments: st.Segments.text(), Slots: st.Draft.Content.Slots}
	if err := h.saveDraft(r, d, st.Draft, st.Draft.Base, c); err != nil {
		h.problemPage(w, r, "The segment "+strconv.Quote(name)+" cannot be deleted: the draft would not load without it.", err, c)
		return
	}
	h.redirect(w, r, "", "deleted segment "+name)
}

// problemPage shows why a change was refused, with the problems placed.
func (h *Handler) problemPage(w http.ResponseWriter, r *http.Request, msg string, err error, c definitions.Content) {
	if errors.Is(err, definitions.ErrDraftChanged) {
		msg = "Another change of the draft was saved at the same moment, so nothing was changed: try again."
	}
	probs := problemsOf(err)
	place(probs, definitions.SegmentsFile, c.Segments)
	place(probs, definitions.SlotsFile, c.Slots)
	h.render(w, r, http.StatusUnprocessableEntity, "editor_json", "Refused", "definitions", jsonView{Refused: msg, Problems: probs})
}

// ---- whole files ----

type jsonView struct {
	editorBase
	File     string // "segments" or "slots"
	Text     string
	Problems []problem
	Refused  string
}

func fileParam(r *http.Request) (string, bool) {
	f := r.FormValue("file")
	if f == "" {
		f = "segments"
	}
	return f, f == "segments" || f == "slots"
}

func (h *Handler) jsonEdit(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	file, ok := fileParam(r)
	if !ok {
		h.errorPage(w, r, http.StatusBadRequest, `file is "segments" or "slots".`)
		return
	}
	dr, err := d.Draft(r.Context())
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be read: "+err.Error())
		return
	}
	v := jsonView{editorBase: h.editorBase(r, d, dr), File: file, Text: dr.Content.Segments}
	if file == "slots" {
		v.Text = dr.Content.Slots
	}
	h.render(w, r, http.StatusOK, "editor_json", file+".json", "definitions", v)
}

func (h *Handler) jsonSave(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	file, ok := fileParam(r)
	if !ok {
		h.errorPage(w, r, http.StatusBadRequest, `file is "segments" or "slots".`)
		return
	}
	dr, err := d.Draft(r.Context())
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be read: "+err.Error())
		return
	}
	text := r.FormValue("text")
	c := dr.Content
	if file == "slots" {
		c.Slots = text
	} else {
		c.Segments = text
	}
	if err := h.saveDraft(r, d, dr, dr.Base, c); err != nil {
		probs := problemsOf(err)
		place(probs, definitions.SegmentsFile, c.Segments)
		place(probs, definitions.SlotsFile, c.Slots)
		h.render(w, r, http.StatusUnprocessableEntity, "editor_json", file+".json", "definitions",
			jsonView{editorBase: h.editorBase(r, d, dr), File: file, Text: text, Problems: probs})
		return
	}
	h.redirect(w, r, "/json?file="+file, "saved")
}

// validate checks a text against the draft and answers its problems as
// JSON: [{file, line, column, path, msg}]; an empty list when it parses.
// "file" says what the text is: "segments" or "slots" (a whole file), or
// "segment" (one segment, "name" being the one it replaces, "" for a new
// one), whose problems are placed in the text (file "segment").
func (h *Handler) validate(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	st, err := h.draftState(r.Context(), d)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	text := r.FormValue("text")
	var probs []problem
	switch r.FormValue("file") {
	case "segment":
		idx := len(st.Segments.items)
		if name := r.FormValue("name"); name != "" {
			if idx = st.Segments.find(name); idx < 0 {
				idx = len(st.Segments.items)
			}
		}
		_, probs = h.checkSegment(d, st, idx, text)
	case "segments", "slots":
		c := st.Draft.Content
		if r.FormValue("file") == "slots" {
			c.Slots = text
		} else {
			c.Segments = text
		}
		_, err := d.Check(c)
		probs = problemsOf(err)
		place(probs, definitions.SegmentsFile, c.Segments)
		place(probs, definitions.SlotsFile, c.Slots)
	default:
		http.Error(w, `file: want "segment", "segments" or "slots"`, http.StatusBadRequest)
		return
	}
	if probs == nil {
		probs = []problem{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(probs)
}
