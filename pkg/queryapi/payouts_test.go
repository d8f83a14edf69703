package queryapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestQryAffiliateMoney: the caller's commissions carry their state derived now (pending in the
// hold, in_payout once a payout holds them), and its balance and payouts are its own: another
// tenant's affiliate of the same user id sees none of them, and a caller who is not an
// affiliate gets NOT_AN_AFFILIATE.
func TestQryAffiliateMoney(t *testing.T) {
	w := qryNewWorld(t)
	e, _ := w.serve(Config{})
	ctx := context.Background()
	states := func(user string) []string {
		t.Helper()
		var got apishape.List[apishape.Commission]
		w.read(e, "/v1/affiliate/commissions", user, &got)
		var out []string
		for _, c := range got.Items {
			out = append(out, c.State)
		}
		return out
	}
	balance := func(tenant, user string) []apishape.Balance {
		t.Helper()
		rec := qrySendTo(e, "/v1/affiliate/balance", qryPlayer(t, tenant, user))
		if rec.Code != http.StatusOK {
			t.Fatalf("balance of %s: %d %s", user, rec.Code, rec.Body)
		}
		var got apishape.Balances
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		return got.Items
	}

	// The world's deposit paid partner 1000 under the default 30-day hold.
	if got := states("partner"); len(got) != 1 || got[0] != referral.CommissionPending {
		t.Fatalf("partner's commission states %v, want [pending]", got)
	}
	if got := balance(w.tenant, "partner"); len(got) != 1 || got[0] != (apishape.Balance{CurrencyID: "USD", Pending: 1000}) {
		t.Fatalf("partner's balance %+v", got)
	}

	// 31 days on, a run pays partner: the row is in_payout, the payout listed.
	s := postgres.NewStore(w.db)
	s.Now = func() time.Time { return time.Now().AddDate(0, 0, 31) }
	run, err := s.CreatePayouts(ctx, w.tenant, "USD", []uuid.UUID{w.ids["partner"]})
	if err != nil || len(run.Payouts) != 1 || run.Payouts[0].Amount != 1000 {
		t.Fatalf("run: %+v, %v", run, err)
	}
	if got := states("partner"); len(got) != 1 || got[0] != referral.CommissionInPayout {
		t.Fatalf("partner's commission states %v, want [in_payout]", got)
	}
	if got := balance(w.tenant, "partner"); len(got) != 1 || got[0] != (apishape.Balance{CurrencyID: "USD", InPayout: 1000}) {
		t.Fatalf("partner's balance %+v", got)
	}
	var payouts apishape.List[apishape.Payout]
	w.read(e, "/v1/affiliate/payouts?limit=5", "partner", &payouts)
	if payouts.Total != 1 || payouts.Items[0].ID != run.Payouts[0].ID || payouts.Items[0].Status != referral.PayoutPending {
		t.Fatalf("partner's payouts %+v", payouts)
	}
	w.read(e, "/v1/affiliate/payouts", "boss", &payouts)
	if payouts.Total != 0 {
		t.Fatalf("boss's payouts %+v", payouts)
	}

	// Another tenant: an affiliate of the same user id sees nothing of this tenant's money.
	other := w.tenant + "-other"
	if _, err := s.CreateAffiliate(ctx, referral.Affiliate{TenantID: other, UserID: "partner", Status: referral.AffiliateActive}); err != nil {
		t.Fatal(err)
	}
	if got := balance(other, "partner"); len(got) != 0 {
		t.Fatalf("the other tenant's partner has balance %+v", got)
	}
	rec := qrySendTo(e, "/v1/affiliate/payouts", qryPlayer(t, other, "partner"))
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &payouts) != nil || payouts.Total != 0 {
		t.Fatalf("the other tenant's partner's payouts: %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/v1/affiliate/balance", "/v1/affiliate/payouts"} {
		if rec := w.get(e, path, "pam"); rec.Code != http.StatusNotFound || qryErrorCode(rec) != referral.ENotAnAffiliate {
			t.Fatalf("%s as a player who is not an affiliate: %d %s", path, rec.Code, rec.Body)
		}
	}
}
