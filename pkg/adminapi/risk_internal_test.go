package adminapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

// TestNoteRiskCountsByActionAndReason: each reason of a hold or a reject is counted under its
// action, an allow once under "none", and an apply that failed before risk decided nothing.
func TestNoteRiskCountsByActionAndReason(t *testing.T) {
	a := New(nil, nil, Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c := echo.New().NewContext(httptest.NewRequest("POST", "/v1/referral/apply-code", nil), httptest.NewRecorder())
	held := referral.Referral{Review: &referral.Review{State: referral.ReviewHeld,
		Reasons: []string{referral.ReasonSameDevice, referral.ReasonVelocity}}}
	a.noteRisk(c, held, nil)
	a.noteRisk(c, referral.Referral{}, &referral.RiskRejection{Reasons: []string{referral.ReasonSameAddress}})
	a.noteRisk(c, referral.Referral{}, nil)
	a.noteRisk(c, referral.Referral{}, referral.Errorf(referral.ECodeNotFound, "no"))
	a.noteRisk(c, referral.Referral{}, errors.New("database down"))
	for _, tt := range []struct {
		action, reason string
		want           float64
	}{
		{referral.RiskHold, referral.ReasonSameDevice, 1},
		{referral.RiskHold, referral.ReasonVelocity, 1},
		{referral.RiskHold, referral.ReasonSameAddress, 0},
		{referral.RiskReject, referral.ReasonSameAddress, 1},
		{referral.RiskAllow, "none", 1},
	} {
		if got := testutil.ToFloat64(a.risk.decisions.WithLabelValues(tt.action, tt.reason)); got != tt.want {
			t.Errorf("%s/%s = %v, want %v", tt.action, tt.reason, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(a.risk.decisions); n != 5 {
		t.Errorf("%d series, want 5 (a failed apply decided nothing)", n)
	}
}
