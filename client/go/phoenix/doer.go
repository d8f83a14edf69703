package phoenix

import (
	"crypto/rand"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Doer sends the generated clients' requests: it adds the bearer token and Idempotency-Key,
// retries what may be retried, and returns every 4xx and 5xx answer as an *Error. It satisfies
// admin.HttpRequestDoer and query.HttpRequestDoer, for clients built with the generated
// packages' own constructors and options.
type Doer struct {
	o options
}

// NewDoer returns a Doer configured by opts.
func NewDoer(opts ...Option) *Doer {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	return &Doer{o: o}
}

// NewIdempotencyKey returns a fresh random Idempotency-Key (128 bits, 26 characters). Reuse one
// key for every attempt of one logical write, across process restarts too, to have the Admin
// Gateway replay the first answer instead of writing twice.
func NewIdempotencyKey() string {
	return rand.Text()
}

// Do sends req and returns the answer when its status is below 400. A POST gets a fresh
// Idempotency-Key unless it has one or is idempotent by itself (see repeatable). A 429 is
// retried after its Retry-After; a 503 after its Retry-After or a jittered backoff, but only
// when the request is safe to repeat. Any other error answer, or a retryable one past the
// retries or the maximum wait, is an *Error.
func (d *Doer) Do(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	if d.o.autoKeys && req.Method == http.MethodPost && !repeatable(req) && req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", NewIdempotencyKey())
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, fmt.Errorf("phoenix: cannot retry %s %s: its body cannot be read again", req.Method, req.URL.Path)
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("phoenix: rewind body: %w", err)
			}
			req.Body = body
		}
		if d.o.tokens != nil {
			tok, err := d.o.tokens.Token(req.Context())
			if err != nil {
				return nil, fmt.Errorf("phoenix: token: %w", err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := d.o.http.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 400 {
			return resp, nil
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("phoenix: read %d answer: %w", resp.StatusCode, err)
		}
		e := newError(resp, body)
		if attempt >= d.o.retries || !retryable(req, resp.StatusCode) {
			return nil, e
		}
		wait := e.RetryAfter
		if wait == 0 {
			wait = d.backoff(attempt)
		}
		if wait > d.o.maxWait {
			return nil, e
		}
		if err := d.o.sleep(req, wait); err != nil {
			return nil, err
		}
	}
}

// retryable reports whether an answer with status may be retried for req. A 429 means the
// gateway refused before doing anything; after a 503 the work may or may not have happened,
// so only a request that is safe to repeat is sent again: one repeatable by itself, or one
// carrying an Idempotency-Key (the gateway replays the first answer).
func retryable(req *http.Request, status int) bool {
	switch status {
	case http.StatusTooManyRequests:
		return true
	case http.StatusServiceUnavailable:
		return repeatable(req) || req.Header.Get("Idempotency-Key") != ""
	}
	return false
}

// repeatable reports whether sending req twice does what sending it once does: GET, HEAD, PUT
// (a replace) and DELETE; event ingestion, which the gateway deduplicates by event_id (a repeat
// answers "duplicate" with the first outcome); and the dry run, which writes nothing. These get
// no automatic Idempotency-Key, which would cost the gateway a stored answer per event.
func repeatable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return true
	case http.MethodPost:
		p := req.URL.Path
		return strings.HasSuffix(p, "/v1/events") || strings.HasSuffix(p, "/v1/events/batch") ||
			strings.HasSuffix(p, "/v1/affiliate/simulate")
	}
	return false
}

// backoff is the wait before retry attempt+1 when the answer names none: full jitter over an
// exponential window of 100 ms, 200 ms, 400 ms … capped at backoffCap.
func (d *Doer) backoff(attempt int) time.Duration {
	window := min(100*time.Millisecond<<min(attempt, 16), d.o.backoffCap)
	return time.Duration(mathrand.Int64N(int64(window))) + time.Millisecond
}

// sleepCtx waits d or until the request's context ends.
func sleepCtx(req *http.Request, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-req.Context().Done():
		return req.Context().Err()
	}
}
