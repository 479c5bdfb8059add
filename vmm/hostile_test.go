package vmm_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
)

// hostileGroups are the check groups of examples/hostile, in the order it
// runs them.
var hostileGroups = []string{"forged", "stale", "revoke", "derive", "pointers", "lengths", "grant",
	"peergone", "quota", "children", "files", "state", "ipc", "exhaust"}

// TestHostileGuest runs the hostile guest, which throws bad input at every
// operation from inside a space (forged, stale and revoked handles, rights
// escalation, reserved and unmapped pointers, overflowing lengths,
// transfers without grant, dead servers, quotas, a loop of children,
// files names leaving the root, garbage thread states, mappings until the
// monitor's host budget is spent), on every backend.
// Every check must hold, the monitor must answer to the end, and nothing
// outside the files root may change.
func TestHostileGuest(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		tree := testutil.NewFilesTree(t)
		out, r := runWithFiles(t, b, tree.Root, false, "hostile")
		var want strings.Builder
		for _, g := range hostileGroups {
			if g == "quota" {
				want.WriteString("hostile: a region beyond a child's pages: quota exceeded\n")
			}
			fmt.Fprintf(&want, "PASS %s\n", g)
		}
		if out != want.String() || !r.Exited || r.Status != 0 {
			t.Errorf("hostile: %s; output:\n%s", r, out)
		}
		tree.CheckOutside(t)
	})
}

// TestHostileChurnBoundsMemory checks that the monitor's own memory stays
// bounded while a guest creates and kills children in a loop, each with a
// region, a port and a running thread: every round's machine, memfds and
// vCPU must be given back. After a warm-up (pools and caches of the Go
// runtime and of the backend fill once, and the process gets the OS
// threads the most spaces alive at once need), 2000 more rounds must leave
// the open file descriptors exactly where they were (each space holds a
// memfd and, on kvm, a VM and a vCPU descriptor: one leaked per round would
// be 2000) and the goroutines too. The Go heap may move by 2 MiB, and the
// resident memory by 128 MiB: that follows the peak number of OS threads
// (and, on emu, of the C allocator's per-thread arenas holding Unicorn
// engines), not the number of rounds. One leaked space per round would
// exceed both: a space's records are kilobytes of heap, a Unicorn engine
// megabytes.
func TestHostileChurnBoundsMemory(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		churn := func(n int) {
			t.Helper()
			arg := strconv.Itoa(n)
			out, r := runGuest(t, b, "hostile", 0, "churn", arg)
			if out != "churn "+arg+" done\n" || !r.Exited || r.Status != 0 {
				t.Fatalf("hostile churn %d: %s; output:\n%s", n, r, out)
			}
		}
		start := measure(t, nil)
		churn(500)
		before := measure(t, &start)
		churn(2000)
		after := measure(t, &start)
		const heapMargin, rssMargin = 2 << 20, 128 << 20
		if after.fds > start.fds {
			t.Errorf("the rounds left %d more open files:\n%s", after.fds-start.fds, strings.Join(after.fdNames, "\n"))
		}
		if after.goroutines > start.goroutines {
			t.Errorf("the rounds left %d more goroutines", after.goroutines-start.goroutines)
		}
		if after.heap > before.heap+heapMargin {
			t.Errorf("the Go heap grew from %d to %d KiB over 2000 rounds", before.heap>>10, after.heap>>10)
		}
		if after.rss > before.rss+rssMargin {
			t.Errorf("resident memory grew from %d to %d MiB over 2000 rounds", before.rss>>20, after.rss>>20)
		}
		t.Logf("heap %d -> %d KiB, resident %d -> %d MiB, %d files, %d goroutines",
			before.heap>>10, after.heap>>10, before.rss>>20, after.rss>>20, after.fds, after.goroutines)
	})
}

// usage is what the monitor process holds.
type usage struct {
	fds, goroutines int
	fdNames         []string
	heap, rss       uint64
}

// measure reads the process's usage, once spaces still finishing (children
// a guest killed just before it ended) are done: it waits, within reason,
// for the descriptors and goroutines to come back to base's.
func measure(t *testing.T, base *usage) usage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var u usage
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		u.heap = ms.HeapInuse
		u.goroutines = runtime.NumGoroutine()
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		u.fds = len(ents)
		for _, e := range ents {
			target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
			u.fdNames = append(u.fdNames, e.Name()+" -> "+target)
		}
		statm, err := os.ReadFile("/proc/self/statm")
		if err != nil {
			t.Fatal(err)
		}
		var size, resident uint64
		fmt.Sscan(string(statm), &size, &resident)
		u.rss = resident * uint64(os.Getpagesize())
		if base == nil || (u.fds <= base.fds && u.goroutines <= base.goroutines) || time.Now().After(deadline) {
			return u
		}
		time.Sleep(10 * time.Millisecond)
	}
}
