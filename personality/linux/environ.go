package linux

import (
	"path/filepath"
	"strings"
)

// Environ composes a program's environment (Personality.Environ): base's
// NAME=VALUE strings, in order, less those whose names unset lists or set
// gives anew, then set's. nestvm run passes the monitor's own environment
// as base (none with --clear-env), --unset-env as unset and --env as set.
func Environ(base, set, unset []string) []string {
	drop := map[string]bool{}
	for _, n := range unset {
		drop[n] = true
	}
	for _, kv := range set {
		n, _, _ := strings.Cut(kv, "=")
		drop[n] = true
	}
	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		n, _, _ := strings.Cut(kv, "=")
		if !drop[n] {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}

// ExePath is how a program started from the host path prog, whose files
// root is the host directory root, finds itself (Personality.Exe: what
// /proc/self/exe and AT_EXECFN say): its path under root when it lies
// there, as in a chroot, else prog as it was given.
func ExePath(prog, root string) string {
	p, err1 := filepath.Abs(prog)
	r, err2 := filepath.Abs(root)
	if err1 != nil || err2 != nil {
		return prog
	}
	rel, err := filepath.Rel(r, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return prog
	}
	return "/" + filepath.ToSlash(rel)
}
