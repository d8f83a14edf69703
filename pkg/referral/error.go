// Package referral is the domain of Phoenix Referral: its types, the error codes every API
// speaks, and the pure rules (codes, filters, rates, tiers, hierarchy) the gateways apply.
// It imports no HTTP, SQL, Redis or JWT package.
package referral

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Error codes of the product contract. Each maps to exactly one HTTP status in the web layer.
const (
	EInvalidJSON          = "INVALID_JSON"
	EValidation           = "VALIDATION_FAILED"
	ETenantRequired       = "TENANT_REQUIRED"
	EUnauthorized         = "UNAUTHORIZED"
	EForbidden            = "FORBIDDEN"
	ENotFound             = "NOT_FOUND"
	ECodeNotFound         = "CODE_NOT_FOUND"
	ENotAnAffiliate       = "NOT_AN_AFFILIATE"
	ECodeTaken            = "CODE_TAKEN"
	EAlreadyReferred      = "ALREADY_REFERRED"
	ECodeExhausted        = "CODE_EXHAUSTED"
	EAffiliateExists      = "AFFILIATE_EXISTS"
	EInvalidTransition    = "INVALID_TRANSITION"
	EIdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED"
	EMethodNotAllowed     = "METHOD_NOT_ALLOWED"
	EBodyTooLarge         = "BODY_TOO_LARGE"
	ECodeInactive         = "CODE_INACTIVE"
	ECodeExpired          = "CODE_EXPIRED"
	ESelfReferral         = "SELF_REFERRAL"
	EReferralCycle        = "REFERRAL_CYCLE"
	EHierarchyCycle       = "HIERARCHY_CYCLE"
	ECodeLimitReached     = "CODE_LIMIT_REACHED"
	ENotReversible        = "NOT_REVERSIBLE"
	ERiskRejected         = "RISK_REJECTED"
	ERateLimited          = "RATE_LIMITED"
	EInternal             = "INTERNAL"
	EUnavailable          = "UNAVAILABLE"
)

// Error is the one error type the application reports to clients. Any other error reaching the
// edge is reported as INTERNAL without its text.
type Error struct {
	// Code is one of the E* constants.
	Code string
	// Message is a human-readable sentence safe to show to a client.
	Message string
	// Fields names invalid input fields with a reason each (VALIDATION_FAILED only).
	Fields map[string]string
	// RetryAfter is the number of seconds a client should wait (RATE_LIMITED only).
	RetryAfter int
}

// Error implements the error interface.
func (e *Error) Error() string {
	if len(e.Fields) > 0 {
		return fmt.Sprintf("%s: %s %v", e.Code, e.Message, e.Fields)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err when it is (or wraps) an *Error, else EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// NotFound returns a NOT_FOUND error naming the missing kind of resource.
func NotFound(what string) *Error {
	return Errorf(ENotFound, "%s not found", what)
}

// FieldErrors collects validation failures keyed by field name; its Err method turns them into
// one VALIDATION_FAILED error.
type FieldErrors map[string]string

// Add records reason for field unless the field already has one.
func (f FieldErrors) Add(field, reason string) {
	if _, ok := f[field]; !ok {
		f[field] = reason
	}
}

// Err returns nil when no field failed, else a VALIDATION_FAILED *Error listing the fields.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: EValidation, Message: "request validation failed", Fields: map[string]string(f)}
}

// RateLimited returns a RATE_LIMITED error whose Retry-After is wait rounded up to whole
// seconds, at least one.
func RateLimited(message string, wait time.Duration) *Error {
	return &Error{Code: ERateLimited, Message: message, RetryAfter: max(1, int(math.Ceil(wait.Seconds())))}
}

// Invalid returns a VALIDATION_FAILED error for a single field.
func Invalid(field, reason string) *Error {
	return &Error{Code: EValidation, Message: "request validation failed", Fields: map[string]string{field: reason}}
}

// JoinValidation merges VALIDATION_FAILED errors into one listing every field; nil errors are
// skipped. Any other error is returned as it is, so a failure that is not about input wins.
func JoinValidation(errs ...error) error {
	fe := FieldErrors{}
	for _, err := range errs {
		if err == nil {
			continue
		}
		var de *Error
		if !errors.As(err, &de) || de.Code != EValidation {
			return err
		}
		for k, v := range de.Fields {
			fe.Add(k, v)
		}
	}
	return fe.Err()
}
