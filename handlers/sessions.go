package handlers

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
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
		deadline, values, err := scs.GobCodec{}.Decode(b)
		if err != nil {
			return deadline, values, fmt.Errorf("%w: %w", errBadSession, err)
		}
		return deadline, values, nil
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
		k, err := readKey(r)
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

// errBadSession is a session's row that does not decode: loadAndSave serves its request as
// one without a session.
var errBadSession = errors.New("session codec: malformed record")

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func readString(r *bytes.Reader) (string, error) {
	b, err := readBytes(r, nil)
	return string(b), err
}

// readKey reads a session key: the keys the handlers use come back as their constants, which
// costs no allocation.
func readKey(r *bytes.Reader) (string, error) {
	var buf [16]byte
	b, err := readBytes(r, buf[:0])
	switch string(b) {
	case keyUserID:
		return keyUserID, err
	case keySeen:
		return keySeen, err
	}
	return string(b), err
}

// readBytes reads a string's bytes, appended to b.
func readBytes(r *bytes.Reader, b []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > uint64(r.Len()) {
		return nil, errBadSession
	}
	b = append(b, make([]byte, n)...)
	r.Read(b[len(b)-int(n):])
	return b, nil
}

// A notice is a message for the next page of a visitor who has no session: being sent to log
// in, or having logged out. Storing it in a session would write a row for every anonymous
// visit; it travels in a short-lived cookie instead, which names one of these messages and
// never carries text of its own.
type notice struct{ flash, alert string }

var notices = map[string]notice{
	"login":  {alert: "Please log in to access this page."},
	"logout": {flash: "You have been logged out."},
}

const noticeCookie = "notice"

// setNotice keeps the notice named code for the visitor's next page.
func (h *Handler) setNotice(w http.ResponseWriter, code string) {
	http.SetCookie(w, h.noticeCookie(code, 60))
}

func (h *Handler) noticeCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: noticeCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.cfg.Secure, SameSite: http.SameSiteLaxMode}
}

// takeNotice hands a page the notice its cookie names (chrome shows it) and clears the cookie.
// Only the page a browser navigates to takes it: not an htmx fragment, a live stream, an image.
func (h *Handler) takeNotice(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := cookie(r, noticeCookie)
		dest := r.Header.Get("Sec-Fetch-Dest")
		if err != nil || r.Method != http.MethodGet || isFragment(r) || dest != "" && dest != "document" {
			next.ServeHTTP(w, r)
			return
		}
		http.SetCookie(w, h.noticeCookie("", -1))
		if n, ok := notices[c.Value]; ok {
			r = r.WithContext(context.WithValue(r.Context(), noticeKey, n))
		}
		next.ServeHTTP(w, r)
	})
}

// cookie is r.Cookie(name), without parsing the cookies when none can be named so.
func cookie(r *http.Request, name string) (*http.Cookie, error) {
	for _, line := range r.Header["Cookie"] {
		if strings.Contains(line, name) {
			return r.Cookie(name)
		}
	}
	return nil, http.ErrNoCookie
}

// pageNotice is the notice takeNotice found for this page, if any.
func pageNotice(r *http.Request) notice {
	n, _ := r.Context().Value(noticeKey).(notice)
	return n
}
