package phoenix

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Code is an error code of the Phoenix Referral contract, the "code" of an error answer.
type Code string

// The contract's error codes, grouped by the HTTP status they come with.
const (
	// 400
	CodeInvalidJSON      Code = "INVALID_JSON"
	CodeValidationFailed Code = "VALIDATION_FAILED"
	CodeTenantRequired   Code = "TENANT_REQUIRED"
	// 401, 403
	CodeUnauthorized Code = "UNAUTHORIZED"
	CodeForbidden    Code = "FORBIDDEN"
	// 404
	CodeNotFound       Code = "NOT_FOUND"
	CodeCodeNotFound   Code = "CODE_NOT_FOUND"
	CodeNotAnAffiliate Code = "NOT_AN_AFFILIATE"
	// 405
	CodeMethodNotAllowed Code = "METHOD_NOT_ALLOWED"
	// 409
	CodeCodeTaken            Code = "CODE_TAKEN"
	CodeAlreadyReferred      Code = "ALREADY_REFERRED"
	CodeCodeExhausted        Code = "CODE_EXHAUSTED"
	CodeAffiliateExists      Code = "AFFILIATE_EXISTS"
	CodeInvalidTransition    Code = "INVALID_TRANSITION"
	CodeIdempotencyKeyReused Code = "IDEMPOTENCY_KEY_REUSED"
	// 413
	CodeBodyTooLarge Code = "BODY_TOO_LARGE"
	// 422
	CodeCodeInactive     Code = "CODE_INACTIVE"
	CodeCodeExpired      Code = "CODE_EXPIRED"
	CodeSelfReferral     Code = "SELF_REFERRAL"
	CodeReferralCycle    Code = "REFERRAL_CYCLE"
	CodeHierarchyCycle   Code = "HIERARCHY_CYCLE"
	CodeCodeLimitReached Code = "CODE_LIMIT_REACHED"
	CodeRiskRejected     Code = "RISK_REJECTED"
	CodeNotReversible    Code = "NOT_REVERSIBLE"
	// 429
	CodeRateLimited Code = "RATE_LIMITED"
	// 500, 503
	CodeInternal    Code = "INTERNAL"
	CodeUnavailable Code = "UNAVAILABLE"
)

// Error is an error answer of a gateway: its status and the contract's error envelope
// {"error": {"code", "message", "fields"}}, with the headers a client acts on.
type Error struct {
	// StatusCode is the HTTP status (4xx or 5xx).
	StatusCode int
	// Code is the envelope's code; empty when the body was not an envelope (for example a
	// proxy's 502 page), in which case Body holds what came.
	Code Code
	// Message is the envelope's human-readable message (the status text without an envelope).
	Message string
	// Fields names the invalid fields with a reason each (VALIDATION_FAILED only).
	Fields map[string]string
	// RequestID is the X-Request-Id header, the id of the request in the gateway's logs.
	RequestID string
	// RetryAfter is the Retry-After header (429 RATE_LIMITED, some 503s), 0 when absent.
	RetryAfter time.Duration
	// Body is the raw answer body, at most 64 KiB of it.
	Body []byte
}

// Error describes the answer, for example
// "phoenix: 409 CODE_TAKEN: code ALICE2026 is taken (request 7f3c…)".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "phoenix: %d", e.StatusCode)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if len(e.Fields) > 0 {
		fmt.Fprintf(&b, " %v", e.Fields)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// CodeOf returns the contract error code of err when err is (or wraps) an *Error, else "".
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// newError builds the *Error of an answer whose body has been read.
func newError(resp *http.Response, body []byte) *Error {
	e := &Error{
		StatusCode: resp.StatusCode,
		RequestID:  resp.Header.Get("X-Request-Id"),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Body:       body,
	}
	var env struct {
		Error *struct {
			Code    Code              `json:"code"`
			Message string            `json:"message"`
			Fields  map[string]string `json:"fields"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil && env.Error.Code != "" {
		e.Code, e.Message, e.Fields = env.Error.Code, env.Error.Message, env.Error.Fields
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}
