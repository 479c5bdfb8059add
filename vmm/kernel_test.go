package vmm_test

import (
	"strings"
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/machine"
)

// TestKernelObjects runs the kerneltest guest, which exercises the object
// kernel from inside a space (handles, threads, ports, the uniform
// interposition rule, restartable calls, faults to the exception port,
// keepers, dirty pages, quotas, splitting and
// protecting mappings while threads run), one area at a time on every backend.
func TestKernelObjects(t *testing.T) {
	for _, area := range []string{"derive", "threads", "ipc", "interpose", "restart", "fault", "keeper", "dirty", "quota", "mem", "batch"} {
		t.Run(area, func(t *testing.T) {
			backendtest.Each(t, func(t *testing.T, b machine.Backend) {
				out, r := runGuest(t, b, "kerneltest", 0, area)
				if !strings.Contains(out, "PASS "+area+"\n") || strings.Contains(out, "FAIL") {
					t.Errorf("kerneltest %s:\n%s", area, out)
				}
				if !r.Exited || r.Status != 0 {
					t.Errorf("kerneltest %s: %s, want exit status 0", area, r)
				}
			})
		})
	}
}
