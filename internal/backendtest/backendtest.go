// Package backendtest runs one test table against every backend: kvm where
// /dev/kvm opens (skipped with the reason elsewhere), and emu wherever it is
// built. Tests of backend-neutral packages use it so that the same guest
// programs, with the same expected outputs, run on each backend.
package backendtest

import (
	"testing"

	// Both backends register themselves.
	_ "nestvm/emu"
	_ "nestvm/kvm"
	"nestvm/machine"

	"nestvm/internal/testutil"
)

// Names are the backends every table runs on.
var Names = []string{"kvm", "emu"}

// Get returns backend name, or skips t saying why it cannot run here.
func Get(t testing.TB, name string) machine.Backend {
	t.Helper()
	if name == "kvm" {
		testutil.RequireKVM(t)
	}
	b, err := machine.Lookup(name)
	switch {
	case err == nil:
		return b
	case name == "emu" && !builtIn(name):
		// Only static CGO_ENABLED=0 test binaries (made for a KVM host)
		// lack emu; everywhere else tests are built with cgo.
		t.Skipf("emu backend not built into this test binary (CGO_ENABLED=0): %v", err)
	case name == "emu":
		// emu must run wherever tests run: unavailable is a broken build.
		t.Fatalf("emu backend unavailable: %v", err)
	default:
		t.Skipf("backend %s unavailable: %v", name, err)
	}
	return nil
}

// builtIn reports whether backend name is compiled into this binary.
func builtIn(name string) bool {
	for _, b := range machine.Backends() {
		if b.Name() == name {
			return true
		}
	}
	return false
}

// Each runs f as a subtest for every backend.
func Each(t *testing.T, f func(t *testing.T, b machine.Backend)) {
	t.Helper()
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			f(t, Get(t, name))
		})
	}
}
