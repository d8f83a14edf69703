package web

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestMaxInFlight sends 200 concurrent requests to a handler that blocks: never more than
// MaxInFlight run at once, every request finishes with 200, and health answers while the slots
// are full.
func TestMaxInFlight(t *testing.T) {
	const limit, total = 4, 200
	s := NewServer(discard(), Options{Name: "test", MaxInFlight: limit, RequestTimeout: 30 * time.Second})
	var running, peak atomic.Int64
	release := make(chan struct{})
	s.Echo.POST("/v1/slow", func(c echo.Context) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		return c.NoContent(http.StatusOK)
	})
	srv := httptest.NewServer(s.Echo)
	t.Cleanup(srv.Close)

	var wg sync.WaitGroup
	codes := make(chan int, total)
	for range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := http.Post(srv.URL+"/v1/slow", "application/json", nil)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for running.Load() < limit && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	res, b := send(t, mustRequest(t, http.MethodGet, srv.URL+"/healthz"))
	if res.StatusCode != 200 {
		t.Fatalf("healthz while the slots are full: %d %s", res.StatusCode, b)
	}
	close(release)
	wg.Wait()
	close(codes)
	n := 0
	for c := range codes {
		if c != 200 {
			t.Fatalf("status %d", c)
		}
		n++
	}
	if n != total {
		t.Fatalf("%d answers, want %d", n, total)
	}
	if p := peak.Load(); p != limit {
		t.Fatalf("peak concurrency %d, want %d", p, limit)
	}
}

// TestMaxInFlightTimeout: a request that cannot get a slot within its timeout answers 503
// UNAVAILABLE in the error envelope.
func TestMaxInFlightTimeout(t *testing.T) {
	s := NewServer(discard(), Options{Name: "test", MaxInFlight: 1, RequestTimeout: 200 * time.Millisecond})
	hold, holding := make(chan struct{}), make(chan struct{})
	s.Echo.GET("/v1/hold", func(c echo.Context) error {
		close(holding)
		<-hold
		return c.NoContent(http.StatusOK)
	})
	srv := httptest.NewServer(s.Echo)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hold) })
	go func() {
		res, err := http.Get(srv.URL + "/v1/hold")
		if err == nil {
			res.Body.Close()
		}
	}()
	<-holding
	res, b := send(t, mustRequest(t, http.MethodGet, srv.URL+"/v1/hold"))
	if res.StatusCode != http.StatusServiceUnavailable || errorCode(t, b) != referral.EUnavailable {
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
