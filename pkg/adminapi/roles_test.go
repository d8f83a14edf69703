package adminapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/auth"
)

// TestRoleRouteMatrix sends every Admin Gateway route each role's token and checks the role
// check (403 FORBIDDEN for a role the route does not admit) and the tenant check (403 for an
// admin of another tenant naming this one) — before any body or id is looked at.
func TestRoleRouteMatrix(t *testing.T) {
	e := newEnv(t)
	// Which roles each route admits (SPEC §2): player routes, event ingestion, the rest admin-only.
	allowed := func(method, path string) []auth.Role {
		switch {
		case method == http.MethodPost && path == "/v1/referral/codes":
			return append([]auth.Role{auth.RolePlayer}, auth.Admins...)
		case method == http.MethodPost && path == "/v1/referral/apply-code":
			return []auth.Role{auth.RolePlayer}
		case method == http.MethodPost && (path == "/v1/events" || path == "/v1/events/batch" || path == "/v1/referral/signals"):
			return append([]auth.Role{auth.RoleService}, auth.Admins...)
		case method == http.MethodGet && path == "/v1/outbox":
			return append([]auth.Role{auth.RoleService}, auth.Admins...)
		case method == http.MethodPost && path == "/v1/referral/impressions":
			return []auth.Role{auth.RoleService}
		}
		return auth.Admins
	}
	var routes []*echo.Route
	for _, r := range e.srv.Config.Handler.(*echo.Echo).Routes() {
		if strings.HasPrefix(r.Path, "/v1/") && r.Method != echo.RouteNotFound {
			routes = append(routes, r)
		}
	}
	if len(routes) < 40 {
		t.Fatalf("only %d /v1 routes registered", len(routes))
	}
	id := "00000000-0000-4000-8000-000000000000"
	every := []auth.Role{auth.RolePlayer, auth.RoleService, auth.RoleTenantAdmin, auth.RoleClientAdmin, auth.RoleSuperAdmin}
	for _, r := range routes {
		path := strings.NewReplacer(":campaign_id", id, ":code_id", id, ":referral_id", id, ":affiliate_id", id,
			":tier_id", id, ":rule_id", id, ":endpoint_id", id, ":delivery_id", id, ":commission_id", id,
			":payout_id", id).Replace(r.Path)
		var body any
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			body = "{}"
		}
		for _, role := range every {
			p := auth.Principal{UserID: "u_matrix", Role: role, TenantID: e.tenant}
			res := e.do(r.Method, path+"?tenant_id="+e.tenant, e.tokenFor(p), body)
			admitted := false
			for _, a := range allowed(r.Method, r.Path) {
				admitted = admitted || a == role
			}
			if !admitted {
				res.fail(t, http.StatusForbidden, "FORBIDDEN")
			} else if res.Status == http.StatusForbidden || res.Status == http.StatusUnauthorized {
				t.Errorf("%s %s as %s: %d %s", r.Method, r.Path, role, res.Status, res.Body)
			}
		}
		// An admin of another tenant may not name this one.
		other := auth.Principal{UserID: "u_matrix", Role: auth.RoleTenantAdmin, TenantID: "other-" + e.tenant}
		e.do(r.Method, path+"?tenant_id="+e.tenant, e.tokenFor(other), body).fail(t, http.StatusForbidden, "FORBIDDEN")
		// No token at all: 401, except on the visitor's impression route (SPEC §2), which asks
		// for the tenant instead.
		if r.Path == "/v1/referral/impressions" {
			e.do(r.Method, path, "", body).fail(t, http.StatusBadRequest, "TENANT_REQUIRED")
			continue
		}
		e.do(r.Method, path, "", body).fail(t, http.StatusUnauthorized, "UNAUTHORIZED")
	}
}
