// Package auth verifies the bearer JWTs of SPEC §2, resolves the tenant of every request by the
// one tenancy rule, and guards routes by role.
package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// Role is what a token's holder may do.
type Role string

// The roles of SPEC §2.
const (
	RolePlayer      Role = "player"
	RoleTenantAdmin Role = "tenant_admin"
	RoleClientAdmin Role = "client_admin"
	RoleSuperAdmin  Role = "super_admin"
	RoleService     Role = "service"
)

// Admins are the roles allowed on the Admin Gateway's back-office routes.
var Admins = []Role{RoleTenantAdmin, RoleClientAdmin, RoleSuperAdmin}

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// MaxTokenBytes bounds the size of a bearer token; larger tokens are rejected unparsed.
const MaxTokenBytes = 8 << 10

// MinSecretBytes is the minimum length of an HS256 secret.
const MinSecretBytes = 32

var tenantPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidTenantID reports whether s is a well-formed tenant id.
func ValidTenantID(s string) bool { return tenantPattern.MatchString(s) }

// Principal is the verified caller.
type Principal struct {
	UserID    string
	Role      Role
	TenantID  string
	TenantIDs []string
	// DeviceID is the token's device_id claim when it is a string (a risk signal, SPEC §12;
	// whether it is a usable device id is the signal capture's decision), else empty.
	DeviceID string
}

// Claims is the JWT claim set Phoenix reads.
type Claims struct {
	jwt.RegisteredClaims
	Role      string   `json:"role"`
	TenantID  string   `json:"tenant_id,omitempty"`
	TenantIDs []string `json:"tenant_ids,omitempty"`
	// DeviceID is read as any JSON value: a device id of another type is ignored, never a
	// reason to refuse the token.
	DeviceID any `json:"device_id,omitempty"`
}

// KeyConfig names the keys tokens may be signed with, and the optional issuer and audience.
type KeyConfig struct {
	Secret        []byte // HS256
	PublicKeyPEM  []byte // RSA → RS256, EC → ES256, Ed25519 → EdDSA
	JWKS          jwt.Keyfunc
	JWKSAlgorithm []string // algorithms accepted from the JWKS
	Issuer        string
	Audience      string
}

// Verifier checks bearer tokens.
type Verifier struct {
	secret  []byte
	public  crypto.PublicKey
	pubAlg  string
	jwks    jwt.Keyfunc
	methods []string
	parser  *jwt.Parser
	cache   tokenCache
	// issuer and audience are the configured iss and aud ("" when not enforced).
	issuer, audience string
}

// NewVerifier builds a Verifier. It fails when no key is configured, when the secret is shorter
// than MinSecretBytes, or when the public key cannot be parsed.
func NewVerifier(cfg KeyConfig) (*Verifier, error) {
	v := &Verifier{jwks: cfg.JWKS, issuer: cfg.Issuer, audience: cfg.Audience}
	if len(cfg.Secret) > 0 {
		if len(cfg.Secret) < MinSecretBytes {
			return nil, fmt.Errorf("JWT secret must be at least %d bytes", MinSecretBytes)
		}
		v.secret = cfg.Secret
		v.methods = append(v.methods, "HS256")
	}
	if len(cfg.PublicKeyPEM) > 0 {
		key, alg, err := ParsePublicKey(cfg.PublicKeyPEM)
		if err != nil {
			return nil, err
		}
		v.public, v.pubAlg = key, alg
		v.methods = append(v.methods, alg)
	}
	if cfg.JWKS != nil {
		algs := cfg.JWKSAlgorithm
		if len(algs) == 0 {
			algs = []string{"RS256", "ES256", "EdDSA"}
		}
		for _, a := range algs {
			if !slices.Contains(v.methods, a) {
				v.methods = append(v.methods, a)
			}
		}
	}
	if len(v.methods) == 0 {
		return nil, errors.New("no JWT key configured")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// ParsePublicKey reads a PEM public key (PKIX or PKCS#1 RSA) and returns it with the one
// algorithm it may verify.
func ParsePublicKey(pemBytes []byte) (crypto.PublicKey, string, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, "", errors.New("JWT public key: no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	}
	if err != nil {
		return nil, "", fmt.Errorf("JWT public key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		return k, "RS256", nil
	case *ecdsa.PublicKey:
		return k, "ES256", nil
	case ed25519.PublicKey:
		return k, "EdDSA", nil
	}
	return nil, "", fmt.Errorf("JWT public key: unsupported key type %T", key)
}

func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	switch {
	case alg == "HS256" && v.secret != nil:
		return v.secret, nil
	case v.public != nil && alg == v.pubAlg:
		return v.public, nil
	case v.jwks != nil && alg != "HS256":
		return v.jwks(t)
	}
	return nil, fmt.Errorf("no key for algorithm %q", alg)
}

// Why a bearer token was refused: the 401's message and its WWW-Authenticate error_description
// (SPEC §3). None names a key or an expected claim value, and each is a valid RFC 6750
// error_description (printable ASCII without '"' or backslash).
var (
	errNoToken     = refusal("missing bearer token")
	errTooLarge    = refusal("malformed token: larger than 8 KiB")
	errMalformed   = refusal("malformed token")
	errAlgorithm   = refusal("token signing algorithm is not accepted")
	errSignature   = refusal("bad token signature")
	errUnknownKey  = refusal("token signing key is unknown")
	errExpired     = refusal("token is expired")
	errNotYetValid = refusal("token is not valid yet")
	errIssuer      = refusal("wrong token issuer")
	errAudience    = refusal("wrong token audience")
	errNoExpiry    = refusal("token has no exp claim")
	errSubject     = refusal("token sub claim must be 1-128 characters")
	errRole        = refusal("token role is not one of player, tenant_admin, client_admin, super_admin, service")
	errTenantClaim = refusal("token tenant_id or tenant_ids is malformed")
)

func refusal(reason string) *referral.Error {
	return &referral.Error{Code: referral.EUnauthorized, Message: reason}
}

// Verify checks a raw token and returns its principal. Every failure is UNAUTHORIZED with the
// reason of the first check that failed.
func (v *Verifier) Verify(raw string) (Principal, error) {
	if raw == "" {
		return Principal{}, errNoToken
	}
	if len(raw) > MaxTokenBytes {
		return Principal{}, errTooLarge
	}
	now := time.Now()
	if p, ok := v.cache.get(raw, now); ok {
		return p, nil
	}
	var c Claims
	if tok, err := v.parser.ParseWithClaims(raw, &c, v.keyFor); err != nil {
		return Principal{}, v.refusalOf(err, tok, &c)
	}
	if len(c.Subject) < 1 || len(c.Subject) > 128 {
		return Principal{}, errSubject
	}
	role := Role(c.Role)
	switch role {
	case RolePlayer, RoleTenantAdmin, RoleClientAdmin, RoleSuperAdmin, RoleService:
	default:
		return Principal{}, errRole
	}
	if c.TenantID != "" && !ValidTenantID(c.TenantID) {
		return Principal{}, errTenantClaim
	}
	for _, t := range c.TenantIDs {
		if !ValidTenantID(t) {
			return Principal{}, errTenantClaim
		}
	}
	p := Principal{UserID: c.Subject, Role: role, TenantID: c.TenantID, TenantIDs: c.TenantIDs}
	if d, ok := c.DeviceID.(string); ok {
		p.DeviceID = d
	}
	// exp is required, so ExpiresAt is set; the leeway that admitted the token still applies.
	v.cache.put(raw, p, c.ExpiresAt.Add(Leeway), now)
	return p, nil
}

// refusalOf names the check a token failed, from golang-jwt's error, the token as parsed and
// its claims. The parser checks the form, then the algorithm, the key and the signature, and
// only then the claims, so a claim is reported only for a genuinely signed token.
func (v *Verifier) refusalOf(err error, tok *jwt.Token, c *Claims) *referral.Error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok == nil || tok.Method == nil || !slices.Contains(v.methods, tok.Method.Alg()) {
			return errAlgorithm
		}
		return errSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return errUnknownKey
	case errors.Is(err, jwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return errNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case c.ExpiresAt == nil:
			return errNoExpiry
		case v.issuer != "" && c.Issuer == "":
			return errIssuer
		case v.audience != "" && len(c.Audience) == 0:
			return errAudience
		}
	}
	return errMalformed
}

// ResolveTenant applies the tenancy rule of SPEC §2 to a principal and the request's
// ?tenant_id= (query is "" when absent).
func ResolveTenant(p Principal, query string) (string, error) {
	if query != "" && !ValidTenantID(query) {
		return "", referral.Invalid("tenant_id", "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")
	}
	switch {
	case p.TenantID != "":
		if query != "" && query != p.TenantID {
			return "", referral.Errorf(referral.EForbidden, "token is not valid for this tenant")
		}
		return p.TenantID, nil
	case p.Role == RoleSuperAdmin:
		if query == "" {
			return "", referral.Errorf(referral.ETenantRequired, "tenant_id query parameter is required")
		}
		return query, nil
	case p.TenantIDs != nil:
		if query == "" {
			return "", referral.Errorf(referral.ETenantRequired, "tenant_id query parameter is required")
		}
		if !slices.Contains(p.TenantIDs, query) {
			return "", referral.Errorf(referral.EForbidden, "token is not valid for this tenant")
		}
		return query, nil
	}
	return "", referral.Errorf(referral.EForbidden, "token names no tenant")
}

// Sign issues an HS256 token (for development and tests).
func Sign(secret []byte, p Principal, ttl time.Duration, now time.Time) (string, error) {
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   p.UserID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Role:      string(p.Role),
		TenantID:  p.TenantID,
		TenantIDs: p.TenantIDs,
	}
	if p.DeviceID != "" {
		c.DeviceID = p.DeviceID
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
