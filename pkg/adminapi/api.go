// Package adminapi is the Admin Gateway's HTTP surface: routes.go lists every route; handlers
// decode request DTOs, call the domain's services, and encode the response shapes of package
// apishape.
package adminapi

import (
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/outbox"
	"github.com/phoenix-referral/phoenix/pkg/referral"
	"github.com/phoenix-referral/phoenix/pkg/web"
	"github.com/phoenix-referral/phoenix/pkg/webhook"
)

// Config is what the handlers need beyond the services.
type Config struct {
	// ReferralURLTemplate renders "referral_url" on code objects when set ({code} is replaced).
	ReferralURLTemplate string
	// Attempts limits failed apply-code attempts per tenant and player.
	Attempts referral.AttemptLimit
	// Sealer seals webhook endpoint secrets (PHOENIX_SECRET_KEY); nil: endpoints cannot be
	// created or rotated (UNAVAILABLE).
	Sealer *webhook.Sealer
	// AllowPrivateWebhooks accepts http endpoint URLs (PHOENIX_WEBHOOK_ALLOW_PRIVATE).
	AllowPrivateWebhooks bool
	// AddressHashKey keys referral.AddressHash, the only form in which client addresses are
	// stored (the risk signals' addresses, §12, and visitors' impressions, §15).
	AddressHashKey []byte
	// Visitors limits visitors' impressions of invalid codes per client address across every
	// tenant, in memory (the Query Gateway's anonymous validation counts the same way; Max 0
	// disables it); VisitorAddresses bounds the addresses it tracks (default 50,000).
	Visitors         referral.AttemptLimit
	VisitorAddresses int
}

// Services is everything the Admin Gateway asks of storage: the domain's services and the
// Idempotency-Key store (pkg/postgres's Store implements them all).
type Services interface {
	referral.CampaignService
	referral.CodeService
	referral.ReferralService
	referral.AttemptService
	referral.AffiliateService
	referral.HierarchyService
	referral.TierService
	referral.CommissionRuleService
	referral.EventService
	referral.LedgerService
	outbox.FeedService
	outbox.EndpointService
	referral.ReversalService
	referral.PayoutService
	referral.ImpressionService
	referral.RiskService
	web.IdempotencyStore
}

// API holds the Admin Gateway's dependencies.
type API struct {
	store    Services
	verifier *auth.Verifier
	cfg      Config
	log      *slog.Logger
	metrics  *moneyMetrics
	risk     riskMetrics
	visitors *web.VisitorLimit
	// impressions counts recorded impressions by validity.
	impressions *prometheus.CounterVec
	// Now is the clock (tests may replace it); received events default to it.
	Now func() time.Time
}

// New returns the Admin Gateway API over store.
func New(store Services, verifier *auth.Verifier, cfg Config, log *slog.Logger) *API {
	if cfg.VisitorAddresses <= 0 {
		cfg.VisitorAddresses = 50_000
	}
	return &API{store: store, verifier: verifier, cfg: cfg, log: log, metrics: newMoneyMetrics(), risk: newRiskMetrics(), Now: time.Now,
		visitors: web.NewVisitorLimit(cfg.Visitors, cfg.VisitorAddresses),
		impressions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "phoenix_impressions_total",
			Help: "Impressions answered, by validity (valid=false: nothing was recorded)."}, []string{"valid"}),
	}
}

// callerOf scopes Idempotency-Keys: the same sub under another role is another caller.
func callerOf(c echo.Context) string {
	p := auth.PrincipalOf(c)
	return string(p.Role) + ":" + p.UserID
}
