package admin

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/rules/assoc"
	"github.com/tailorhq/tailor/store"
)

// Exports stream: a row is written as soon as its profile is read, and the
// response is flushed every flushRows rows or flushEvery, whichever comes
// first, so that memory stays flat whatever the size of the segment.
const (
	flushRows  = 500
	flushEvery = time.Second
	maxTraits  = 32 // trait columns one CSV export may ask for
)

// exportRecord is one line of an NDJSON export.
type exportRecord struct {
	VisitorID   string            `json:"visitorId"`
	UserID      string            `json:"userId,omitempty"`
	FirstSeen   time.Time         `json:"firstSeen"`
	LastSeen    time.Time         `json:"lastSeen"`
	Visits      int               `json:"visits"`
	Orders      int               `json:"orders"`
	Revenue     float64           `json:"revenue"`
	Traits      json.RawMessage   `json:"traits,omitempty"`
	Segments    []string          `json:"segments"`
	Predictions assoc.Predictions `json:"predictions"`
}

func (h *Handler) exportCSV(w http.ResponseWriter, r *http.Request) {
	var traits []string
	for t := range strings.SplitSeq(r.FormValue("traits"), ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(traits, t) {
			traits = append(traits, t)
		}
	}
	if len(traits) > maxTraits {
		h.errorPage(w, r, http.StatusBadRequest, fmt.Sprintf("An export takes at most %d trait columns.", maxTraits))
		return
	}
	header := []string{"visitor_id", "user_id", "first_seen", "last_seen", "visits", "orders", "revenue"}
	for _, t := range traits {
		header = append(header, "trait_"+t)
	}
	header = append(header, "traits", "segments",
		"churn_risk", "next_purchase", "next_purchase_basis", "gap_days", "days_since_purchase",
		"best_hour", "best_weekday", "timezone", "usual_months")
	var cw *csv.Writer
	h.export(w, r, "csv", "text/csv; charset=utf-8", func(bw *bufio.Writer) error {
		cw = csv.NewWriter(bw)
		return cw.Write(header)
	}, func(rec *exportRecord, p *store.Profile) error {
		row := []string{
			rec.VisitorID, cell(rec.UserID), stamp(rec.FirstSeen), stamp(rec.LastSeen),
			strconv.Itoa(rec.Visits), strconv.Itoa(rec.Orders), strconv.FormatFloat(rec.Revenue, 'f', 2, 64),
		}
		for _, t := range traits {
			row = append(row, cell(traitText(p.Trait(t))))
		}
		pr := &rec.Predictions
		months := make([]string, len(pr.UsualMonths))
		for i, m := range pr.UsualMonths {
			months[i] = strconv.Itoa(m)
		}
		row = append(row, cell(string(rec.Traits)), strings.Join(rec.Segments, " "),
			strconv.FormatFloat(pr.ChurnRisk, 'f', 4, 64), stamp(pr.NextPurchase), pr.NextPurchaseBasis,
			strconv.FormatFloat(pr.GapDays, 'f', 1, 64), strconv.FormatFloat(pr.DaysSincePurchase, 'f', 1, 64),
			strconv.Itoa(pr.BestHour), strconv.Itoa(pr.BestWeekday), pr.TimeZone, strings.Join(months, " "))
		return cw.Write(row)
	}, func() error {
		cw.Flush()
		return cw.Error()
	})
}

func (h *Handler) exportNDJSON(w http.ResponseWriter, r *http.Request) {
	var enc *json.Encoder
	h.export(w, r, "ndjson", "application/x-ndjson", func(bw *bufio.Writer) error {
		enc = json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		return nil
	}, func(rec *exportRecord, _ *store.Profile) error {
		return enc.Encode(rec)
	}, func() error { return nil })
}

// export streams the members of the segment of the request: begin writes
// the header, row each member, flush what a row writer buffers.
func (h *Handler) export(w http.ResponseWriter, r *http.Request, ext, ctype string,
	begin func(*bufio.Writer) error, row func(*exportRecord, *store.Profile) error, flush func() error) {
	seg, ok := h.findSegment(r.PathValue("name"))
	if !ok {
		h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("There is no segment named %q in the engine's current set.", r.PathValue("name")))
		return
	}
	rg, ok := h.p.Store().(store.Ranger)
	if !ok {
		h.errorPage(w, r, http.StatusNotImplemented, "The store cannot list its profiles (it does not implement store.Ranger), so segments cannot be exported.")
		return
	}
	now := h.cfg.Now()
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.%s"`, fileName(seg.Name), now.In(h.cfg.Location).Format("20060102-1504"), ext))
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 32<<10)
	flushNow := func() error {
		if err := flush(); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
	var werr error
	if werr = begin(bw); werr == nil {
		werr = flushNow()
	}
	engine := h.p.Engine()
	rows, pending, last := 0, 0, time.Now()
	var err error
	if werr == nil {
		err = rg.Range(r.Context(), func(p *store.Profile) bool {
			if p.MergedInto != "" {
				return true // exported as the user's profile
			}
			segs := engine.Classify(&rules.Input{Profile: p, Now: now})
			if !slices.Contains(segs, seg.Name) {
				return true
			}
			rec := exportRecord{
				VisitorID: p.ID, UserID: p.UserID, FirstSeen: p.FirstSeen, LastSeen: p.LastSeen,
				Visits: p.Visits, Orders: p.Purchases.Count, Revenue: p.Purchases.Revenue,
				Traits: p.Traits, Segments: segs, Predictions: assoc.Predict(p, now),
			}
			if werr = row(&rec, p); werr != nil {
				return false
			}
			rows++
			pending++
			if pending >= flushRows || time.Since(last) >= flushEvery {
				if werr = flushNow(); werr != nil {
					return false
				}
				pending, last = 0, time.Now()
			}
			return true
		})
	}
	if werr == nil {
		werr = flushNow()
	}
	if err == nil && werr == nil {
		return
	}
	// The status line is sent: abort the response, so that the client
	// sees a broken transfer rather than a short but complete file.
	h.cfg.Logger.Warn("tailor/admin: export interrupted", "segment", seg.Name, "rows", rows, "err", errors.Join(err, werr))
	panic(http.ErrAbortHandler)
}

// cell protects a CSV cell from formula injection: spreadsheets run a cell
// that starts with = + - @ (or a tab or carriage return) as a formula, so
// such values get a leading apostrophe.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// traitText returns a trait as CSV text: strings unquoted, other JSON as
// is, missing as empty.
func traitText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// fileName keeps the characters of a segment name that are safe in a
// Content-Disposition file name.
func fileName(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c < 128 && (c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "segment"
	}
	return b.String()
}
