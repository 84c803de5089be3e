package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the request header that carries the signature of a
// delivery: see the package documentation.
const SignatureHeader = "X-Tailor-Signature"

// DeliveryHeader is the request header that carries the delivery's id, the
// same as the body's "id" and the same on every attempt.
const DeliveryHeader = "X-Tailor-Delivery"

// DefaultTolerance is how far the timestamp of a signature may be from the
// receiver's clock when Verify is given a tolerance of zero.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify. Test for them with errors.Is.
var (
	// ErrNoSignature: the header is empty.
	ErrNoSignature = errors.New("tailor/webhook: no signature header")
	// ErrHeader: the header is not of the form "t=<unix>,v1=<hex>".
	ErrHeader = errors.New("tailor/webhook: malformed signature header")
	// ErrTimestamp: the signature's timestamp is further than the
	// tolerance from now (a replayed or delayed delivery, or a wrong clock).
	ErrTimestamp = errors.New("tailor/webhook: signature timestamp outside the tolerance")
	// ErrSignature: no v1 signature matches the body and the secret.
	ErrSignature = errors.New("tailor/webhook: signature does not match")
)

// Sign returns the value of the SignatureHeader for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<unix seconds>.<body>" keyed
// with secret>". Receivers need it only to test their endpoint.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks the SignatureHeader value header of a delivery whose raw
// body is body: one of its v1 signatures must be the HMAC-SHA256 of
// "<t>.<body>" with secret (compared in constant time), and its timestamp t
// must be within tolerance of the current time, which bounds replays.
// A tolerance of zero means DefaultTolerance; a negative one skips the
// timestamp check (for tests and stored deliveries only).
//
// Verify the body exactly as received, before decoding it. Elements other
// than t and v1 are ignored, so that later schemes can be added beside v1.
func Verify(secret, header string, body []byte, tolerance time.Duration) error {
	return verifyAt(secret, header, body, tolerance, time.Now())
}

func verifyAt(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	if header == "" {
		return ErrNoSignature
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrHeader
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrHeader
			}
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return ErrHeader
			}
			sigs = append(sigs, b)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return ErrHeader
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return ErrHeader
	}
	want := mac(secret, ts, body)
	ok := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return ErrSignature
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	if tolerance > 0 {
		d := now.Sub(time.Unix(sec, 0))
		if d > tolerance || d < -tolerance {
			return ErrTimestamp
		}
	}
	return nil
}
