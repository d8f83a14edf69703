package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one workload measured: every operation's duration, the errors and the wall time.
type Result struct {
	Name      string
	Workers   int
	Ops       int
	Errors    int
	Elapsed   time.Duration
	Durations []time.Duration // sorted after finish
	Unit      string          // what one op is ("req", "event", "apply", …)
	PerOp     int             // units per op (a batch of events counts as its size)
	Note      string
	FirstErr  string
	written   int // freshness: writes made (Ops counts the polled ones)

	AdminHWM, QueryHWM int64 // the gateways' peak RSS during the workload

}

// Throughput is units per second over the wall time.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	if r.written > 0 {
		return float64(r.written-r.Errors) / r.Elapsed.Seconds()
	}
	per := max(r.PerOp, 1)
	return float64((r.Ops-r.Errors)*per) / r.Elapsed.Seconds()
}

// Pct returns the q-quantile (0..1) of the recorded durations (nearest rank).
func (r *Result) Pct(q float64) time.Duration {
	if len(r.Durations) == 0 {
		return 0
	}
	i := int(float64(len(r.Durations))*q+0.999999) - 1
	return r.Durations[min(max(i, 0), len(r.Durations)-1)]
}

// Op is one operation of a workload; worker is the worker's index, i the operation's number.
type Op func(ctx context.Context, worker, i int) error

// Run drives op with a fixed pool of workers until count operations were started (count > 0) or
// dur elapsed, whichever comes first, recording every operation's duration.
func Run(ctx context.Context, name string, workers, count int, dur time.Duration, op Op) *Result {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var next, errs atomic.Int64
	var firstErr atomic.Value
	per := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if count > 0 && i >= count {
					break
				}
				t0 := time.Now()
				err := op(ctx, w, i)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil {
						break // cut off by the time bound: not an error of the system
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				local = append(local, d)
			}
			per[w] = local
		}()
	}
	wg.Wait()
	r := &Result{Name: name, Workers: workers, Elapsed: time.Since(start), Errors: int(errs.Load()), PerOp: 1, Unit: "req"}
	for _, l := range per {
		r.Durations = append(r.Durations, l...)
	}
	r.Ops = len(r.Durations)
	slices.Sort(r.Durations)
	if v, ok := firstErr.Load().(string); ok {
		r.FirstErr = v
	}
	return r
}

// Client is a loopback HTTP client sized for a worker pool.
type Client struct {
	hc *http.Client
}

// NewClient returns a client keeping up to workers idle connections per host.
func NewClient(workers int) *Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        workers * 4,
		MaxIdleConnsPerHost: workers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// StatusError is a response with an unexpected status.
type StatusError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *StatusError) Error() string {
	b := e.Body
	if len(b) > 200 {
		b = b[:200]
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, b)
}

// Do sends one request with a bearer token and a JSON body (nil: none). When out is not nil the
// answer is decoded into it. It returns the status; a status outside want (default 200) is an error.
func (c *Client) Do(ctx context.Context, method, url, token string, body any, out any, want ...int) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if len(want) == 0 {
		want = []int{http.StatusOK}
	}
	if !slices.Contains(want, resp.StatusCode) {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return resp.StatusCode, &StatusError{Method: method, URL: url, Status: resp.StatusCode, Body: string(b)}
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, url, err)
		}
		return resp.StatusCode, nil
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}
