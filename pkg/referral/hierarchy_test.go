package referral

import (
	"slices"
	"testing"

	"github.com/google/uuid"
)

// affTree names the nodes of a small test tree:
//
//	r ─ a ─ b ─ c
//	  └ x
var (
	affR = uuid.MustParse("00000000-0000-0000-0000-000000000001")
	affA = uuid.MustParse("00000000-0000-0000-0000-00000000000a")
	affB = uuid.MustParse("00000000-0000-0000-0000-00000000000b")
	affC = uuid.MustParse("00000000-0000-0000-0000-00000000000c")
	affX = uuid.MustParse("00000000-0000-0000-0000-0000000000ff")
)

func affPath(ids ...uuid.UUID) []uuid.UUID { return append([]uuid.UUID{}, ids...) }

func TestCheckUpline(t *testing.T) {
	tests := []struct {
		name            string
		node, parent    uuid.UUID
		parentAncestors []uuid.UUID
		cycle           bool
	}{
		{"self", affA, affA, affPath(affR), true},
		{"direct child as parent", affA, affB, affPath(affR, affA), true},
		{"deep descendant as parent", affR, affC, affPath(affR, affA, affB), true},
		{"sibling branch", affA, affX, affPath(affR), false},
		{"own ancestor (no-op move)", affB, affA, affPath(affR), false},
		{"root under a leaf of another branch", affX, affC, affPath(affR, affA, affB), false},
		{"parent is a root", affC, affR, affPath(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckUpline(tt.node, tt.parent, tt.parentAncestors)
			if got := err != nil; got != tt.cycle {
				t.Fatalf("CheckUpline = %v, want cycle %v", err, tt.cycle)
			}
			if tt.cycle && ErrorCode(err) != EHierarchyCycle {
				t.Fatalf("code = %s, want %s", ErrorCode(err), EHierarchyCycle)
			}
		})
	}
}

func TestAncestorsUnder(t *testing.T) {
	if got := AncestorsUnder(nil, affPath(affR)); got == nil || len(got) != 0 {
		t.Fatalf("root: got %v, want empty non-nil", got)
	}
	parentAncestors := affPath(affR)
	got := AncestorsUnder(&affA, parentAncestors)
	if want := affPath(affR, affA); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	got[0] = affX
	if parentAncestors[0] != affR {
		t.Fatal("AncestorsUnder aliased its input")
	}
}

func TestHierarchyPolicyValidate(t *testing.T) {
	tests := []struct {
		name  string
		p     HierarchyPolicy
		field string // "" = valid
	}{
		{"depth 0 no rates", HierarchyPolicy{MaxDepth: 0, LevelRates: []Rate{}}, ""},
		{"three levels", HierarchyPolicy{MaxDepth: 3, LevelRates: []Rate{100000, 50000, 25000}}, ""},
		{"sum exactly 1", HierarchyPolicy{MaxDepth: 3, LevelRates: []Rate{333333, 333333, 333334}}, ""},
		{"sum just over 1", HierarchyPolicy{MaxDepth: 3, LevelRates: []Rate{333333, 333333, 333335}}, "level_rates"},
		{"ten levels", HierarchyPolicy{MaxDepth: 10, LevelRates: make([]Rate, 10)}, ""},
		{"eleven levels", HierarchyPolicy{MaxDepth: 11, LevelRates: make([]Rate, 11)}, "max_depth"},
		{"negative depth", HierarchyPolicy{MaxDepth: -1, LevelRates: nil}, "max_depth"},
		{"too few rates", HierarchyPolicy{MaxDepth: 2, LevelRates: []Rate{1}}, "level_rates"},
		{"too many rates", HierarchyPolicy{MaxDepth: 1, LevelRates: []Rate{1, 2}}, "level_rates"},
		{"rate above 1", HierarchyPolicy{MaxDepth: 1, LevelRates: []Rate{RateScale + 1}}, "level_rates"},
		{"single rate of 1", HierarchyPolicy{MaxDepth: 1, LevelRates: []Rate{RateScale}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Code != EValidation || e.Fields[tt.field] == "" {
				t.Fatalf("Validate = %v, want VALIDATION_FAILED on %s", err, tt.field)
			}
		})
	}
}
