package referral

import (
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// Hierarchy limits (§4.8).
const (
	// MaxPolicyDepth is the largest max_depth of a hierarchy policy.
	MaxPolicyDepth = 10
	// MaxDownlineDepth is the largest depth a downline read may ask for.
	MaxDownlineDepth = 50
)

// The affiliate hierarchy is stored as a materialised path: every affiliate keeps its ancestors,
// root first and excluding itself. The rules below work on those lists only, so each costs
// O(depth) whatever the size of the tree.

// CheckUpline reports whether node may be placed under parent, whose ancestors are
// parentAncestors: a parent equal to the node or below it (the node is among the parent's
// ancestors) would close a cycle → HIERARCHY_CYCLE.
func CheckUpline(node, parent uuid.UUID, parentAncestors []uuid.UUID) error {
	if parent == node {
		return Errorf(EHierarchyCycle, "an affiliate cannot be its own parent")
	}
	if slices.Contains(parentAncestors, node) {
		return Errorf(EHierarchyCycle, "the new parent is in the affiliate's downline")
	}
	return nil
}

// AncestorsUnder returns the ancestors of a node placed under parent (nil parent: a root).
func AncestorsUnder(parent *uuid.UUID, parentAncestors []uuid.UUID) []uuid.UUID {
	if parent == nil {
		return []uuid.UUID{}
	}
	out := make([]uuid.UUID, 0, len(parentAncestors)+1)
	out = append(out, parentAncestors...)
	return append(out, *parent)
}

// Validate checks a hierarchy policy (§4.8): max_depth 0–10, one rate per level, each rate
// 0–1, and the rates together at most 1 (compared exactly).
func (p *HierarchyPolicy) Validate() error {
	fe := FieldErrors{}
	if p.MaxDepth < 0 || p.MaxDepth > MaxPolicyDepth {
		fe.Add("max_depth", fmt.Sprintf("must be an integer from 0 to %d", MaxPolicyDepth))
	}
	if len(p.LevelRates) != p.MaxDepth {
		fe.Add("level_rates", "must hold exactly max_depth rates")
	}
	var sum Rate
	for _, r := range p.LevelRates {
		if r < 0 || r > RateScale {
			fe.Add("level_rates", "each rate must be from 0 to 1")
		}
		sum += r
	}
	if sum > RateScale {
		fe.Add("level_rates", "rates must add up to at most 1")
	}
	return fe.Err()
}

// DownlineMember is an affiliate in another's downline, Level steps below it (1 = a direct child).
type DownlineMember struct {
	Affiliate
	Level int
}
