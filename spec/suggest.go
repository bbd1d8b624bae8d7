package spec

import "strings"

// Did-you-mean suggestions for names people type: spec fields, mapping
// names, commands and flags, and the Asset Panda and AD names a mapping
// uses. One rule serves them all, so that every "did you mean" agrees.

// Closest returns the candidate nearest to name when it is close enough to
// be a likely typo (or name is a prefix of it), else "".
func Closest(name string, candidates []string) string {
	if c := CloseMatches(name, candidates, 1); len(c) > 0 {
		return c[0]
	}
	return ""
}

// CloseMatches returns up to n candidates close to name, nearest first:
// those within an edit distance of max(2, len/3), case-insensitive, and
// those name is a prefix of.
func CloseMatches(name string, candidates []string, n int) []string {
	type scored struct {
		s string
		d int
	}
	var found []scored
	seen := map[string]bool{}
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if c == "" || seen[lc] {
			continue
		}
		d, ok := Closeness(name, c)
		if !ok {
			continue
		}
		seen[lc] = true
		found = append(found, scored{c, d})
	}
	// Insertion sort: the lists are short.
	for i := 1; i < len(found); i++ {
		for j := i; j > 0 && (found[j].d < found[j-1].d || found[j].d == found[j-1].d && found[j].s < found[j-1].s); j-- {
			found[j], found[j-1] = found[j-1], found[j]
		}
	}
	var out []string
	for _, f := range found {
		if len(out) == n {
			break
		}
		out = append(out, f.s)
	}
	return out
}

// Closeness scores how near a typed name is to a candidate, case-
// insensitive: the edit distance, and ok when the candidate is a likely
// meaning of the name — within max(2, len/3) edits, or starting with a
// name of at least 3 characters (scored at least 3).
func Closeness(name, candidate string) (score int, ok bool) {
	ln, lc := strings.ToLower(name), strings.ToLower(candidate)
	d := editDistance(ln, lc)
	switch {
	case d <= max(2, len([]rune(name))/3):
		return d, true
	case len(ln) >= 3 && strings.HasPrefix(lc, ln):
		return max(d, 3), true
	}
	return d, false
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
