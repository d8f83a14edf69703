package auth

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// JWKSRefreshInterval is how often a configured JWKS is fetched again.
const JWKSRefreshInterval = 5 * time.Minute

// JWKS is a remote key set refreshed in the background.
type JWKS struct {
	kf keyfunc.Keyfunc
}

// NewJWKS fetches the key set at url and keeps refreshing it until ctx ends.
func NewJWKS(ctx context.Context, url string, log *slog.Logger) (*JWKS, error) {
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{url}, keyfunc.Override{
		RefreshInterval: JWKSRefreshInterval,
		RefreshErrorHandlerFunc: func(u string) func(ctx context.Context, err error) {
			return func(ctx context.Context, err error) { log.Warn("jwks_refresh_failed", "url", u, "err", err) }
		},
	})
	if err != nil {
		return nil, fmt.Errorf("PHOENIX_JWT_JWKS_URL: %w", err)
	}
	return &JWKS{kf: kf}, nil
}

// Keyfunc returns the key a token's kid names.
func (j *JWKS) Keyfunc(t *jwt.Token) (any, error) { return j.kf.Keyfunc(t) }
