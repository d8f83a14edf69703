package adminapi_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
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
