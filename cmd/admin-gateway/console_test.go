package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

// consoleStack is the Admin Gateway started through run on :0 over a fresh database.
type consoleStack struct {
	t    testing.TB
	base string
}

// startStack runs the gateway with the main tests' secret and env on top; it stops when the
// test ends.
func startStack(t testing.TB, env map[string]string) *consoleStack {
	t.Helper()
	vars := map[string]string{
		"PHOENIX_DATABASE_URL": pgtest.NewDatabase(t), "PHOENIX_JWT_SECRET": secret,
		"PHOENIX_ADDRESS_HASH_KEY": hashKey, "PHOENIX_HTTP_ADDR": "127.0.0.1:0", "PHOENIX_LOG_LEVEL": "warn",
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &safeBuffer{}
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envOf(vars), io.Discard, logs, listening) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, logs)
		}
	})
	select {
	case a := <-listening:
		return &consoleStack{t: t, base: "http://" + a.String()}
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs)
	}
	return nil
}

// token signs a token of role for sub; tenants are its tenant_id (one, except for
// client_admin: tenant_ids).
func (s *consoleStack) token(role auth.Role, sub string, tenants ...string) string {
	p := auth.Principal{UserID: sub, Role: role}
	if role == auth.RoleClientAdmin {
		p.TenantIDs = tenants
	} else if len(tenants) > 0 {
		p.TenantID = tenants[0]
	}
	tok, err := auth.Sign([]byte(secret), p, time.Hour, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// call sends a request to the gateway and decodes a JSON answer into out (when not nil).
func (s *consoleStack) call(method, path, token string, body any, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, raw, err)
		}
	}
	return res.StatusCode
}

// must sends a request that has to succeed and returns its decoded object.
func (s *consoleStack) must(method, path, token string, body any) map[string]any {
	s.t.Helper()
	var out map[string]any
	if st := s.call(method, path, token, body, &out); st != http.StatusOK {
		s.t.Fatalf("%s %s: %d %v", method, path, st, out)
	}
	return out
}

// chromiumPath finds the headless browser: PHOENIX_CHROMIUM, else Debian's chromium.
func chromiumPath() string {
	if p := os.Getenv("PHOENIX_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts one headless Chromium with a fresh profile for the test; each tab of it is
// a new session (its own session storage).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("headless Chromium not found: install Debian's chromium (scripts/deps.sh does) or set PHOENIX_CHROMIUM")
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	return browser
}

// tab is one browser tab on the console, failing its test on the first broken step.
type tab struct {
	t     *testing.T
	ctx   context.Context
	stack *consoleStack
}

func openTab(t *testing.T, browser context.Context, s *consoleStack) *tab {
	ctx, cancel := chromedp.NewContext(browser)
	ctx, cancelTimeout := context.WithTimeout(ctx, 30*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	p := &tab{t: t, ctx: ctx, stack: s}
	p.do(chromedp.EmulateViewport(1280, 800), chromedp.Navigate(s.base+"/console/"))
	p.waitText("main", "Sign in")
	return p
}

func (p *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("browser: %v\npage text:\n%s", err, p.pageText())
	}
}

// js evaluates an expression built from a format whose %s arguments are JSON-quoted.
func (p *tab) js(format string, args ...any) any {
	p.t.Helper()
	quoted := make([]any, len(args))
	for i, a := range args {
		b, _ := json.Marshal(a)
		quoted[i] = string(b)
	}
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[any](fmt.Sprintf(format, quoted...), chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v\npage text:\n%s", fmt.Sprintf(format, quoted...), err, p.pageText())
	}
	return v
}

func (p *tab) pageText() string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

// waitText waits until the first element matching sel shows want.
func (p *tab) waitText(sel, want string) {
	p.t.Helper()
	p.poll(sel, want, true)
}

// waitGone waits until the first element matching sel no longer shows gone.
func (p *tab) waitGone(sel, gone string) {
	p.t.Helper()
	p.poll(sel, gone, false)
}

// poll waits until the first element matching sel exists and shows text (or, with shown
// false, does not).
func (p *tab) poll(sel, text string, shown bool) {
	p.t.Helper()
	q, _ := json.Marshal(sel)
	w, _ := json.Marshal(text)
	expr := fmt.Sprintf(`(() => { const el = document.querySelector(%s); return !!el && el.innerText.includes(%s) === %t; })()`, q, w, shown)
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		p.t.Fatalf("waiting for %s to show %q (%t): %v\npage text:\n%s", sel, text, shown, err, p.pageText())
	}
}

// text is the visible text of the first element matching sel ("" when there is none).
func (p *tab) text(sel string) string {
	p.t.Helper()
	s, _ := p.js(`(document.querySelector(%s) || {innerText: ""}).innerText`, sel).(string)
	return s
}

// fill sets a control's value as typing would (input and change events).
func (p *tab) fill(sel, value string) {
	p.t.Helper()
	ok := p.js(`(() => { const el = document.querySelector(%s); if (!el) return false;
		if (el.type === "checkbox") el.checked = %s === "true"; else el.value = %s;
		el.dispatchEvent(new Event("input", {bubbles: true})); el.dispatchEvent(new Event("change", {bubbles: true})); return true; })()`, sel, value, value)
	if ok != true {
		p.t.Fatalf("no control %s\npage text:\n%s", sel, p.pageText())
	}
}

func (p *tab) click(sel string) {
	p.t.Helper()
	// A list that re-renders between finding the node and clicking it leaves a stale node id;
	// the click then goes to the fresh node, found again.
	for range 20 {
		err := chromedp.Do(p.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "Could not find node with given id") {
			p.t.Fatalf("browser: %v\npage text:\n%s", err, p.pageText())
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// submit presses the submit button of the form labelled label.
func (p *tab) submit(label string) {
	p.click(fmt.Sprintf(`form[aria-label=%q] button[type=submit]`, label))
}

// in is a selector inside the form labelled label.
func in(label, sel string) string { return fmt.Sprintf(`form[aria-label=%q] %s`, label, sel) }

// visit opens a console route (#/…), waits for its heading and checks its controls are
// labelled.
func (p *tab) visit(hash, heading string) {
	p.t.Helper()
	p.js(`location.hash = %s`, hash)
	p.waitText("main h1", heading)
	p.labelled()
}

// labelled fails the test for a form control without a label or a button without a name:
// a screen reader would announce them as nothing.
func (p *tab) labelled() {
	p.t.Helper()
	bad := p.js(`[...document.querySelectorAll("input, select, textarea, button")]
		.filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !(el.tagName === "BUTTON" && el.textContent.trim()))
		.map((el) => el.outerHTML).join("\n")`)
	if bad != "" {
		p.t.Errorf("controls without a label:\n%s", bad)
	}
}

// signIn pastes a token into the sign-in form (and picks tenant when asked) and waits for
// the overview.
func (p *tab) signIn(token, tenant string) {
	p.t.Helper()
	p.fill(in("Sign in", `textarea[name=token]`), token)
	if tenant != "" {
		p.fill(in("Sign in", `[name=tenant]`), tenant)
	}
	p.submit("Sign in")
	p.waitText("main h1", "Overview")
}

// shot saves a screenshot of the viewport as dir/name.png when PHOENIX_CONSOLE_SCREENSHOTS
// names a directory (the committed ones under docs/console come from this).
func (p *tab) shot(name string) {
	p.t.Helper()
	dir := os.Getenv("PHOENIX_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir) // relative to the repository root
	}
	img, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), img, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// wallet is a rewards object paying amount points.
func wallet(amount int) map[string]any {
	return map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": amount}}}
}

// seedReferrals gives tenant a campaign paying on deposits of 10.00 or more, alice's code
// ALICE-<n>, bob referred and converted by a deposit, and carol referred (pending). It returns
// the ids of bob's and carol's referrals.
func (s *consoleStack) seedReferrals(tenant string) (bob, carol string) {
	admin := s.token(auth.RoleTenantAdmin, "seed_admin", tenant)
	svc := s.token(auth.RoleService, "platform", tenant)
	s.must("POST", "/v1/referral/campaigns", admin, map[string]any{"name": "Welcome", "qualifying_event": "deposit.completed",
		"qualifying_filter": map[string]any{"amount": map[string]any{"gte": 1000}}, "referrer_rewards": wallet(100), "referee_rewards": wallet(50)})
	code := s.must("POST", "/v1/referral/codes", s.token(auth.RolePlayer, "alice", tenant), map[string]any{"code": "ALICE-" + tenant})["code"].(string)
	bob = s.must("POST", "/v1/referral/apply-code", s.token(auth.RolePlayer, "bob", tenant), map[string]any{"code": code})["id"].(string)
	carol = s.must("POST", "/v1/referral/apply-code", s.token(auth.RolePlayer, "carol", tenant), map[string]any{"code": code})["id"].(string)
	s.must("POST", "/v1/events", svc, map[string]any{"event_id": "dep-bob", "type": "deposit.completed", "user_id": "bob",
		"payload": map[string]any{"amount": 5000, "currency": "EUR"}})
	return bob, carol
}

// receiver is a local webhook receiver: it refuses the first request with 503 "busy" and takes
// every later one.
type receiver struct {
	URL      string
	requests chan hookRequest
}

// hookRequest is what a receiver got: the Standard Webhooks headers and the body.
type hookRequest struct {
	id, timestamp, signature string
	body                     []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{requests: make(chan hookRequest, 100)}
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.requests <- hookRequest{req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body}
		if n.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hook"
	return r
}

// next is the receiver's next request.
func (r *receiver) next(t *testing.T) hookRequest {
	t.Helper()
	select {
	case req := <-r.requests:
		return req
	case <-time.After(15 * time.Second):
		t.Fatal("the receiver got no request")
	}
	return hookRequest{}
}

// signedWith reports whether one of the request's signatures is secret's (Standard Webhooks:
// v1,base64 HMAC-SHA256 of "id.timestamp.body", keyed with the secret's base64 part).
func (h hookRequest) signedWith(secret string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.id + "." + h.timestamp + "."))
	mac.Write(h.body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(h.signature) {
		if s == want {
			return true
		}
	}
	return false
}

// TestConsoleInChromium drives the console in headless Chromium against the gateway run by
// run, over a real database: each scenario asserts what the page shows, and what the API then
// holds where the page wrote.
func TestConsoleInChromium(t *testing.T) {
	browser := newBrowser(t)
	s := startStack(t, map[string]string{"PHOENIX_DEV": "true", "PHOENIX_WEBHOOK_ALLOW_PRIVATE": "true"})

	t.Run("sign-in", func(t *testing.T) {
		p := openTab(t, browser, s)
		p.shot("sign-in")
		// A player token is refused before any call, next to the field.
		p.fill(in("Sign in", "textarea[name=token]"), s.token(auth.RolePlayer, "alice", "t-sign"))
		p.submit("Sign in")
		p.waitText(in("Sign in", `[data-field=token] .field-error`), "a player token cannot use the console")
		// The development sign-in, by keyboard: type the tenant and press Enter.
		p.fill(in("Development sign-in", "input[name=tenant_id]"), "")
		p.do(chromedp.Focus(chromedp.CSS(in("Development sign-in", "input[name=tenant_id]"))), chromedp.KeyEvent("t-sign\r"))
		p.waitText("main h1", "Overview")
		p.labelled()
		// The navigation by keyboard: focus a link, press Enter.
		p.do(chromedp.Focus(chromedp.CSS(`nav a[href="#/campaigns"]`)), chromedp.KeyEvent("\r"))
		p.waitText("main h1", "Campaigns")
		if got := p.text("#session"); !strings.Contains(got, "console_admin (tenant_admin)") || !strings.Contains(got, "Tenant t-sign") {
			t.Errorf("header after development sign-in = %q", got)
		}
		// A token the API refuses (here: signed with another key) signs the tab out with the reason.
		forged, _ := auth.Sign([]byte("another-secret-that-is-at-least-32-bytes"), auth.Principal{UserID: "x", Role: auth.RoleTenantAdmin, TenantID: "t-sign"}, time.Hour, time.Now())
		p.js(`sessionStorage.setItem("phoenix.console.token", %s); location.hash = "#/codes"`, forged)
		p.waitText("main", "Signed out:")
		p.waitText("main", "Sign in again")
		// An expired token is sent back to sign-in too.
		expired, _ := auth.Sign([]byte(secret), auth.Principal{UserID: "x", Role: auth.RoleTenantAdmin, TenantID: "t-sign"}, time.Minute, time.Now().Add(-time.Hour))
		p.fill(in("Sign in", "textarea[name=token]"), expired)
		p.submit("Sign in")
		p.waitText(in("Sign in", `[data-field=token] .field-error`), "the token has expired")
	})

	t.Run("client-and-super-admin", func(t *testing.T) {
		s.must("POST", "/v1/referral/campaigns", s.token(auth.RoleTenantAdmin, "a", "t-b"), map[string]any{"name": "Only in B",
			"qualifying_event": "deposit.completed", "referrer_rewards": wallet(1), "referee_rewards": wallet(1)})
		p := openTab(t, browser, s)
		// A client_admin picks among its tenant_ids.
		p.fill(in("Sign in", "textarea[name=token]"), s.token(auth.RoleClientAdmin, "ops", "t-a", "t-b"))
		p.waitText(in("Sign in", `[data-field=tenant] select`), "t-b")
		p.fill(in("Sign in", "select[name=tenant]"), "t-b")
		p.submit("Sign in")
		p.waitText("main h1", "Overview")
		p.visit("#/campaigns", "Campaigns")
		p.waitText("main table", "Only in B")
		// Switching to the other tenant shows its (empty) list.
		p.fill("#tenant-switch", "t-a")
		p.waitText("main", "No campaigns yet.")
		// A tenant the token does not list is refused by the API: the page says so.
		p.js(`sessionStorage.setItem("phoenix.console.tenant", "t-other"); dispatchEvent(new HashChangeEvent("hashchange"))`)
		p.waitText("#screen-error", "FORBIDDEN")

		// A super_admin types the tenant.
		q := openTab(t, browser, s)
		q.fill(in("Sign in", "textarea[name=token]"), s.token(auth.RoleSuperAdmin, "root"))
		q.waitText(in("Sign in", `[data-field=tenant]`), "Tenant id")
		q.fill(in("Sign in", "input[name=tenant]"), "t-b")
		q.submit("Sign in")
		q.waitText("main h1", "Overview")
		q.visit("#/campaigns", "Campaigns")
		q.waitText("main table", "Only in B")
	})

	t.Run("campaign-with-filter", func(t *testing.T) {
		const tenant = "t-camp"
		admin := s.token(auth.RoleTenantAdmin, "admin", tenant)
		p := openTab(t, browser, s)
		p.signIn(admin, "")
		p.visit("#/campaigns", "Campaigns")
		p.fill(in("New campaign", "input[name=name]"), "Big deposits")
		p.fill(in("New campaign", "textarea[name=qualifying_filter]"), `{"amount": {"gtee": 1000}}`)
		p.submit("New campaign")
		p.waitText(in("New campaign", ".notice.error"), "VALIDATION_FAILED")
		p.waitText(in("New campaign", `[data-field=qualifying_filter] .field-error`), "gtee")
		p.shot("campaign-filter-error")
		p.fill(in("New campaign", "textarea[name=qualifying_filter]"), `{"amount": {"gte": 1000}}`)
		p.submit("New campaign")
		p.waitText(in("New campaign", ".notice.ok"), "Saved campaign Big deposits.")
		p.waitText("main table", `{"amount":{"gte":1000}}`)
		p.shot("campaigns")
		var list struct {
			Items []struct {
				ID               string          `json:"id"`
				Name             string          `json:"name"`
				QualifyingFilter json.RawMessage `json:"qualifying_filter"`
			} `json:"items"`
		}
		s.call("GET", "/v1/referral/campaigns", admin, nil, &list)
		if len(list.Items) != 1 || list.Items[0].Name != "Big deposits" || string(list.Items[0].QualifyingFilter) != `{"amount":{"gte":1000}}` {
			t.Fatalf("campaigns after the form: %+v", list.Items)
		}
		// A dry run: a referred player's deposit would pay both sides; a small one nothing.
		code := s.must("POST", "/v1/referral/codes", s.token(auth.RolePlayer, "alice", tenant), map[string]any{})["code"].(string)
		s.must("POST", "/v1/referral/apply-code", s.token(auth.RolePlayer, "sim_user", tenant), map[string]any{"code": code})
		p.click(`main table a`)
		p.waitText("main h1", "Campaign Big deposits")
		p.fill(in("Dry run (simulate an event)", "input[name=user_id]"), "sim_user")
		p.submit("Dry run (simulate an event)")
		p.waitText("#simulate-result", "Status: simulated. 2 reward(s)")
		p.fill(in("Dry run (simulate an event)", "textarea[name=payload]"), `{"amount": 500}`)
		p.submit("Dry run (simulate an event)")
		p.waitText("#simulate-result", "Status: simulated. 0 reward(s)")
		var rewards struct {
			Total int `json:"total"`
		}
		s.call("GET", "/v1/referral/rewards", admin, nil, &rewards)
		if rewards.Total != 0 {
			t.Errorf("a dry run wrote %d rewards", rewards.Total)
		}
	})

	t.Run("campaign-milestones", func(t *testing.T) {
		const tenant = "t-miles"
		admin := s.token(auth.RoleTenantAdmin, "admin", tenant)
		c := s.must("POST", "/v1/referral/campaigns", admin, map[string]any{"name": "Friends", "qualifying_event": "deposit.completed",
			"referrer_rewards": wallet(100), "referee_rewards": wallet(50)})
		p := openTab(t, browser, s)
		p.signIn(admin, "")
		p.visit("#/campaigns/"+c["id"].(string), "Campaign Friends")
		milestone := func(n int, count, currency, amount string) {
			p.click(in("Edit campaign", "[data-field=milestones] > button"))
			p.fill(in("Edit campaign", fmt.Sprintf(`input[aria-label="Milestone %d: successful referrals"]`, n)), count)
			p.fill(in("Edit campaign", fmt.Sprintf(`input[aria-label="Milestone %d: currency"]`, n)), currency)
			p.fill(in("Edit campaign", fmt.Sprintf(`input[aria-label="Milestone %d: amount"]`, n)), amount)
		}
		// A count of 0 is the API's field error, under the milestones.
		milestone(1, "0", "points", "10")
		p.submit("Edit campaign")
		p.waitText(in("Edit campaign", ".notice.error"), "VALIDATION_FAILED")
		p.waitText(in("Edit campaign", "[data-field=milestones] .field-error"), "successful_referrals")
		p.click(in("Edit campaign", `button[aria-label="Remove milestone 1"]`))
		// Two lines at 5 referrals are one milestone; the form sends them in order of their counts.
		milestone(1, "5", "points", "500")
		milestone(2, "5", "EUR", "10")
		milestone(3, "2", "points", "100")
		p.submit("Edit campaign")
		p.waitText(in("Edit campaign", ".notice.ok"), "Saved campaign Friends.")
		var got struct {
			Milestones []struct {
				SuccessfulReferrals int `json:"successful_referrals"`
				Rewards             struct {
					Wallet []struct {
						CurrencyID string `json:"currency_id"`
						Amount     int    `json:"amount"`
					} `json:"wallet"`
				} `json:"rewards"`
			} `json:"milestones"`
		}
		s.call("GET", "/v1/referral/campaigns/"+c["id"].(string), admin, nil, &got)
		if b, _ := json.Marshal(got.Milestones); string(b) != `[{"successful_referrals":2,"rewards":{"wallet":[{"currency_id":"points","amount":100}]}},`+
			`{"successful_referrals":5,"rewards":{"wallet":[{"currency_id":"points","amount":500},{"currency_id":"EUR","amount":10}]}}]` {
			t.Errorf("milestones after the form: %s", b)
		}
		// The list shows them, and the form reads them back line by line.
		p.visit("#/campaigns", "Campaigns")
		p.waitText("main table", "2: 100 points; 5: 500 points, 10 EUR")
		p.click(`main table a`)
		p.waitText("main h1", "Campaign Friends")
		if v := p.js(`[...document.querySelectorAll("[data-field=milestones] [data-milestone] input")].map((i) => i.value).join(" ")`); v != "2 points 100 5 points 500 5 EUR 10" {
			t.Errorf("milestone rows read back = %v", v)
		}
		p.js(`document.querySelector("[data-field=milestones]").scrollIntoView({block: "center"}), true`)
		p.shot("campaign-milestones")
	})

	t.Run("risk-policy-and-review", func(t *testing.T) {
		const tenant = "t-risk"
		admin := s.token(auth.RoleTenantAdmin, "admin", tenant)
		p := openTab(t, browser, s)
		p.signIn(admin, "")
		p.visit("#/risk", "Risk policy")
		p.waitText("#risk-state", "The defaults (never changed).")
		// A window out of range is the API's field error next to it; then the policy is saved.
		const f = "Change the risk policy"
		p.fill(in(f, "select[name=same_device]"), "hold")
		p.fill(in(f, "input[name=address_window_hours]"), "0")
		p.fill(in(f, "input[name=velocity_on]"), "true")
		p.fill(in(f, `input[name="velocity.max_referrals"]`), "3")
		p.fill(in(f, `select[name="velocity.action"]`), "reject")
		p.submit(f)
		p.waitText(in(f, ".notice.error"), "VALIDATION_FAILED")
		p.waitText(in(f, "[data-field=address_window_hours] .field-error"), "720")
		p.fill(in(f, "input[name=address_window_hours]"), "48")
		p.submit(f)
		p.waitText("#risk-state", "same address within 48 h: allow; a referrer with 3 or more referral(s) in the last 24 h: reject")
		p.shot("risk-policy")
		var pol struct {
			SameDevice         string `json:"same_device"`
			AddressWindowHours int    `json:"address_window_hours"`
			Velocity           *struct {
				MaxReferrals int    `json:"max_referrals"`
				PerHours     int    `json:"per_hours"`
				Action       string `json:"action"`
			} `json:"velocity"`
		}
		s.call("GET", "/v1/referral/risk-policy", admin, nil, &pol)
		if pol.SameDevice != "hold" || pol.AddressWindowHours != 48 || pol.Velocity == nil || *pol.Velocity != (struct {
			MaxReferrals int    `json:"max_referrals"`
			PerHours     int    `json:"per_hours"`
			Action       string `json:"action"`
		}{3, 24, "reject"}) {
			t.Errorf("risk policy after the form: %+v %+v", pol, pol.Velocity)
		}
		// alice's code; mallory and eve apply from alice's device (held), bob from his own.
		player := func(user, device string) string {
			tok, err := auth.Sign([]byte(secret), auth.Principal{UserID: user, Role: auth.RolePlayer, TenantID: tenant, DeviceID: device}, time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		code := s.must("POST", "/v1/referral/codes", player("alice", "phone-a"), map[string]any{})["code"].(string)
		ids := map[string]string{}
		for _, u := range [][2]string{{"mallory", "phone-a"}, {"bob", "phone-b"}, {"eve", "phone-a"}} {
			ids[u[0]] = s.must("POST", "/v1/referral/apply-code", player(u[0], u[1]), map[string]any{"code": code})["id"].(string)
		}
		p.visit("#/referrals", "Referrals")
		queue := `section[aria-label="Review queue"]`
		p.waitText(queue+" table", "mallory")
		if got := p.text(queue + " table"); !strings.Contains(got, "eve") || strings.Contains(got, "bob") || strings.Count(got, "same_device") != 2 {
			t.Errorf("review queue = %q", got)
		}
		p.shot("review-queue")
		// Approving mallory from the queue, with a note.
		p.click(`button[aria-label="Review mallory"]`)
		p.fill(in("Review mallory", "input[name=note]"), "one family, one phone")
		p.submit("Review mallory")
		p.waitText(queue, "Referral of mallory reviewed.")
		p.waitGone(queue+" table", "mallory")
		p.fill(in("Filter referrals", "select[name=review]"), "approved")
		p.submit("Filter referrals")
		p.waitGone("main > div table", "eve")
		p.waitText("main > div table", "mallory")
		// Rejecting eve from her detail page.
		p.click(queue + ` a[href="#/referrals/` + ids["eve"] + `"]`)
		p.waitText("main h1", "Referral of eve")
		p.waitText("#referral-review", "held for same_device")
		p.fill(in("Review eve", "select[name=decision]"), "reject")
		p.submit("Review eve")
		p.waitText("#referral-status", "rejected")
		p.waitText("#referral-review", "rejected")
		var ref struct {
			Status string `json:"status"`
			Review *struct {
				State   string   `json:"state"`
				Reasons []string `json:"reasons"`
				Note    *string  `json:"note"`
			} `json:"review"`
		}
		s.call("GET", "/v1/referral/referrals/"+ids["mallory"], admin, nil, &ref)
		if ref.Review == nil || ref.Review.State != "approved" || ref.Review.Note == nil || *ref.Review.Note != "one family, one phone" || strings.Join(ref.Review.Reasons, ",") != "same_device" {
			t.Errorf("mallory's referral after the review: %+v %+v", ref, ref.Review)
		}
		s.call("GET", "/v1/referral/referrals/"+ids["eve"], admin, nil, &ref)
		if ref.Status != "rejected" || ref.Review.State != "rejected" {
			t.Errorf("eve's referral after the review: %s %+v", ref.Status, ref.Review)
		}
		s.call("GET", "/v1/referral/referrals/"+ids["bob"], admin, nil, &ref)
		if ref.Review != nil {
			t.Errorf("bob's referral has a review: %+v", ref.Review)
		}
	})

	t.Run("codes-and-stats", func(t *testing.T) {
		const tenant = "t-codes"
		admin := s.token(auth.RoleTenantAdmin, "admin", tenant)
		p := openTab(t, browser, s)
		p.signIn(admin, "")
		p.visit("#/codes", "Codes")
		p.fill(in("New code", "input[name=code]"), "spring26")
		p.fill(in("New code", "input[name=usage_limit]"), "5")
		p.submit("New code")
		p.waitText(in("New code", ".notice.ok"), "Created code SPRING26.")
		p.waitText("main table", "SPRING26")
		// The same string again is the API's CODE_TAKEN, shown on the form.
		p.submit("New code")
		p.waitText(in("New code", ".notice.error"), "CODE_TAKEN")
		for _, player := range []string{"p_one", "p_two"} {
			s.must("POST", "/v1/referral/apply-code", s.token(auth.RolePlayer, player, tenant), map[string]any{"code": "SPRING26"})
		}
		p.shot("codes")
		p.click(`main table a`)
		p.waitText("#code-uses", "2 of 5")
		p.waitText("main table", "p_one")
		p.waitText("main table", "p_two")
		p.shot("code-stats")
		// PATCH: deactivate it.
		p.fill(in("Change code", "input[name=active]"), "false")
		p.submit("Change code")
		p.waitText("main .kv", "inactive")
		var code struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
			Uses   int    `json:"uses"`
		}
		var codes struct {
			Items []json.RawMessage `json:"items"`
		}
		s.call("GET", "/v1/referral/codes", admin, nil, &codes)
		if len(codes.Items) != 1 {
			t.Fatalf("codes = %d", len(codes.Items))
		}
		json.Unmarshal(codes.Items[0], &code)
		if code.Active || code.Uses != 2 {
			t.Errorf("code after PATCH: %+v", code)
		}
		// The list filter by status.
		p.visit("#/codes", "Codes")
		p.fill(in("Filter codes", "select[name=active]"), "true")
		p.submit("Filter codes")
		p.waitText("main", "No codes match.")
	})

	t.Run("referral-status", func(t *testing.T) {
		const tenant = "t-refs"
		_, carol := s.seedReferrals(tenant)
		admin := s.token(auth.RoleTenantAdmin, "admin", tenant)
		p := openTab(t, browser, s)
		p.signIn(admin, "")
		p.visit("#/referrals", "Referrals")
		p.fill(in("Filter referrals", "select[name=status]"), "converted")
		p.submit("Filter referrals")
		p.waitGone("main table", "carol")
		p.waitText("main table", "Open bob")
		p.click(`main table a`)
		p.waitText("main h1", "Referral of bob")
		p.fill(in("Change status", "input[name=reason]"), "documents checked")
		p.submit("Change status")
		p.waitText("#referral-status", "verified")
		p.waitText("main .kv", "documents checked")
		p.shot("referral")
		// carol's referral is pending: verifying it is not a transition the contract allows.
		p.visit("#/referrals/"+carol, "Referral of carol")
		p.submit("Change status")
		p.waitText(in("Change status", ".notice.error"), "INVALID_TRANSITION")
		var ref struct {
			Status string `json:"status"`
		}
		s.call("GET", "/v1/referral/referrals/"+carol, admin, nil, &ref)
		if ref.Status != "pending" {
			t.Errorf("carol's referral = %s, want pending", ref.Status)
		}
	})

	t.Run("affiliates-and-hierarchy", func(t *testing.T) {
		const tenant = "t-aff"
		admin := s.token(auth.RoleTenantAdmin, "admin", tenant)
		ids := map[string]string{}
		parent := ""
		for _, user := range []string{"top", "mid", "leaf"} {
			a := s.must("POST", "/v1/affiliates", admin, map[string]any{"user_id": user, "status": "active"})
			ids[user] = a["id"].(string)
			if parent != "" {
				s.must("PUT", "/v1/affiliates/"+ids[user]+"/hierarchy", admin, map[string]any{"parent_affiliate_id": parent})
			}
			parent = ids[user]
		}
		p := openTab(t, browser, s)
		p.signIn(admin, "")
		p.visit("#/affiliates", "Affiliates")
		p.waitText("main table", "leaf")
		p.fill(in("New affiliate", "input[name=user_id]"), "newbie")
		p.fill(in("New affiliate", "input[name=affiliate_code]"), "NEWBIE1")
		p.submit("New affiliate")
		p.waitText(in("New affiliate", ".notice.ok"), "Created affiliate newbie with code NEWBIE1.")
		p.shot("affiliates")
		// The downline tree: top's children are loaded, mid expands to leaf.
		p.visit("#/affiliates/"+ids["top"], "Affiliate top")
		p.waitText(".tree", "mid")
		p.click(`.tree li[data-user=mid] > button.toggle`)
		p.waitText(`.tree li[data-user=mid]`, "leaf")
		// Moving top under leaf (its own descendant) is the API's 422, shown plainly.
		p.fill(in("Move in the hierarchy", "input[name=parent_affiliate_id]"), "nobody")
		p.submit("Move in the hierarchy")
		p.waitText(in("Move in the hierarchy", "[data-field=parent_affiliate_id] .field-error"), "no affiliate has user id nobody")
		p.fill(in("Move in the hierarchy", "input[name=parent_affiliate_id]"), "leaf")
		p.submit("Move in the hierarchy")
		p.waitText(in("Move in the hierarchy", ".notice.error"), "HIERARCHY_CYCLE")
		p.shot("hierarchy-cycle")
		// Navigating the tree to leaf and making it a root.
		p.click(`.tree li[data-user=leaf] > a`)
		p.waitText("main h1", "Affiliate leaf")
		p.waitText("#affiliate-parent", "mid")
		p.fill(in("Move in the hierarchy", "input[name=parent_affiliate_id]"), "")
		p.submit("Move in the hierarchy")
		p.waitText("#affiliate-parent", "none (a root)")
		// Suspending it through the detail form (a PUT of what was read).
		p.fill(in("Status and tier", "select[name=status]"), "suspended")
		p.submit("Status and tier")
		p.waitText("main .kv", "suspended")
		p.waitText("#affiliate-parent", "none (a root)")
		var leaf struct {
			Parent *string `json:"parent_affiliate_id"`
			Status string  `json:"status"`
		}
		s.call("GET", "/v1/affiliates/"+ids["leaf"], admin, nil, &leaf)
		if leaf.Parent != nil || leaf.Status != "suspended" {
			t.Errorf("leaf = %+v, want a suspended root", leaf)
		}
	})

	t.Run("payouts", func(t *testing.T) {
		const tenant = "t-pay"
		admin := s.token(auth.RoleTenantAdmin, "admin", tenant)
		p := openTab(t, browser, s)
		p.signIn(admin, "")
		// The payout policy: no hold and a minimum of 10 EUR, after a field error.
		p.visit("#/programme", "Tiers, commission rules and hierarchy")
		// The lists above the form load after the heading: wait for them, so no click lands
		// on a moving page.
		p.waitText(`section[aria-label=Tiers]`, "No tiers yet.")
		p.waitText(`section[aria-label="Commission rules"]`, "No rules yet.")
		const pol = "Change the payout policy"
		p.fill(in(pol, "input[name=hold_days]"), "400")
		p.fill(in(pol, "input[name=minimum_payout]"), "10 EUR")
		p.submit(pol)
		p.waitText(in(pol, "[data-field=hold_days] .field-error"), "365")
		p.fill(in(pol, "input[name=hold_days]"), "0")
		p.submit(pol)
		p.waitText("#payout-policy-state", "held 0 day(s) before they can be paid; minimum payout: 10 EUR.")
		// big earns 10% of a 50.00 EUR deposit, small 10% of 0.50 EUR (below the minimum).
		s.must("POST", "/v1/affiliate/commission-rules", admin, map[string]any{"name": "Deposits", "event_type": "deposit.completed",
			"commission_field": "amount", "use_tier_rate": false, "custom_rate": 0.1, "currency_id": "EUR"})
		svc := s.token(auth.RoleService, "platform", tenant)
		ids := map[string]string{}
		for i, u := range [][3]string{{"big", "p_big", "5000"}, {"small", "p_small", "50"}} {
			ids[u[0]] = s.must("POST", "/v1/affiliates", admin, map[string]any{"user_id": u[0], "affiliate_code": strings.ToUpper(u[0]), "status": "active"})["id"].(string)
			s.must("POST", "/v1/referral/apply-code", s.token(auth.RolePlayer, u[1], tenant), map[string]any{"code": strings.ToUpper(u[0])})
			s.must("POST", "/v1/events", svc, map[string]any{"event_id": fmt.Sprintf("dep-%d", i), "type": "deposit.completed", "user_id": u[1],
				"payload": map[string]any{"amount": json.Number(u[2])}})
		}
		p.visit("#/affiliates/"+ids["big"], "Affiliate big")
		if got := p.text("#affiliate-balance tbody"); got != "EUR\t0\t500\t0\t0\t0" {
			t.Errorf("big's balance before the run = %q", got)
		}
		// A run names its affiliates by user id; an unknown one is a field error.
		p.visit("#/payouts", "Payouts")
		p.fill(in("Run payouts", "input[name=affiliate_ids]"), "big, nobody")
		p.submit("Run payouts")
		p.waitText(in("Run payouts", "[data-field=affiliate_ids] .field-error"), "no affiliate has user id nobody")
		p.fill(in("Run payouts", "input[name=affiliate_ids]"), "")
		p.submit("Run payouts")
		p.waitText("#payout-run-result", "Created 1 payout(s) of 500 EUR; skipped 1.")
		p.waitText("#payout-run-result table", "BELOW_MINIMUM_PAYOUT")
		p.waitText("main > div table", "pending")
		p.shot("payouts")
		// Recording the transfer: paid with its reference.
		p.click(`button[aria-label="Record the outcome of the payout to big"]`)
		p.fill(in("Payout to big", "input[name=reference]"), "SEPA-0001")
		p.submit("Payout to big")
		p.waitText("main", "Payout to big paid.")
		p.waitText("main > div table", "SEPA-0001")
		var payouts struct {
			Items []struct {
				UserID    string  `json:"user_id"`
				Amount    int64   `json:"amount"`
				Status    string  `json:"status"`
				Reference *string `json:"reference"`
			} `json:"items"`
		}
		s.call("GET", "/v1/affiliate/payouts", admin, nil, &payouts)
		if len(payouts.Items) != 1 || payouts.Items[0].UserID != "big" || payouts.Items[0].Amount != 500 || payouts.Items[0].Status != "paid" ||
			payouts.Items[0].Reference == nil || *payouts.Items[0].Reference != "SEPA-0001" {
			t.Errorf("payouts after the page: %+v", payouts.Items)
		}
		// A second run finds nothing to pay.
		p.submit("Run payouts")
		p.waitText("#payout-run-result", "Created 0 payout(s) of 0 EUR; skipped 2.")
		p.waitText("#payout-run-result table", "NOTHING_AVAILABLE")
		// The ledger's commissions by state.
		p.visit("#/ledger", "Ledger")
		p.waitText(`section[aria-label=Rewards]`, "No rows match.")
		p.fill(in("Filter commissions", "select[name=state]"), "paid")
		p.submit("Filter commissions")
		p.waitText(`section[aria-label=Commissions] .pager`, "1–1 of 1")
		if got := p.text(`section[aria-label=Commissions] table`); !strings.Contains(got, "big") || !strings.Contains(got, "500 EUR") || strings.Contains(got, "small") {
			t.Errorf("paid commissions: %q", got)
		}
		p.fill(in("Filter commissions", "select[name=state]"), "available")
		p.submit("Filter commissions")
		p.waitText(`section[aria-label=Commissions] table`, "small")
		// Another deposit, a run for big alone, and a failed transfer: its rows are available again.
		s.must("POST", "/v1/events", svc, map[string]any{"event_id": "dep-2", "type": "deposit.completed", "user_id": "p_big",
			"payload": map[string]any{"amount": 3000}})
		p.visit("#/payouts", "Payouts")
		p.fill(in("Run payouts", "input[name=affiliate_ids]"), "big")
		p.submit("Run payouts")
		p.waitText("#payout-run-result", "Created 1 payout(s) of 300 EUR; skipped 0.")
		p.waitText("main > div table", "pending")
		p.click(`button[aria-label="Record the outcome of the payout to big"]`)
		p.fill(in("Payout to big", "select[name=status]"), "failed")
		p.submit("Payout to big")
		p.waitText("main", "Payout to big failed.")
		p.waitText("main > div table", "failed")
		p.visit("#/affiliates/"+ids["big"], "Affiliate big")
		if got := p.text("#affiliate-balance tbody"); got != "EUR\t0\t300\t0\t500\t0" {
			t.Errorf("big's balance after a paid and a failed payout = %q", got)
		}
	})

	t.Run("funnel", func(t *testing.T) {
		const tenant = "t-fun"
		admin := s.token(auth.RoleTenantAdmin, "admin", tenant)
		s.must("POST", "/v1/referral/campaigns", admin, map[string]any{"name": "Welcome", "qualifying_event": "deposit.completed",
			"referrer_rewards": wallet(100), "referee_rewards": wallet(50)})
		code := s.must("POST", "/v1/referral/codes", s.token(auth.RolePlayer, "alice", tenant), map[string]any{"code": "ALICE-FUN"})["code"].(string)
		// Three clicks (two on a poster, one in an e-mail); bob signs up from the first poster
		// click and deposits, carol signs up without one.
		var clicks []string
		for _, source := range []string{"poster_qr_code", "poster_qr_code", "email"} {
			clicks = append(clicks, s.must("POST", "/v1/referral/impressions?tenant_id="+tenant, "", map[string]any{"code": code, "source": source})["impression_id"].(string))
		}
		s.must("POST", "/v1/referral/apply-code", s.token(auth.RolePlayer, "bob", tenant), map[string]any{"code": code, "impression_id": clicks[0]})
		s.must("POST", "/v1/referral/apply-code", s.token(auth.RolePlayer, "carol", tenant), map[string]any{"code": code})
		s.must("POST", "/v1/events", s.token(auth.RoleService, "platform", tenant), map[string]any{"event_id": "dep-bob", "type": "deposit.completed",
			"user_id": "bob", "payload": map[string]any{"amount": 5000}})
		p := openTab(t, browser, s)
		p.signIn(admin, "")
		p.waitText("#funnel", "By source")
		const want = "Funnel (30d): Impressions 3, Referrals 2, Linked to an impression 1, Successful 1"
		if label := p.js(`document.querySelector("#funnel svg").getAttribute("aria-label")`); label != want {
			t.Errorf("funnel = %v, want %q", label, want)
		}
		rows := p.text("#funnel table tbody")
		if !strings.Contains(rows, "poster_qr_code\t2\t1\t1\t50%") || !strings.Contains(rows, "email\t1\t0\t0\t0%") {
			t.Errorf("funnel by source:\n%s", rows)
		}
		p.js(`document.querySelector("#funnel").scrollIntoView({block: "center"}), true`)
		p.shot("funnel")
		// A code that cannot be one is the API's field error; another code's funnel is empty.
		p.fill(in("Funnel filters", "input[name=code]"), "no such code!")
		p.submit("Funnel filters")
		p.waitText(`section[aria-label=Funnel] .notice.error`, "VALIDATION_FAILED")
		if got := p.text(in("Funnel filters", "[data-field=code] .field-error")); got == "" {
			t.Errorf("no field error under the code; the section says %q", p.text(`section[aria-label=Funnel] .notice.error`))
		}
		s.must("POST", "/v1/referral/codes", s.token(auth.RolePlayer, "dave", tenant), map[string]any{"code": "DAVE-FUN"})
		p.fill(in("Funnel filters", "input[name=code]"), "dave-fun")
		p.submit("Funnel filters")
		p.waitText("#funnel", "No impressions in this period.")
		if label := p.js(`document.querySelector("#funnel svg").getAttribute("aria-label")`); label != "Funnel (30d): Impressions 0, Referrals 0, Linked to an impression 0, Successful 0" {
			t.Errorf("dave's funnel = %v", label)
		}
	})

	t.Run("webhooks", func(t *testing.T) {
		const tenant = "t-hook"
		admin := s.token(auth.RoleTenantAdmin, "admin", tenant)
		recv := newReceiver(t)
		p := openTab(t, browser, s)
		p.signIn(admin, "")
		p.visit("#/webhooks", "Webhooks")
		// A URL the API refuses is its field error; then the endpoint is created and its secret
		// shown once.
		p.fill(in("New endpoint", "input[name=url]"), "ftp://example.com/hook")
		p.submit("New endpoint")
		p.waitText(in("New endpoint", ".notice.error"), "VALIDATION_FAILED")
		if got := p.text(in("New endpoint", "[data-field=url] .field-error")); got == "" {
			t.Errorf("no field error under the URL; the form says %q", p.text(in("New endpoint", ".notice.error")))
		}
		p.fill(in("New endpoint", "input[name=url]"), recv.URL)
		p.fill(in("New endpoint", "input[name=description]"), "CRM")
		p.submit("New endpoint")
		p.waitText("#webhook-secret", "whsec_")
		secret := strings.TrimSpace(p.text("#webhook-secret pre"))
		p.waitText("main table", "CRM")
		p.click(`main table a`)
		p.waitText("main h1", "Webhook endpoint CRM")
		if strings.Contains(p.pageText(), secret) {
			t.Error("the endpoint's page shows the secret again")
		}
		var endpoints struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		s.call("GET", "/v1/webhooks/endpoints", admin, nil, &endpoints)
		deliveries := "/v1/webhooks/endpoints/" + endpoints.Items[0].ID + "/deliveries"
		// until waits for the API to hold a delivery for which ok holds, then refreshes the page.
		type delivery struct {
			Status   string `json:"status"`
			Attempts []struct {
				StatusCode *int `json:"status_code"`
			} `json:"attempts"`
		}
		until := func(what string, ok func(delivery) bool) {
			t.Helper()
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				var page struct{ Items []delivery }
				s.call("GET", deliveries, admin, nil, &page)
				if len(page.Items) > 0 && ok(page.Items[0]) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no delivery %s: %+v", what, page.Items)
				}
			}
			p.click("#deliveries-refresh")
		}
		// A test event: the receiver refuses the first attempt, and the page shows it.
		p.click("#webhook-test")
		p.waitText("#webhook-action", "Sent a webhook.test event.")
		first := recv.next(t)
		if !first.signedWith(secret) {
			t.Errorf("the test event is not signed with the secret the page showed: %q", first.signature)
		}
		until("with a refused attempt", func(d delivery) bool { return len(d.Attempts) == 1 })
		p.waitText("#webhook-deliveries table", "webhook.test\tpending\t1\t")
		p.click("#webhook-deliveries button[aria-label^='Show the attempts']")
		p.waitText("#webhook-attempts", "503")
		p.waitText("#webhook-attempts", "busy")
		p.js(`document.querySelector("#webhook-attempts").scrollIntoView({block: "end"}), true`)
		p.shot("webhook-delivery")
		// Retry now: the receiver takes it, under the same webhook-id.
		p.click("#webhook-deliveries button[aria-label^='Retry']")
		p.waitText("#webhook-action", "Retrying webhook.test.")
		if again := recv.next(t); again.id != first.id {
			t.Errorf("the retry's webhook-id %q, the first attempt's %q", again.id, first.id)
		}
		until("delivered", func(d delivery) bool { return d.Status == "delivered" })
		p.waitText("#webhook-deliveries table", "webhook.test\tdelivered\t2\t")
		// Retrying a delivered delivery is the API's INVALID_TRANSITION.
		p.click("#webhook-deliveries button[aria-label^='Retry']")
		p.waitText("#webhook-error", "INVALID_TRANSITION")
		// Rotating shows the new secret once; a replay re-sends what happened (an affiliate
		// created), signed by both.
		p.click(`main .actions button.danger`)
		p.click(`main .actions button.danger`)
		p.waitText("#webhook-secret", "whsec_")
		rotated := strings.TrimSpace(p.text("#webhook-secret pre"))
		if rotated == secret {
			t.Errorf("the rotated secret is the first one")
		}
		s.must("POST", "/v1/affiliates", admin, map[string]any{"user_id": "hooked", "status": "active"})
		live := recv.next(t)
		var before struct{ Total int }
		s.call("GET", deliveries, admin, nil, &before)
		p.fill(in("Replay events", "input[name=since]"), time.Now().Add(-time.Hour).Format("2006-01-02T15:04"))
		p.submit("Replay events")
		p.waitText(in("Replay events", ".notice.ok"), "Queued ")
		var after struct{ Total int }
		s.call("GET", deliveries, admin, nil, &after)
		if want := fmt.Sprintf("Queued %d event(s)", after.Total-before.Total); after.Total == before.Total || !strings.Contains(p.text(in("Replay events", ".notice.ok")), want) {
			t.Errorf("replay says %q, want %q", p.text(in("Replay events", ".notice.ok")), want)
		}
		replayed := recv.next(t)
		if replayed.id != live.id || !replayed.signedWith(secret) || !replayed.signedWith(rotated) {
			t.Errorf("the replayed event %q is not signed by both secrets: %q", replayed.id, replayed.signature)
		}
	})

	t.Run("tiers-rules-policy", func(t *testing.T) {
		const tenant = "t-prog"
		admin := s.token(auth.RoleTenantAdmin, "admin", tenant)
		p := openTab(t, browser, s)
		p.signIn(admin, "")
		p.visit("#/programme", "Tiers, commission rules and hierarchy")
		p.fill(in("New tier", "input[name=name]"), "Gold")
		p.fill(in("New tier", "input[name=commission_rate]"), "0.1")
		p.fill(in("New tier", "input[name=priority]"), "5")
		p.submit("New tier")
		p.waitText(`section[aria-label=Tiers] table`, "Gold")
		// Editing it: the form takes the tier's values, the PUT its changes.
		p.click(`button[aria-label="Edit Gold"]`)
		p.fill(in("Edit tier Gold", "input[name=priority]"), "7")
		p.submit("Edit tier Gold")
		p.waitText(`section[aria-label=Tiers] table`, "7")
		p.waitText(`section[aria-label=Tiers] form h2`, "New tier")
		// A rule without the tier's rate needs a custom rate: the API's field error is shown there.
		p.fill(in("New rule", "input[name=name]"), "Deposits")
		p.fill(in("New rule", "input[name=use_tier_rate]"), "false")
		p.submit("New rule")
		p.waitText(in("New rule", ".notice.error"), "VALIDATION_FAILED")
		if got := p.text(in("New rule", `[data-field=custom_rate] .field-error`)); got == "" {
			t.Fatalf("no field error next to custom_rate; form says %q", p.text(in("New rule", ".notice.error")))
		}
		p.fill(in("New rule", "input[name=custom_rate]"), "0.05")
		p.submit("New rule")
		p.waitText(`section[aria-label="Commission rules"] table`, "Deposits")
		// The hierarchy policy: rates summing past 1 are refused, then a valid one is saved.
		p.fill(in("Change the hierarchy policy", "input[name=max_depth]"), "2")
		p.fill(in("Change the hierarchy policy", "input[name=level_rates]"), "0.6, 0.6")
		p.submit("Change the hierarchy policy")
		p.waitText(in("Change the hierarchy policy", ".notice.error"), "VALIDATION_FAILED")
		p.fill(in("Change the hierarchy policy", "input[name=level_rates]"), "0.1, 0.05")
		p.submit("Change the hierarchy policy")
		p.waitText("#policy-state", "2 level(s) above the direct affiliate: 0.1, 0.05")
		p.shot("programme")
		var pol struct {
			MaxDepth   int       `json:"max_depth"`
			LevelRates []float64 `json:"level_rates"`
		}
		s.call("GET", "/v1/affiliate/hierarchy", admin, nil, &pol)
		if pol.MaxDepth != 2 || len(pol.LevelRates) != 2 || pol.LevelRates[1] != 0.05 {
			t.Errorf("policy after the form: %+v", pol)
		}
		var rules struct {
			Items []struct {
				Name       string   `json:"name"`
				CustomRate *float64 `json:"custom_rate"`
			} `json:"items"`
		}
		s.call("GET", "/v1/affiliate/commission-rules", admin, nil, &rules)
		if len(rules.Items) != 1 || rules.Items[0].CustomRate == nil || *rules.Items[0].CustomRate != 0.05 {
			t.Errorf("rules after the form: %+v", rules.Items)
		}
	})

	t.Run("overview-and-ledger", func(t *testing.T) {
		const tenant = "t-over"
		s.seedReferrals(tenant)
		p := openTab(t, browser, s)
		p.signIn(s.token(auth.RoleTenantAdmin, "admin", tenant), "")
		// Two referrals, one converted, in every period; alice leads the board.
		label, _ := p.js(`document.querySelector("svg.chart").getAttribute("aria-label")`).(string)
		if !strings.Contains(label, "7d 1 of 2 successful") || !strings.Contains(label, "all 1 of 2 successful") {
			t.Errorf("chart label = %q", label)
		}
		p.waitText("main", "alice")
		p.shot("overview")
		p.visit("#/ledger", "Ledger")
		p.waitText(`section[aria-label=Rewards] table`, "bob")
		p.fill(in("Filter rewards", "input[name=user_id]"), "alice")
		p.submit("Filter rewards")
		p.waitText(`section[aria-label=Rewards] .pager`, "1–1 of 1")
		if got := p.text(`section[aria-label=Rewards] table`); !strings.Contains(got, "100 points") || strings.Contains(got, "referee") {
			t.Errorf("rewards filtered to alice: %q", got)
		}
		p.shot("ledger")
		// The export holds every row the filters match, as CSV.
		p.js(`window.exported = new Promise((done) => { const make = URL.createObjectURL; URL.createObjectURL = (b) => { b.text().then(done); return make(b); }; }), true`)
		p.click(`section[aria-label=Rewards] form button[type=button]`)
		csv, _ := p.js(`window.exported`).(string)
		lines := strings.Split(strings.TrimSpace(csv), "\r\n")
		if len(lines) != 2 || lines[0] != "id,created_at,user_id,role,campaign_id,referral_id,event_id,currency_id,amount" ||
			!strings.Contains(lines[1], ",alice,referrer,") || !strings.HasSuffix(lines[1], ",dep-bob,points,100") {
			t.Errorf("exported rewards:\n%s", csv)
		}
		// The CSV export defuses spreadsheet formulas and quotes what needs quoting.
		if got := p.js(`import("./ui.js").then((m) => [m.csvCell("=HYPERLINK(\"x\")"), m.csvCell("-5"), m.csvCell("a,b")].join("|"))`); got != `"'=HYPERLINK(""x"")"|-5|"a,b"` {
			t.Errorf("csv cells = %v", got)
		}
		// A narrow window: nothing wider than the screen, on the overview and the newer screens.
		p.do(chromedp.EmulateViewport(390, 844))
		p.visit("#/overview", "Overview")
		if wide := p.js(`document.documentElement.scrollWidth > innerWidth + 1`); wide != false {
			t.Errorf("the overview scrolls sideways at 390 px")
		}
		p.shot("overview-narrow")
		for _, screen := range [][2]string{{"#/referrals", "Referrals"}, {"#/risk", "Risk policy"}, {"#/payouts", "Payouts"}, {"#/webhooks", "Webhooks"}, {"#/programme", "Tiers"}} {
			p.visit(screen[0], screen[1])
			if wide := p.js(`document.documentElement.scrollWidth > innerWidth + 1`); wide != false {
				t.Errorf("%s scrolls sideways at 390 px", screen[0])
			}
		}
	})
}

// consolePaths are the API paths the console's modules call, read from their source: every
// quoted or templated string starting with /v1/, with each ${…} as a UUID.
func consolePaths(t *testing.T) []string {
	t.Helper()
	lit := regexp.MustCompile("[\"`](/v1/[^\"`?]*)[\"`]")
	param := regexp.MustCompile(`\$\{[^}]*\}`)
	seen := map[string]bool{}
	var paths []string
	err := filepath.WalkDir(filepath.Join("..", "..", "pkg", "console", "assets"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".js" {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllStringSubmatch(string(src), -1) {
			p := param.ReplaceAllString(m[1], "00000000-0000-4000-8000-000000000000")
			if !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 15 {
		t.Fatalf("found only %d API paths in the console's modules: %v", len(paths), paths)
	}
	return paths
}

// TestConsoleNeedsAnAdminToken: without PHOENIX_DEV the console is its page and static files
// only, and every API path it calls answers 401 without a token (and 403 to a player); the
// development sign-in exists only with PHOENIX_DEV; PHOENIX_CONSOLE=false removes the console.
func TestConsoleNeedsAnAdminToken(t *testing.T) {
	s := startStack(t, nil)
	get := func(path string) (*http.Response, string) {
		res, err := http.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, path := range []string{"/console/", "/console/app.js", "/console/console.css", "/console/screens/index.js"} {
		res, body := get(path)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: %d, CSP %q", path, res.StatusCode, res.Header.Get("Content-Security-Policy"))
		}
		if path == "/console/" && strings.Contains(body, "phoenix-dev-sign-in") {
			t.Errorf("GET %s offers the development sign-in without PHOENIX_DEV", path)
		}
	}
	if res, _ := get("/console/index.html"); res.StatusCode != http.StatusNotFound {
		t.Errorf("the page's template is served raw: %d", res.StatusCode)
	}
	if st := s.call("POST", "/console/dev-token", "", map[string]any{"tenant_id": "t1"}, nil); st == http.StatusOK {
		t.Errorf("POST /console/dev-token without PHOENIX_DEV = %d", st)
	}
	player := s.token(auth.RolePlayer, "alice", "t1")
	for _, path := range consolePaths(t) {
		unauthorized := false
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			var out struct {
				Error struct{ Code string } `json:"error"`
			}
			st := s.call(method, path+"?tenant_id=t1", "", map[string]any{}, &out)
			switch st {
			case http.StatusUnauthorized:
				unauthorized = true
				// Players create their own codes (SPEC §2); every other route is an admin's.
				playerRoute := method == "POST" && path == "/v1/referral/codes"
				if st := s.call(method, path+"?tenant_id=t1", player, map[string]any{}, nil); !playerRoute && st != http.StatusForbidden {
					t.Errorf("%s %s as a player: %d, want 403", method, path, st)
				}
			case http.StatusMethodNotAllowed:
			default:
				t.Errorf("%s %s without a token: %d %s", method, path, st, out.Error.Code)
			}
		}
		if !unauthorized {
			t.Errorf("%s is no route of the API", path)
		}
	}

	t.Run("dev", func(t *testing.T) {
		d := startStack(t, map[string]string{"PHOENIX_DEV": "true"})
		var minted struct {
			Token     string    `json:"token"`
			ExpiresAt time.Time `json:"expires_at"`
		}
		if st := d.call("POST", "/console/dev-token", "", map[string]any{"tenant_id": "t-dev"}, &minted); st != http.StatusOK {
			t.Fatalf("dev-token: %d", st)
		}
		if d.call("GET", "/v1/referral/stats", minted.Token, nil, nil) != http.StatusOK ||
			d.call("GET", "/v1/referral/stats?tenant_id=other", minted.Token, nil, nil) != http.StatusForbidden {
			t.Error("the minted token is not a tenant_admin of t-dev only")
		}
		if d := time.Until(minted.ExpiresAt); d < 7*time.Hour || d > 8*time.Hour+time.Minute {
			t.Errorf("minted token expires in %v", d)
		}
	})
	t.Run("off", func(t *testing.T) {
		off := startStack(t, map[string]string{"PHOENIX_CONSOLE": "false", "PHOENIX_DEV": "true"})
		for _, path := range []string{"/console/", "/console/app.js"} {
			if st := off.call("GET", path, "", nil, nil); st != http.StatusNotFound {
				t.Errorf("GET %s with PHOENIX_CONSOLE=false: %d", path, st)
			}
		}
		if st := off.call("POST", "/console/dev-token", "", map[string]any{"tenant_id": "t1"}, nil); st != http.StatusNotFound {
			t.Errorf("dev-token with PHOENIX_CONSOLE=false: %d", st)
		}
	})
}
