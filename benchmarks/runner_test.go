package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"

	// The layer the runner's tests stack registers itself with nester.
	_ "nestvm/services/null"
)

func TestExpandSpec(t *testing.T) {
	if got := expandSpec("trace={tmp}/t-{level}.jsonl", "/x", 3); got != "trace=/x/t-3.jsonl" {
		t.Errorf("expandSpec: %q", got)
	}
}

// newBench prepares cfg with the built guests, closing it when t ends.
func newBench(t *testing.T, cfg Config) *Bench {
	t.Helper()
	cfg.GuestDir, cfg.Timeout = testutil.GuestDir(t), time.Minute
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestRunnerRows runs hello and a small fanout under a null layer at
// depths 0 and 1 through the library, on each backend, and checks the
// rows it reports: one per workload and depth, a slowdown of 1 at depth
// 0, and fanout's count, rate and memory.
func TestRunnerRows(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	testutil.Guest(t, "hello")
	testutil.Guest(t, "fanout")
	fanout, _ := FindWorkload("fanout")
	hello, _ := FindWorkload("hello")
	backendtest.Each(t, func(t *testing.T, be machine.Backend) {
		var steps []string
		b := newBench(t, Config{Workloads: []Workload{hello, SizeFanout(fanout, 4)}, Layers: []string{"null"}, DepthLo: 0, DepthHi: 1, Reps: 1,
			Progress: func(step, total int, what string) { steps = append(steps, fmt.Sprintf("%d/%d %s", step, total, what)) }})
		rep, err := b.Run(context.Background(), be)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Backend != be.Name() || rep.Reps != 1 || rep.Host.CPUs <= 0 {
			t.Errorf("report: backend %q, reps %d, host %+v", rep.Backend, rep.Reps, rep.Host)
		}
		if want := []string{"1/6 hello: warm-up", "2/6 fanout: warm-up"}; len(steps) != 6 || !slices.Equal(steps[:2], want) {
			t.Errorf("progress: %q; want 6 steps starting %q", steps, want)
		}
		if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.HasPrefix(n, "fanout holds 4 live spaces") }) {
			t.Errorf("notes %q do not say how many spaces fanout held", rep.Notes)
		}
		if len(rep.Rows) != 4 {
			t.Fatalf("%d rows, want 4: %+v", len(rep.Rows), rep.Rows)
		}
		for i, r := range rep.Rows {
			work := []string{"hello", "fanout"}[i/2]
			if r.Workload != work || r.Layer != "null" || r.Depth != i%2 || r.Reps != 1 || r.MedianNS <= 0 {
				t.Errorf("row %d: %+v; want %s, null, depth %d", i, r, work, i%2)
			}
			if r.Depth == 0 && r.Slowdown != 1 {
				t.Errorf("row %d: slowdown %v at depth 0", i, r.Slowdown)
			}
			if work == "fanout" && (r.Spaces != 4 || r.SpacesPerSec <= 0 || r.KiBPerSpace == 0 || r.HostKiBPerSpace == nil) {
				t.Errorf("fanout row %d: spaces %d, spaces/s %v, KiB/space %v, host KiB/space %v; want 4, a rate and two sizes",
					i, r.Spaces, r.SpacesPerSec, r.KiBPerSpace, r.HostKiBPerSpace)
			}
			if work == "hello" && r.HostKiBPerSpace != nil {
				t.Errorf("hello row %d: host KiB/space %v; want none", i, *r.HostKiBPerSpace)
			}
			// The host's used memory moves with all the host runs: where
			// it grew less than the monitor's, a note says so.
			if h := r.HostKiBPerSpace; h != nil && (*h <= 0 || *h < r.KiBPerSpace) &&
				!slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, fmt.Sprintf("host KiB/space (%.0f) is below", *h)) }) {
				t.Errorf("row %d: host KiB/space %v below KiB/space %v, and no note says why: %q", i, *h, r.KiBPerSpace, rep.Notes)
			}
		}
	})
}

// TestRunnerInterrupted cancels a bench's context: the run in progress
// ends and Run returns the cause, on each backend.
func TestRunnerInterrupted(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	testutil.Guest(t, "fanout")
	fanout, _ := FindWorkload("fanout")
	backendtest.Each(t, func(t *testing.T, be machine.Backend) {
		b := newBench(t, Config{Workloads: []Workload{SizeFanout(fanout, 2)}, Reps: 1})
		ctx, cancel := context.WithCancelCause(context.Background())
		why := fmt.Errorf("%w by the test", ErrInterrupted)
		cancel(why)
		_, err := b.Run(ctx, be)
		if !errors.Is(err, why) {
			t.Fatalf("Run after cancel: %v; want %v", err, why)
		}
	})
}

// TestNewRefusesBadInput: a layer spec that makes no layer is a
// *LayerError, a missing program a *GuestError, both before anything
// runs.
func TestNewRefusesBadInput(t *testing.T) {
	hello, _ := FindWorkload("hello")
	_, err := New(Config{Workloads: []Workload{hello}, Layers: []string{"null=x"}, GuestDir: t.TempDir()})
	var le *LayerError
	if !errors.As(err, &le) || le.Spec != "null=x" || !strings.Contains(err.Error(), "null takes no arguments") {
		t.Errorf("New with layer null=x: %v; want a LayerError saying null takes no arguments", err)
	}
	_, err = New(Config{Workloads: []Workload{hello}, GuestDir: filepath.Join(t.TempDir(), "none")})
	var ge *GuestError
	if !errors.As(err, &ge) || ge.Workload != "hello" {
		t.Errorf("New with no guests: %v; want a GuestError for hello", err)
	}
}
