package auth

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

const (
	principalKey = "phoenix.principal"
	tenantKey    = "phoenix.tenant"
)

// Authenticate verifies the bearer token of every request it wraps and stores the principal.
func Authenticate(v *Verifier) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Request().Header.Get(echo.HeaderAuthorization)
			raw, ok := strings.CutPrefix(h, "Bearer ")
			if !ok {
				raw, ok = strings.CutPrefix(h, "bearer ")
			}
			if !ok {
				return errUnauthorized
			}
			p, err := v.Verify(strings.TrimSpace(raw))
			if err != nil {
				return err
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

// Guard allows only the given roles (403 otherwise) and resolves the request's tenant.
// It must run after Authenticate.
func Guard(roles ...Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok := c.Get(principalKey).(Principal)
			if !ok {
				return errUnauthorized
			}
			if !slices.Contains(roles, p.Role) {
				return referral.Errorf(referral.EForbidden, "role %q may not use this route", p.Role)
			}
			tenant, err := ResolveTenant(p, c.QueryParam("tenant_id"))
			if err != nil {
				return err
			}
			c.Set(tenantKey, tenant)
			return next(c)
		}
	}
}

// PrincipalOf returns the verified caller of a request that passed Authenticate.
func PrincipalOf(c echo.Context) Principal {
	p, _ := c.Get(principalKey).(Principal)
	return p
}

// TenantOf returns the tenant Guard resolved for the request.
func TenantOf(c echo.Context) string {
	t, _ := c.Get(tenantKey).(string)
	return t
}

// SetTenant records the tenant of a request that is not guarded by a token (a visitor's
// code validation with ?tenant_id=).
func SetTenant(c echo.Context, tenant string) { c.Set(tenantKey, tenant) }
