package phoenix

import "context"

// TokenSource supplies the bearer token of a request. Token is called before every attempt, with
// the request's context; an error fails the request without sending it.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// StaticToken is a TokenSource that always returns the same token.
type StaticToken string

// Token returns t.
func (t StaticToken) Token(context.Context) (string, error) { return string(t), nil }

// TokenFunc adapts a function to a TokenSource, for tokens minted or refreshed on demand.
type TokenFunc func(ctx context.Context) (string, error)

// Token calls f.
func (f TokenFunc) Token(ctx context.Context) (string, error) { return f(ctx) }
