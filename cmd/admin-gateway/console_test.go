package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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

// TestConsoleInChromium drives the console in headless Chromium against the gateway run by
// run, over a real database: each scenario asserts what the page shows, and what the API then
// holds where the page wrote.
func TestConsoleInChromium(t *testing.T) {
	browser := newBrowser(t)
	s := startStack(t, map[string]string{"PHOENIX_DEV": "true"})

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
		// A narrow window: nothing wider than the screen.
		p.do(chromedp.EmulateViewport(390, 844))
		p.visit("#/overview", "Overview")
		if wide := p.js(`document.documentElement.scrollWidth > innerWidth + 1`); wide != false {
			t.Errorf("the overview scrolls sideways at 390 px")
		}
		p.shot("overview-narrow")
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
