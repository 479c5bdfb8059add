package vmm_test

import (
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/vmm"
)

// TestCrashesAgree: faults real hardware reports in one way end a program
// the same way on every backend: the same fault (vector and error code,
// at the same instruction), so the same status and message. Each backend
// must give what hardware gives, and the backends that run here must
// agree with each other.
func TestCrashesAgree(t *testing.T) {
	cases := []struct {
		mode   string
		vector machine.Vector
		code   uint32
	}{
		{"stack", machine.VecStack, 0},        // push through a non-canonical RSP
		{"rbp", machine.VecStack, 0},          // a load through a non-canonical RBP
		{"load", machine.VecGP, 0},            // a load from a non-canonical address
		{"int3", machine.VecBreakpoint, 0},    // int3
		{"int80", machine.VecGP, 0x80<<3 | 2}, // int $0x80: no such gate
		{"abifill", machine.VecBreakpoint, 0}, // past the ABI page's stubs
		// Into the middle of the entry stub: both backends run the same
		// bytes there, which write to the read-only ABI page.
		{"abimid", machine.VecPage, machine.PFPresent | machine.PFWrite | machine.PFUser},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			got := map[string]vmm.Result{}
			backendtest.Each(t, func(t *testing.T, b machine.Backend) {
				out, r := runGuest(t, b, "crashes", 0, c.mode)
				if want := "crashes: " + c.mode + "\n"; out != want {
					t.Errorf("output %q, want %q", out, want)
				}
				if r.Fault == nil {
					t.Fatalf("result %s, want a %s", r, c.vector)
				}
				if f := r.Fault.Fault; f.Vector != c.vector || f.ErrorCode != c.code {
					t.Errorf("fault %s (error code %#x), want a %s (error code %#x)", f, f.ErrorCode, c.vector, c.code)
				}
				got[b.Name()] = r
			})
			var first string
			var fr vmm.Result
			for name, r := range got {
				if first == "" {
					first, fr = name, r
					continue
				}
				// The same fault is the same message and exit status.
				if r.String() != fr.String() || *r.Fault != *fr.Fault || r.Fault.Fault.ExitStatus() != fr.Fault.Fault.ExitStatus() {
					t.Errorf("%s: %s (%+v); %s: %s (%+v)", first, fr, *fr.Fault, name, r, *r.Fault)
				}
			}
		})
	}
}
