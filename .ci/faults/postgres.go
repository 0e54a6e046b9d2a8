package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// toxiproxy is a toxiproxy server (github.com/Shopify/toxiproxy, built from the module proxy)
// with one proxy, "db", in front of PostgreSQL.
type toxiproxy struct {
	api    string
	listen string
	cmd    *exec.Cmd
}

func startToxiproxy(dir, upstream string) (*toxiproxy, error) {
	gobin := filepath.Join(dir, "bin")
	install := exec.Command("go", "install", "github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0")
	install.Env = append(os.Environ(), "GOBIN="+gobin)
	install.Stdout, install.Stderr = os.Stderr, os.Stderr
	if err := install.Run(); err != nil {
		return nil, fmt.Errorf("install toxiproxy: %w", err)
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := cutPort(apiAddr)
	tp := &toxiproxy{api: "http://" + apiAddr, cmd: exec.Command(filepath.Join(gobin, "server"), "-host", host, "-port", port)}
	if err := tp.cmd.Start(); err != nil {
		return nil, err
	}
	if tp.listen, err = freeAddr(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		err = tp.call(http.MethodPost, "/proxies", map[string]any{"name": "db", "listen": tp.listen, "upstream": upstream})
		if err == nil {
			return tp, nil
		}
		if time.Now().After(deadline) {
			tp.stop()
			return nil, fmt.Errorf("toxiproxy: %w", err)
		}
		time.Sleep(100 * time.Millisecond) // a poll for the server to listen, bounded above
	}
}

func cutPort(addr string) (host, port string, ok bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], true
		}
	}
	return addr, "", false
}

func (tp *toxiproxy) call(method, path string, body any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, tp.api+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode >= 300 {
		return fmt.Errorf("toxiproxy %s %s: %d", method, path, res.StatusCode)
	}
	return nil
}

// toxic adds a toxic to both directions of the proxy; undo removes them.
func (tp *toxiproxy) toxic(kind string, attributes map[string]any) (undo func() error, err error) {
	for _, stream := range []string{"upstream", "downstream"} {
		err := tp.call(http.MethodPost, "/proxies/db/toxics", map[string]any{"name": kind + "_" + stream,
			"type": kind, "stream": stream, "attributes": attributes})
		if err != nil {
			return nil, err
		}
	}
	return func() error {
		for _, stream := range []string{"upstream", "downstream"} {
			if err := tp.call(http.MethodDelete, "/proxies/db/toxics/"+kind+"_"+stream, nil); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func (tp *toxiproxy) enable(on bool) error {
	return tp.call(http.MethodPost, "/proxies/db", map[string]any{"enabled": on})
}

func (tp *toxiproxy) stop() { tp.cmd.Process.Kill(); tp.cmd.Wait() }

// newDatabase creates an empty database on the cluster of admin and returns its URL with host
// replaced by via.
func newDatabase(ctx context.Context, admin, via string) (string, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	b := make([]byte, 4)
	rand.Read(b)
	name := "faults_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path, u.Host = "/"+name, via
	return u.String(), nil
}
