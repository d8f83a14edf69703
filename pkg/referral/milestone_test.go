package referral

import (
	"slices"
	"testing"
)

func TestValidateMilestones(t *testing.T) {
	m := func(ns ...int) []Milestone {
		out := make([]Milestone, len(ns))
		for i, n := range ns {
			out[i] = Milestone{SuccessfulReferrals: n}
		}
		return out
	}
	twentyOne := make([]int, 21)
	for i := range twentyOne {
		twentyOne[i] = i + 1
	}
	tests := []struct {
		name   string
		ms     []Milestone
		fields []string
	}{
		{"none", nil, nil},
		{"increasing", m(1, 5, 10), nil},
		{"twenty", m(twentyOne[:20]...), nil},
		{"twenty-one", m(twentyOne...), []string{"milestones"}},
		{"zero", m(0, 5), []string{"milestones[0].successful_referrals"}},
		{"equal", m(5, 5), []string{"milestones[1].successful_referrals"}},
		{"decreasing", m(5, 10, 3), []string{"milestones[2].successful_referrals"}},
		{"too large", m(1 << 31), []string{"milestones[0].successful_referrals"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := FieldErrors{}
			ValidateMilestones(fe, "milestones", tt.ms)
			var got []string
			for k := range fe {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.fields) {
				t.Errorf("fields %v, want %v", got, tt.fields)
			}
		})
	}
}

func TestMilestonesReached(t *testing.T) {
	ms := []Milestone{{SuccessfulReferrals: 1}, {SuccessfulReferrals: 3}, {SuccessfulReferrals: 5}}
	tests := []struct {
		count int64
		paid  []int
		want  []int
	}{
		{0, nil, nil},
		{1, nil, []int{1}},
		{2, []int{1}, nil},
		{3, []int{1}, []int{3}},
		{4, []int{1, 3}, nil},
		{7, nil, []int{1, 3, 5}},     // a threshold added later pays at the next success
		{7, []int{1, 3, 5}, nil},     // each threshold once
		{5, []int{1, 3, 5, 10}, nil}, // a removed threshold stays paid
		{6, []int{1, 5}, []int{3}},   // a threshold inserted below pays
	}
	for _, tt := range tests {
		paid := map[int]bool{}
		for _, n := range tt.paid {
			paid[n] = true
		}
		var got []int
		for _, m := range MilestonesReached(ms, tt.count, paid) {
			got = append(got, m.SuccessfulReferrals)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("count %d paid %v: got %v, want %v", tt.count, tt.paid, got, tt.want)
		}
	}
}
