//go:build load

package main

// The attacks TestAbuse runs, as one address sends them.

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// flood sends next's requests from two connections at abuseRate a second in all, until stop.
// A fixed rate, not as fast as the machine allows: on two shared cores, a client at full speed
// takes CPU from the server whatever its requests cost; at a fixed rate, what the normal user
// feels is what each request costs.
func flood(stop <-chan struct{}, next func(n int) *http.Request) {
	const workers = 2
	every := time.Duration(workers) * time.Second / time.Duration(abuseRate())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			defer client.CloseIdleConnections()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for n := w; ; n += workers {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if res, err := client.Do(next(n)); err == nil {
					res.Body.Close()
				}
			}
		})
	}
	wg.Wait()
}

// abuseRate is how many requests a second each attack sends.
func abuseRate() int { return 200 }

func (s *abuseServer) takenNameSignups(stop <-chan struct{}) {
	flood(stop, s.takenNameSignup)
}

// takenNameSignup is the attacker's nth sign-up as user00001, taken, with a new email.
func (s *abuseServer) takenNameSignup(n int) *http.Request {
	form := url.Values{"username": {"user00001"}, "email": {fmt.Sprintf("probe%d@example.com", n)},
		"password": {"long enough"}, "confirm_password": {"long enough"}, "csrf_token": {s.signupToken}}
	req, _ := http.NewRequest(http.MethodPost, s.base+"/register", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.base)
	req.Header.Set("Cookie", s.signupCookies)
	return req
}

func (s *abuseServer) cookielessViews(stop <-chan struct{}) {
	paths := []string{"/market", "/items/3", "/", "/login?next=%2Fmarket", "/logout"}
	flood(stop, func(n int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, s.base+paths[n%len(paths)], nil)
		return req
	})
}

func (s *abuseServer) madeUpMethods(stop <-chan struct{}) {
	flood(stop, func(n int) *http.Request {
		req, _ := http.NewRequest(fmt.Sprintf("X%dY", n), s.base+fmt.Sprintf("/market/%d?%s", n, strings.Repeat("q", n%2000)), nil)
		req.Header.Set("User-Agent", strings.Repeat("agent ", 1000))
		return req
	})
}

// searchStreams opens 4 streams for each streaming account (the accounts in parallel), each
// with a search that matches nothing, and holds them until stop.
func (s *abuseServer) searchStreams(t *testing.T) func(stop <-chan struct{}) {
	return func(stop <-chan struct{}) {
		var (
			mu     sync.Mutex
			bodies []io.Closer
			wg     sync.WaitGroup
		)
		for i, u := range s.streamers {
			wg.Go(func() {
				for j := range 4 {
					q := fmt.Sprintf("zq%dx%dk%d", i, j, rand.IntN(1e6))
					req := u.get(s.base, "/market/events?q="+q, false)
					req.Header.Set("Accept", "text/event-stream")
					res, err := http.DefaultClient.Do(req)
					if err != nil || res.StatusCode != http.StatusOK {
						t.Errorf("stream %d/%d: %v %v", i, j, res, err)
						continue
					}
					mu.Lock()
					bodies = append(bodies, res.Body)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		<-stop
		for _, b := range bodies {
			b.Close()
		}
	}
}
