package vmm_test

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/machine"
)

// procStatus returns a field of /proc/self/status in bytes (VmRSS,
// VmHWM).
func procStatus(t *testing.T, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestQueuedBytesCharged: 64 child spaces, one after another, each send
// 16 MiB to a port nobody reads. Each is within its own limits, so only
// the memory quota of the tree bounds what the monitor holds: the sends
// past it are refused with NV_EQUOTA, and the monitor's peak RSS grows by
// no more than the quota plus a fixed overhead (without the charge it
// grew by the full 1 GiB). The assertion is about memory, not time.
func TestQueuedBytesCharged(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		const mem = 256 << 20
		const overhead = 96 << 20 // the runtime, engines, page tables, the children's buffers while they run
		debug.FreeOSMemory()
		// Writing 5 resets VmHWM to the present RSS.
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			t.Fatalf("reset the peak RSS: %v", err)
		}
		base := procStatus(t, "VmRSS")
		out, r := layertest.RunWith(t, b, nil, layertest.Options{Memory: mem}, "flood", "64")
		peak := procStatus(t, "VmHWM")
		if !r.Exited || r.Status != 0 {
			t.Fatalf("flood 64: %s\n%s", r, out)
		}
		var sent, refused uint64
		if _, err := fmt.Sscanf(out[strings.LastIndex(out, "flood "):], "flood sent=%d refused=%d", &sent, &refused); err != nil {
			t.Fatalf("flood 64: %v in %q", err, out)
		}
		if sent+refused != 64 || refused == 0 || sent*(16<<20) > mem {
			t.Errorf("flood 64: %d sent, %d refused: the quota of %d MiB does not bound the queued bytes", sent, refused, mem>>20)
		}
		if grew := int64(peak) - int64(base); grew > mem+overhead {
			t.Errorf("the monitor's RSS grew by %d MiB, past --mem (%d MiB) plus %d MiB", grew>>20, mem>>20, overhead>>20)
		} else {
			t.Logf("%d sent, %d refused; RSS grew by %d MiB", sent, refused, grew>>20)
		}
	})
}
