package pager

import (
	"strings"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// held returns the host memory the regions l keeps hold now.
func held(t *testing.T, l *Layer) (bytes uint64) {
	t.Helper()
	c := l.host.NewCaller()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.regions {
		obj, _, _, err := c.Lookup(r.h)
		if err != nil {
			continue
		}
		n, err := obj.(*vmm.Region).Allocated()
		if err != nil {
			t.Fatal(err)
		}
		bytes += n
	}
	return bytes
}

// TestHostMemoryBounded: under the pager, the host memory of memtouch's
// regions stays near max-pages (evicted pages are released, not only
// unmapped); with room for everything it grows to the whole heap.
func TestHostMemoryBounded(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		const limit = 128
		l := newPager(t, limit, nil)
		var peak uint64
		l.evicted = func() {
			n := held(t, l)
			peak = max(peak, n)
		}
		out, res := run(t, b, []nester.Layer{l}, "", "memtouch", "8")
		if !res.Exited || res.Status != 0 || !strings.Contains(out, "checksum") {
			t.Fatalf("memtouch 8 under the pager: %q, %v", out, res)
		}
		// Resident pages, plus the first contents the loader wrote of
		// pages not touched yet (the image, the stack's top).
		if bound := uint64(2*limit) * abi.PageSize; peak == 0 || peak > bound {
			t.Errorf("peak host memory %d KiB with %d pages resident at most: want at most %d KiB", peak>>10, limit, bound>>10)
		}
		t.Logf("peak host memory of the program's regions: %d KiB (max-pages %d)", peak>>10, limit)
	})
}
