package phoenix

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

// The Standard Webhooks specification's example delivery.
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = "1614265330"
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	vectorBody   = `{"test": 2432232314}`
)

func vectorHeader(id, ts, sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", sig)
	return h
}

// TestVerifyWebhookStandardVector: the specification's example verifies, also as one of two
// signatures (a rotation), and returns its webhook-id.
func TestVerifyWebhookStandardVector(t *testing.T) {
	at := time.Unix(1614265330, 0).Add(time.Minute)
	for _, sig := range []string{vectorSig, "v1,c29tZXRoaW5nIGVsc2U= " + vectorSig} {
		id, err := VerifyWebhook(vectorSecret, vectorHeader(vectorID, vectorTS, sig), []byte(vectorBody), at)
		if err != nil || id != vectorID {
			t.Errorf("signature %q: %q, %v", sig, id, err)
		}
	}
}

// TestVerifyWebhookRefusals: a changed body, id or timestamp, another secret, a stale or
// future timestamp and a missing or other-version signature do not verify.
func TestVerifyWebhookRefusals(t *testing.T) {
	at := time.Unix(1614265330, 0)
	cases := map[string]struct {
		secret, id, ts, sig, body string
		now                       time.Time
	}{
		"body":        {vectorSecret, vectorID, vectorTS, vectorSig, `{"test": 2432232315}`, at},
		"id":          {vectorSecret, "msg_other", vectorTS, vectorSig, vectorBody, at},
		"timestamp":   {vectorSecret, vectorID, "1614265331", vectorSig, vectorBody, at},
		"secret":      {"whsec_" + "c2VjcmV0LW9mLWFub3RoZXItZW5kcG9pbnQ=", vectorID, vectorTS, vectorSig, vectorBody, at},
		"stale":       {vectorSecret, vectorID, vectorTS, vectorSig, vectorBody, at.Add(WebhookTolerance + time.Second)},
		"future":      {vectorSecret, vectorID, vectorTS, vectorSig, vectorBody, at.Add(-WebhookTolerance - time.Second)},
		"no id":       {vectorSecret, "", vectorTS, vectorSig, vectorBody, at},
		"no sig":      {vectorSecret, vectorID, vectorTS, "", vectorBody, at},
		"v2":          {vectorSecret, vectorID, vectorTS, "v2," + vectorSig[3:], vectorBody, at},
		"not seconds": {vectorSecret, vectorID, "yesterday", vectorSig, vectorBody, at},
	}
	for name, c := range cases {
		if _, err := VerifyWebhook(c.secret, vectorHeader(c.id, c.ts, c.sig), []byte(c.body), c.now); !errors.Is(err, ErrWebhookSignature) {
			t.Errorf("%s: %v, want ErrWebhookSignature", name, err)
		}
	}
	if _, err := VerifyWebhook("not-a-secret!", vectorHeader(vectorID, vectorTS, vectorSig), []byte(vectorBody), at); err == nil || errors.Is(err, ErrWebhookSignature) {
		t.Errorf("a malformed secret: %v, want a secret error", err)
	}
}
