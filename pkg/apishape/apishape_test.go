package apishape_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/referral"
)

func TestFormatTime(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600))
	if got := apishape.FormatTime(ts); got != "2026-03-04T04:06:07Z" {
		t.Errorf("FormatTime = %s", got)
	}
}

func TestTimeJSON(t *testing.T) {
	var got apishape.Time
	if err := json.Unmarshal([]byte(`"2026-01-02T03:04:05.1234567+01:00"`), &got); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if string(b) != `"2026-01-02T02:04:05.123456Z"` {
		t.Errorf("round trip = %s", b)
	}
	if err := json.Unmarshal([]byte(`"2026-13-01T00:00:00Z"`), &got); err == nil {
		t.Error("month 13 accepted")
	}
	if apishape.TimePtr(nil) != nil {
		t.Error("TimePtr(nil) is not nil")
	}
}

// TestRateJSON: a rate is written as the shortest exact JSON number and read back only from a
// JSON number from 0 to 1 with at most six decimals; anything else is VALIDATION_FAILED.
func TestRateJSON(t *testing.T) {
	for _, tt := range []struct {
		rate referral.Rate
		want string
	}{{0, "0"}, {50000, "0.05"}, {123456, "0.123456"}, {1, "0.000001"}, {referral.RateScale, "1"}} {
		b, err := json.Marshal(apishape.Rate(tt.rate))
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%d) = %s, %v; want %s", tt.rate, b, err, tt.want)
		}
		var back apishape.Rate
		if err := json.Unmarshal(b, &back); err != nil || referral.Rate(back) != tt.rate {
			t.Errorf("Unmarshal(%s) = %d, %v", b, back, err)
		}
	}
	for in, want := range map[string]referral.Rate{"5e-2": 50000, "0.100000": 100000, "1.0": referral.RateScale} {
		var r apishape.Rate
		if err := json.Unmarshal([]byte(in), &r); err != nil || referral.Rate(r) != want {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d", in, r, err, want)
		}
	}
	for _, in := range []string{`"0.1"`, `null`, `true`, `{}`, `[0.1]`, `1.5`, `-0.1`, `0.0000001`, `1e400`} {
		var r apishape.Rate
		err := r.UnmarshalJSON([]byte(in))
		var de *referral.Error
		if !errors.As(err, &de) || de.Code != referral.EValidation {
			t.Errorf("UnmarshalJSON(%s) = %v, want VALIDATION_FAILED", in, err)
		}
	}
	var rule struct {
		CustomRate *apishape.Rate `json:"custom_rate"`
	}
	if err := json.Unmarshal([]byte(`{"custom_rate":null}`), &rule); err != nil || rule.CustomRate != nil {
		t.Errorf("null optional rate: %v, %v", rule.CustomRate, err)
	}
}

func TestSliceIsNeverNil(t *testing.T) {
	got := apishape.Slice([]referral.Reward(nil), apishape.NewReward)
	if b, _ := json.Marshal(got); string(b) != "[]" {
		t.Errorf("empty list renders %s", b)
	}
}

// TestStoredDocuments pins, byte for byte, the JSON of the objects the read model stores in
// Redis. The expected texts are what pkg/cache's own document types wrote before they were
// replaced by this package, so documents stored then decode and render unchanged. A change here
// changes stored documents: the read model must then be rebuilt (see pkg/projector) before the
// gateways read the new form.
func TestStoredDocuments(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	t1 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))
	id := func(n int) uuid.UUID { return uuid.MustParse(fmt.Sprintf("00000000-0000-0000-0000-%012d", n)) }
	id2, id3 := id(2), id(3)
	alice, five, reason := "alice", 5, "fraud"

	camp := referral.Campaign{ID: id(1), TenantID: "t1", Name: "Spring", QualifyingEvent: "deposit",
		ReferrerRewards: []referral.Wallet{{CurrencyID: "points", Amount: 100}}, Active: true,
		StartsAt: &t0, CreatedAt: t0, UpdatedAt: t1}
	code := referral.Code{ID: id(1), TenantID: "t1", Code: "ABC", OwnerUserID: &alice, CampaignID: &id2,
		UsageLimit: &five, Uses: 2, Active: true, ExpiresAt: &t1, Source: referral.CodeSourcePlayer, CreatedAt: t0, UpdatedAt: t1}
	ref := referral.Referral{ID: id(1), TenantID: "t1", Code: "ABC", CodeID: id2, ReferrerID: &alice, RefereeID: "bob",
		Status: referral.StatusRejected, Reason: &reason, CreatedAt: t0, UpdatedAt: t1, ConvertedAt: &t0, RejectedAt: &t1}
	refMeta := ref
	refMeta.Metadata = json.RawMessage(`{"src":"ad"}`)
	refMeta.CampaignID = &id3
	refMeta.ImpressionID = &id2
	rw := referral.Reward{ID: id(1), UserID: "alice", Role: referral.RoleReferrer, CampaignID: id2, ReferralID: id3,
		EventID: "e1", CurrencyID: "points", Amount: 100, CreatedAt: t0}
	cm := referral.Commission{ID: id(1), AffiliateID: id2, UserID: "alice", Level: 1, SourceUserID: "bob", EventID: "e1",
		RuleID: id3, TierID: &id2, Rate: 50000, BaseAmount: 1000, Amount: 50, CurrencyID: "EUR", CreatedAt: t0,
		AvailableAt: t1, State: referral.CommissionPending}
	cmFull := cm
	cmFull.TierID, cmFull.Rate = nil, referral.RateScale
	aff := referral.Affiliate{ID: id(1), TenantID: "t1", UserID: "alice", AffiliateCode: "ALICE", CodeID: id2,
		Status: referral.AffiliateActive, ParentAffiliateID: &id3, Ancestors: []uuid.UUID{id3}, TierOverrideID: &id2,
		ConvertedReferrals: 3, RefereeRevenue: 4000, CreatedAt: t0, UpdatedAt: t1}
	tier := referral.Tier{ID: id(1), TenantID: "t1", Name: "Gold", CommissionRate: 123456, MinReferrals: 5,
		MinRefereeRevenue: 1000, Priority: 2, CreatedAt: t0, UpdatedAt: t1}

	for _, tt := range []struct {
		name string
		doc  any
		want string
	}{
		{"campaigns", []apishape.PublicCampaign{apishape.NewPublicCampaign(camp)},
			`[{"id":"00000000-0000-0000-0000-000000000001","name":"Spring","qualifying_event":"deposit","referrer_rewards":{"wallet":[{"currency_id":"points","amount":100}]},"referee_rewards":{"wallet":[]},"starts_at":"2026-03-01T12:00:00.123456Z","ends_at":null}]`},
		{"code", apishape.NewCode(code),
			`{"id":"00000000-0000-0000-0000-000000000001","tenant_id":"t1","code":"ABC","owner_user_id":"alice","campaign_id":"00000000-0000-0000-0000-000000000002","usage_limit":5,"uses":2,"active":true,"expires_at":"2026-03-31T23:00:00Z","created_at":"2026-03-01T12:00:00.123456Z","updated_at":"2026-03-31T23:00:00Z"}`},
		{"code without options", apishape.NewCode(referral.Code{ID: id(1), TenantID: "t1", Code: "XYZ", CreatedAt: t0, UpdatedAt: t0}),
			`{"id":"00000000-0000-0000-0000-000000000001","tenant_id":"t1","code":"XYZ","owner_user_id":null,"campaign_id":null,"usage_limit":null,"uses":0,"active":false,"expires_at":null,"created_at":"2026-03-01T12:00:00.123456Z","updated_at":"2026-03-01T12:00:00.123456Z"}`},
		{"referral", apishape.NewReferral(ref),
			`{"id":"00000000-0000-0000-0000-000000000001","tenant_id":"t1","code":"ABC","code_id":"00000000-0000-0000-0000-000000000002","campaign_id":null,"referrer_id":"alice","referee_id":"bob","status":"rejected","reason":"fraud","metadata":{},"created_at":"2026-03-01T12:00:00.123456Z","updated_at":"2026-03-31T23:00:00Z","converted_at":"2026-03-01T12:00:00.123456Z","verified_at":null,"rejected_at":"2026-03-31T23:00:00Z","impression_id":null}`},
		{"referral with metadata", apishape.NewReferral(refMeta),
			`{"id":"00000000-0000-0000-0000-000000000001","tenant_id":"t1","code":"ABC","code_id":"00000000-0000-0000-0000-000000000002","campaign_id":"00000000-0000-0000-0000-000000000003","referrer_id":"alice","referee_id":"bob","status":"rejected","reason":"fraud","metadata":{"src":"ad"},"created_at":"2026-03-01T12:00:00.123456Z","updated_at":"2026-03-31T23:00:00Z","converted_at":"2026-03-01T12:00:00.123456Z","verified_at":null,"rejected_at":"2026-03-31T23:00:00Z","impression_id":"00000000-0000-0000-0000-000000000002"}`},
		{"reward", apishape.NewReward(rw),
			`{"id":"00000000-0000-0000-0000-000000000001","user_id":"alice","role":"referrer","campaign_id":"00000000-0000-0000-0000-000000000002","referral_id":"00000000-0000-0000-0000-000000000003","event_id":"e1","currency_id":"points","amount":100,"created_at":"2026-03-01T12:00:00.123456Z","reverses_id":null}`},
		{"commission", apishape.NewCommission(cm),
			`{"id":"00000000-0000-0000-0000-000000000001","affiliate_id":"00000000-0000-0000-0000-000000000002","user_id":"alice","level":1,"source_user_id":"bob","event_id":"e1","rule_id":"00000000-0000-0000-0000-000000000003","tier_id":"00000000-0000-0000-0000-000000000002","rate":0.05,"base_amount":1000,"amount":50,"currency_id":"EUR","created_at":"2026-03-01T12:00:00.123456Z","reverses_id":null,"reason":null,"available_at":"2026-03-31T23:00:00Z","state":"pending"}`},
		{"commission at rate 1", apishape.NewCommission(cmFull),
			`{"id":"00000000-0000-0000-0000-000000000001","affiliate_id":"00000000-0000-0000-0000-000000000002","user_id":"alice","level":1,"source_user_id":"bob","event_id":"e1","rule_id":"00000000-0000-0000-0000-000000000003","tier_id":null,"rate":1,"base_amount":1000,"amount":50,"currency_id":"EUR","created_at":"2026-03-01T12:00:00.123456Z","reverses_id":null,"reason":null,"available_at":"2026-03-31T23:00:00Z","state":"pending"}`},
		{"affiliate", apishape.NewAffiliate(aff),
			`{"id":"00000000-0000-0000-0000-000000000001","tenant_id":"t1","user_id":"alice","affiliate_code":"ALICE","status":"active","parent_affiliate_id":"00000000-0000-0000-0000-000000000003","tier_id":null,"tier_override_id":"00000000-0000-0000-0000-000000000002","converted_referrals":3,"referee_revenue":4000,"created_at":"2026-03-01T12:00:00.123456Z","updated_at":"2026-03-31T23:00:00Z"}`},
		{"tiers", []apishape.Tier{apishape.NewTier(tier)},
			`[{"id":"00000000-0000-0000-0000-000000000001","tenant_id":"t1","name":"Gold","commission_rate":0.123456,"min_referrals":5,"min_referee_revenue":1000,"priority":2,"created_at":"2026-03-01T12:00:00.123456Z","updated_at":"2026-03-31T23:00:00Z"}]`},
		{"downline member", apishape.NewDownlineAffiliate(aff, 2),
			`{"id":"00000000-0000-0000-0000-000000000001","tenant_id":"t1","user_id":"alice","affiliate_code":"ALICE","status":"active","parent_affiliate_id":"00000000-0000-0000-0000-000000000003","tier_id":null,"tier_override_id":"00000000-0000-0000-0000-000000000002","converted_referrals":3,"referee_revenue":4000,"created_at":"2026-03-01T12:00:00.123456Z","updated_at":"2026-03-31T23:00:00Z","level":2}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Fatalf("stored form changed:\n got %s\nwant %s", b, tt.want)
			}
			// What the gateway decodes from Redis renders the same bytes again.
			back := reflectNew(tt.doc)
			if err := json.Unmarshal(b, back); err != nil {
				t.Fatal(err)
			}
			if again, _ := json.Marshal(back); string(again) != tt.want {
				t.Fatalf("decoded document renders\n%s", again)
			}
		})
	}
	// A stored tier converts back to the domain tier it came from (the tier rules read it).
	var back []apishape.Tier
	if err := json.Unmarshal([]byte(`[{"id":"00000000-0000-0000-0000-000000000001","tenant_id":"t1","name":"Gold","commission_rate":0.123456,"min_referrals":5,"min_referee_revenue":1000,"priority":2,"created_at":"2026-03-01T12:00:00.123456Z","updated_at":"2026-03-31T23:00:00Z"}]`), &back); err != nil {
		t.Fatal(err)
	}
	tier.CreatedAt, tier.UpdatedAt = t0.Truncate(time.Microsecond), t1.UTC()
	if got := back[0].Domain(); got != tier {
		t.Errorf("Domain() = %+v, want %+v", got, tier)
	}
}

// reflectNew returns a pointer to a new zero value of v's type.
func reflectNew(v any) any { return reflect.New(reflect.TypeOf(v)).Interface() }
