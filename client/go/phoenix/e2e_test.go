package phoenix_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/oapi-codegen/nullable"

	"github.com/phoenix-referral/phoenix/client/go/admin"
	"github.com/phoenix-referral/phoenix/client/go/phoenix"
	"github.com/phoenix-referral/phoenix/client/go/query"
)

// e2eEnv names the running gateways and the tokens of one fresh tenant (scripts/sdk.sh e2e
// starts a stack and sets them): an admin, the platform's service and two players.
var e2eEnv = []string{"PHOENIX_ADMIN_URL", "PHOENIX_QUERY_URL", "PHOENIX_ADMIN_TOKEN",
	"PHOENIX_SERVICE_TOKEN", "PHOENIX_ALICE_TOKEN", "PHOENIX_BOB_TOKEN"}

// TestE2ESeedFlow walks the quick start's seed flow with the Go client against running gateways:
// an admin creates a campaign and a promo code, a player creates a code, another applies it,
// the platform posts a deposit, the ledger lists both rewards and the referrer reads the stats
// on the Query Gateway. The error cases come back as *phoenix.Error with the contract's code.
func TestE2ESeedFlow(t *testing.T) {
	env := map[string]string{}
	for _, k := range e2eEnv {
		if env[k] = os.Getenv(k); env[k] == "" {
			t.Skipf("end-to-end test: %s is not set (run bash scripts/sdk.sh e2e)", k)
		}
	}
	ctx := context.Background()
	newAdmin := func(token string) *admin.ClientWithResponses {
		t.Helper()
		c, err := phoenix.NewAdminClient(env["PHOENIX_ADMIN_URL"], phoenix.WithToken(token))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	backOffice, platform := newAdmin(env["PHOENIX_ADMIN_TOKEN"]), newAdmin(env["PHOENIX_SERVICE_TOKEN"])
	alice, bob := newAdmin(env["PHOENIX_ALICE_TOKEN"]), newAdmin(env["PHOENIX_BOB_TOKEN"])
	aliceID, bobID := subject(t, env["PHOENIX_ALICE_TOKEN"]), subject(t, env["PHOENIX_BOB_TOKEN"])
	suffix := fmt.Sprintf("%06d", rand.IntN(1e6))

	// An admin creates the campaign.
	points := func(n int64) *admin.RewardsInput {
		return &admin.RewardsInput{Wallet: &[]admin.Wallet{{CurrencyID: "points", Amount: n}}}
	}
	campaign, err := backOffice.CreateCampaignWithResponse(ctx, nil, admin.CreateCampaignJSONRequestBody{
		Name:             "Welcome Bonus",
		QualifyingEvent:  "deposit.completed",
		QualifyingFilter: &admin.Filter{"amount": map[string]any{"gte": 1000}},
		ReferrerRewards:  points(100),
		RefereeRewards:   points(50),
	})
	if err != nil {
		t.Fatalf("create campaign: %v", err)
	}
	if campaign.JSON200 == nil || campaign.JSON200.Name != "Welcome Bonus" || !campaign.JSON200.Active {
		t.Fatalf("campaign = %+v", campaign.JSON200)
	}
	campaignID := campaign.JSON200.ID

	// The two shapes of POST /v1/referral/codes: a player's own code, an admin's promo code.
	var mine admin.CreateCodeJSONRequestBody
	if err := mine.FromPlayerCodeInput(admin.PlayerCodeInput{Code: ptr("alice-" + suffix), UsageLimit: ptr(10)}); err != nil {
		t.Fatal(err)
	}
	code, err := alice.CreateCodeWithResponse(ctx, nil, mine)
	if err != nil {
		t.Fatalf("create player code: %v", err)
	}
	if c := code.JSON200; c == nil || c.Code != "ALICE-"+suffix || c.OwnerUserID == nil || *c.OwnerUserID != aliceID || c.UsageLimit == nil || *c.UsageLimit != 10 {
		t.Fatalf("player code = %+v", code.JSON200)
	}
	var promoBody admin.CreateCodeJSONRequestBody
	if err := promoBody.FromAdminCodeInput(admin.AdminCodeInput{Code: ptr("SPRING-" + suffix), CampaignID: &campaignID,
		ExpiresAt: ptr(time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second))}); err != nil {
		t.Fatal(err)
	}
	promo, err := backOffice.CreateCodeWithResponse(ctx, nil, promoBody)
	if err != nil {
		t.Fatalf("create promo code: %v", err)
	}
	if p := promo.JSON200; p == nil || p.OwnerUserID != nil || p.CampaignID == nil || *p.CampaignID != campaignID || p.ExpiresAt == nil {
		t.Fatalf("promo code = %+v", promo.JSON200)
	}
	// PATCH tells "absent" from null: clearing expires_at leaves the bound campaign alone.
	patched, err := backOffice.PatchCodeWithResponse(ctx, promo.JSON200.ID, nil, admin.PatchCodeJSONRequestBody{
		ExpiresAt: nullable.NewNullNullable[time.Time](),
	})
	if err != nil {
		t.Fatalf("patch promo code: %v", err)
	}
	if p := patched.JSON200; p == nil || p.ExpiresAt != nil || p.CampaignID == nil || *p.CampaignID != campaignID {
		t.Fatalf("patched promo code = %+v", patched.JSON200)
	}

	// Bob applies Alice's code (case-insensitive).
	applied, err := bob.ApplyCodeWithResponse(ctx, nil, admin.ApplyCodeJSONRequestBody{
		Code: "Alice-" + suffix, Metadata: &map[string]any{"source": "poster_qr_code"},
	})
	if err != nil {
		t.Fatalf("apply code: %v", err)
	}
	if r := applied.JSON200; r == nil || r.ReferrerID == nil || *r.ReferrerID != aliceID || r.RefereeID != bobID || r.Status != admin.ReferralStatusPending {
		t.Fatalf("referral = %+v", applied.JSON200)
	}

	// Error case: a second apply is ALREADY_REFERRED, a typed *phoenix.Error.
	_, err = bob.ApplyCodeWithResponse(ctx, nil, admin.ApplyCodeJSONRequestBody{Code: "SPRING-" + suffix})
	var perr *phoenix.Error
	if !errors.As(err, &perr) || perr.StatusCode != 409 || perr.Code != phoenix.CodeAlreadyReferred || perr.RequestID == "" {
		t.Fatalf("second apply: err = %v, want 409 ALREADY_REFERRED with a request id", err)
	}
	// And a validation failure names its field.
	_, err = backOffice.CreateTierWithResponse(ctx, nil, admin.CreateTierJSONRequestBody{Name: "Gold", CommissionRate: 2})
	if !errors.As(err, &perr) || perr.Code != phoenix.CodeValidationFailed || perr.Fields["commission_rate"] == "" {
		t.Fatalf("bad tier: err = %v, want VALIDATION_FAILED on commission_rate", err)
	}

	// The platform reports Bob's deposit, once alone and once again in a batch (a duplicate).
	deposit := admin.EventInput{EventID: "dep_" + bobID + "_" + suffix, Type: "deposit.completed", UserID: bobID,
		Payload: &map[string]any{"amount": 5000, "currency": "EUR"}}
	outcome, err := platform.PostEventWithResponse(ctx, nil, deposit)
	if err != nil {
		t.Fatalf("post event: %v", err)
	}
	if o := outcome.JSON200; o == nil || o.Status != admin.EventOutcomeStatusProcessed || len(o.Rewards) != 2 {
		t.Fatalf("outcome = %+v", outcome.JSON200)
	}
	batch, err := platform.PostEventBatchWithResponse(ctx, nil, admin.PostEventBatchJSONRequestBody{
		Events: []admin.EventInput{deposit, {EventID: "login_" + suffix, Type: "login", UserID: bobID}},
	})
	if err != nil {
		t.Fatalf("post batch: %v", err)
	}
	if batch.JSON200 == nil || len(batch.JSON200.Results) != 2 {
		t.Fatalf("batch = %+v", batch.JSON200)
	}
	if first, err := batch.JSON200.Results[0].AsEventOutcome(); err != nil || first.Status != admin.EventOutcomeStatusDuplicate {
		t.Fatalf("batch result 0 = %+v, %v", first, err)
	}

	// The reward ledger lists both sides.
	rewards, err := backOffice.ListRewardsWithResponse(ctx, &admin.ListRewardsParams{EventID: &deposit.EventID})
	if err != nil {
		t.Fatalf("list rewards: %v", err)
	}
	got := map[string]int64{}
	for _, r := range rewards.JSON200.Items {
		got[fmt.Sprintf("%s/%s/%s", r.UserID, r.Role, r.CurrencyID)] = r.Amount
	}
	if want := map[string]int64{aliceID + "/referrer/points": 100, bobID + "/referee/points": 50}; fmt.Sprint(got) != fmt.Sprint(want) || rewards.JSON200.Total != 2 {
		t.Fatalf("rewards = %v (total %d), want %v", got, rewards.JSON200.Total, want)
	}

	// Alice reads her stats on the Query Gateway once the write is projected.
	reader, err := phoenix.NewQueryClient(env["PHOENIX_QUERY_URL"], phoenix.WithToken(env["PHOENIX_ALICE_TOKEN"]))
	if err != nil {
		t.Fatal(err)
	}
	all := query.MyReferralStatsParamsPeriodAll
	eventually(t, 5*time.Second, func() error {
		st, err := reader.MyReferralStatsWithResponse(ctx, &query.MyReferralStatsParams{Period: &all})
		if err != nil {
			return err
		}
		if st.JSON200.SuccessfulReferrals != 1 || st.JSON200.TotalReferrals != 1 ||
			len(st.JSON200.Rewards) != 1 || st.JSON200.Rewards[0].Amount != 100 {
			return fmt.Errorf("stats = %+v", st.JSON200)
		}
		return nil
	})
	codes, err := reader.MyCodesWithResponse(ctx, nil)
	if err != nil || len(codes.JSON200.Items) != 1 || codes.JSON200.Items[0].Uses != 1 {
		t.Fatalf("my codes = %+v, %v", codes, err)
	}

	// Error case on the Query Gateway: Alice is not an affiliate.
	_, err = reader.AffiliateMeWithResponse(ctx, nil)
	if !errors.As(err, &perr) || perr.StatusCode != 404 || perr.Code != phoenix.CodeNotAnAffiliate {
		t.Fatalf("affiliate me: err = %v, want 404 NOT_AN_AFFILIATE", err)
	}
}

func ptr[T any](v T) *T { return &v }

// subject returns a token's sub claim, the user id the gateways see.
func subject(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub == "" {
		t.Fatalf("token claims %s: %v", payload, err)
	}
	return claims.Sub
}

// eventually polls fn until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
