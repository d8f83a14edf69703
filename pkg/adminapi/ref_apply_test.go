package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

func TestRefApplyCode(t *testing.T) {
	e := newEnv(t)
	code := refPlayerCode(t, e, "alice", map[string]any{"code": "ALICE2026", "usage_limit": 100})
	r := e.do(http.MethodPost, "/v1/referral/apply-code", e.token(auth.RolePlayer, "bob"),
		map[string]any{"code": "alice2026", "metadata": map[string]any{"source": "poster_qr_code", "n": 1}}).must(t, 200, nil)
	var ref refReferral
	r.must(t, 200, &ref)
	if ref.ID == "" || ref.TenantID != e.tenant || ref.Code != "ALICE2026" || ref.CodeID != code.ID || ref.CampaignID != nil ||
		ref.ReferrerID == nil || *ref.ReferrerID != "alice" || ref.RefereeID != "bob" || ref.Status != "pending" ||
		ref.CreatedAt == "" || ref.ConvertedAt != nil || ref.VerifiedAt != nil || ref.RejectedAt != nil || ref.Rewards == nil {
		t.Fatalf("applied = %s", r.Body)
	}
	var meta map[string]any
	if err := json.Unmarshal(ref.Metadata, &meta); err != nil || meta["source"] != "poster_qr_code" || meta["n"] != 1.0 {
		t.Fatalf("metadata = %s", ref.Metadata)
	}

	t.Run("answer equals GET plus rewards", func(t *testing.T) {
		var applied map[string]json.RawMessage
		r.must(t, 200, &applied)
		delete(applied, "rewards")
		got := e.do(http.MethodGet, "/v1/referral/referrals/"+ref.ID, e.admin(), nil).must(t, 200, nil)
		var fetched map[string]json.RawMessage
		got.must(t, 200, &fetched)
		// The admin view adds the risk review (§12), which players never see.
		if string(fetched["review"]) != "null" {
			t.Errorf("review = %s, want null", fetched["review"])
		}
		if _, ok := applied["review"]; ok {
			t.Errorf("the player's apply answer carries review: %s", r.Body)
		}
		delete(fetched, "review")
		if len(applied) != len(fetched) {
			t.Fatalf("keys differ: %s vs %s", r.Body, got.Body)
		}
		for k, v := range fetched {
			if !bytes.Equal(applied[k], v) {
				t.Errorf("%s: apply %s, GET %s", k, applied[k], v)
			}
		}
	})

	var c refCode
	e.do(http.MethodGet, "/v1/referral/codes/"+code.ID, e.admin(), nil).must(t, 200, &c)
	if c.Uses != 1 {
		t.Fatalf("uses = %d, want 1", c.Uses)
	}

	t.Run("binds the code's campaign and admin codes have no referrer", func(t *testing.T) {
		camp := refCreateCampaign(t, e)
		promo := refAdminCode(t, e, map[string]any{"code": "PROMO50", "campaign_id": camp.ID})
		var p refReferral
		refApply(e, "carol", "promo50").must(t, 200, &p)
		if p.CampaignID == nil || *p.CampaignID != camp.ID || p.ReferrerID != nil || p.CodeID != promo.ID ||
			string(p.Metadata) != "{}" {
			t.Fatalf("promo referral = %+v", p)
		}
	})

	t.Run("validation", func(t *testing.T) {
		tok := e.token(auth.RolePlayer, "dan")
		for _, body := range []any{
			map[string]any{},
			map[string]any{"code": ""},
			map[string]any{"code": 5},
			map[string]any{"code": "ALICE2026", "metadata": []any{1}},
			map[string]any{"code": "ALICE2026", "metadata": "x"},
			map[string]any{"code": "ALICE2026", "metadata": map[string]any{"blob": strings.Repeat("x", 4100)}},
			map[string]any{"code": "ALICE2026", "extra": 1},
		} {
			e.do(http.MethodPost, "/v1/referral/apply-code", tok, body).fail(t, 400, "VALIDATION_FAILED")
		}
		e.do(http.MethodPost, "/v1/referral/apply-code", tok, `{"code": "A`).fail(t, 400, "INVALID_JSON")
		// Nothing was written by the rejected requests.
		var l refList[refReferral]
		e.do(http.MethodGet, "/v1/referral/referrals?referee_id=dan", e.admin(), nil).must(t, 200, &l)
		if l.Total != 0 {
			t.Fatalf("rejected applies wrote %d referrals", l.Total)
		}
		// Metadata just under the limit is accepted.
		big := map[string]any{"blob": strings.Repeat("x", 4000)}
		e.do(http.MethodPost, "/v1/referral/apply-code", tok, map[string]any{"code": "ALICE2026", "metadata": big}).must(t, 200, nil)
	})

	t.Run("roles", func(t *testing.T) {
		for _, tok := range []string{e.admin(), e.token(auth.RoleService, "svc")} {
			e.do(http.MethodPost, "/v1/referral/apply-code", tok, map[string]any{"code": "ALICE2026"}).fail(t, 403, "FORBIDDEN")
		}
		e.do(http.MethodPost, "/v1/referral/apply-code", "", map[string]any{"code": "ALICE2026"}).fail(t, 401, "UNAUTHORIZED")
		e.do(http.MethodGet, "/v1/referral/apply-code", e.token(auth.RolePlayer, "x"), nil).fail(t, 405, "METHOD_NOT_ALLOWED")
	})

	t.Run("codes of another tenant do not exist", func(t *testing.T) {
		o := newEnv(t)
		refApply(o, "zed", "ALICE2026").fail(t, 404, "CODE_NOT_FOUND")
	})
}

// TestRefApplyCheckOrder walks the six checks of SPEC §4.3, each time with a later check also
// failing, so the first failure must win.
func TestRefApplyCheckOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mk := func(code string, limit *int) {
		t.Helper()
		owner := "owner_" + strings.ToLower(code)
		if _, err := e.store.CreatePlayerCode(ctx, e.tenant, owner, code, limit); err != nil {
			t.Fatal(err)
		}
	}
	one := 1
	mk("INACTIVE", nil)
	refExec(t, e, `UPDATE referral_codes SET active = false, expires_at = now() - interval '1 hour' WHERE tenant_id = $1 AND code = 'INACTIVE'`, e.tenant)
	mk("EXPIRED", &one)
	refExec(t, e, `UPDATE referral_codes SET expires_at = now() - interval '1 second' WHERE tenant_id = $1 AND code = 'EXPIRED'`, e.tenant)
	mk("LATER", nil)
	refExec(t, e, `UPDATE referral_codes SET expires_at = now() + interval '1 day' WHERE tenant_id = $1 AND code = 'LATER'`, e.tenant)
	mk("FULL", &one)
	refApply(e, "first", "FULL").must(t, 200, nil)
	mk("OPEN", nil)

	// "first" is now referred by owner_full, and owns a code of its own.
	refPlayerCode(t, e, "first", map[string]any{"code": "FIRSTS"})

	refApply(e, "p1", "NOPE").fail(t, 404, "CODE_NOT_FOUND")
	refApply(e, "p1", "bad code!").fail(t, 404, "CODE_NOT_FOUND")
	refApply(e, "p1", "INACTIVE").fail(t, 422, "CODE_INACTIVE")
	refApply(e, "p1", "EXPIRED").fail(t, 422, "CODE_EXPIRED")
	refApply(e, "p1", "LATER").must(t, 200, nil)
	// Own code beats already-referred.
	refApply(e, "first", "FIRSTS").fail(t, 422, "SELF_REFERRAL")
	// Already referred beats exhausted.
	refApply(e, "first", "FULL").fail(t, 409, "ALREADY_REFERRED")
	refApply(e, "first", "OPEN").fail(t, 409, "ALREADY_REFERRED")
	// owner_full referred "first"; now owner_full applying first's code closes a ring.
	refApply(e, "owner_full", "FIRSTS").fail(t, 422, "REFERRAL_CYCLE")
	// A cycle beats exhaustion.
	refExec(t, e, `UPDATE referral_codes SET usage_limit = 1 WHERE tenant_id = $1 AND code = 'FIRSTS'`, e.tenant)
	refApply(e, "someone", "FIRSTS").must(t, 200, nil)
	refApply(e, "owner_full", "FIRSTS").fail(t, 422, "REFERRAL_CYCLE")
	refApply(e, "p2", "FULL").fail(t, 409, "CODE_EXHAUSTED")
	refApply(e, "p3", "FIRSTS").fail(t, 409, "CODE_EXHAUSTED")
	// A longer ring is allowed: only A↔B is a cycle. owner_full → first → someone, then someone's
	// code brings owner_full in as the referee of someone.
	refPlayerCode(t, e, "someone", map[string]any{"code": "SOMEONE"})
	refApply(e, "owner_full", "SOMEONE").must(t, 200, nil)

	var total int
	if err := e.store.DB().GetContext(ctx, &total, `SELECT count(*) FROM referrals WHERE tenant_id = $1`, e.tenant); err != nil {
		t.Fatal(err)
	}
	if total != 4 {
		t.Fatalf("%d referrals, want 4", total)
	}
	refCheckUses(t, e)
}

// refCheckUses asserts that every code's uses equals the referrals made with it.
func refCheckUses(t *testing.T, e *env) {
	t.Helper()
	var bad []string
	err := e.store.DB().SelectContext(context.Background(), &bad, `
		SELECT c.code FROM referral_codes c
		WHERE c.tenant_id = $1 AND c.uses <> (SELECT count(*) FROM referrals r WHERE r.code_id = c.id)`, e.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("uses differ from referrals for %v", bad)
	}
}

func TestRefApplyRateLimit(t *testing.T) {
	e := newEnv(t, refAttemptLimit(3))
	refPlayerCode(t, e, "owner", map[string]any{"code": "REAL1"})
	refAdminCode(t, e, map[string]any{"code": "OFF1", "active": false})
	refApply(e, "guesser", "GUESS1").fail(t, 404, "CODE_NOT_FOUND")
	refApply(e, "guesser", "OFF1").fail(t, 422, "CODE_INACTIVE")
	// Failures of other kinds do not count.
	refApply(e, "guesser", "").fail(t, 400, "VALIDATION_FAILED")
	refApply(e, "guesser", "GUESS3").fail(t, 404, "CODE_NOT_FOUND")
	r := refApply(e, "guesser", "GUESS4")
	r.fail(t, 429, "RATE_LIMITED")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 600 {
		t.Fatalf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	// Every attempt is limited now, a valid one too, and nothing is written.
	refApply(e, "guesser", "REAL1").fail(t, 429, "RATE_LIMITED")
	var l refList[refReferral]
	e.do(http.MethodGet, "/v1/referral/referrals?referee_id=guesser", e.admin(), nil).must(t, 200, &l)
	if l.Total != 0 {
		t.Fatal("a limited apply wrote a referral")
	}
	// The limit is per player and per tenant.
	refApply(e, "honest", "REAL1").must(t, 200, nil)
	o := newEnv(t, refAttemptLimit(3))
	o.do(http.MethodPost, "/v1/referral/apply-code", o.tokenFor(auth.Principal{UserID: "guesser", Role: auth.RolePlayer, TenantID: o.tenant}),
		map[string]any{"code": "GUESS5"}).fail(t, 404, "CODE_NOT_FOUND")
	// Window over: the player may try again.
	refExec(t, e, `UPDATE code_attempt_failures SET failed_at = failed_at - interval '11 minutes' WHERE tenant_id = $1`, e.tenant)
	refApply(e, "guesser", "REAL1").must(t, 200, nil)
}

func TestRefApplyConcurrentUsageLimit(t *testing.T) {
	e := newEnv(t)
	code := refPlayerCode(t, e, "owner", map[string]any{"code": "TWENTY", "usage_limit": 20})
	const n = 100
	statuses := make([]int, n)
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := refApply(e, fmt.Sprintf("player_%03d", i), "TWENTY")
			statuses[i], bodies[i] = r.Status, r.Body
		}()
	}
	wg.Wait()
	ok := 0
	for i, s := range statuses {
		switch {
		case s == 200:
			ok++
		case s == 409 && bytes.Contains(bodies[i], []byte(`"CODE_EXHAUSTED"`)):
		default:
			t.Fatalf("status %d: %s", s, bodies[i])
		}
	}
	if ok != 20 {
		t.Fatalf("%d applies succeeded, want 20", ok)
	}
	var c refCode
	e.do(http.MethodGet, "/v1/referral/codes/"+code.ID, e.admin(), nil).must(t, 200, &c)
	if c.Uses != 20 {
		t.Fatalf("uses = %d, want 20", c.Uses)
	}
	refCheckUses(t, e)
}

func TestRefApplyConcurrentOnePlayer(t *testing.T) {
	e := newEnv(t)
	const n = 20
	for i := range n {
		refPlayerCode(t, e, fmt.Sprintf("owner_%d", i), map[string]any{"code": fmt.Sprintf("MANY%02d", i)})
	}
	statuses := make([]int, n)
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := refApply(e, "greedy", fmt.Sprintf("MANY%02d", i))
			statuses[i], bodies[i] = r.Status, r.Body
		}()
	}
	wg.Wait()
	ok := 0
	for i, s := range statuses {
		switch {
		case s == 200:
			ok++
		case s == 409 && bytes.Contains(bodies[i], []byte(`"ALREADY_REFERRED"`)):
		default:
			t.Fatalf("status %d: %s", s, bodies[i])
		}
	}
	if ok != 1 {
		t.Fatalf("player referred %d times, want once", ok)
	}
	var uses int
	if err := e.store.DB().GetContext(context.Background(), &uses, `SELECT sum(uses) FROM referral_codes WHERE tenant_id = $1`, e.tenant); err != nil {
		t.Fatal(err)
	}
	if uses != 1 {
		t.Fatalf("total uses = %d, want 1", uses)
	}
	refCheckUses(t, e)
}

func TestRefApplyConcurrentCycle(t *testing.T) {
	e := newEnv(t)
	const pairs = 15
	for i := range pairs {
		refPlayerCode(t, e, fmt.Sprintf("a%d", i), map[string]any{"code": fmt.Sprintf("RINGA%d", i)})
		refPlayerCode(t, e, fmt.Sprintf("b%d", i), map[string]any{"code": fmt.Sprintf("RINGB%d", i)})
	}
	type result struct{ a, b int }
	results := make([]result, pairs)
	var wg sync.WaitGroup
	for i := range pairs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			results[i].a = refApply(e, fmt.Sprintf("a%d", i), fmt.Sprintf("RINGB%d", i)).Status
		}()
		go func() {
			defer wg.Done()
			results[i].b = refApply(e, fmt.Sprintf("b%d", i), fmt.Sprintf("RINGA%d", i)).Status
		}()
	}
	wg.Wait()
	for i, r := range results {
		if !(r.a == 200 && r.b == 422 || r.a == 422 && r.b == 200) {
			t.Fatalf("pair %d: statuses %d and %d, want exactly one 200 and one 422", i, r.a, r.b)
		}
	}
	refCheckUses(t, e)
}

// TestRefApplyInstantRewards checks that apply-code answers with the referral as the built-in
// referral.applied event left it, and with what that event paid.
func TestRefApplyInstantRewards(t *testing.T) {
	e := newEnv(t)
	body := refCampaignBody()
	body["qualifying_event"] = "referral.applied"
	delete(body, "qualifying_filter")
	delete(body, "starts_at")
	delete(body, "ends_at")
	var camp refCampaign
	e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), body).must(t, 200, &camp)
	refPlayerCode(t, e, "host", map[string]any{"code": "INSTANT"})
	r := refApply(e, "guest", "INSTANT").must(t, 200, nil)
	var ref refReferral
	r.must(t, 200, &ref)
	if ref.Status != "converted" || ref.ConvertedAt == nil || ref.CampaignID == nil || *ref.CampaignID != camp.ID {
		t.Fatalf("referral after referral.applied = %s", r.Body)
	}
	type reward struct {
		UserID     string `json:"user_id"`
		Role       string `json:"role"`
		ReferralID string `json:"referral_id"`
		EventID    string `json:"event_id"`
		CurrencyID string `json:"currency_id"`
		Amount     int64  `json:"amount"`
	}
	var rewards []reward
	for _, raw := range ref.Rewards {
		var rw reward
		if err := json.Unmarshal(raw, &rw); err != nil {
			t.Fatal(err)
		}
		rewards = append(rewards, rw)
	}
	got := map[string]int64{}
	for _, rw := range rewards {
		if rw.ReferralID != ref.ID || rw.EventID != "referral.applied:"+ref.ID || rw.CurrencyID != "points" {
			t.Fatalf("reward = %+v", rw)
		}
		got[rw.Role+":"+rw.UserID] = rw.Amount
	}
	if len(got) != 2 || got["referrer:host"] != 100 || got["referee:guest"] != 50 {
		t.Fatalf("rewards = %+v", rewards)
	}
	var g refReferral
	e.do(http.MethodGet, "/v1/referral/referrals/"+ref.ID, e.admin(), nil).must(t, 200, &g)
	if g.Status != "converted" || g.ConvertedAt == nil || *g.ConvertedAt != *ref.ConvertedAt || g.UpdatedAt != ref.UpdatedAt {
		t.Fatalf("GET = %+v, apply = %+v", g, ref)
	}
}
