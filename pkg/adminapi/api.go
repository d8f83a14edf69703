// Package adminapi is the Admin Gateway's HTTP surface: routes.go lists every route; handlers
// decode request DTOs, call the store, and encode the response shapes of package apishape.
package adminapi

import (
	"log/slog"

	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/auth"
	"github.com/phoenix-referral/phoenix/pkg/postgres"
)

// Config is what the handlers need beyond the store.
type Config struct {
	// ReferralURLTemplate renders "referral_url" on code objects when set ({code} is replaced).
	ReferralURLTemplate string
	// Attempts limits failed apply-code attempts per tenant and player.
	Attempts postgres.AttemptLimit
}

// API holds the Admin Gateway's dependencies.
type API struct {
	store    *postgres.Store
	verifier *auth.Verifier
	cfg      Config
	log      *slog.Logger
}

// New returns the Admin Gateway API over store.
func New(store *postgres.Store, verifier *auth.Verifier, cfg Config, log *slog.Logger) *API {
	return &API{store: store, verifier: verifier, cfg: cfg, log: log}
}

// callerOf scopes Idempotency-Keys: the same sub under another role is another caller.
func callerOf(c echo.Context) string {
	p := auth.PrincipalOf(c)
	return string(p.Role) + ":" + p.UserID
}
