package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestIdleGatewaysStopPromptly: SIGTERM on idle gateways (no request in flight, the Query
// Gateway's projector caught up and waiting for changes) ends each with exit status 0 in under
// 2 s (SPEC §7, §8); qryProc.stop fails the test on any other exit.
func TestIdleGatewaysStopPromptly(t *testing.T) {
	s := qryNewStack(t)
	qg := s.startQuery()
	qryEventually(t, 10*time.Second, func() error {
		if !qryLeader(t, qg) {
			return fmt.Errorf("the projector has not started")
		}
		return nil
	})
	s.waitProjected(t, 5*time.Second)
	time.Sleep(500 * time.Millisecond) // idle: blocked waiting for a notification
	for _, p := range []*qryProc{qg, s.admin} {
		if took := p.stop(); took > 2*time.Second {
			t.Errorf("%s took %v to exit after SIGTERM, want under 2 s", p.name, took.Round(time.Millisecond))
		} else {
			t.Logf("%s exited %v after SIGTERM", p.name, took.Round(time.Millisecond))
		}
	}
}
