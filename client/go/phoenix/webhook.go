package phoenix

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WebhookTolerance is how far a delivery's webhook-timestamp may be from the receiver's clock
// before VerifyWebhook refuses it (a replayed old delivery).
const WebhookTolerance = 5 * time.Minute

// ErrWebhookSignature is returned (wrapped) by VerifyWebhook for a delivery that does not
// verify: answer it 4xx and do not act on its body.
var ErrWebhookSignature = errors.New("phoenix: webhook does not verify")

// VerifyWebhook checks a webhook delivery by Standard Webhooks 1.0, as Phoenix signs them: its
// webhook-timestamp within WebhookTolerance of now, and one of the space-separated v1 entries
// of webhook-signature equal to the base64 HMAC-SHA256 of "webhook-id.webhook-timestamp.body"
// keyed with the base64-decoded part of secret ("whsec_…") after the prefix. body is the
// request body exactly as received. After a rotation both secrets sign for 24 hours, so a
// receiver holding either one verifies. On success it returns the webhook-id, the key to
// deduplicate on: retries of one event carry the same id.
func VerifyWebhook(secret string, header http.Header, body []byte, now time.Time) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return "", errors.New("phoenix: webhook secret is not whsec_<base64>")
	}
	id, timestamp := header.Get("webhook-id"), header.Get("webhook-timestamp")
	if id == "" {
		return "", fmt.Errorf("%w: no webhook-id", ErrWebhookSignature)
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: webhook-timestamp %q is not Unix seconds", ErrWebhookSignature, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return "", fmt.Errorf("%w: webhook-timestamp %s from now", ErrWebhookSignature, d.Round(time.Second))
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(header.Get("webhook-signature")) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: no webhook-signature matches", ErrWebhookSignature)
}
