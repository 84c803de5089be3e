package cookie

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/tailorhq/tailor/store"
)

// The cookie payload, before securecookie signs and encrypts it:
//
//	version   1 byte (3; version 1 has no user)
//	id        16 bytes, the visitor id
//	issued    4 bytes, big-endian Unix seconds when the cookie was issued
//	          (until 2106); days since 1970 in versions 1 and 2
//	user      1-byte length, then the id of the user the visitor identified
//	          as (at most store.MaxUserIDLength bytes), if any
//	[first]   only in the cookie given to a new visitor: their first page
//	          view, so that it can be recorded when (and only if) they come
//	          back, on whichever instance they come back to:
//	            time     8 bytes, big-endian Unix milliseconds
//	            device   1 byte (see devices)
//	            7 strings, each a 1-byte length then the bytes: path,
//	            category, item, referrer, utm source, medium, campaign
//
// Strings are cut at maxField bytes.
const (
	payloadVersion = 3
	payloadBase    = 1 + 16 + 4
	maxField       = 200
)

var devices = []string{"", "desktop", "mobile", "tablet"}

var errPayload = errors.New("tailor: malformed cookie payload")

type payload struct {
	id     [16]byte
	issued int64        // Unix seconds; a whole day for versions 1 and 2
	user   string       // the user the visitor identified as, if any
	first  *store.Event // the first page view, not yet recorded
}

func (p *payload) marshal() []byte { return p.appendTo(nil) }

// appendTo appends the payload to b.
func (p *payload) appendTo(b []byte) []byte {
	b = append(b, payloadVersion)
	b = append(b, p.id[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(p.issued))
	b = append(b, byte(len(p.user)))
	b = append(b, p.user...)
	if e := p.first; e != nil {
		b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMilli()))
		dev := byte(0)
		for i, d := range devices {
			if d == e.Device {
				dev = byte(i)
			}
		}
		b = append(b, dev)
		for _, s := range []string{e.Path, e.Category, e.Item, e.Referrer, e.Source, e.Medium, e.Campaign} {
			s = cut(s)
			b = append(b, byte(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

func cut(s string) string {
	if len(s) > maxField {
		return s[:maxField]
	}
	return s
}

func (p *payload) unmarshal(b []byte) error {
	if len(b) < payloadBase || b[0] < 1 || b[0] > payloadVersion {
		return errPayload
	}
	copy(p.id[:], b[1:17])
	p.issued = int64(binary.BigEndian.Uint32(b[17:21]))
	p.first, p.user = nil, ""
	v := b[0]
	if v < 3 {
		// The day's first second: never later than the issue. Days past
		// 2106 are not real cookies, and not representable in version 3.
		if p.issued *= 86400; p.issued > math.MaxUint32 {
			return errPayload
		}
	}
	b = b[payloadBase:]
	if v > 1 {
		if len(b) < 1 || len(b) < 1+int(b[0]) || int(b[0]) > store.MaxUserIDLength {
			return errPayload
		}
		p.user = string(b[1 : 1+b[0]])
		b = b[1+b[0]:]
	}
	if len(b) == 0 {
		return nil
	}
	if len(b) < 9 {
		return errPayload
	}
	e := &store.Event{Type: store.TypePage, Time: time.UnixMilli(int64(binary.BigEndian.Uint64(b))).UTC()}
	if int(b[8]) >= len(devices) {
		return errPayload
	}
	e.Device = devices[b[8]]
	b = b[9:]
	for _, dst := range []*string{&e.Path, &e.Category, &e.Item, &e.Referrer, &e.Source, &e.Medium, &e.Campaign} {
		if len(b) < 1 || len(b) < 1+int(b[0]) || b[0] > maxField {
			return errPayload
		}
		*dst = string(b[1 : 1+b[0]])
		b = b[1+b[0]:]
	}
	if len(b) != 0 {
		return errPayload
	}
	p.first = e
	return nil
}
