package apishape_test

import (
	"encoding"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/phoenix-referral/phoenix/pkg/adminapi"
	"github.com/phoenix-referral/phoenix/pkg/apishape"
	"github.com/phoenix-referral/phoenix/pkg/queryapi"
	"github.com/phoenix-referral/phoenix/pkg/web"
)

// adminShapes maps each object schema of the Admin Gateway's document that it answers with to
// the type that renders it.
var adminShapes = map[string]any{
	"Health":             apishape.Health{},
	"Error":              apishape.ErrorBody{},
	"ErrorDetail":        apishape.ErrorDetail{},
	"Wallet":             apishape.Wallet{},
	"Rewards":            apishape.Rewards{},
	"Campaign":           apishape.Campaign{},
	"CampaignList":       apishape.List[apishape.Campaign]{},
	"Code":               apishape.Code{},
	"CodeList":           apishape.List[apishape.Code]{},
	"Claim":              apishape.Claim{},
	"CodeStats":          apishape.CodeStats{},
	"Referral":           apishape.AdminReferral{},
	"AppliedReferral":    apishape.AppliedReferral{},
	"ReferralList":       apishape.List[apishape.AdminReferral]{},
	"Review":             apishape.Review{},
	"RiskPolicy":         apishape.RiskPolicy{},
	"Velocity":           apishape.Velocity{},
	"Signal":             apishape.Signal{},
	"Milestone":          apishape.Milestone{},
	"ReferralStats":      apishape.ReferralStats{},
	"LeaderboardRow":     apishape.LeaderboardRow{},
	"Leaderboard":        apishape.Leaderboard{},
	"Reward":             apishape.Reward{},
	"RewardList":         apishape.List[apishape.Reward]{},
	"Affiliate":          apishape.Affiliate{},
	"AffiliateList":      apishape.List[apishape.Affiliate]{},
	"DownlineAffiliate":  apishape.DownlineAffiliate{},
	"DownlineList":       apishape.List[apishape.DownlineAffiliate]{},
	"Tier":               apishape.Tier{},
	"TierList":           apishape.List[apishape.Tier]{},
	"CommissionRule":     apishape.CommissionRule{},
	"CommissionRuleList": apishape.List[apishape.CommissionRule]{},
	"HierarchyPolicy":    apishape.HierarchyPolicy{},
	"EventOutcome":       apishape.EventOutcome{},
	"RejectedEvent":      apishape.RejectedEvent{},
	"EventBatchResult":   apishape.EventBatchResult{},
	"Commission":         apishape.Commission{},
	"CommissionList":     apishape.List[apishape.Commission]{},
	"MinimumPayout":      apishape.Wallet{},
	"PayoutPolicy":       apishape.PayoutPolicy{},
	"Payout":             apishape.Payout{},
	"PayoutList":         apishape.List[apishape.Payout]{},
	"PayoutSkip":         apishape.PayoutSkip{},
	"PayoutRun":          apishape.PayoutRun{},
	"Balance":            apishape.Balance{},
	"BalanceList":        apishape.Balances{},
	"Impression":         apishape.Impression{},
	"Funnel":             apishape.Funnel{},
	"FunnelSource":       apishape.FunnelSource{},

	"OutboxEvent":           apishape.OutboxEvent{},
	"OutboxFeed":            apishape.OutboxFeed{},
	"WebhookEndpoint":       apishape.WebhookEndpoint{},
	"WebhookEndpointSecret": apishape.WebhookEndpointSecret{},
	"WebhookEndpointList":   apishape.List[apishape.WebhookEndpoint]{},
	"WebhookAttempt":        apishape.WebhookAttempt{},
	"WebhookDelivery":       apishape.WebhookDelivery{},
	"WebhookDeliveryList":   apishape.List[apishape.WebhookDelivery]{},
	"WebhookReplay":         apishape.WebhookReplay{},
}

// adminRequests are the object schemas of request bodies: adminapi decodes them into its own
// request types, which validate every field.
var adminRequests = []string{
	"RewardsInput", "CampaignInput", "CampaignReplace", "PlayerCodeInput", "AdminCodeInput",
	"AdminCodeReplace", "CodePatch", "ApplyCodeInput", "ReferralStatusInput", "AffiliateInput",
	"AffiliateReplace", "UplineInput", "TierInput", "TierReplace", "CommissionRuleInput",
	"CommissionRuleReplace", "HierarchyPolicyInput", "EventInput", "EventBatchInput",
	"CommissionReverseInput", "PayoutPolicyInput", "PayoutRunInput", "PayoutStatusInput",
	"ReviewInput", "RiskPolicyInput", "VelocityInput", "SignalInput", "MilestoneInput",
	"ImpressionInput",
	"WebhookEndpointInput", "WebhookEndpointReplace", "WebhookReplayInput",
}

// queryShapes maps each object schema of the Query Gateway's document to the type that renders
// it (the Query Gateway takes no request bodies).
var queryShapes = map[string]any{
	"Health":              apishape.Health{},
	"Error":               apishape.ErrorBody{},
	"Amount":              apishape.Amount{},
	"Wallet":              apishape.Wallet{},
	"Rewards":             apishape.Rewards{},
	"PublicCampaign":      apishape.PublicCampaign{},
	"PublicCampaignItems": apishape.Items[apishape.PublicCampaign]{},
	"Code":                apishape.Code{},
	"CodeItems":           apishape.Items[apishape.Code]{},
	"Validation":          apishape.Validation{},
	"Referral":            apishape.Referral{},
	"Me":                  apishape.Me{},
	"ReferralList":        apishape.List[apishape.Referral]{},
	"PlayerStats":         apishape.PlayerStats{},
	"MilestoneProgress":   apishape.MilestoneProgress{},
	"Reward":              apishape.Reward{},
	"RewardList":          apishape.List[apishape.Reward]{},
	"LeaderboardRow":      apishape.LeaderboardRow{},
	"Leaderboard":         apishape.PlayerLeaderboard{},
	"Tier":                apishape.Tier{},
	"NextTier":            apishape.NextTier{},
	"AffiliateMe":         apishape.AffiliateMe{},
	"DownlineAffiliate":   apishape.DownlineAffiliate{},
	"DownlineList":        apishape.List[apishape.DownlineAffiliate]{},
	"Commission":          apishape.Commission{},
	"CommissionList":      apishape.List[apishape.Commission]{},
	"LevelAmount":         apishape.LevelAmount{},
	"AffiliateStats":      apishape.AffiliateStats{},
	"TierItems":           apishape.Items[apishape.Tier]{},
	"Payout":              apishape.Payout{},
	"PayoutList":          apishape.List[apishape.Payout]{},
	"Balance":             apishape.Balance{},
	"BalanceList":         apishape.Balances{},
}

// TestOpenAPISchemasMatchShapes checks both OpenAPI documents against the types of this package:
// every JSON field of a type is a property of its schema and every property a field, a field is
// required exactly when it is not omitempty, and nested objects match the same way. Every object
// schema with properties is either mapped to a type or a request body, so a new schema cannot be
// left unchecked. The schemas named …Error are the error envelope narrowed to the codes of one
// answer: each is checked against apishape.ErrorBody.
func TestOpenAPISchemasMatchShapes(t *testing.T) {
	for _, d := range []struct {
		name     string
		spec     []byte
		shapes   map[string]any
		requests []string
	}{
		{"admin", adminapi.OpenAPI, adminShapes, adminRequests},
		{"query", queryapi.OpenAPI, queryShapes, nil},
	} {
		t.Run(d.name, func(t *testing.T) {
			doc, err := web.LoadOpenAPI(d.spec)
			if err != nil {
				t.Fatal(err)
			}
			schemas := doc.Components.Schemas
			shapes := maps.Clone(d.shapes)
			for name := range schemas {
				if strings.HasSuffix(name, "Error") {
					shapes[name] = apishape.ErrorBody{}
				}
			}
			for name, v := range shapes {
				ref, ok := schemas[name]
				if !ok {
					t.Errorf("%s: no such schema", name)
					continue
				}
				for _, p := range compare(reflect.TypeOf(v), ref.Value, name) {
					t.Errorf("%s (%T): %s", name, v, p)
				}
			}
			for name, ref := range schemas {
				_, mapped := shapes[name]
				request := slices.Contains(d.requests, name)
				switch {
				case mapped && request:
					t.Errorf("%s: both a response shape and a request body", name)
				case !mapped && !request && len(ref.Value.Properties) > 0:
					t.Errorf("%s: object schema without a type in apishape (map it in this test)", name)
				}
			}
			for _, name := range d.requests {
				if _, ok := schemas[name]; !ok {
					t.Errorf("%s: no such request schema", name)
				}
			}
		})
	}
}

// TestCompareFindsDrift: the comparison reports a field missing on either side, a required
// field that is omitempty, and drift inside a nested object.
func TestCompareFindsDrift(t *testing.T) {
	type inner struct {
		A string `json:"a"`
	}
	type shape struct {
		ID    string  `json:"id"`
		Extra string  `json:"extra"`
		URL   string  `json:"url,omitempty"`
		Sub   *inner  `json:"sub"`
		Subs  []inner `json:"subs"`
		Dash  string  `json:"-"`
	}
	obj := func(required []string, props openapi3.Schemas) *openapi3.Schema {
		return &openapi3.Schema{Type: &openapi3.Types{"object"}, Required: required, Properties: props}
	}
	innerSchema := obj([]string{"a"}, openapi3.Schemas{"a": {Value: &openapi3.Schema{}}, "b": {Value: &openapi3.Schema{}}})
	s := obj([]string{"id", "url", "sub", "subs", "gone"}, openapi3.Schemas{
		"id":   {Value: &openapi3.Schema{}},
		"url":  {Value: &openapi3.Schema{}},
		"gone": {Value: &openapi3.Schema{}},
		"sub":  {Value: &openapi3.Schema{AllOf: openapi3.SchemaRefs{{Value: innerSchema}}}},
		"subs": {Value: &openapi3.Schema{Type: &openapi3.Types{"array"}, Items: &openapi3.SchemaRef{Value: innerSchema}}},
	})
	got := compare(reflect.TypeOf(shape{}), s, "S")
	want := []string{
		`S: field "extra" is not a property of the schema`,
		`S: field "extra" is not omitempty but not required`,
		`S: property "gone" has no field`,
		`S: field "url" is omitempty but required`,
		`S.sub: property "b" has no field`,
		`S.subs: property "b" has no field`,
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// jsonField is one field of a type's JSON object.
type jsonField struct {
	name      string
	omitempty bool
	typ       reflect.Type
}

// jsonFields lists the JSON object fields of struct type t the way encoding/json renders them:
// exported fields by tag name, "-" skipped, untagged embedded structs flattened.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, omitempty: slices.Contains(strings.Split(opts, ","), "omitempty"), typ: f.Type})
	}
	return out
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// objectType returns the struct type rendered as a JSON object that t holds (through pointers
// and slices), or nil when t renders as something else (a scalar, a map, or by its own
// marshaller).
func objectType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	for _, m := range []reflect.Type{jsonMarshaler, textMarshaler} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return nil
		}
	}
	return t
}

// objectSchema returns the object schema s describes a value (or the elements) of: through array
// items and a single allOf reference.
func objectSchema(s *openapi3.Schema) *openapi3.Schema {
	for s != nil {
		switch {
		case s.Items != nil:
			s = s.Items.Value
		case len(s.AllOf) == 1 && len(s.Properties) == 0:
			s = s.AllOf[0].Value
		default:
			return s
		}
	}
	return nil
}

// compare returns how Go type t and object schema s disagree, each problem prefixed with at.
func compare(t reflect.Type, s *openapi3.Schema, at string) []string {
	var out []string
	fields := jsonFields(t)
	seen := map[string]bool{}
	for _, f := range fields {
		seen[f.name] = true
		prop, ok := s.Properties[f.name]
		if !ok {
			out = append(out, at+`: field "`+f.name+`" is not a property of the schema`)
		}
		switch required := slices.Contains(s.Required, f.name); {
		case required && f.omitempty:
			out = append(out, at+`: field "`+f.name+`" is omitempty but required`)
		case !required && !f.omitempty:
			out = append(out, at+`: field "`+f.name+`" is not omitempty but not required`)
		}
		if !ok {
			continue
		}
		sub, ps := objectType(f.typ), objectSchema(prop.Value)
		switch {
		case sub != nil && ps != nil && len(ps.Properties) > 0:
			out = append(out, compare(sub, ps, at+"."+f.name)...)
		case sub != nil:
			out = append(out, at+`: field "`+f.name+`" is an object, its property is not`)
		case ps != nil && len(ps.Properties) > 0:
			out = append(out, at+`: property "`+f.name+`" is an object, its field is not`)
		}
	}
	for name := range s.Properties {
		if !seen[name] {
			out = append(out, at+`: property "`+name+`" has no field`)
		}
	}
	return out
}
