// goclient: drives postern with Go's net/http client, as an application would, and prints one JSON
// line of what the application saw.
//
//	goclient SCENARIO URL AUTH [FILE]
//
// URL is a file's URL (http://127.0.0.1:PORT/files/NAME or https://...), AUTH the Authorization
// header's value ("" for none), FILE the body. POSTERN_CA names the CA for HTTPS. Scenarios:
//
//	put-expect        PUT FILE with "Expect: 100-continue" (Transport.ExpectContinueTimeout is set)
//	put               PUT FILE with Content-Length, no Expect
//	put-chunked       PUT FILE chunked (no length), no Expect
//	put-expect-retry  put-expect; after a 417 without "Connection: close" the same PUT again without
//	                  Expect, on the same client (so on the kept-alive connection when there is one)
//	keepalive         GET /_status, PUT FILE, GET URL on one client
//
// Standard library only.
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"time"
)

type step struct {
	Method     string  `json:"method"`
	Status     *int    `json:"status"`
	Body       string  `json:"body"`
	BodyLen    int     `json:"body_len"`
	BodySHA256 string  `json:"body_sha256"`
	Connection *string `json:"connection"`
	Error      *string `json:"error"`
	Reused     *bool   `json:"reused"`
	Got100     bool    `json:"got_100"`
	SentExpect bool    `json:"sent_expect"`
	Elapsed    float64 `json:"elapsed"`
}

type result struct {
	Client   string  `json:"client"`
	Scenario string  `json:"scenario"`
	Status   *int    `json:"status"`
	Body     string  `json:"body"`
	Error    *string `json:"error"`
	Steps    []step  `json:"steps"`
}

// hidden hides the length of a reader, so net/http sends the body chunked.
type hidden struct{ r io.Reader }

func (h hidden) Read(p []byte) (int, error) { return h.r.Read(p) }

func newClient() *http.Client {
	tr := &http.Transport{
		ExpectContinueTimeout: 5 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     false,
	}
	if ca := os.Getenv("POSTERN_CA"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			fail(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fail(fmt.Errorf("no certificate in %s", ca))
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 120 * time.Second}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "goclient:", err)
	os.Exit(2)
}

func do(client *http.Client, method, u, auth string, body []byte, expect, chunked bool) step {
	s := step{Method: method, SentExpect: expect}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
		if chunked {
			rd = hidden{bytes.NewReader(body)}
		}
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		fail(err)
	}
	if body != nil && !chunked {
		req.ContentLength = int64(len(body))
		// A retry by the Transport itself needs a fresh body.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if expect {
		req.Header.Set("Expect", "100-continue")
	}
	trace := &httptrace.ClientTrace{
		GotConn:        func(info httptrace.GotConnInfo) { r := info.Reused; s.Reused = &r },
		Got100Continue: func() { s.Got100 = true },
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	start := time.Now()
	resp, err := client.Do(req)
	if err == nil {
		var data []byte
		data, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		st := resp.StatusCode
		s.Status = &st
		if c := resp.Header.Get("Connection"); c != "" || resp.Close {
			if c == "" {
				c = "close"
			}
			s.Connection = &c
		}
		s.BodyLen = len(data)
		sum := sha256.Sum256(data)
		s.BodySHA256 = hex.EncodeToString(sum[:])
		if len(data) > 4096 {
			data = data[:4096]
		}
		s.Body = strings.ToValidUTF8(string(data), "\uFFFD")
	}
	if err != nil {
		e := err.Error()
		s.Error = &e
	}
	s.Elapsed = time.Since(start).Seconds()
	return s
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: goclient SCENARIO URL AUTH [FILE]")
		os.Exit(2)
	}
	scenario, u, auth := os.Args[1], os.Args[2], os.Args[3]
	var body []byte
	if len(os.Args) > 4 {
		var err error
		if body, err = os.ReadFile(os.Args[4]); err != nil {
			fail(err)
		}
	}
	client := newClient()
	res := result{Client: "go", Scenario: scenario}
	switch scenario {
	case "put-expect":
		res.Steps = append(res.Steps, do(client, "PUT", u, auth, body, true, false))
	case "put":
		res.Steps = append(res.Steps, do(client, "PUT", u, auth, body, false, false))
	case "put-chunked":
		res.Steps = append(res.Steps, do(client, "PUT", u, auth, body, false, true))
	case "put-expect-retry":
		first := do(client, "PUT", u, auth, body, true, false)
		res.Steps = append(res.Steps, first)
		if first.Status != nil && *first.Status == 417 && first.Connection == nil {
			res.Steps = append(res.Steps, do(client, "PUT", u, auth, body, false, false))
		}
	case "keepalive":
		p, err := url.Parse(u)
		if err != nil {
			fail(err)
		}
		status := p.Scheme + "://" + p.Host + "/_status"
		res.Steps = append(res.Steps, do(client, "GET", status, "", nil, false, false))
		res.Steps = append(res.Steps, do(client, "PUT", u, auth, body, false, false))
		res.Steps = append(res.Steps, do(client, "GET", u, auth, nil, false, false))
	default:
		fail(fmt.Errorf("unknown scenario %q", scenario))
	}
	last := res.Steps[len(res.Steps)-1]
	res.Status, res.Body, res.Error = last.Status, last.Body, last.Error
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
