package referral

import "testing"

func TestSuccessful(t *testing.T) {
	want := map[string]bool{StatusConverted: true, StatusVerified: true}
	for _, s := range append(ReferralStatuses, "", "CONVERTED", "unknown") {
		if got := Successful(s); got != want[s] {
			t.Errorf("Successful(%q) = %v, want %v", s, got, want[s])
		}
	}
}

func TestCheckTransition(t *testing.T) {
	// §4.4: pending→rejected, converted→verified, converted→rejected, verified→rejected.
	allowed := map[[2]string]bool{
		{StatusPending, StatusRejected}:   true,
		{StatusConverted, StatusVerified}: true,
		{StatusConverted, StatusRejected}: true,
		{StatusVerified, StatusRejected}:  true,
	}
	for _, from := range ReferralStatuses {
		for _, to := range append(ReferralStatuses, "unknown") {
			err := CheckTransition(from, to)
			if allowed[[2]string{from, to}] {
				if err != nil {
					t.Errorf("%s → %s: %v, want allowed", from, to, err)
				}
			} else if ErrorCode(err) != EInvalidTransition {
				t.Errorf("%s → %s: %v, want %s", from, to, err, EInvalidTransition)
			}
		}
	}
}
