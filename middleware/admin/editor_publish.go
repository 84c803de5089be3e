package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tailorhq/tailor/middleware/definitions"
)

// diff is what a content changes from another: names of segments and
// slots added, changed and removed.
type diff struct {
	Added, Changed, Removed                []string
	SlotsAdded, SlotsChanged, SlotsRemoved []string
	// Unreadable says a file could not be compared item by item.
	Unreadable bool
}

// Empty reports whether nothing changes.
func (d diff) Empty() bool {
	return !d.Unreadable && len(d.Added)+len(d.Changed)+len(d.Removed)+len(d.SlotsAdded)+len(d.SlotsChanged)+len(d.SlotsRemoved) == 0
}

func diffOf(from, to definitions.Content) diff {
	var d diff
	compare := func(a, b, list string) (added, changed, removed []string) {
		da, err1 := parseListDoc(a, list)
		db, err2 := parseListDoc(b, list)
		if err1 != nil || err2 != nil {
			d.Unreadable = a != b
			return
		}
		ca, cb := da.canonical(), db.canonical()
		for _, n := range db.names() {
			old, ok := ca[n]
			switch {
			case !ok:
				added = append(added, n)
			case old != cb[n]:
				changed = append(changed, n)
			}
		}
		for _, n := range da.names() {
			if _, ok := cb[n]; !ok {
				removed = append(removed, n)
			}
		}
		if !d.Unreadable && len(added)+len(changed)+len(removed) == 0 {
			// Same items: the order or the rest of the file (saved groups,
			// options) may still differ.
			if da.text() != db.text() {
				changed = append(changed, "(the file's other members or order)")
			}
		}
		return
	}
	d.Added, d.Changed, d.Removed = compare(from.Segments, to.Segments, "segments")
	d.SlotsAdded, d.SlotsChanged, d.SlotsRemoved = compare(from.Slots, to.Slots, "slots")
	return d
}

type publishView struct {
	editorBase
	Diff diff
	// Digest identifies the draft's content shown: the form sends it
	// back, so that what is published is what was reviewed.
	Digest   string
	Note     string
	Problems []problem
	Conflict string // why the publication conflicts
	Err      string
	Version  definitions.Version
}

func (h *Handler) publishPage(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	v, ok := h.publishView(w, r, d)
	if !ok {
		return
	}
	if v.Stale() {
		v.Conflict = fmt.Sprintf("Your draft started from version %d, and version %d has been published since.", v.Draft.Base, v.Current)
	}
	h.render(w, r, http.StatusOK, "editor_publish", "Publish", "definitions", v)
}

func (h *Handler) publishView(w http.ResponseWriter, r *http.Request, d Definitions) (publishView, bool) {
	dr, err := d.Draft(r.Context())
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be read: "+err.Error())
		return publishView{}, false
	}
	v := publishView{editorBase: h.editorBase(r, d, dr)}
	_, cur, err := d.Current(r.Context())
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The current version could not be read: "+err.Error())
		return publishView{}, false
	}
	v.Diff = diffOf(cur, dr.Content)
	v.Digest = digest(dr.Content)
	return v, true
}

// digest identifies a content: the hex SHA-256 of its two texts.
func digest(c definitions.Content) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s%d:%s", len(c.Segments), c.Segments, len(c.Slots), c.Slots)
	return hex.EncodeToString(h.Sum(nil))
}

func (h *Handler) publish(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	v, ok := h.publishView(w, r, d)
	if !ok {
		return
	}
	v.Note = strings.TrimSpace(r.FormValue("note"))
	if v.Note == "" {
		v.Problems = []problem{{File: "form", Path: "/note", Msg: "Say why in a note: it goes to the audit log."}}
		h.render(w, r, http.StatusUnprocessableEntity, "editor_publish", "Publish", "definitions", v)
		return
	}
	base, err := strconv.Atoi(r.FormValue("base"))
	if err != nil {
		base = v.Draft.Base
	}
	if base != v.Draft.Base {
		// The draft changed (was published, discarded, rebased) since the
		// page was shown: show it again rather than publish what was not
		// reviewed.
		v.Conflict = fmt.Sprintf("The draft changed since this page was shown: it is now based on version %d. Review it again.", v.Draft.Base)
		h.render(w, r, http.StatusConflict, "editor_publish", "Publish", "definitions", v)
		return
	}
	if sent := r.FormValue("draft"); sent != "" && sent != v.Digest {
		// Edited since the page was shown, on the same base (by another
		// editor, or in another tab): the diff reviewed is not what
		// would be published.
		by := ""
		if v.Draft.By != "" {
			by = " by " + v.Draft.By
		}
		v.Err = fmt.Sprintf("The draft changed since this page was shown (saved%s at %s): review the changes above again, then publish.",
			by, v.Draft.At.Format("15:04:05 MST"))
		h.render(w, r, http.StatusConflict, "editor_publish", "Publish", "definitions", v)
		return
	}
	ver, err := d.Publish(r.Context(), v.Draft.Content, v.Draft.Base, userOf(r).Name, v.Note)
	switch {
	case errors.Is(err, definitions.ErrConflict):
		v.Conflict = fmt.Sprintf("Your draft started from version %d, and version %d has been published since: publishing the draft would undo it.", v.Draft.Base, v.Current)
		h.render(w, r, http.StatusConflict, "editor_publish", "Publish", "definitions", v)
		return
	case err != nil:
		v.Problems = problemsOf(err)
		place(v.Problems, definitions.SegmentsFile, v.Draft.Content.Segments)
		place(v.Problems, definitions.SlotsFile, v.Draft.Content.Slots)
		if len(v.Problems) == 1 && v.Problems[0].File == "" {
			v.Problems, v.Err = nil, err.Error()
		}
		h.render(w, r, http.StatusUnprocessableEntity, "editor_publish", "Publish", "definitions", v)
		return
	}
	h.redirect(w, r, "/versions", fmt.Sprintf("published version %d", ver.Number))
}

// draftDiscard forgets the draft: the next one starts from the current
// version.
func (h *Handler) draftDiscard(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	if err := d.DiscardDraft(r.Context()); err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be discarded: "+err.Error())
		return
	}
	h.redirect(w, r, "", "discarded the draft: it is the current version again")
}

// draftRebase keeps the draft's content but bases it on the current
// version: publishing it then replaces what was published since.
func (h *Handler) draftRebase(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	dr, err := d.Draft(r.Context())
	if err == nil {
		var cur definitions.Version
		if cur, _, err = d.Current(r.Context()); err == nil {
			err = h.saveDraft(r, d, dr, cur.Number, dr.Content)
		}
	}
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be kept: "+err.Error())
		return
	}
	h.redirect(w, r, "/publish", "the draft is now based on the current version")
}

// ---- versions: the audit log ----

type versionsView struct {
	editorBase
	Versions []definitions.Version
	Err      string
}

func (h *Handler) versions(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	dr, err := d.Draft(r.Context())
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be read: "+err.Error())
		return
	}
	v := versionsView{editorBase: h.editorBase(r, d, dr)}
	v.Versions, err = d.History(r.Context())
	if err != nil {
		v.Err = err.Error()
	}
	h.render(w, r, http.StatusOK, "editor_versions", "Versions", "definitions", v)
}

type versionView struct {
	editorBase
	Version  definitions.Version
	Content  definitions.Content
	Diff     diff // from the current version to this one
	IsFiles  bool
	Problems []problem
	Note     string
}

func (h *Handler) versionView(w http.ResponseWriter, r *http.Request, d Definitions) (versionView, bool) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("%q is not a version number.", r.PathValue("n")))
		return versionView{}, false
	}
	dr, err := d.Draft(r.Context())
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The draft could not be read: "+err.Error())
		return versionView{}, false
	}
	v := versionView{editorBase: h.editorBase(r, d, dr), IsFiles: n == 0}
	hist, err := d.History(r.Context())
	if err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, "The history could not be read: "+err.Error())
		return versionView{}, false
	}
	if n > 0 {
		i := slices.IndexFunc(hist, func(x definitions.Version) bool { return x.Number == n })
		if i < 0 {
			h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("There is no version %d.", n))
			return versionView{}, false
		}
		v.Version = hist[i]
	}
	if v.Content, err = d.Content(r.Context(), n); err != nil {
		h.errorPage(w, r, http.StatusServiceUnavailable, fmt.Sprintf("Version %d could not be read: %v", n, err))
		return versionView{}, false
	}
	if _, cur, err := d.Current(r.Context()); err == nil {
		v.Diff = diffOf(cur, v.Content)
	}
	return v, true
}

func (h *Handler) version(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	v, ok := h.versionView(w, r, d)
	if !ok {
		return
	}
	title := "Version " + strconv.Itoa(v.Version.Number)
	if v.IsFiles {
		title = "Version 0: the site's files"
	}
	h.render(w, r, http.StatusOK, "editor_version", title, "definitions", v)
}

// restore publishes an earlier version's content again, as a new version.
func (h *Handler) restore(w http.ResponseWriter, r *http.Request) {
	d, ok := h.defs(w, r)
	if !ok {
		return
	}
	v, ok := h.versionView(w, r, d)
	if !ok {
		return
	}
	n := v.Version.Number
	note := strings.TrimSpace(r.FormValue("note"))
	if note == "" {
		note = fmt.Sprintf("restored version %d", n)
	}
	ver, err := d.Restore(r.Context(), n, userOf(r).Name, note)
	if err != nil {
		v.Problems = problemsOf(err)
		if len(v.Problems) == 1 && v.Problems[0].File == "" {
			v.Problems[0].Msg = "The version could not be restored: " + v.Problems[0].Msg
		}
		place(v.Problems, definitions.SegmentsFile, v.Content.Segments)
		place(v.Problems, definitions.SlotsFile, v.Content.Slots)
		h.render(w, r, http.StatusUnprocessableEntity, "editor_version", "Version "+strconv.Itoa(n), "definitions", v)
		return
	}
	h.redirect(w, r, "/versions", fmt.Sprintf("restored version %d as version %d", n, ver.Number))
}
