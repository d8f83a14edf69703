package adminapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/auth"
)

// refCampaign is a campaign as the API answers it.
type refCampaign struct {
	ID               string          `json:"id"`
	TenantID         string          `json:"tenant_id"`
	Name             string          `json:"name"`
	QualifyingEvent  string          `json:"qualifying_event"`
	QualifyingFilter json.RawMessage `json:"qualifying_filter"`
	ReferrerRewards  refRewards      `json:"referrer_rewards"`
	RefereeRewards   refRewards      `json:"referee_rewards"`
	Active           bool            `json:"active"`
	StartsAt         *string         `json:"starts_at"`
	EndsAt           *string         `json:"ends_at"`
	CreatedAt        string          `json:"created_at"`
	UpdatedAt        string          `json:"updated_at"`
}

type refRewards struct {
	Wallet []refWallet `json:"wallet"`
}

type refWallet struct {
	CurrencyID string `json:"currency_id"`
	Amount     int64  `json:"amount"`
}

// refCode is a code as the API answers it.
type refCode struct {
	ID          string  `json:"id"`
	TenantID    string  `json:"tenant_id"`
	Code        string  `json:"code"`
	OwnerUserID *string `json:"owner_user_id"`
	CampaignID  *string `json:"campaign_id"`
	UsageLimit  *int    `json:"usage_limit"`
	Uses        int     `json:"uses"`
	Active      bool    `json:"active"`
	ExpiresAt   *string `json:"expires_at"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
	ReferralURL *string `json:"referral_url"`
}

// refReferral is a referral as the API answers it (apply-code adds rewards).
type refReferral struct {
	ID          string            `json:"id"`
	TenantID    string            `json:"tenant_id"`
	Code        string            `json:"code"`
	CodeID      string            `json:"code_id"`
	CampaignID  *string           `json:"campaign_id"`
	ReferrerID  *string           `json:"referrer_id"`
	RefereeID   string            `json:"referee_id"`
	Status      string            `json:"status"`
	Reason      *string           `json:"reason"`
	Metadata    json.RawMessage   `json:"metadata"`
	CreatedAt   string            `json:"created_at"`
	UpdatedAt   string            `json:"updated_at"`
	ConvertedAt *string           `json:"converted_at"`
	VerifiedAt  *string           `json:"verified_at"`
	RejectedAt  *string           `json:"rejected_at"`
	Rewards     []json.RawMessage `json:"rewards"`
}

type refList[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
}

// refCampaignBody is a valid campaign body.
func refCampaignBody() map[string]any {
	return map[string]any{
		"name":              "Welcome Bonus Campaign",
		"qualifying_event":  "deposit.completed",
		"qualifying_filter": map[string]any{"amount": map[string]any{"gte": 1000}},
		"referrer_rewards":  map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 100}}},
		"referee_rewards":   map[string]any{"wallet": []any{map[string]any{"currency_id": "points", "amount": 50}}},
		"active":            true,
		"starts_at":         "2026-01-01T00:00:00Z",
		"ends_at":           "2027-01-01T00:00:00.123456Z",
	}
}

func refCreateCampaign(t testing.TB, e *env) refCampaign {
	t.Helper()
	var c refCampaign
	e.do(http.MethodPost, "/v1/referral/campaigns", e.admin(), refCampaignBody()).must(t, 200, &c)
	return c
}

// refAdminCode creates a code as the admin with body.
func refAdminCode(t testing.TB, e *env, body map[string]any) refCode {
	t.Helper()
	var c refCode
	e.do(http.MethodPost, "/v1/referral/codes", e.admin(), body).must(t, 200, &c)
	return c
}

// refPlayerCode creates a code owned by player.
func refPlayerCode(t testing.TB, e *env, player string, body map[string]any) refCode {
	t.Helper()
	var c refCode
	e.do(http.MethodPost, "/v1/referral/codes", e.token(auth.RolePlayer, player), body).must(t, 200, &c)
	return c
}

func refApply(e *env, player, code string) *resp {
	return e.do(http.MethodPost, "/v1/referral/apply-code", e.token(auth.RolePlayer, player), map[string]any{"code": code})
}

// refExec runs SQL against the test database (setting up states the API cannot reach directly).
func refExec(t testing.TB, e *env, q string, args ...any) {
	t.Helper()
	if _, err := e.store.DB().ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("exec %s: %v", q, err)
	}
}

func refAttemptLimit(max int) envOption {
	return func(c *adminapi.Config) { c.Attempts.Max = max }
}

func refURLTemplate(tpl string) envOption {
	return func(c *adminapi.Config) { c.ReferralURLTemplate = tpl }
}

func refStr(s string) *string { return &s }
