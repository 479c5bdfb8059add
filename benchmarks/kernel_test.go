package benchmarks

import (
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/machine"
)

// perOp runs "bench mode n" until at least max(b.N, least) iterations have
// run, at most most of them in one guest run, and returns the guest's own
// measurement in nanoseconds per iteration. Each guest run does its set-up
// untimed, so guest start-up and first-use costs are not part of it.
func perOp(b *testing.B, be machine.Backend, mode string, least, most int) float64 {
	b.Helper()
	total := max(b.N, least)
	var ns float64
	for done := 0; done < total; {
		n := min(total-done, most)
		ns += guestNs(b, be, mode, n)
		done += n
	}
	return ns / float64(total)
}

// BenchmarkIPC times a call/reply round trip between two threads of one
// guest space (port_call answered by port_receive and port_reply), beside
// a bare ABI call (handle_info) measured in the same run. ns/op is the
// round trip.
func BenchmarkIPC(b *testing.B) {
	eachBackend(b, func(b *testing.B, be machine.Backend) {
		ipc := perOp(b, be, "ipc", 1000, 1<<20)
		call := perOp(b, be, "info", 1000, 1<<20)
		b.ReportMetric(ipc, "ns/op")
		b.ReportMetric(ipc, "ipc-ns")
		b.ReportMetric(call, "call-ns")
		b.ReportMetric(ipc/call, "ipc/call")
	})
}

// BenchmarkKeeper times a page supplied by a guest keeper: a thread's
// first touch of a page of a kept region, the page request to a keeper
// thread of the same space, its region_supply of a whole page and the
// reply that resumes the toucher. A bare ABI call is measured in the same
// run for the ratio. ns/op is one page.
func BenchmarkKeeper(b *testing.B) {
	eachBackend(b, func(b *testing.B, be machine.Backend) {
		// 16384 pages (64 MiB) a run at most: the region is charged to
		// the guest's quota, half of which its own heap holds.
		page := perOp(b, be, "keeper", 200, 16384)
		call := perOp(b, be, "info", 1000, 1<<20)
		b.ReportMetric(page, "ns/op")
		b.ReportMetric(page/1e3, "page-µs")
		b.ReportMetric(call, "call-ns")
		b.ReportMetric(page/call, "page/call")
	})
}

// BenchmarkSpawn times, from inside a guest, creating a child space with
// a one-page region mapped in it and a thread that exits at once, starting
// the thread and waiting for the child's exit notice on its exception
// port (then closing the handles). ns/op is one child.
func BenchmarkSpawn(b *testing.B) {
	eachBackend(b, func(b *testing.B, be machine.Backend) {
		child := perOp(b, be, "spawn", 20, 1000)
		b.ReportMetric(child, "ns/op")
		b.ReportMetric(child/1e3, "child-µs")
	})
}

// TestBenchGuest runs every mode of the bench guest a few times on each
// backend, so that a mode the benchmarks rely on cannot break unnoticed
// between benchmark runs. It checks what the guest reports, never how
// long anything took.
func TestBenchGuest(t *testing.T) {
	for _, mode := range []string{"nulltrap", "info", "write", "compute", "ipc", "keeper", "spawn"} {
		t.Run(mode, func(t *testing.T) {
			backendtest.Each(t, func(t *testing.T, be machine.Backend) {
				if ns := guestNs(t, be, mode, 3); ns <= 0 {
					t.Errorf("bench %s 3 took %v ns", mode, ns)
				}
			})
		})
	}
	t.Run("unknown", func(t *testing.T) {
		backendtest.Each(t, func(t *testing.T, be machine.Backend) {
			if r := runResult(t, be, "bench", nil, nil, "nosuchmode", "1"); !r.Exited || r.Status == 0 {
				t.Errorf("bench nosuchmode: %s, want a nonzero exit", r)
			}
		})
	})
}
