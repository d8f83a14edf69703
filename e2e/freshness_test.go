package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// qryPercentile returns the p-th percentile (0–100) of ds.
func qryPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p / 100)
	return s[i]
}

// qryProbe changes the hot code's usage limit on the Admin Gateway and returns how long after the
// acknowledgement the Query Gateway serves the new value (a projected document: the hot user's
// codes are already in Redis).
func qryProbe(t testing.TB, e *qryTenantEnv, hotID, hotUser string, limit int) time.Duration {
	qryDo(t, "PATCH", "http://"+e.s.admin.addr+"/v1/referral/codes/"+hotID, e.admin, map[string]any{"usage_limit": limit}).must(t, 200, nil)
	acked := time.Now()
	want := fmt.Sprintf(`"usage_limit":%d,`, limit)
	tok := e.player(hotUser)
	for {
		r := qryDo(t, "GET", "http://"+e.qg.addr+"/v1/referral/codes", tok, nil)
		if strings.Contains(string(r.Body), want) {
			return time.Since(acked)
		}
		if time.Since(acked) > 5*time.Second {
			t.Fatalf("write not visible after 5 s: %s", r.Body)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// TestQryFreshness measures write-to-read latency: a write acknowledged by the Admin Gateway
// until the Query Gateway serves it. SPEC §7 bounds it at 1 s (target p99 ≤ 50 ms).
func TestQryFreshness(t *testing.T) {
	s := qryNewStack(t)
	qg := s.startQuery()
	e := s.tenant(qg)
	var obj qryObj
	e.write("POST", "/v1/referral/codes", e.player("hot"), map[string]any{"code": "FRESH-" + e.tenant[4:], "usage_limit": 1}, &obj)
	s.waitProjected(t, 2*time.Second)
	var lat []time.Duration
	for i := 2; i < 102; i++ {
		lat = append(lat, qryProbe(t, e, obj.ID, "hot", i))
	}
	p50, p99, worst := qryPercentile(lat, 50), qryPercentile(lat, 99), qryPercentile(lat, 100)
	t.Logf("write-to-read latency over %d writes: p50 %v, p99 %v, max %v", len(lat), p50, p99, worst)
	if worst > time.Second {
		t.Fatalf("a write took %v to become visible (SPEC §7: at most 1 s)", worst)
	}
}
