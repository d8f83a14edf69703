package adminapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// Register mounts the whole Admin Gateway surface on e.
func (a *API) Register(e *echo.Echo) {
	// The OpenAPI document (§8) defines each route's query parameters. It is embedded and
	// validated by the tests, so a failure here is a defect of the build, not of the environment.
	doc, err := web.LoadOpenAPI(OpenAPI)
	if err != nil {
		panic(err)
	}
	// Middleware is attached per route, not per group: an Echo group with middleware catches every
	// method under its prefix and would turn 405 into 404.
	v1 := e.Group("/v1")
	authn := auth.Authenticate(a.verifier)
	strict := web.StrictParams(doc)
	idem := web.Idempotency(a.store, auth.TenantOf, callerOf)
	// A request without a valid token is 401 whatever its parameters; parameters are checked
	// before the Idempotency-Key claims the request.
	guard := func(roles ...auth.Role) []echo.MiddlewareFunc {
		return []echo.MiddlewareFunc{authn, auth.Guard(roles...), strict, idem}
	}
	admin := guard(auth.Admins...)
	// A player's requests record the caller's address and device as risk signals (§12).
	player := append(guard(auth.RolePlayer), a.captureSignals)
	playerOrAdmin := append(guard(append([]auth.Role{auth.RolePlayer}, auth.Admins...)...), a.captureSignals)
	serviceOrAdmin := guard(append([]auth.Role{auth.RoleService}, auth.Admins...)...)
	// Deprecated aliases announce their successor before anything else runs, so replays and
	// errors carry the headers too.
	alias := func(successor string, mw []echo.MiddlewareFunc) []echo.MiddlewareFunc {
		return append([]echo.MiddlewareFunc{deprecation(successor)}, mw...)
	}

	// Campaigns (§4.1).
	v1.POST("/referral/campaigns", a.createCampaign, admin...)
	v1.GET("/referral/campaigns", a.listCampaigns, admin...)
	v1.GET("/referral/campaigns/:campaign_id", a.getCampaign, admin...)
	v1.PUT("/referral/campaigns/:campaign_id", a.replaceCampaign, admin...)
	v1.DELETE("/referral/campaigns/:campaign_id", a.deleteCampaign, admin...)

	// Codes (§4.2) and apply-code (§4.3).
	v1.POST("/referral/codes", a.createCode, playerOrAdmin...)
	v1.GET("/referral/codes", a.listCodes, admin...)
	v1.GET("/referral/codes/:code_id", a.getCode, admin...)
	v1.PUT("/referral/codes/:code_id", a.replaceCode, admin...)
	v1.PATCH("/referral/codes/:code_id", a.patchCode, admin...)
	v1.DELETE("/referral/codes/:code_id", a.deleteCode, admin...)
	v1.GET("/referral/codes/:code_id/stats", a.codeStats, admin...)
	v1.POST("/referral/apply-code", a.applyCode, player...)

	// Referrals, stats and leaderboard (§4.4).
	v1.GET("/referral/referrals", a.listReferrals, admin...)
	v1.GET("/referral/referrals/:referral_id", a.getReferral, admin...)
	v1.PUT("/referral/referrals/:referral_id/status", a.setReferralStatus, admin...)
	v1.GET("/referral/stats", a.referralStats, admin...)
	v1.GET("/referral/leaderboard", a.leaderboard, admin...)

	// Referral risk: signals, policy and review (§12).
	v1.POST("/referral/signals", a.postSignal, serviceOrAdmin...)
	v1.GET("/referral/risk-policy", a.getRiskPolicy, admin...)
	v1.PUT("/referral/risk-policy", a.putRiskPolicy, admin...)
	v1.PUT("/referral/referrals/:referral_id/review", a.reviewReferral, admin...)

	// Affiliates and their place in the hierarchy (§4.5, §4.8).
	v1.POST("/affiliates", a.createAffiliate, admin...)
	v1.GET("/affiliates", a.listAffiliates, admin...)
	v1.GET("/affiliates/:affiliate_id", a.getAffiliate, admin...)
	v1.PUT("/affiliates/:affiliate_id", a.replaceAffiliate, admin...)
	v1.DELETE("/affiliates/:affiliate_id", a.deleteAffiliate, admin...)
	v1.PUT("/affiliates/:affiliate_id/hierarchy", a.setUpline, admin...)
	v1.DELETE("/affiliates/:affiliate_id/hierarchy", a.clearUpline, admin...)
	v1.PUT("/affiliates/:affiliate_id/parent", a.setUpline, alias("/v1/affiliates/:affiliate_id/hierarchy", admin)...)
	v1.GET("/affiliates/:affiliate_id/downline", a.downline, admin...)

	// Tiers (§4.6).
	v1.POST("/affiliate/tiers", a.createTier, admin...)
	v1.GET("/affiliate/tiers", a.listTiers, admin...)
	v1.GET("/affiliate/tiers/:tier_id", a.getTier, admin...)
	v1.PUT("/affiliate/tiers/:tier_id", a.replaceTier, admin...)
	v1.DELETE("/affiliate/tiers/:tier_id", a.deleteTier, admin...)

	// Commission rules (§4.7).
	v1.POST("/affiliate/commission-rules", a.createRule, admin...)
	v1.GET("/affiliate/commission-rules", a.listRules, admin...)
	v1.GET("/affiliate/commission-rules/:rule_id", a.getRule, admin...)
	v1.PUT("/affiliate/commission-rules/:rule_id", a.replaceRule, admin...)
	v1.DELETE("/affiliate/commission-rules/:rule_id", a.deleteRule, admin...)

	// Hierarchy policy (§4.8) and its deprecated alias.
	v1.GET("/affiliate/hierarchy", a.getHierarchyPolicy, admin...)
	v1.PUT("/affiliate/hierarchy", a.putHierarchyPolicy, admin...)
	v1.GET("/affiliate/hierarchy-config", a.getHierarchyPolicy, alias("/v1/affiliate/hierarchy", admin)...)
	v1.PUT("/affiliate/hierarchy-config", a.putHierarchyPolicy, alias("/v1/affiliate/hierarchy", admin)...)

	// Events, ledgers and dry runs (§5).
	v1.POST("/events", a.postEvent, serviceOrAdmin...)
	v1.POST("/events/batch", a.postEventBatch, serviceOrAdmin...)
	v1.POST("/affiliate/simulate", a.simulateEvent, admin...)
	v1.GET("/referral/rewards", a.listRewards, admin...)
	v1.GET("/affiliate/commissions", a.listCommissions, admin...)

	// Reversals, hold and payouts (§10).
	v1.POST("/affiliate/commissions/:commission_id/reverse", a.reverseCommission, admin...)
	v1.GET("/affiliate/payout-policy", a.getPayoutPolicy, admin...)
	v1.PUT("/affiliate/payout-policy", a.putPayoutPolicy, admin...)
	v1.POST("/affiliate/payouts", a.createPayouts, admin...)
	v1.GET("/affiliate/payouts", a.listPayouts, admin...)
	v1.GET("/affiliate/payouts/:payout_id", a.getPayout, admin...)
	v1.PUT("/affiliate/payouts/:payout_id/status", a.setPayoutStatus, admin...)
	v1.GET("/affiliates/:affiliate_id/balance", a.affiliateBalance, admin...)
	// Impressions and the funnel (§15). A visitor (no token, ?tenant_id=) or the service token
	// records impressions; a visitor's request has no caller to scope an Idempotency-Key to, so
	// only the service's requests take one.
	v1.POST("/referral/impressions", a.recordImpression, auth.VisitorOr(a.verifier, auth.RoleService), strict, callersOnly(idem))
	v1.GET("/referral/funnel", a.funnel, admin...)

	// Outbound events: the feed, webhook endpoints and deliveries (§11). The answers that show
	// a secret are stored sealed for Idempotency-Key replays.
	sealedAdmin := admin
	if a.cfg.Sealer != nil {
		sealedAdmin = []echo.MiddlewareFunc{authn, auth.Guard(auth.Admins...), strict,
			web.Idempotency(sealedAnswers{IdempotencyStore: a.store, sealer: a.cfg.Sealer}, auth.TenantOf, callerOf)}
	}
	v1.GET("/outbox", a.outboxFeed, serviceOrAdmin...)
	v1.POST("/webhooks/endpoints", a.createEndpoint, sealedAdmin...)
	v1.GET("/webhooks/endpoints", a.listEndpoints, admin...)
	v1.GET("/webhooks/endpoints/:endpoint_id", a.getEndpoint, admin...)
	v1.PUT("/webhooks/endpoints/:endpoint_id", a.replaceEndpoint, admin...)
	v1.DELETE("/webhooks/endpoints/:endpoint_id", a.deleteEndpoint, admin...)
	v1.POST("/webhooks/endpoints/:endpoint_id/rotate-secret", a.rotateSecret, sealedAdmin...)
	v1.POST("/webhooks/endpoints/:endpoint_id/test", a.testEndpoint, admin...)
	v1.GET("/webhooks/endpoints/:endpoint_id/deliveries", a.listDeliveries, admin...)
	v1.POST("/webhooks/endpoints/:endpoint_id/replay", a.replayEndpoint, admin...)
	v1.POST("/webhooks/deliveries/:delivery_id/retry", a.retryDelivery, admin...)

	if err := web.ServeOpenAPI(e, OpenAPI); err != nil {
		panic(err)
	}
}

// deprecation marks an alias route: it behaves as its successor, a route template whose
// parameters are the alias's, and points clients at it with the request's own values
// (/v1/affiliates/<this id>/hierarchy).
func deprecation(successor string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			// The alias's template and the request's escaped path have the same segments, so a
			// value is copied as the client spelled it.
			values := map[string]string{}
			segs := strings.Split(c.Request().URL.EscapedPath(), "/")
			for i, name := range strings.Split(c.Path(), "/") {
				if strings.HasPrefix(name, ":") && i < len(segs) {
					values[name] = segs[i]
				}
			}
			link := strings.Split(successor, "/")
			for i, name := range link {
				if v, ok := values[name]; ok {
					link[i] = v
				}
			}
			c.Response().Header().Set("Deprecation", "true")
			c.Response().Header().Set("Link", "<"+strings.Join(link, "/")+`>; rel="successor-version"`)
			return next(c)
		}
	}
}

// callersOnly applies mw to requests with a token and lets a visitor's request pass without it.
func callersOnly(mw echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		withMW := mw(next)
		return func(c echo.Context) error {
			if auth.PrincipalOf(c).Role == "" {
				return next(c)
			}
			return withMW(c)
		}
	}
}

// noContent answers 204 with an empty body (DELETE).
func noContent(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
