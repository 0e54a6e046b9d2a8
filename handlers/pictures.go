package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	_ "image/png" // the formats an upload may be in: JPEG, PNG and WebP, never SVG or GIF
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/justinas/nosurf"
	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"market/store"
)

const (
	// MaxPictureBytes is the largest picture an admin may upload.
	MaxPictureBytes = 5 << 20
	// pictureBodyCap bounds the body of an upload: the picture and the form around it.
	pictureBodyCap = MaxPictureBytes + 64<<10
	// maxPicturePixels is the most pixels a picture's header may declare: more is refused before
	// anything is decoded (a small file can declare a huge image and take gigabytes to decode).
	maxPicturePixels = 40_000_000
	// pictureSendTime is how long an admin's upload may take to arrive: 5 MB from a phone on a
	// slow link (1 Mbit/s) takes 40 s, more than the server's read timeout gives any request.
	pictureSendTime = 60 * time.Second
)

// The sizes the server keeps of a picture: a square for lists (shown at 64 px, sharp at 2x) and
// a 4:3 one for the item's page.
var (
	listSize = image.Rect(0, 0, 160, 160)
	pageSize = image.Rect(0, 0, 960, 720)
)

// pictureRefusal is why an upload is refused, in the words the admin reads.
type pictureRefusal string

func (r pictureRefusal) Error() string { return string(r) }

const (
	errNotPicture   pictureRefusal = "That file is not a JPEG, PNG or WebP picture."
	errPictureHuge  pictureRefusal = "That picture is too large: up to 40 megapixels."
	errPictureBytes pictureRefusal = "That picture is too large: up to 5 MB." // MaxPictureBytes
	errNoPicture    pictureRefusal = "Choose a picture to upload."
)

// isPictureUpload reports whether r uploads a picture, whose body may be larger than others.
func isPictureUpload(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/admin/items/") && strings.HasSuffix(r.URL.Path, "/picture")
}

// holdUpload keeps a picture's upload unread until its handler knows whose it is: what runs
// before (nosurf, the session, the admin check) gets its body under the normal cap, and the
// handler the whole body (acceptUpload). The form sends its CSRF token before the file, so it is
// read here, from the body's start, and passed on as X-CSRF-Token: nosurf finds it there
// without parsing the form, which would read the file under the normal cap and fail.
func (h *Handler) holdUpload(w http.ResponseWriter, r *http.Request) *http.Request {
	body := r.Body
	if r.Header.Get(nosurf.HeaderName) == "" {
		var head bytes.Buffer
		token := formToken(io.TeeReader(io.LimitReader(r.Body, h.cfg.MaxBodyBytes), &head), r.Header.Get("Content-Type"))
		if token != "" {
			r.Header.Set(nosurf.HeaderName, token)
		}
		body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(&head, r.Body), r.Body}
	}
	r = r.WithContext(context.WithValue(r.Context(), uploadKey, body))
	r.Body = http.MaxBytesReader(w, body, h.cfg.MaxBodyBytes)
	return r
}

// formToken is the CSRF token of a multipart form, when a field before its first file holds it.
func formToken(body io.Reader, contentType string) string {
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil || media != "multipart/form-data" || params["boundary"] == "" {
		return ""
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil || p.FileName() != "" {
			return ""
		}
		if p.FormName() == nosurf.FormFieldName {
			token, _ := io.ReadAll(io.LimitReader(p, 256)) // a token is 88 characters
			return string(token)
		}
	}
}

// acceptUpload lets an admin's upload take pictureSendTime to arrive, then have its work's
// budget, and its answer a little more (the server's write timeout counts from the headers);
// its body is read under the picture's cap.
func (h *Handler) acceptUpload(w http.ResponseWriter, r *http.Request) {
	renewBudget(r, pictureSendTime+h.pictureBudget())
	rc := http.NewResponseController(w)
	now := time.Now()
	err := errors.Join(rc.SetReadDeadline(now.Add(pictureSendTime)),
		rc.SetWriteDeadline(now.Add(pictureSendTime+h.pictureBudget()+10*time.Second)))
	if err != nil {
		h.logger.Warn("upload under the server's deadlines", "uri", loggedURI(r), "err", err)
	}
	if body, ok := r.Context().Value(uploadKey).(io.ReadCloser); ok {
		r.Body = http.MaxBytesReader(w, body, pictureBodyCap)
	}
}

// pictureBudget is an upload's budget once its body is in: a decoding slot's wait, then a
// decode of up to 40 MP, and the save.
func (h *Handler) pictureBudget() time.Duration { return 4 * h.cfg.RequestBudget }

// readPicture reads the uploaded file of the form field picture, up to MaxPictureBytes. A body
// over the cap is an *http.MaxBytesError; one its client stopped sending (gone, or too slow) is
// an error with the request's context's, which ended with it.
func readPicture(r *http.Request) ([]byte, error) {
	f, _, err := r.FormFile("picture")
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, err
	case err != nil && r.Context().Err() != nil:
		return nil, fmt.Errorf("read upload: %w", errors.Join(err, r.Context().Err()))
	case err != nil:
		return nil, errNoPicture
	}
	defer f.Close()
	// Read to the body's end (nothing is left after the form's): from there the server notices a
	// client that hangs up while its picture waits for a decoding slot.
	io.Copy(io.Discard, r.Body)
	data, err := io.ReadAll(io.LimitReader(f, MaxPictureBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read upload: %w", err)
	case len(data) > MaxPictureBytes:
		return nil, errPictureBytes
	case len(data) == 0:
		return nil, errNoPicture
	}
	return data, nil
}

// makePicture checks an upload and makes the copies the server keeps: the header first (a
// known format, at most maxPicturePixels), then the whole image, drawn anew at each size and
// encoded as JPEG, which leaves behind whatever else the file carried (metadata, other frames).
func makePicture(data []byte) (store.Picture, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || (format != "jpeg" && format != "png" && format != "webp") {
		return store.Picture{}, errNotPicture
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPicturePixels {
		return store.Picture{}, errPictureHuge
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return store.Picture{}, errNotPicture
	}
	list, err := resized(img, listSize)
	if err != nil {
		return store.Picture{}, err
	}
	page, err := resized(img, pageSize)
	if err != nil {
		return store.Picture{}, err
	}
	sum := sha256.New()
	sum.Write(list)
	sum.Write(page)
	return store.Picture{Hash: hex.EncodeToString(sum.Sum(nil))[:20], List: list, Page: page}, nil
}

// resized draws the middle of img (cropped to size's shape) at size, on white, as a JPEG.
func resized(img image.Image, size image.Rectangle) ([]byte, error) {
	src := img.Bounds()
	crop := src
	if src.Dx()*size.Dy() > src.Dy()*size.Dx() { // wider than the shape: trim the sides
		w := src.Dy() * size.Dx() / size.Dy()
		crop.Min.X += (src.Dx() - w) / 2
		crop.Max.X = crop.Min.X + w
	} else {
		h := src.Dx() * size.Dy() / size.Dx()
		crop.Min.Y += (src.Dy() - h) / 2
		crop.Max.Y = crop.Min.Y + h
	}
	// A large picture is first brought to twice the size, fast; then drawn well.
	if crop.Dx() > 4*size.Dx() {
		half := image.NewRGBA(image.Rect(0, 0, 2*size.Dx(), 2*size.Dy()))
		draw.ApproxBiLinear.Scale(half, half.Bounds(), img, crop, draw.Src, nil)
		img, crop = half, half.Bounds()
	}
	dst := image.NewRGBA(size)
	draw.Draw(dst, size, image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.CatmullRom.Scale(dst, size, img, crop, draw.Over, nil)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, dst, &jpeg.Options{Quality: 82}); err != nil {
		return nil, fmt.Errorf("encode picture: %w", err)
	}
	return b.Bytes(), nil
}

// picture serves a picture's copy under its content-hashed URL, /pictures/{hash}-{size}.jpg: it
// never changes, so browsers may keep it for good.
func (h *Handler) picture(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".jpg")
	hash, size, cut := strings.Cut(name, "-")
	if !ok || !cut || (size != "s" && size != "l") || len(hash) != 20 || strings.Trim(hash, "0123456789abcdef") != "" {
		h.notFound(w, r)
		return
	}
	data, err := h.store.PictureFile(r.Context(), hash, size == "l")
	if h.lookupFailed(w, r, err) {
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "image/jpeg")
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

// uploadPicture gives an item its picture: an admin's upload from /admin/items/{id}, a plain
// form. The answer goes back to that page, with the result or the reason for a refusal. At most
// two pictures are decoded at a time (one may take a few hundred megabytes); past them, 503.
func (h *Handler) uploadPicture(w http.ResponseWriter, r *http.Request) {
	user, _ := currentUser(r)
	id, ok := h.pathItem(w, r)
	if !ok {
		return
	}
	// The item first: an upload for none costs neither its reading nor a decode.
	if _, err := h.store.AdminItem(r.Context(), id); h.lookupFailed(w, r, err) {
		return
	}
	h.acceptUpload(w, r)
	data, err := readPicture(r)
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		h.clientError(w, r, http.StatusRequestEntityTooLarge, errPictureBytes.Error())
		return
	}
	// The body is in: the work's budget, whatever the sending took, as a deadline, which the
	// store's writes keep once they begin (the renewable budget has none to give them).
	ctx, cancel := context.WithTimeoutCause(r.Context(), h.pictureBudget(), errBudget)
	defer cancel()
	r = r.WithContext(ctx)
	back := "/admin/items/" + strconv.FormatInt(id, 10)
	var pic store.Picture
	if err == nil {
		pic, err = h.decodePicture(r, data)
	}
	if refusal := pictureRefusal(""); errors.As(err, &refusal) {
		h.logger.Info("picture refused", "user_id", user.ID, "item_id", id, "bytes", len(data), "reason", err)
		h.alert(ctx, err.Error())
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	it, err := h.store.SetPicture(ctx, user.ID, id, pic)
	if h.lookupFailed(w, r, err) {
		return
	}
	h.logger.Info("picture set", "user_id", user.ID, "item_id", id, "hash", pic.Hash)
	h.flash(ctx, "Saved the picture of "+it.Name+".")
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// decodePicture runs makePicture in one of the decoding slots, waiting a little for one.
func (h *Handler) decodePicture(r *http.Request, data []byte) (store.Picture, error) {
	select {
	case h.pictureSlots <- struct{}{}:
		defer func() { <-h.pictureSlots }()
	case <-r.Context().Done():
		return store.Picture{}, r.Context().Err()
	case <-time.After(5 * time.Second):
		return store.Picture{}, store.ErrBusy
	}
	return makePicture(data)
}
