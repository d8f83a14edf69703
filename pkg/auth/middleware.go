package auth

import (
	"errors"
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
// A refusal is 401 UNAUTHORIZED saying why, with the RFC 6750 challenge: "Bearer" alone when no
// bearer token was sent (§3.1 asks for no error code then), else error="invalid_token" and the
// reason as error_description.
func Authenticate(v *Verifier) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, err := v.Verify(bearerToken(c.Request().Header.Get(echo.HeaderAuthorization)))
			if err != nil {
				challenge := "Bearer"
				var de *referral.Error
				if !errors.Is(err, errNoToken) && errors.As(err, &de) {
					challenge = `Bearer error="invalid_token", error_description="` + de.Message + `"`
				}
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
				return err
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

// bearerToken returns the token of an Authorization header of the Bearer scheme (its name is
// case-insensitive), "" for any other header.
func bearerToken(h string) string {
	const scheme = "Bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return ""
	}
	return strings.TrimSpace(h[len(scheme):])
}

// Guard allows only the given roles (403 otherwise) and resolves the request's tenant.
// It must run after Authenticate.
func Guard(roles ...Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, ok := c.Get(principalKey).(Principal)
			if !ok {
				return errNoToken
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

// VisitorOr admits the callers of the given roles when the request carries an Authorization
// header (Authenticate then Guard), and otherwise a visitor who names the tenant with
// ?tenant_id= (SPEC §2's two exceptions: a visitor's code validation and impression). A visitor
// has no principal: PrincipalOf answers the zero Principal.
func VisitorOr(v *Verifier, roles ...Role) echo.MiddlewareFunc {
	authn, guard := Authenticate(v), Guard(roles...)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		caller := authn(guard(next))
		return func(c echo.Context) error {
			if c.Request().Header.Get(echo.HeaderAuthorization) != "" {
				return caller(c)
			}
			t := c.QueryParam("tenant_id")
			if t == "" {
				return referral.Errorf(referral.ETenantRequired, "tenant_id query parameter is required without a token")
			}
			if !ValidTenantID(t) {
				return referral.Invalid("tenant_id", "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
			}
			SetTenant(c, t)
			return next(c)
		}
	}
}
