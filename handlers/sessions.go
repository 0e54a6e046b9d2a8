package handlers

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"

	"market/store"
)

// NewSessionManager is the session setup of the market: sessions in SQLite, an absolute
// lifetime (the idle timeout is the handlers' own, see authenticate), HttpOnly SameSite=Lax
// cookies, Secure when users come over HTTPS, and a compact codec.
func NewSessionManager(st *store.SessionStore, secure bool) *scs.SessionManager {
	sm := scs.New()
	sm.Store = st
	sm.Codec = sessionCodec{}
	sm.Lifetime = 12 * time.Hour
	sm.Cookie.Name = "session"
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Secure = secure
	return sm
}

// sessionCodec encodes session values as a short binary record. scs's default, gob, rebuilds
// its type tables for every decode, which cost more than the rest of loading a session; ours
// holds only int64s and strings. Records it did not write (gob, from before) still decode.
type sessionCodec struct{}

// codecMagic starts every record the codec writes; gob data never starts with it.
const codecMagic = 0xfe

func (sessionCodec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	b := append(make([]byte, 0, 64), codecMagic)
	b = binary.AppendVarint(b, deadline.UnixNano())
	b = binary.AppendUvarint(b, uint64(len(values)))
	for k, v := range values {
		b = appendString(b, k)
		switch v := v.(type) {
		case int64:
			b = binary.AppendVarint(append(b, 'i'), v)
		case string:
			b = appendString(append(b, 's'), v)
		default:
			return nil, fmt.Errorf("session codec: value of %q has unsupported type %T", k, v)
		}
	}
	return b, nil
}

func (sessionCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	if len(b) == 0 || b[0] != codecMagic {
		return scs.GobCodec{}.Decode(b)
	}
	r := bytes.NewReader(b[1:])
	nanos, err := binary.ReadVarint(r)
	if err != nil {
		return time.Time{}, nil, errBadSession
	}
	n, err := binary.ReadUvarint(r)
	if err != nil || n > 64 {
		return time.Time{}, nil, errBadSession
	}
	values := make(map[string]any, n)
	for range n {
		k, err := readString(r)
		if err != nil {
			return time.Time{}, nil, err
		}
		kind, err := r.ReadByte()
		if err != nil {
			return time.Time{}, nil, errBadSession
		}
		switch kind {
		case 'i':
			v, err := binary.ReadVarint(r)
			if err != nil {
				return time.Time{}, nil, errBadSession
			}
			values[k] = v
		case 's':
			v, err := readString(r)
			if err != nil {
				return time.Time{}, nil, err
			}
			values[k] = v
		default:
			return time.Time{}, nil, errBadSession
		}
	}
	return time.Unix(0, nanos), values, nil
}

var errBadSession = errors.New("session codec: malformed record")

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func readString(r *bytes.Reader) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(r.Len()) {
		return "", errBadSession
	}
	b := make([]byte, n)
	r.Read(b)
	return string(b), nil
}
