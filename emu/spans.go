package emu

import "sort"

// span is a half-open address range [start, end).
type span struct{ start, end uint64 }

// spans is a set of addresses kept as sorted, disjoint, non-adjacent
// ranges: where an engine lets code run.
type spans []span

// set adds [start, end) to the set when in is true, else removes it.
func (s *spans) set(start, end uint64, in bool) {
	var out spans
	for _, r := range *s {
		if r.end <= start || r.start >= end {
			out = append(out, r)
			continue
		}
		if r.start < start {
			out = append(out, span{r.start, start})
		}
		if r.end > end {
			out = append(out, span{end, r.end})
		}
	}
	if in {
		out = append(out, span{start, end})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && merged[n-1].end >= r.start {
			merged[n-1].end = max(merged[n-1].end, r.end)
			continue
		}
		merged = append(merged, r)
	}
	*s = merged
}

func (s spans) clone() spans { return append(spans(nil), s...) }

func (s spans) contains(a uint64) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i].end > a })
	return i < len(s) && s[i].start <= a
}

// overlaps reports whether any address of [start, end) is in s.
func (s spans) overlaps(start, end uint64) bool {
	i := sort.Search(len(s), func(i int) bool { return s[i].end > start })
	return i < len(s) && s[i].start < end
}

// change is a range whose membership differs between two sets.
type change struct {
	start, end uint64
	exec       bool // membership in the new set
}

// diff lists the ranges where s and t differ, with t's membership.
func (s spans) diff(t spans) []change {
	var edges []uint64
	for _, r := range s {
		edges = append(edges, r.start, r.end)
	}
	for _, r := range t {
		edges = append(edges, r.start, r.end)
	}
	sort.Slice(edges, func(i, j int) bool { return edges[i] < edges[j] })
	var out []change
	for i := 0; i+1 < len(edges); i++ {
		a, b := edges[i], edges[i+1]
		if a == b {
			continue
		}
		was, is := s.contains(a), t.contains(a)
		if was == is {
			continue
		}
		if n := len(out); n > 0 && out[n-1].end == a && out[n-1].exec == is {
			out[n-1].end = b
			continue
		}
		out = append(out, change{a, b, is})
	}
	return out
}

// clip splits [start, end) at the boundaries of the sorted, disjoint
// ranges in within, keeping only the parts inside them.
func clip(within []span, start, end uint64) []span {
	var out []span
	for _, r := range within {
		a, b := max(start, r.start), min(end, r.end)
		if a < b {
			out = append(out, span{a, b})
		}
	}
	return out
}

// pieceSize bounds the emulator regions a mapping is cut into. Unicorn
// 2.0.1 unmaps a region page by page (about 12 ms a GiB) whenever
// uc_mem_protect splits it, so a later change of exec permission must
// never split one huge region.
const pieceSize = 1 << 30

// pieces cuts [start, end) at every pieceSize boundary and at the edges of
// exec, so that each piece has one exec permission.
func pieces(start, end uint64, exec spans) []span {
	cuts := []uint64{start, end}
	for a := (start/pieceSize + 1) * pieceSize; a < end; a += pieceSize {
		cuts = append(cuts, a)
	}
	for _, r := range exec {
		for _, a := range []uint64{r.start, r.end} {
			if a > start && a < end {
				cuts = append(cuts, a)
			}
		}
	}
	sort.Slice(cuts, func(i, j int) bool { return cuts[i] < cuts[j] })
	var out []span
	for i := 0; i+1 < len(cuts); i++ {
		if cuts[i] < cuts[i+1] {
			out = append(out, span{cuts[i], cuts[i+1]})
		}
	}
	return out
}
