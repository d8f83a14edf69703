package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

func TestAllowed(t *testing.T) {
	refused := []string{"127.0.0.1", "127.9.9.9", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
		"169.254.1.1", "fe80::1", "fd00:ec2::254", "fc00::1", "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
		"100.64.0.1", "224.0.0.1", "ff02::1", "255.255.255.255", "64:ff9b::7f00:1", "2002:7f00:1::"}
	for _, s := range refused {
		if webhook.Allowed(netip.MustParseAddr(s)) {
			t.Errorf("Allowed(%s) = true", s)
		}
	}
	for _, s := range []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"} {
		if !webhook.Allowed(netip.MustParseAddr(s)) {
			t.Errorf("Allowed(%s) = false", s)
		}
	}
}

// TestClientRefusesPrivateDestinations: without the flag the client refuses loopback by address
// and by a name resolving to it (checked at dial time, after resolution); with it, it connects.
// Redirects are never followed.
func TestClientRefusesPrivateDestinations(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	strict := webhook.NewClient(false, 4, 2*time.Second)
	for _, u := range []string{srv.URL, "http://localhost" + port, "http://[::1]" + port, "http://169.254.169.254" + port,
		"http://10.0.0.1" + port} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
		_, err := strict.Do(req)
		cancel()
		if !errors.Is(err, webhook.ErrForbiddenDestination) {
			t.Errorf("POST %s without the flag: %v, want the destination refused", u, err)
		}
	}
	open := webhook.NewClient(true, 4, 2*time.Second)
	for _, u := range []string{srv.URL, "http://localhost" + port} {
		res, err := open.Post(u, "application/json", nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Errorf("POST %s with the flag: %v", u, err)
		} else {
			res.Body.Close()
		}
	}
	res, err := open.Post(srv.URL+"/redirect", "application/json", nil)
	if err != nil || res.StatusCode != http.StatusFound {
		t.Fatalf("a redirect was followed: %v", err)
	}
	res.Body.Close()
}

// TestDispatcherRefusesPrivateDestination: an endpoint whose name resolves to 127.0.0.1 gets no
// request without the flag; the attempt is recorded as refused and retried like any failure.
func TestDispatcherRefusesPrivateDestination(t *testing.T) {
	rcv := newReceiver(t, func(int64, string) int { return http.StatusOK })
	tlsRcv := httptest.NewTLSServer(rcv.srv.Config.Handler)
	defer tlsRcv.Close()
	w := newWorld(t, pgtest.MustOpenDB(t), rcv)
	ctx := context.Background()
	port := tlsRcv.URL[strings.LastIndex(tlsRcv.URL, ":"):]
	if _, err := w.store.ReplaceEndpoint(ctx, outbox.Endpoint{TenantID: w.tenant, ID: w.endpoint.ID,
		URL: "https://localhost" + port + "/hook", EventTypes: []string{}, Active: true}); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig()
	cfg.AllowPrivate = false
	stop := start(w.store, w, cfg)
	defer stop()
	w.affiliates(t, 1, "ssrf")
	waitFor(t, 10*time.Second, "a refused attempt recorded", func() bool {
		var n int
		if err := w.db.Get(&n, `SELECT count(*) FROM webhook_attempts WHERE error LIKE '%destination is a loopback%'`); err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	if n := rcv.n.Load(); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
}
