package adminapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
)

// affObj is an affiliate (or downline entry) as the API returns it.
type affObj struct {
	ID                 string  `json:"id"`
	TenantID           string  `json:"tenant_id"`
	UserID             string  `json:"user_id"`
	AffiliateCode      string  `json:"affiliate_code"`
	Status             string  `json:"status"`
	ParentAffiliateID  *string `json:"parent_affiliate_id"`
	TierID             *string `json:"tier_id"`
	TierOverrideID     *string `json:"tier_override_id"`
	ConvertedReferrals int64   `json:"converted_referrals"`
	RefereeRevenue     int64   `json:"referee_revenue"`
	CreatedAt          string  `json:"created_at"`
	UpdatedAt          string  `json:"updated_at"`
	Level              int     `json:"level"`
}

type affList struct {
	Items  []affObj `json:"items"`
	Total  int      `json:"total"`
	Limit  int      `json:"limit"`
	Offset int      `json:"offset"`
}

// affNew creates an affiliate for user and returns it.
func affNew(t *testing.T, e *env, user string) affObj {
	t.Helper()
	var a affObj
	e.do(http.MethodPost, "/v1/affiliates", e.admin(), map[string]any{"user_id": user, "status": "active"}).must(t, 200, &a)
	return a
}

// affMove puts child under parent (parent "" = root) and returns the affiliate.
func affMove(t *testing.T, e *env, child, parent string) affObj {
	t.Helper()
	var body map[string]any
	if parent == "" {
		body = map[string]any{"parent_affiliate_id": nil}
	} else {
		body = map[string]any{"parent_affiliate_id": parent}
	}
	var a affObj
	e.do(http.MethodPut, "/v1/affiliates/"+child+"/hierarchy", e.admin(), body).must(t, 200, &a)
	return a
}

// affTier creates a tier and returns its id.
func affTier(t *testing.T, e *env, body map[string]any) string {
	t.Helper()
	var out struct {
		ID string `json:"id"`
	}
	e.do(http.MethodPost, "/v1/affiliate/tiers", e.admin(), body).must(t, 200, &out)
	return out.ID
}

// affReferral stores a referral made by referrer with the given status, as apply-code and the
// events engine would leave it.
func affReferral(t *testing.T, e *env, referrer, status string) {
	t.Helper()
	ctx := context.Background()
	db := e.store.DB()
	now := time.Now().UTC()
	codeID := uuid.New()
	if _, err := db.ExecContext(ctx, `
		INSERT INTO referral_codes (id, tenant_id, code, owner_user_id, active, source, created_at, updated_at)
		VALUES ($1, $2, $3, $4, true, 'player', $5, $5)`, codeID, e.tenant, "R"+uuid.NewString()[:8], referrer, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `
		INSERT INTO referrals (id, tenant_id, code_id, code, referrer_id, referee_id, status, created_at, updated_at)
		VALUES ($1, $2, $3, 'X', $4, $5, $6, $7, $7)`, uuid.New(), e.tenant, codeID, referrer, "ref_"+uuid.NewString(), status, now); err != nil {
		t.Fatal(err)
	}
}

// affCheckTree asserts the tenant's hierarchy is consistent: every live affiliate's path is its
// live parent's path plus the parent (empty for a root), so parent pointers form no cycle.
func affCheckTree(t *testing.T, e *env) {
	t.Helper()
	const q = `
		SELECT count(*) FROM affiliates c LEFT JOIN affiliates p ON p.id = c.parent_affiliate_id
		WHERE c.tenant_id = $1 AND c.deleted_at IS NULL AND NOT coalesce(
		    (c.parent_affiliate_id IS NULL AND c.ancestors = '{}')
		    OR (p.deleted_at IS NULL AND p.tenant_id = c.tenant_id AND c.ancestors = p.ancestors || p.id), false)`
	var bad int
	if err := e.store.DB().GetContext(context.Background(), &bad, q, e.tenant); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Fatalf("%d affiliates have a path inconsistent with their parent", bad)
	}
}
