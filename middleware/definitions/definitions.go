// Package definitions keeps a site's segments and slots in its shared
// store as versioned documents, so that they can be edited, published and
// rolled back while the site runs (the dashboard's editor does), instead
// of living only in files that a developer edits and deploys.
//
// A version is the text of a segments file (rules.Parse) and of a slots
// file (slots.Parse), validated by the same parsers, with the same
// positioned errors. Publishing a version makes it current on every
// instance of the site: the instance that publishes switches at once, and
// the others when the store announces the change (store.Invalidator: a
// second or less on every store of this module), or at the latest at the
// next poll (Config.PollInterval) if an announcement was lost. An instance
// switches its segments and then its slots, as one step of its own: it
// never serves a mix of two versions for longer than that step.
//
// Every version keeps who published it, when, and a note; Restore makes an
// earlier version current again by publishing its content as a new
// version, so that the history, which is the audit log, only grows.
//
// Files and the store combine this way: the site's files (or built-in
// definitions) are what it serves while the store holds no version, and
// the first draft starts from them; once a version is published, the store
// wins on every instance, and files are read no more. A site that wants
// files only does not use this package.
package definitions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tailorhq/tailor/middleware/slots"
	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/store"
)

// Names of the store documents, under one prefix.
const (
	prefix = "tailor/definitions/"
	// HeadDocument holds the number of the current version and the log
	// of every version; its announcement is what instances listen for.
	HeadDocument  = prefix + "head"
	draftDocument = prefix + "draft"
	lease         = prefix + "publish"
	// SegmentsFile and SlotsFile name the two texts in problems.
	SegmentsFile = "segments.json"
	SlotsFile    = "slots.json"
)

func versionDocument(n int) string { return prefix + "v/" + strconv.Itoa(n) }

// Content is the text of a version: a segments file and a slots file.
type Content struct {
	// Segments is a segments file (see rules.Parse). Required.
	Segments string `json:"segments"`
	// Slots is a slots file (see slots.Parse), or "" for a site without
	// slots.
	Slots string `json:"slots,omitempty"`
}

// Actions of a Version.
const (
	ActionPublish = "publish"
	ActionRestore = "restore"
)

// A Version is an entry of the history: one published content.
type Version struct {
	// Number counts versions from 1; 0 is the site's files, before any
	// version was published.
	Number int `json:"number"`
	// By is who published it, as the dashboard knows them.
	By string `json:"by"`
	// At is when it was published.
	At time.Time `json:"at"`
	// Note says why.
	Note string `json:"note,omitempty"`
	// Action is ActionPublish, or ActionRestore for a version that
	// restored the content of version From.
	Action string `json:"action"`
	From   int    `json:"from,omitempty"`
}

// A Draft is the site's one work in progress: the content being edited,
// and the version it started from, so that publishing it over a version
// published meanwhile is refused (ErrConflict) rather than undoing that
// version.
type Draft struct {
	Content Content   `json:"content"`
	Base    int       `json:"base"`
	By      string    `json:"by,omitempty"`
	At      time.Time `json:"at,omitzero"`
	// Rev counts the changes of the draft (saves, discards, publication
	// of the draft): SaveDraft takes a draft read by Draft, and refuses
	// it (ErrDraftChanged) if the draft changed since, so that of two
	// editors who read the same draft the second to save does not undo
	// the first one's change.
	Rev int `json:"rev,omitempty"`
}

// Errors of Publish, Restore and SaveDraft.
var (
	// ErrConflict: the draft's base is no longer the current version.
	ErrConflict = errors.New("tailor/definitions: another version was published since the draft's base")
	// ErrBusy: another instance kept publishing for too long.
	ErrBusy = errors.New("tailor/definitions: another publication is in progress")
	// ErrDraftChanged: the draft given to SaveDraft was read before
	// another change of the draft (see Draft.Rev).
	ErrDraftChanged = errors.New("tailor/definitions: the draft changed since it was read")
	// ErrNoVersion: the version asked for does not exist.
	ErrNoVersion = errors.New("tailor/definitions: no such version")
)

// Config configures Open. Store and Segments are required.
type Config struct {
	// Store keeps the versions: it must be a store.Documents and a
	// store.Leaser (every store of this module is); it should be a
	// store.Invalidator, whose announcements switch the other instances
	// within a second (without, they switch at the next poll).
	Store store.Store
	// Segments is the engine that serves the current segments.
	Segments *rules.Engine
	// Slots, if set, is the engine that serves the current slots.
	Slots *slots.Engine
	// ParseOptions are given to rules.Parse: the site's plugins
	// (rules.Plugins), saved groups.
	ParseOptions []rules.ParseOption
	// SlotOptions are given to slots.Parse, after the segments of the same
	// version (slots.Segments).
	SlotOptions []slots.ParseOption
	// Files is what the site serves while the store holds no version: the
	// text of its segments and slots files, the base of the first draft.
	Files Content
	// PollInterval is how often the current version is read even without
	// an announcement, in case one was lost. Default 30 seconds.
	PollInterval time.Duration
	// Logger receives the versions that could not be loaded. Default
	// slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// Status is the state of an instance's definitions.
type Status struct {
	// Version is the number of the version served (0: the files).
	Version int
	// Loaded is when it was loaded.
	Loaded time.Time
	// Err is why the last attempt to load a newer version failed, or nil:
	// the instance goes on with Version, and tries again at the next
	// announcement or poll.
	Err error
}

// Definitions serves the current version to its engines and publishes
// new ones. Make it with Open; it is safe for concurrent use.
type Definitions struct {
	cfg    Config
	docs   store.Documents
	leaser store.Leaser
	holder string

	mu     sync.Mutex // guards status; held while a version is loaded
	status Status

	// leased is held while this instance holds the publication lease:
	// the lease has one holder for the whole instance, which Lease lets
	// in again, so it keeps apart only the instances.
	leased sync.Mutex

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// head is the HeadDocument.
type head struct {
	Current int       `json:"current"`
	Log     []Version `json:"log"`
}

// Open loads the store's current version, if any, into the engines, and
// starts following the versions published later. Close stops following.
func Open(ctx context.Context, cfg Config) (*Definitions, error) {
	var errs []error
	docs, _ := cfg.Store.(store.Documents)
	leaser, _ := cfg.Store.(store.Leaser)
	if cfg.Store == nil {
		errs = append(errs, errors.New("Config.Store: required"))
	} else if docs == nil || leaser == nil {
		errs = append(errs, fmt.Errorf("Config.Store: a %T keeps no documents or leases", cfg.Store))
	}
	if cfg.Segments == nil {
		errs = append(errs, errors.New("Config.Segments: required"))
	}
	if cfg.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("Config.PollInterval: %v is negative", cfg.PollInterval))
	}
	if cfg.Files.Slots != "" && cfg.Slots == nil {
		errs = append(errs, errors.New("Config.Files.Slots: set without Config.Slots"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("tailor/definitions: invalid config: %w", errors.Join(errs...))
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var id [8]byte
	rand.Read(id[:])
	d := &Definitions{cfg: cfg, docs: docs, leaser: leaser, holder: "definitions-" + hex.EncodeToString(id[:]),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	d.status.Loaded = cfg.Now()
	// Listen first, then read: a version published in between is both
	// read now and announced (a wake that finds it loaded already), where
	// in the other order it would wait for the next poll.
	run, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	if inv, ok := cfg.Store.(store.Invalidator); ok {
		if err := inv.Subscribe(run, d.announced); err != nil {
			cancel()
			return nil, fmt.Errorf("tailor/definitions: subscribe to the store's announcements: %w", err)
		}
	}
	if err := d.refresh(ctx); err != nil {
		cancel()
		return nil, err
	}
	go d.follow(run)
	return d, nil
}

// Close stops following new versions. The engines keep the current one.
func (d *Definitions) Close() error {
	d.once.Do(func() {
		d.cancel()
		<-d.done
	})
	return nil
}

func (d *Definitions) announced(c store.Change) {
	if c.Document != HeadDocument {
		return
	}
	select {
	case d.wake <- struct{}{}:
	default: // a refresh is already due
	}
}

// follow loads the newest version at each announcement and poll.
func (d *Definitions) follow(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
		if err := d.refresh(ctx); err != nil && ctx.Err() == nil {
			d.cfg.Logger.Error("definitions: cannot read the current version; serving the one loaded", "version", d.Status().Version, "err", err)
		}
	}
}

// refresh loads the store's current version if it is newer than the one
// served. A version that does not parse here is recorded in Status, and
// not an error: the store is fine, this instance is not (a plugin it lacks).
func (d *Definitions) refresh(ctx context.Context) error {
	h, err := d.head(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if h.Current <= d.status.Version {
		return nil
	}
	c, err := d.content(ctx, h.Current)
	if err != nil {
		return err
	}
	if err := d.load(h.Current, c); err != nil {
		d.status.Err = fmt.Errorf("version %d: %w", h.Current, err)
		d.cfg.Logger.Error("definitions: a published version does not load here; serving the one loaded",
			"version", h.Current, "serving", d.status.Version, "err", err)
	}
	return nil
}

// load parses c and makes it the engines' definitions, as version n.
// d.mu is held.
func (d *Definitions) load(n int, c Content) error {
	segs, sl, err := d.parse(c, fmt.Sprintf("@v%d", n))
	if err != nil {
		return err
	}
	d.cfg.Segments.Load(segs)
	if d.cfg.Slots != nil {
		if sl == nil {
			sl, _ = slots.NewSet()
		}
		d.cfg.Slots.Load(sl)
	}
	d.status = Status{Version: n, Loaded: d.cfg.Now()}
	return nil
}

// Parsed is a content parsed by Check.
type Parsed struct {
	Segments *rules.Set
	// Slots is nil when the content has no slots.
	Slots *slots.Set
}

// Check parses c as the site would serve it: the segments with the site's
// plugins, the slots against those segments. Its error lists every
// problem of both files as rules.ConditionErrors, each with the file
// (SegmentsFile or SlotsFile), line, column and JSON Pointer.
func (d *Definitions) Check(c Content) (*Parsed, error) {
	segs, sl, err := d.parse(c, "")
	if err != nil {
		return nil, err
	}
	return &Parsed{Segments: segs, Slots: sl}, nil
}

func (d *Definitions) parse(c Content, suffix string) (*rules.Set, *slots.Set, error) {
	if strings.TrimSpace(c.Segments) == "" {
		return nil, nil, rules.ConditionErrors{{File: SegmentsFile, Line: 1, Column: 1, Msg: "the segments file is empty"}}
	}
	opts := append(append([]rules.ParseOption(nil), d.cfg.ParseOptions...), rules.Filename(SegmentsFile+suffix))
	segs, err := rules.Parse([]byte(c.Segments), opts...)
	if err != nil {
		return nil, nil, err
	}
	if strings.TrimSpace(c.Slots) == "" {
		return segs, nil, nil
	}
	if d.cfg.Slots == nil {
		return nil, nil, rules.ConditionErrors{{File: SlotsFile, Line: 1, Column: 1, Msg: "this site has no slots engine"}}
	}
	names := make([]string, 0, segs.Len())
	for _, s := range segs.Segments() {
		names = append(names, s.Name)
	}
	sopts := append(append([]slots.ParseOption(nil), d.cfg.SlotOptions...), slots.Segments(names...), slots.Filename(SlotsFile+suffix))
	sl, err := slots.Parse([]byte(c.Slots), sopts...)
	if err != nil {
		return nil, nil, err
	}
	return segs, sl, nil
}

// Status returns the version this instance serves.
func (d *Definitions) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Current returns the version this instance serves (Number 0: the files)
// and its content.
func (d *Definitions) Current(ctx context.Context) (Version, Content, error) {
	n := d.Status().Version
	if n == 0 {
		return Version{Action: "files"}, d.cfg.Files, nil
	}
	h, err := d.head(ctx)
	if err != nil {
		return Version{}, Content{}, err
	}
	c, err := d.content(ctx, n)
	if err != nil {
		return Version{}, Content{}, err
	}
	return h.version(n), c, nil
}

func (h *head) version(n int) Version {
	if n >= 1 && n <= len(h.Log) {
		return h.Log[n-1]
	}
	return Version{Number: n}
}

// History returns every published version, newest first: the audit log of
// publications and restorations.
func (d *Definitions) History(ctx context.Context) ([]Version, error) {
	h, err := d.head(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Version, len(h.Log))
	for i, v := range h.Log {
		out[len(h.Log)-1-i] = v
	}
	return out, nil
}

// Content returns the content of version n (0: the files).
func (d *Definitions) Content(ctx context.Context, n int) (Content, error) {
	if n == 0 {
		return d.cfg.Files, nil
	}
	return d.content(ctx, n)
}

func (d *Definitions) head(ctx context.Context) (head, error) {
	var h head
	data, err := d.docs.Document(ctx, HeadDocument)
	if errors.Is(err, store.ErrNotFound) {
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("tailor/definitions: read %s: %w", HeadDocument, err)
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return h, fmt.Errorf("tailor/definitions: read %s: %w", HeadDocument, err)
	}
	if h.Current < 0 || h.Current > len(h.Log) {
		return h, fmt.Errorf("tailor/definitions: read %s: current version %d of %d", HeadDocument, h.Current, len(h.Log))
	}
	return h, nil
}

func (d *Definitions) content(ctx context.Context, n int) (Content, error) {
	var c Content
	data, err := d.docs.Document(ctx, versionDocument(n))
	if errors.Is(err, store.ErrNotFound) {
		return c, fmt.Errorf("version %d: %w", n, ErrNoVersion)
	}
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		return c, fmt.Errorf("tailor/definitions: read version %d: %w", n, err)
	}
	return c, nil
}

// Publish makes c the current version, on behalf of by, with note. base is
// the version c was edited from: if another version was published since,
// Publish returns ErrConflict and changes nothing. A c that does not parse
// (Check) is refused with its problems. The publishing instance serves the
// new version when Publish returns; the others within a second.
func (d *Definitions) Publish(ctx context.Context, c Content, base int, by, note string) (Version, error) {
	if _, err := d.Check(c); err != nil {
		return Version{}, err
	}
	v, err := d.commit(ctx, c, func(h *head) (Version, error) {
		if h.Current != base {
			return Version{}, fmt.Errorf("the draft is based on version %d, and version %d is current: %w", base, h.Current, ErrConflict)
		}
		return Version{By: by, Note: note, Action: ActionPublish}, nil
	})
	if err != nil {
		return v, err
	}
	// When the draft is what was published, the next one starts from
	// this version; a draft with other work in progress stays.
	err = d.changeDraft(ctx, func(dr *Draft) (bool, error) {
		if dr.Content != c {
			return false, nil
		}
		dr.Content, dr.By, dr.At = Content{}, "", time.Time{}
		return true, nil
	})
	if err != nil {
		d.cfg.Logger.Warn("definitions: published, but the draft stays", "version", v.Number, "err", err)
	}
	return v, nil
}

// Restore makes the content of version n current again, as a new version
// that records the restoration.
func (d *Definitions) Restore(ctx context.Context, n int, by, note string) (Version, error) {
	c, err := d.Content(ctx, n)
	if err != nil {
		return Version{}, err
	}
	if _, err := d.Check(c); err != nil {
		return Version{}, fmt.Errorf("version %d no longer loads here: %w", n, err)
	}
	return d.commit(ctx, c, func(h *head) (Version, error) {
		if n > len(h.Log) {
			return Version{}, fmt.Errorf("version %d: %w", n, ErrNoVersion)
		}
		return Version{By: by, Note: note, Action: ActionRestore, From: n}, nil
	})
}

// commit writes c as the next version under the publication lease, with
// the entry that entry returns for the head it read, then loads it here.
func (d *Definitions) commit(ctx context.Context, c Content, entry func(*head) (Version, error)) (Version, error) {
	if err := d.acquire(ctx); err != nil {
		return Version{}, err
	}
	defer d.release(ctx)
	h, err := d.head(ctx)
	if err != nil {
		return Version{}, err
	}
	v, err := entry(&h)
	if err != nil {
		return Version{}, err
	}
	v.Number, v.At = len(h.Log)+1, d.cfg.Now().UTC()
	data, err := json.Marshal(c)
	if err != nil {
		return Version{}, err
	}
	// The version first, the head that names it last: a reader never
	// finds a head whose version is missing. A version written by a
	// publisher that failed before its head is overwritten by the next.
	// Each write is made under the lease, renewed just before, with the
	// head as it was read: see hold.
	if err := d.hold(ctx, len(h.Log)); err != nil {
		return Version{}, err
	}
	if err := d.put(ctx, versionDocument(v.Number), data); err != nil {
		return Version{}, fmt.Errorf("tailor/definitions: write version %d: %w", v.Number, err)
	}
	h.Current, h.Log = v.Number, append(h.Log, v)
	data, err = json.Marshal(h)
	if err != nil {
		return Version{}, err
	}
	if err := d.hold(ctx, len(h.Log)-1); err != nil {
		return Version{}, err
	}
	if err := d.put(ctx, HeadDocument, data); err != nil {
		return Version{}, fmt.Errorf("tailor/definitions: write %s: %w", HeadDocument, err)
	}
	d.mu.Lock()
	if v.Number > d.status.Version {
		// Check passed, so this loads; if it did not, Status says why.
		if err := d.load(v.Number, c); err != nil {
			d.status.Err = err
		}
	}
	d.mu.Unlock()
	return v, nil
}

// The publication lease lives leaseTTL from its last renewal; a write of
// a publication is given writeTimeout, well under it.
const (
	leaseTTL     = 30 * time.Second
	writeTimeout = 10 * time.Second
)

// hold makes sure that the publication may write on: it renews the lease
// and checks that the head still has versions versions, as when it was
// read. A publisher that stalled (a slow store, a paused process) for
// longer than the lease may have seen another take the lease, publish the
// same version number and release it: writing on would overwrite that
// version, or credit it to the wrong author, and this instance would serve
// another content under its number than the others.
func (d *Definitions) hold(ctx context.Context, versions int) error {
	ok, err := d.leaser.Lease(ctx, lease, d.holder, leaseTTL)
	if err != nil {
		return fmt.Errorf("tailor/definitions: renew the publication lease: %w", err)
	}
	if !ok {
		return fmt.Errorf("the publication lease expired and was taken by another publisher: %w", ErrBusy)
	}
	h, err := d.head(ctx)
	if err != nil {
		return err
	}
	if len(h.Log) != versions {
		return fmt.Errorf("the publication lease expired while version %d was written, and version %d was published meanwhile: %w",
			versions+1, len(h.Log), ErrConflict)
	}
	return nil
}

// put writes a document of a publication, within writeTimeout: a write
// still in flight when the lease expires could land over another's.
func (d *Definitions) put(ctx context.Context, name string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return d.docs.PutDocument(ctx, name, data)
}

// acquire takes the publication lease, waiting a little for another
// publisher to finish; release gives it back.
func (d *Definitions) acquire(ctx context.Context) error {
	d.leased.Lock()
	if err := d.takeLease(ctx); err != nil {
		d.leased.Unlock()
		return err
	}
	return nil
}

func (d *Definitions) release(ctx context.Context) {
	d.leaser.Release(context.WithoutCancel(ctx), lease, d.holder)
	d.leased.Unlock()
}

func (d *Definitions) takeLease(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := d.leaser.Lease(ctx, lease, d.holder, leaseTTL)
		if err != nil {
			return fmt.Errorf("tailor/definitions: take the publication lease: %w", err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return ErrBusy
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Draft returns the site's draft: the one saved last, or the current
// version's content when none is saved (or the one saved was published or
// discarded). A saved draft stays until then, even when another version is
// published or restored meanwhile: its Base then tells that publishing it
// would conflict (ErrConflict).
func (d *Definitions) Draft(ctx context.Context) (Draft, error) {
	dr, err := d.saved(ctx)
	if err != nil {
		return Draft{}, err
	}
	if dr.Content.Segments != "" {
		return dr, nil
	}
	v, c, err := d.Current(ctx)
	if err != nil {
		return Draft{}, err
	}
	return Draft{Content: c, Base: v.Number, Rev: dr.Rev}, nil
}

// saved returns the saved draft; its Content is empty when there is none
// (never saved, or discarded), and its Rev counts the changes all the
// same.
func (d *Definitions) saved(ctx context.Context) (Draft, error) {
	var dr Draft
	data, err := d.docs.Document(ctx, draftDocument)
	if errors.Is(err, store.ErrNotFound) {
		return dr, nil
	}
	if err != nil {
		return dr, fmt.Errorf("tailor/definitions: read the draft: %w", err)
	}
	if err := json.Unmarshal(data, &dr); err != nil {
		return dr, fmt.Errorf("tailor/definitions: read the draft: %w", err)
	}
	if dr.Content.Segments == "" {
		dr.Content = Content{} // discarded
	}
	return dr, nil
}

// changeDraft changes the saved draft with fn, under the publication
// lease, so that no other change of the draft comes between reading it
// and writing it; fn reports whether it changed the draft. A change
// counts in Rev.
func (d *Definitions) changeDraft(ctx context.Context, fn func(*Draft) (bool, error)) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release(ctx)
	dr, err := d.saved(ctx)
	if err != nil {
		return err
	}
	rev := dr.Rev
	changed, err := fn(&dr)
	if err != nil || !changed {
		return err
	}
	dr.Rev = rev + 1
	data, err := json.Marshal(dr)
	if err != nil {
		return err
	}
	return d.put(ctx, draftDocument, data)
}

// SaveDraft keeps dr as the site's draft, if its content parses (Check);
// otherwise it returns the problems and keeps the draft saved before. dr
// is a draft read by Draft and changed: if the draft changed since it was
// read (its Rev), SaveDraft returns ErrDraftChanged and keeps that
// change.
func (d *Definitions) SaveDraft(ctx context.Context, dr Draft) error {
	if _, err := d.Check(dr.Content); err != nil {
		return err
	}
	if dr.At.IsZero() {
		dr.At = d.cfg.Now().UTC()
	}
	err := d.changeDraft(ctx, func(saved *Draft) (bool, error) {
		if saved.Rev != dr.Rev {
			by := ""
			if saved.By != "" {
				by = " by " + saved.By
			}
			return false, fmt.Errorf("saved%s at %s: read it again: %w", by, saved.At.Format(time.RFC3339), ErrDraftChanged)
		}
		*saved = dr
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("tailor/definitions: save the draft: %w", err)
	}
	return nil
}

// DiscardDraft forgets the saved draft: the next Draft is the current
// version's content.
func (d *Definitions) DiscardDraft(ctx context.Context) error {
	err := d.changeDraft(ctx, func(dr *Draft) (bool, error) {
		*dr = Draft{Rev: dr.Rev}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("tailor/definitions: discard the draft: %w", err)
	}
	return nil
}
