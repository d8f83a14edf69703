package main

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestBenchPercentiles(t *testing.T) {
	r := &Result{}
	for i := 1; i <= 1000; i++ {
		r.Durations = append(r.Durations, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}, {1, time.Second}, {0, time.Millisecond}} {
		if got := r.Pct(c.q); got != c.want {
			t.Errorf("Pct(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := (&Result{}).Pct(0.99); got != 0 {
		t.Errorf("empty Pct = %v", got)
	}
}

func TestBenchRunCountsAndErrors(t *testing.T) {
	var calls atomic.Int64
	r := Run(context.Background(), "t", 8, 1000, time.Minute, func(ctx context.Context, _, i int) error {
		calls.Add(1)
		if i%10 == 0 {
			return errors.New("boom")
		}
		return nil
	})
	if r.Ops != 1000 || calls.Load() != 1000 {
		t.Fatalf("ops %d, calls %d, want 1000", r.Ops, calls.Load())
	}
	if r.Errors != 100 || r.FirstErr != "boom" {
		t.Fatalf("errors %d (%q), want 100", r.Errors, r.FirstErr)
	}
	for i := 1; i < len(r.Durations); i++ {
		if r.Durations[i] < r.Durations[i-1] {
			t.Fatal("durations not sorted")
		}
	}
}

func TestBenchRunStopsAtDuration(t *testing.T) {
	t0 := time.Now()
	r := Run(context.Background(), "t", 4, 0, 200*time.Millisecond, func(ctx context.Context, _, _ int) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
			return nil
		}
	})
	if el := time.Since(t0); el > 2*time.Second {
		t.Fatalf("ran %v past a 200ms bound", el)
	}
	if r.Errors != 0 {
		t.Fatalf("operations cut off by the time bound counted as errors: %d", r.Errors)
	}
	if r.Ops < 20 {
		t.Fatalf("only %d ops in 200ms with 4 workers", r.Ops)
	}
}

func TestBenchClientStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"error":{"code":"CODE_EXHAUSTED"}}`))
	}))
	defer srv.Close()
	c := NewClient(4)
	if st, err := c.Do(context.Background(), http.MethodPost, srv.URL, "tok", map[string]any{"code": "X"}, nil, 200, 409); err != nil || st != 409 {
		t.Fatalf("wanted 409 accepted, got %d %v", st, err)
	}
	var se *StatusError
	if _, err := c.Do(context.Background(), http.MethodGet, srv.URL, "bad", nil, nil); !errors.As(err, &se) || se.Status != 401 {
		t.Fatalf("wanted a 401 StatusError, got %v", err)
	}
}

func TestBenchChartsAreWellFormed(t *testing.T) {
	b := &Bench{}
	for i, n := range []string{wEcho, wQGMixed, wMove} {
		r := &Result{Name: n, Ops: 10 * (i + 1), Elapsed: time.Second, PerOp: 1, Unit: "req"}
		for k := range r.Ops {
			r.Durations = append(r.Durations, time.Duration(k+1)*time.Millisecond)
		}
		b.results = append(b.results, r)
	}
	for name, svg := range map[string]string{"throughput": b.throughputSVG(), "latency": b.latencySVG()} {
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := d.Token()
			if err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("%s chart is not well-formed XML: %v", name, err)
				}
				break
			}
		}
		if !strings.Contains(svg, "query gateway: hot reads") {
			t.Errorf("%s chart lacks a workload label", name)
		}
	}
}
