package spec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCloseMatches(t *testing.T) {
	tests := map[string]struct {
		name       string
		candidates []string
		n          int
		want       []string
	}{
		"typo":             {"IT Asets", []string{"Facilities", "IT Assets"}, 3, []string{"IT Assets"}},
		"case":             {"module admin", []string{"Module Admin", "Collaborator"}, 3, []string{"Module Admin"}},
		"nearest first":    {"titel", []string{"telephoneNumber", "title", "titles"}, 3, []string{"title", "titles"}},
		"prefix":           {"dep", []string{"department", "description"}, 3, []string{"department"}},
		"too far":          {"mail", []string{"department", "userPrincipalName"}, 3, nil},
		"n caps the list":  {"plna", []string{"plan", "plans", "play"}, 1, []string{"plan"}},
		"duplicates once":  {"spek", []string{"spec", "Spec"}, 3, []string{"spec"}},
		"empty candidates": {"x", nil, 3, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, CloseMatches(tc.name, tc.candidates, tc.n)); diff != "" {
				t.Errorf("CloseMatches(%q) (-want +got):\n%s", tc.name, diff)
			}
		})
	}
	if got := Closest("specs", []string{"apiVersion", "kind", "metadata", "spec"}); got != "spec" {
		t.Errorf(`Closest("specs") = %q, want "spec"`, got)
	}
}
