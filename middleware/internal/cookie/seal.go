package cookie

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"
)

// maxLength is the longest value sealed or read, as securecookie's
// MaxLength(4096).
const maxLength = 4096

// A sealer makes the values that securecookie v1.1.2's Encode makes with
// one key pair and NopEncoder, which its Decode reads:
//
//	base64url(date "|" base64url(iv ciphertext) "|" mac)
//
// where date is Unix seconds in decimal, iv a random AES block, the
// ciphertext AES-CTR of the value, and mac HMAC-SHA256 of
// name "|" date "|" base64url(iv ciphertext). Unlike Encode, which builds
// each of those steps in a slice of its own, with a new cipher stream and
// a new HMAC per call, it keeps the HMAC state per key pair and builds in
// one pooled buffer, so that a value costs only the string it ends in.
type sealer struct {
	block cipher.Block
	macs  sync.Pool // of hash.Hash: HMAC-SHA256 under the hash key
}

func newSealer(k Key) (*sealer, error) {
	block, err := aes.NewCipher(k.Block)
	if err != nil {
		return nil, err
	}
	hashKey := k.Hash
	return &sealer{block: block, macs: sync.Pool{New: func() any { return hmac.New(sha256.New, hashKey) }}}, nil
}

// scratch is the working space of seal, pooled.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// sealedLen returns the length of the value sealed from a value of n
// bytes at Unix time ts.
func sealedLen(n int, ts []byte) int {
	inner := base64.URLEncoding.EncodedLen(aes.BlockSize + n)
	return base64.URLEncoding.EncodedLen(len(ts) + 1 + inner + 1 + sha256.Size)
}

// appendSeal appends to dst the value of plain under name, sealed at the
// time now. plain is left as it is. A value longer than maxLength is an
// error, as it is for securecookie.
func (s *sealer) appendSeal(dst []byte, name string, plain []byte, now time.Time) ([]byte, error) {
	var tsBuf [20]byte
	ts := strconv.AppendInt(tsBuf[:0], now.UTC().Unix(), 10)
	if n := sealedLen(len(plain), ts); n > maxLength {
		return dst, fmt.Errorf("securecookie: the value is too long: %d", n)
	}
	bp := scratch.Get().(*[]byte)
	defer scratch.Put(bp)
	// The buffer holds, in turn: the counter and key stream blocks of
	// CTR; iv and ciphertext; then name "|" date "|" base64url(iv
	// ciphertext) "|" mac, whose tail from date on is what is encoded.
	ivc := aes.BlockSize + len(plain)
	inner := base64.URLEncoding.EncodedLen(ivc)
	need := 2*aes.BlockSize + ivc + len(name) + 1 + len(ts) + 1 + inner + 1 + sha256.Size
	b := *bp
	if cap(b) < need {
		b = make([]byte, 0, need)
		*bp = b
	}
	b = b[:2*aes.BlockSize+ivc]
	ctr, ks, iv := b[:aes.BlockSize], b[aes.BlockSize:2*aes.BlockSize], b[2*aes.BlockSize:3*aes.BlockSize]
	rand.Read(iv) // never fails (crypto/rand)
	body := b[3*aes.BlockSize:]
	copy(body, plain)
	xorCTR(s.block, iv, ctr, ks, body)

	msg := len(b)
	b = append(b, name...)
	b = append(b, '|')
	date := len(b)
	b = append(b, ts...)
	b = append(b, '|')
	b = base64.URLEncoding.AppendEncode(b, b[2*aes.BlockSize:msg])
	h := s.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(b[msg:])
	b = append(b, '|')
	b = h.Sum(b)
	s.macs.Put(h)
	return base64.URLEncoding.AppendEncode(dst, b[date:]), nil
}

// xorCTR encrypts (or decrypts) data in place with AES-CTR from iv, as
// cipher.NewCTR does: the counter is iv as a 128-bit big-endian number,
// plus one per block. ctr and ks are a block each of working space:
// cipher.NewCTR would allocate a stream per value.
func xorCTR(block cipher.Block, iv, ctr, ks, data []byte) {
	copy(ctr, iv)
	for len(data) > 0 {
		block.Encrypt(ks, ctr)
		n := subtle.XORBytes(data, data, ks)
		data = data[n:]
		for i := len(ctr) - 1; i >= 0; i-- {
			ctr[i]++
			if ctr[i] != 0 {
				break
			}
		}
	}
}
