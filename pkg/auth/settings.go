package auth

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// Settings are the JWT settings of SPEC §2 as configured.
type Settings struct {
	Secret        string
	PublicKeyFile string
	JWKSURL       string
	Issuer        string
	Audience      string
}

// NewVerifierFromConfig loads the configured keys and returns a Verifier. A JWKS URL is fetched
// once before it returns and refreshed in the background until ctx ends.
func NewVerifierFromConfig(ctx context.Context, s Settings, log *slog.Logger) (*Verifier, error) {
	kc := KeyConfig{Issuer: s.Issuer, Audience: s.Audience}
	if s.Secret != "" {
		kc.Secret = []byte(s.Secret)
	}
	if s.PublicKeyFile != "" {
		b, err := os.ReadFile(s.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("PHOENIX_JWT_PUBLIC_KEY_FILE: %w", err)
		}
		kc.PublicKeyPEM = b
	}
	if s.JWKSURL != "" {
		jwks, err := NewJWKS(ctx, s.JWKSURL, log)
		if err != nil {
			return nil, err
		}
		kc.JWKS = jwks.Keyfunc
	}
	return NewVerifier(kc)
}
