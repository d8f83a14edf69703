package adminapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// contentionRun starts every fn at once (one goroutine each) and waits for all of them.
func contentionRun(fns ...func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn()
		}()
	}
	close(start)
	wg.Wait()
}

// contentionCode returns the error code of an answer ("" for a success).
func contentionCode(t testing.TB, r *resp) string {
	t.Helper()
	if r.Status < 300 {
		return ""
	}
	var eb struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	r.must(t, r.Status, &eb)
	return eb.Error.Code
}

// TestContentionApplyVsDeleteAffiliate applies each affiliate's code while the affiliate is
// deleted. Apply-code locks the code and then (through the referral.applied event and a rule on
// it) the affiliate; the deletion must take them in the same order, so no pair deadlocks into a
// 500: the apply either wins (200) or finds the code gone (CODE_NOT_FOUND).
func TestContentionApplyVsDeleteAffiliate(t *testing.T) {
	w := evtNew(t)
	w.rule(t, "referral.applied", nil, "amount", "0.1", "EUR")
	const pairs = 60
	ids := make([]string, pairs)
	for i := range pairs {
		ids[i] = w.affiliate(t, fmt.Sprintf("gone_%02d", i), "")
	}
	applies, deletes := make([]*resp, pairs), make([]*resp, pairs)
	var fns []func()
	for i := range pairs {
		fns = append(fns,
			func() {
				applies[i] = w.e.do(http.MethodPost, "/v1/referral/apply-code", w.player(fmt.Sprintf("p_%02d", i)),
					map[string]any{"code": evtCode(fmt.Sprintf("gone_%02d", i))})
			},
			func() { deletes[i] = w.e.do(http.MethodDelete, "/v1/affiliates/"+ids[i], w.adm, nil) })
	}
	contentionRun(fns...)
	won := 0
	for i := range pairs {
		if deletes[i].Status != http.StatusNoContent {
			t.Fatalf("pair %d: DELETE answered %d: %s\nlog: %s", i, deletes[i].Status, deletes[i].Body, w.e.log.String())
		}
		switch code := contentionCode(t, applies[i]); code {
		case "":
			won++
		case "CODE_NOT_FOUND":
		default:
			t.Fatalf("pair %d: apply answered %d: %s\nlog: %s", i, applies[i].Status, applies[i].Body, w.e.log.String())
		}
	}
	t.Logf("%d of %d applies committed before their affiliate's deletion", won, pairs)
	refCheckUses(t, w.e)
	var live int
	if err := w.e.store.DB().Get(&live, `SELECT count(*) FROM referral_codes WHERE tenant_id = $1 AND deleted_at IS NULL`, w.tenant); err != nil {
		t.Fatal(err)
	}
	if live != 0 {
		t.Fatalf("%d codes outlived their affiliates", live)
	}
}

// TestContentionApplyDeletedAffiliateCode checks that DELETE affiliate frees its code string:
// apply-code no longer finds it, a player and later the same user as a new affiliate may take
// it, and the referral made before keeps pointing at the old code and referrer.
func TestContentionApplyDeletedAffiliateCode(t *testing.T) {
	w := evtNew(t)
	first := w.affiliate(t, "comeback", "")
	before := w.apply(t, "early", "COMEBACK")
	w.e.do(http.MethodDelete, "/v1/affiliates/"+first, w.adm, nil).must(t, http.StatusNoContent, nil)
	refApply(w.e, "late", "COMEBACK").fail(t, http.StatusNotFound, "CODE_NOT_FOUND")

	var taken refCode
	w.ok(t, w.e.do(http.MethodPost, "/v1/referral/codes", w.player("squatter"), map[string]any{"code": "COMEBACK"}), &taken)
	w.e.do(http.MethodPost, "/v1/affiliates", w.adm, map[string]any{"user_id": "comeback", "affiliate_code": "COMEBACK"}).
		fail(t, http.StatusConflict, "CODE_TAKEN")
	w.e.do(http.MethodDelete, "/v1/referral/codes/"+taken.ID, w.adm, nil).must(t, http.StatusNoContent, nil)
	var again affObj
	w.ok(t, w.e.do(http.MethodPost, "/v1/affiliates", w.adm, map[string]any{"user_id": "comeback", "affiliate_code": "COMEBACK", "status": "active"}), &again)
	if again.ID == first || again.AffiliateCode != "COMEBACK" {
		t.Fatalf("re-created affiliate %+v", again)
	}
	after := w.apply(t, "late", "COMEBACK")

	var old, now refReferral
	w.ok(t, w.e.do(http.MethodGet, "/v1/referral/referrals/"+before.ID, w.adm, nil), &old)
	w.ok(t, w.e.do(http.MethodGet, "/v1/referral/referrals/"+after.ID, w.adm, nil), &now)
	if old.CodeID == now.CodeID || old.Code != "COMEBACK" || old.ReferrerID == nil || *old.ReferrerID != "comeback" {
		t.Fatalf("old referral %+v, new %+v", old, now)
	}
	refCheckUses(t, w.e)
}

// TestContentionApplyOneUseCodeTwice has each player apply a one-use code twice at once. The
// loser is answered by the contract's check order as if the winner had committed first:
// ALREADY_REFERRED (check 4), not CODE_EXHAUSTED (check 6).
func TestContentionApplyOneUseCodeTwice(t *testing.T) {
	e := newEnv(t)
	const players = 50
	for i := range players {
		refPlayerCode(t, e, fmt.Sprintf("owner_%02d", i), map[string]any{"code": fmt.Sprintf("ONCE%02d", i), "usage_limit": 1})
	}
	got := make([][2]*resp, players)
	var fns []func()
	for i := range players {
		for k := range 2 {
			fns = append(fns, func() { got[i][k] = refApply(e, fmt.Sprintf("twice_%02d", i), fmt.Sprintf("ONCE%02d", i)) })
		}
	}
	contentionRun(fns...)
	for i, pair := range got {
		a, b := contentionCode(t, pair[0]), contentionCode(t, pair[1])
		if !(a == "" && b == "ALREADY_REFERRED" || a == "ALREADY_REFERRED" && b == "") {
			t.Errorf("player %d: answers %d %s and %d %s, want one success and one ALREADY_REFERRED",
				i, pair[0].Status, pair[0].Body, pair[1].Status, pair[1].Body)
		}
	}
	refCheckUses(t, e)
}

// TestContentionAttemptLimitExact sends 150 bad guesses of one player at once: exactly the
// limit (20) are answered CODE_NOT_FOUND and counted, every other one is RATE_LIMITED.
func TestContentionAttemptLimitExact(t *testing.T) {
	e := newEnv(t, refAttemptLimit(20))
	const guesses = 150
	got := make([]*resp, guesses)
	var fns []func()
	for i := range guesses {
		fns = append(fns, func() { got[i] = refApply(e, "guesser", fmt.Sprintf("GUESS%03d", i)) })
	}
	contentionRun(fns...)
	counts := map[string]int{}
	for _, r := range got {
		code := contentionCode(t, r)
		if code != "CODE_NOT_FOUND" && code != "RATE_LIMITED" {
			t.Fatalf("answer %d: %s\nlog: %s", r.Status, r.Body, e.log.String())
		}
		if code == "RATE_LIMITED" && r.Header.Get("Retry-After") == "" {
			t.Fatal("RATE_LIMITED without Retry-After")
		}
		counts[code]++
	}
	if counts["CODE_NOT_FOUND"] != 20 || counts["RATE_LIMITED"] != guesses-20 {
		t.Fatalf("answers %v, want 20 CODE_NOT_FOUND and %d RATE_LIMITED", counts, guesses-20)
	}
	var stored int
	if err := e.store.DB().Get(&stored, `SELECT count(*) FROM code_attempt_failures WHERE tenant_id = $1`, e.tenant); err != nil {
		t.Fatal(err)
	}
	if stored != 20 {
		t.Fatalf("%d failures stored, want 20", stored)
	}
	// Successful and invalid attempts leave nothing counted behind.
	o := newEnv(t, refAttemptLimit(20))
	refPlayerCode(t, o, "owner", map[string]any{"code": "REAL1"})
	refApply(o, "honest", "").fail(t, http.StatusBadRequest, "VALIDATION_FAILED")
	refApply(o, "honest", "REAL1").must(t, http.StatusOK, nil)
	refApply(o, "honest", "REAL1").fail(t, http.StatusConflict, "ALREADY_REFERRED")
	if err := o.store.DB().Get(&stored, `SELECT count(*) FROM code_attempt_failures WHERE tenant_id = $1`, o.tenant); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Fatalf("%d failures stored for attempts that did not fail", stored)
	}
}

// TestContentionEventsDuringApply posts each player's first deposit while the player's
// apply-code is running. Every deposit is processed and either paid or dated before the
// referral: none is recorded as processed with nothing paid because the referral was still
// committing (a retry would only be a duplicate: the payment would be lost).
func TestContentionEventsDuringApply(t *testing.T) {
	w := evtNew(t)
	w.campaign(t, "deposit.completed", nil, evtWallet("points", 10), evtWallet("points", 5))
	refPlayerCode(t, w.e, "host", map[string]any{"code": "RACE"})
	const players, lanes = 150, 10
	applies, events := make([]*resp, players), make([]*resp, players)
	var lane []func()
	for l := range lanes {
		lane = append(lane, func() {
			for i := l; i < players; i += lanes {
				player := fmt.Sprintf("racer_%03d", i)
				// Each deposit follows its player's apply by 0–31 ms, so some arrive while the
				// apply is still committing.
				contentionRun(
					func() {
						applies[i] = w.e.do(http.MethodPost, "/v1/referral/apply-code", w.player(player), map[string]any{"code": "RACE"})
					},
					func() {
						time.Sleep(time.Duration(i%32) * time.Millisecond)
						events[i] = w.e.do(http.MethodPost, "/v1/events", w.svc,
							evtBody(fmt.Sprintf("dep_%03d", i), "deposit.completed", player, map[string]any{"amount": 100}))
					})
			}
		})
	}
	contentionRun(lane...)
	paid := 0
	for i := range players {
		w.ok(t, applies[i], nil)
		var o evtOutcome
		w.ok(t, events[i], &o)
		if o.Status != "processed" {
			t.Fatalf("event %d: %+v", i, o)
		}
		if len(o.Rewards) > 0 {
			paid++
			continue
		}
		var row struct {
			OccurredAt time.Time `db:"occurred_at"`
			ReferredAt time.Time `db:"created_at"`
		}
		if err := w.e.store.DB().GetContext(context.Background(), &row, `
			SELECT e.occurred_at, r.created_at FROM events e
			JOIN referrals r ON r.tenant_id = e.tenant_id AND r.referee_id = e.user_id
			WHERE e.tenant_id = $1 AND e.event_id = $2`, w.tenant, o.EventID); err != nil {
			t.Fatal(err)
		}
		if !row.OccurredAt.Before(row.ReferredAt) {
			t.Errorf("event %s occurred at %s, after its referral (%s), and paid nothing",
				o.EventID, row.OccurredAt.Format(time.RFC3339Nano), row.ReferredAt.Format(time.RFC3339Nano))
		}
	}
	t.Logf("%d of %d racing deposits paid", paid, players)
	if n := evtCount(t, w.tenant, "rewards"); n != 2*paid {
		t.Fatalf("%d reward rows for %d paid deposits", n, paid)
	}
}
