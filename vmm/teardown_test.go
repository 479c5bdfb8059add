package vmm_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

// teardownSpaces is how wide a tree TestTeardownComplete kills: enough
// that a leak of anything per space shows as hundreds, in seconds on
// either backend (nestvm bench --workload fanout measures 1,000 and more).
const teardownSpaces = 250

// TestTeardownComplete kills a program holding a wide tree of live
// spaces (fanout's children, each with a thread blocked in a call) from
// outside, and checks that the monitor's descriptors and goroutines come
// back to what they were before it started.
func TestTeardownComplete(t *testing.T) {
	data, err := os.ReadFile(testutil.Guest(t, "fanout"))
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		img, err := vmm.ParseELF(data, vmm.DefaultQuota.Memory)
		if err != nil {
			t.Fatal(err)
		}
		mon := vmm.NewMonitor(b, nil)
		runtime.GC()
		fds0, gs0 := openFDs(t), runtime.NumGoroutine()
		threads0 := osThreads()

		stdinR, stdinW := io.Pipe()
		defer stdinW.Close()
		con := newLineWatch()
		q := vmm.DefaultQuota
		q.Children = teardownSpaces
		s, err := mon.Launch(vmm.Program{Name: "fanout", Image: img, Args: []string{"fanout", fmt.Sprint(teardownSpaces), "hold"}, Quota: q},
			vmm.Env{Console: con, Stderr: con, Stdin: stdinR})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-con.created:
		case <-s.Done():
			t.Fatalf("fanout ended before its children were all live: %s; output:\n%s", s.Wait(), con)
		}
		live := openFDs(t)
		s.Kill("the test kills the tree")
		<-s.Done()
		mon.ReleaseIdle()
		// The reader of standard input blocks in Read until input ends,
		// as it would on a terminal: end it, as the monitor's exit would.
		stdinW.Close()

		// What the tree held goes back as its threads' goroutines end, a
		// little after the space reports done: wait for the counts
		// themselves, bounded only so a leak fails rather than hangs.
		deadline := time.Now().Add(30 * time.Second)
		for {
			runtime.GC()
			fds, gs := openFDs(t), runtime.NumGoroutine()
			if fds <= fds0 && gs <= gs0 {
				t.Logf("%d spaces: descriptors %d before, %d live, %d after; goroutines %d before, %d after; OS threads %d before, %d after",
					teardownSpaces, fds0, live, fds, gs0, gs, threads0, osThreads())
				break
			}
			if time.Now().After(deadline) {
				var dump bytes.Buffer
				pprof.Lookup("goroutine").WriteTo(&dump, 1)
				t.Fatalf("after killing %d spaces: %d descriptors (%d before), %d goroutines (%d before); goroutines:\n%s",
					teardownSpaces, fds, fds0, gs, gs0, dump.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents) - 1 // ReadDir's own
}

// osThreads is the process's OS thread count, or -1.
func osThreads() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var n int
		if _, err := fmt.Sscanf(sc.Text(), "Threads: %d", &n); err == nil {
			return n
		}
	}
	return -1
}

// lineWatch is a console that closes created when fanout says its
// children are all live.
type lineWatch struct {
	mu      chan struct{}
	buf     bytes.Buffer
	created chan struct{}
	seen    bool
}

func newLineWatch() *lineWatch {
	w := &lineWatch{mu: make(chan struct{}, 1), created: make(chan struct{})}
	w.mu <- struct{}{}
	return w
}

func (w *lineWatch) Write(p []byte) (int, error) {
	<-w.mu
	defer func() { w.mu <- struct{}{} }()
	w.buf.Write(p)
	if !w.seen && strings.Contains(w.buf.String(), " created in ") {
		w.seen = true
		close(w.created)
	}
	return len(p), nil
}

func (w *lineWatch) String() string {
	<-w.mu
	defer func() { w.mu <- struct{}{} }()
	return w.buf.String()
}
