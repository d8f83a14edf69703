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

func TestRebase(t *testing.T) {
	// Move a (ancestors [r]) under x (ancestors [r]) → new prefix [r x].
	tests := []struct {
		name      string
		desc      []uuid.UUID
		oldLen    int
		newPrefix []uuid.UUID
		want      []uuid.UUID
	}{
		{"child of moved node", affPath(affR, affA), 1, affPath(affR, affX), affPath(affR, affX, affA)},
		{"grandchild", affPath(affR, affA, affB), 1, affPath(affR, affX), affPath(affR, affX, affA, affB)},
		{"move to root", affPath(affR, affA, affB), 1, affPath(), affPath(affA, affB)},
		{"root moved under a deep node", affPath(affR), 0, affPath(affX, affC), affPath(affX, affC, affR)},
		{"shallower new parent", affPath(affR, affA, affB, affC), 2, affPath(affR), affPath(affR, affB, affC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rebase(tt.desc, tt.oldLen, tt.newPrefix); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Rebase past the path did not panic")
		}
	}()
	Rebase(affPath(affR), 2, nil)
}

func TestSplice(t *testing.T) {
	tests := []struct {
		name    string
		desc    []uuid.UUID
		removed uuid.UUID
		want    []uuid.UUID
	}{
		{"child of removed", affPath(affR, affA), affA, affPath(affR)},
		{"grandchild of removed", affPath(affR, affA, affB), affA, affPath(affR, affB)},
		{"removed root", affPath(affR, affA, affB), affR, affPath(affA, affB)},
		{"not on the path", affPath(affR, affA), affX, affPath(affR, affA)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Splice(tt.desc, tt.removed); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLevel(t *testing.T) {
	tests := []struct {
		name      string
		node      uuid.UUID
		nodeAnc   []uuid.UUID
		descAnc   []uuid.UUID
		wantLevel int
		wantOK    bool
	}{
		{"direct child of root", affR, affPath(), affPath(affR), 1, true},
		{"grandchild", affR, affPath(), affPath(affR, affA), 2, true},
		{"deep from the middle", affA, affPath(affR), affPath(affR, affA, affB), 2, true},
		{"self is not a descendant", affA, affPath(affR), affPath(affR), 0, false},
		{"sibling branch", affA, affPath(affR), affPath(affR, affX), 0, false},
		{"ancestor is not a descendant", affB, affPath(affR, affA), affPath(affR), 0, false},
		{"same id under another prefix", affA, affPath(affR), affPath(affX, affA, affB), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			level, ok := Level(tt.node, tt.nodeAnc, tt.descAnc)
			if level != tt.wantLevel || ok != tt.wantOK {
				t.Fatalf("Level = %d, %v; want %d, %v", level, ok, tt.wantLevel, tt.wantOK)
			}
		})
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
