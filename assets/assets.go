// Package assets serves the static files (stylesheet, scripts, vendored htmx) under
// content-hashed URLs, so browsers may cache them forever, each precompressed once at start.
//
// Vendored: htmx-2.0.11.min.js is dist/htmx.min.js of the npm package htmx.org@2.0.11,
// sha256 d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717.
// htmx-ext-sse-2.2.4.min.js is dist/sse.min.js of the npm package htmx-ext-sse@2.2.4,
// sha256 98a46496de0c3605fbffdce9167ba427bdd9553184f83f149c261891a92c0136.
package assets

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed app.css app.js admin.css admin.js icon.svg htmx-2.0.11.min.js htmx-ext-sse-2.2.4.min.js
var files embed.FS

// Names of the files pages link to.
const (
	CSS  = "app.css"
	JS   = "app.js"
	HTMX = "htmx-2.0.11.min.js"
	SSE  = "htmx-ext-sse-2.2.4.min.js"
	Icon = "icon.svg"
	// The operator's and account pages add these.
	AdminCSS = "admin.css"
	AdminJS  = "admin.js"
)

type file struct {
	body, gzipped []byte
	ctype, etag   string
	immutable     bool
}

// Server serves the embedded files; build it once with New.
type Server struct {
	urls  map[string]string // plain name → /assets/hashed name
	files map[string]*file  // name under /assets/, plain or hashed → file
}

// New reads, hashes and compresses every embedded file.
func New() (*Server, error) {
	s := &Server{urls: map[string]string{}, files: map[string]*file{}}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		body, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])[:12]
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(body)
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("compress %s: %w", name, err)
		}
		ext := path.Ext(name)
		hashed := strings.TrimSuffix(name, ext) + "." + hash + ext
		f := file{body: body, gzipped: gz.Bytes(), ctype: mime.TypeByExtension(ext), etag: `"` + hash + `"`}
		immutable := f
		immutable.immutable = true
		s.files[name] = &f
		s.files[hashed] = &immutable
		s.urls[name] = "/assets/" + hashed
	}
	return s, nil
}

// URL is the content-hashed address of a file, for pages to link to.
func (s *Server) URL(name string) string { return s.urls[name] }

// Has reports whether path (/assets/name) names a file ServeHTTP serves.
func (s *Server) Has(path string) bool {
	_, ok := s.files[strings.TrimPrefix(path, "/assets/")]
	return ok
}

// ServeHTTP serves a file named by the path after /assets/: a hashed name is cached for a
// year, a plain name is revalidated with its ETag.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := s.files[strings.TrimPrefix(r.URL.Path, "/assets/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Add("Vary", "Accept-Encoding")
	if f.immutable {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.body
	if AcceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = f.gzipped
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// AcceptsGzip reports whether the client takes gzip-encoded responses.
func AcceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}
