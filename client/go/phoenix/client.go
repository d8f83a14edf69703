// Package phoenix is the hand-written layer over the generated Phoenix Referral clients
// (packages admin and query): it signs every request with a bearer token from a TokenSource,
// gives every POST that is not idempotent by itself an Idempotency-Key, retries answers the
// gateways mark as retryable (429 with Retry-After, 503), and turns every error answer into an
// *Error carrying the contract's error code.
//
//	c, err := phoenix.NewAdminClient("http://localhost:8080", phoenix.WithToken(serviceToken))
//	out, err := c.PostEventWithResponse(ctx, nil, admin.PostEventJSONRequestBody{
//		EventID: "dep_123", Type: "deposit.completed", UserID: "u_2",
//	})
//	if phoenix.CodeOf(err) == phoenix.CodeValidationFailed { … }
//
// Because errors come back as Go errors, the JSON4xx/JSON5xx fields of the generated response
// types stay nil: read *Error instead (errors.As, or CodeOf).
package phoenix

import (
	"net/http"
	"time"

	"github.com/phoenix-referral/phoenix/client/go/admin"
	"github.com/phoenix-referral/phoenix/client/go/query"
)

// Option configures a client built by NewAdminClient, NewQueryClient or NewDoer.
type Option func(*options)

type options struct {
	http       *http.Client
	tokens     TokenSource
	retries    int
	maxWait    time.Duration
	autoKeys   bool
	sleep      func(*http.Request, time.Duration) error // replaced by tests
	backoffCap time.Duration
}

func defaults() options {
	return options{
		http:       &http.Client{Timeout: 30 * time.Second},
		retries:    3,
		maxWait:    10 * time.Second,
		autoKeys:   true,
		sleep:      sleepCtx,
		backoffCap: 5 * time.Second,
	}
}

// WithToken signs every request with one bearer token (a JWT minted by the platform).
func WithToken(token string) Option {
	return WithTokenSource(StaticToken(token))
}

// WithTokenSource signs every request (each retry too) with a token from ts, so a source that
// refreshes expiring tokens is asked again before every attempt.
func WithTokenSource(ts TokenSource) Option {
	return func(o *options) { o.tokens = ts }
}

// WithHTTPClient sends requests with hc instead of a client with a 30 s timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) { o.http = hc }
}

// WithRetries sets how many times a retryable answer (429, 503) is retried; 0 turns retries
// off. The default is 3.
func WithRetries(n int) Option {
	return func(o *options) { o.retries = max(n, 0) }
}

// WithMaxRetryWait caps the wait before one retry (default 10 s). An answer whose Retry-After
// asks for longer is returned as an *Error with RetryAfter set, for the caller to schedule.
func WithMaxRetryWait(d time.Duration) Option {
	return func(o *options) { o.maxWait = d }
}

// WithoutIdempotencyKeys stops the client from adding an Idempotency-Key to POST requests that
// have none. Such a POST is then not retried after a 503, since the gateway may have done the
// work (event ingestion and the dry run still are: they are idempotent by themselves).
func WithoutIdempotencyKeys() Option {
	return func(o *options) { o.autoKeys = false }
}

// NewAdminClient returns a client of the Admin Gateway at server (for example
// "https://admin.example.com"), with tokens, Idempotency-Keys, retries and typed errors.
func NewAdminClient(server string, opts ...Option) (*admin.ClientWithResponses, error) {
	return admin.NewClientWithResponses(server, admin.WithHTTPClient(NewDoer(opts...)))
}

// NewQueryClient returns a client of the Query Gateway at server, with tokens, retries and
// typed errors.
func NewQueryClient(server string, opts ...Option) (*query.ClientWithResponses, error) {
	return query.NewClientWithResponses(server, query.WithHTTPClient(NewDoer(opts...)))
}
