package vmm_test

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

// launchCopy starts the copy guest on b reading stdin (none when nil).
func launchCopy(t *testing.T, b machine.Backend, stdin io.Reader) (*vmm.Space, *syncBuffer) {
	t.Helper()
	data, err := os.ReadFile(testutil.Guest(t, "copy"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vmm.ParseELF(data, vmm.DefaultQuota.Memory)
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	s, err := vmm.NewMonitor(b, nil).Launch(vmm.Program{Name: "copy", Image: img, Args: []string{"copy"}},
		vmm.Env{Console: out, Stdin: stdin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Kill("test over"); s.Wait() })
	return s, out
}

func awaitSpace(t *testing.T, s *vmm.Space, out *syncBuffer) vmm.Result {
	t.Helper()
	select {
	case <-s.Done():
		return s.Wait()
	case <-time.After(60 * time.Second):
		s.Kill("test timeout")
		t.Fatalf("copy did not finish in 60s; output so far %q", out.String())
		return vmm.Result{}
	}
}

func TestStdinCopy(t *testing.T) {
	big := make([]byte, 200<<10)
	rand.New(rand.NewSource(1)).Read(big)
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for _, tc := range []struct {
			name string
			in   io.Reader
			want string
		}{
			{"lines", strings.NewReader("a\nb\n"), "a\nb\n"},
			{"empty", strings.NewReader(""), ""},
			// Reads come back short and in pieces; all arrives, in order.
			{"200 KiB in halves", iotest.HalfReader(bytes.NewReader(big)), string(big)},
			{"data with the end", iotest.DataErrReader(strings.NewReader("last")), "last"},
		} {
			s, out := launchCopy(t, b, tc.in)
			r := awaitSpace(t, s, out)
			if got := out.String(); got != tc.want || !r.Exited || r.Status != 0 {
				t.Errorf("%s: %d bytes out (want %d), result %s", tc.name, len(got), len(tc.want), r)
			}
		}
		s, out := launchCopy(t, b, iotest.ErrReader(io.ErrUnexpectedEOF))
		if r := awaitSpace(t, s, out); !r.Exited || r.Status != 1 {
			t.Errorf("a failing input: result %s", r)
		}
		s, out = launchCopy(t, b, nil)
		if r := awaitSpace(t, s, out); !r.Exited || r.Status != 1 || out.String() != "copy: no standard input\n" {
			t.Errorf("no input: %q, result %s", out.String(), r)
		}
	})
}

// gate is an input whose Read reports that it was entered, then waits for
// the test to give it bytes (or the end).
type gate struct {
	entered chan struct{}
	feed    chan string
}

func (g *gate) Read(p []byte) (int, error) {
	g.entered <- struct{}{}
	s, ok := <-g.feed
	if !ok {
		return 0, io.EOF
	}
	return copy(p, s), nil
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 1), feed: make(chan string)} }

func waitEntered(t *testing.T, g *gate) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the guest never read its input")
	}
}

// A program blocked reading input that never comes is killed like any
// other: the wait ends and the space with it.
func TestStdinKillWhileBlocked(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		g := newGate()
		s, out := launchCopy(t, b, g)
		waitEntered(t, g)
		s.Kill("test kill")
		if r := awaitSpace(t, s, out); r.Exited {
			t.Errorf("killed while reading: result %s", r)
		}
	})
}

// A thread stopped while it waits for input stops, and resumed it issues
// its read again: the input that came meanwhile is not lost.
func TestStdinStopAndResume(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		g := newGate()
		s, out := launchCopy(t, b, g)
		waitEntered(t, g)
		c := s.NewCaller()
		if _, _, err := c.ThreadStop(vmm.RootHandleThread); err != nil {
			t.Fatalf("thread_stop: %v", err)
		}
		if st, _, _ := c.ThreadStatus(vmm.RootHandleThread); st != abi.ThreadStopped {
			t.Fatalf("status %d after thread_stop", st)
		}
		g.feed <- "while stopped\n"
		if _, _, err := c.ThreadStart(vmm.RootHandleThread); err != nil {
			t.Fatalf("thread_start: %v", err)
		}
		close(g.feed)
		if r := awaitSpace(t, s, out); out.String() != "while stopped\n" || !r.Exited || r.Status != 0 {
			t.Errorf("output %q, result %s", out.String(), r)
		}
	})
}
