package queryapi

import (
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// Register mounts the whole Query Gateway surface on e (SPEC §6). Anything else — other paths,
// other methods, every Admin Gateway write path — answers 404 NOT_FOUND.
func (a *API) Register(e *echo.Echo) {
	// Middleware is attached per route, not per group: an Echo group with middleware would
	// answer every method under its prefix.
	// The OpenAPI document defines each route's query parameters; they are checked after the
	// token (a request without one is 401 whatever it asks) and before the in-process cache
	// builds its key. The document is embedded and validated by the tests.
	doc, err := web.LoadOpenAPI(OpenAPI)
	if err != nil {
		panic(err)
	}
	strict := web.StrictParams(doc)
	player := []echo.MiddlewareFunc{auth.Authenticate(a.verifier), auth.Guard(auth.RolePlayer), strict, a.cached}

	e.GET("/v1/referral/campaigns", a.campaigns, player...)
	e.GET("/v1/referral/codes", a.codes, player...)
	// Validation also serves visitors without a token (?tenant_id=); it counts failed attempts,
	// so it is never answered from the in-process cache.
	e.GET("/v1/referral/validate/:code", a.validate, auth.VisitorOr(a.verifier, auth.RolePlayer), strict)
	e.GET("/v1/referral/me", a.me, player...)
	e.GET("/v1/referral/referrals", a.referrals, player...)
	e.GET("/v1/referral/stats", a.stats, player...)
	e.GET("/v1/referral/rewards", a.rewards, player...)
	e.GET("/v1/referral/leaderboard", a.leaderboard, player...)

	e.GET("/v1/affiliate/me", a.affiliateMe, player...)
	e.GET("/v1/affiliate/downline", a.downline, player...)
	e.GET("/v1/affiliate/commissions", a.commissions, player...)
	e.GET("/v1/affiliate/stats", a.affiliateStats, player...)
	e.GET("/v1/affiliate/tiers", a.tiers, player...)
	e.GET("/v1/affiliate/balance", a.balance, player...)
	e.GET("/v1/affiliate/payouts", a.payouts, player...)
}
