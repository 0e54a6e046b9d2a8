// Package webtest is a person at a browser, for tests: a cookie jar and the CSRF token of a
// page it read, who signs up, logs in, buys and sells through the market's real forms, and gets
// back what the server answered. It speaks HTTP only (it does not import the handlers), so the
// handlers' own tests and the tests of the whole binary share it.
package webtest

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Password is the password SignUp gives every account.
const Password = "correct horse"

// Client is one person with a cookie jar, following no redirects.
type Client struct {
	Base  string       // the server's URL: scheme and host
	Name  string       // the username it signs up or logs in with
	HTTP  *http.Client // its cookie jar and timeout
	Token string       // the CSRF token of the last page LoadToken read
}

// Answer is a finished response. Body is its body, read whole (the response's own is closed).
type Answer struct {
	*http.Response
	Body string
}

// New is a client of the server at base with an empty cookie jar, as name.
func New(base, name string) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{Base: base, Name: name, HTTP: &http.Client{
		Jar:           jar,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Do sends one request: a form, when form is not nil, and the Origin a browser sends with
// anything but GET and HEAD.
func (c *Client) Do(method, path string, form url.Values, headers map[string]string) (Answer, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.Base+path, body)
	if err != nil {
		return Answer{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("Origin", c.Base)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return Answer{Response: res, Body: string(b)}, err
}

// Get loads a page.
func (c *Client) Get(path string) (Answer, error) {
	return c.Do(http.MethodGet, path, nil, nil)
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// LoadToken reads the CSRF token from a page's form, as a browser submits it.
func (c *Client) LoadToken(path string) error {
	a, err := c.Get(path)
	if err != nil {
		return err
	}
	m := csrfField.FindStringSubmatch(a.Body)
	if m == nil {
		return errors.New("no csrf_token on " + path + " (status " + strconv.Itoa(a.StatusCode) + ")")
	}
	c.Token = m[1]
	return nil
}

// Post submits a form as a browser does: its token in the csrf_token field.
func (c *Client) Post(path string, form url.Values) (Answer, error) {
	f := url.Values{"csrf_token": {c.Token}}
	for k, v := range form {
		f[k] = v
	}
	return c.Do(http.MethodPost, path, f, nil)
}

// HTMX posts a form as htmx does: the token in X-CSRF-Token, HX-Request set.
func (c *Client) HTMX(path string, form url.Values) (Answer, error) {
	return c.Do(http.MethodPost, path, form, map[string]string{"HX-Request": "true", "X-CSRF-Token": c.Token})
}

// SignUp registers c.Name (email name@example.com, password Password) through the form; the
// server answers 302 to /market when it worked, and renews the token (Trade reads it again).
func (c *Client) SignUp() (Answer, error) {
	if err := c.LoadToken("/register"); err != nil {
		return Answer{}, err
	}
	a, err := c.Post("/register", url.Values{"username": {c.Name}, "email": {c.Name + "@example.com"},
		"password": {Password}, "confirm_password": {Password}})
	c.renewed(a)
	return a, err
}

// renewed forgets the token when the answer signed c in: the server renews it then.
func (c *Client) renewed(a Answer) {
	if a.Response != nil && a.StatusCode == http.StatusFound {
		c.Token = ""
	}
}

// LogIn logs c.Name in through the form; the server answers 302 to /market when it worked,
// and renews the token (Trade reads it again).
func (c *Client) LogIn(password string) (Answer, error) {
	if err := c.LoadToken("/login"); err != nil {
		return Answer{}, err
	}
	a, err := c.Post("/login", url.Values{"username": {c.Name}, "password": {password}})
	c.renewed(a)
	return a, err
}

// Buy is an htmx purchase of the item: 200 and "Purchased NAME!" when it worked.
func (c *Client) Buy(item int64) (Answer, error) { return c.Trade(item, false) }

// Sell is an htmx sale of the item: 200 and "Sold NAME back to the market!" when it worked.
func (c *Client) Sell(item int64) (Answer, error) { return c.Trade(item, true) }

// Trade is an htmx purchase of the item, or a sale when sell. The token is the market page's,
// read first when c has none.
func (c *Client) Trade(item int64, sell bool) (Answer, error) {
	if c.Token == "" {
		if err := c.LoadToken("/market"); err != nil {
			return Answer{}, err
		}
	}
	field := "purchase_item"
	if sell {
		field = "sold_item"
	}
	return c.HTMX("/market", url.Values{field: {strconv.FormatInt(item, 10)}})
}

// CookieHeader is the Cookie header c's browser would send to the server.
func (c *Client) CookieHeader() string {
	u, err := url.Parse(c.Base)
	if err != nil {
		return ""
	}
	var parts []string
	for _, k := range c.HTTP.Jar.Cookies(u) {
		parts = append(parts, k.Name+"="+k.Value)
	}
	return strings.Join(parts, "; ")
}
