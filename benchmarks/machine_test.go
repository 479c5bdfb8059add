package benchmarks

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

// eachBackend runs f as a sub-benchmark per backend.
func eachBackend(b *testing.B, f func(b *testing.B, be machine.Backend)) {
	for _, name := range backendtest.Names {
		b.Run(name, func(b *testing.B) { f(b, backendtest.Get(b, name)) })
	}
}

// run runs a built guest with args on be, writing its console to w, and
// fails b unless it exits 0.
func run(b testing.TB, be machine.Backend, name string, w io.Writer, args ...string) {
	b.Helper()
	var stderr bytes.Buffer
	if r := runResult(b, be, name, w, &stderr, args...); !r.Exited || r.Status != 0 {
		b.Fatalf("%s %v: %s; stderr %q", name, args, r, stderr.String())
	}
}

// runResult runs a built guest with args on be, writing its console to w
// and its stderr to stderr (both may be nil), and returns how it ended.
func runResult(b testing.TB, be machine.Backend, name string, w, stderr io.Writer, args ...string) vmm.Result {
	b.Helper()
	data, err := os.ReadFile(testutil.Guest(b, name))
	if err != nil {
		b.Fatal(err)
	}
	img, err := vmm.ParseELF(data, vmm.DefaultQuota.Memory)
	if err != nil {
		b.Fatal(err)
	}
	if w == nil {
		w = io.Discard
	}
	env := vmm.Env{Console: w, Stderr: stderr}
	s, err := vmm.NewMonitor(be, nil).Launch(vmm.Program{Name: name, Image: img, Args: append([]string{name}, args...)}, env)
	if err != nil {
		b.Fatal(err)
	}
	return s.Wait()
}

// guestNs runs "bench mode n" and returns the guest's own measurement of
// the n iterations, in nanoseconds.
func guestNs(b testing.TB, be machine.Backend, mode string, n int) float64 {
	b.Helper()
	var out bytes.Buffer
	w := io.Writer(&out)
	if mode == "write" {
		w = lastLine{&out}
	}
	run(b, be, "bench", w, mode, fmt.Sprint(n))
	s := out.String()
	s = s[strings.LastIndex(s, "bench "):]
	var m string
	var got, ns int64
	if _, err := fmt.Sscanf(s, "bench %s %d %d", &m, &got, &ns); err != nil || got != int64(n) {
		b.Fatalf("unexpected bench output %q", s)
	}
	return float64(ns)
}

// lastLine keeps only what follows the last "bench " written, so a
// million-byte console stream stays cheap to hold.
type lastLine struct{ buf *bytes.Buffer }

func (l lastLine) Write(p []byte) (int, error) {
	if i := bytes.LastIndex(p, []byte("bench ")); i >= 0 {
		l.buf.Reset()
		l.buf.Write(p[i:])
	} else if l.buf.Len() > 0 {
		l.buf.Write(p)
	}
	return len(p), nil
}

// BenchmarkCalls compares, in one guest run each, the backend's raw trap
// round trip (no ABI work), a bare ABI call (handle_info, decoded and
// answered by the kernel) and a console write (a call delivered to the
// root's console server, here discarding).
func BenchmarkCalls(b *testing.B) {
	eachBackend(b, func(b *testing.B, be machine.Backend) {
		n := max(b.N, 1000)
		trap := guestNs(b, be, "nulltrap", n) / float64(n)
		call := guestNs(b, be, "info", n) / float64(n)
		write := guestNs(b, be, "write", n) / float64(n)
		b.ReportMetric(trap, "trap-ns")
		b.ReportMetric(call, "call-ns")
		b.ReportMetric(write, "write-ns")
		b.ReportMetric(call/trap, "call/trap")
		b.ReportMetric(write/trap, "write/trap")
	})
}

// BenchmarkCompute runs the compute loop in a guest and natively, with the
// same iteration count, and reports the guest's slowdown.
func BenchmarkCompute(b *testing.B) {
	const n = 50_000_000
	native := filepath.Join(filepath.Dir(testutil.GuestDir(b)), "native", "compute")
	eachBackend(b, func(b *testing.B, be machine.Backend) {
		var guest, host time.Duration
		for i := 0; i < b.N; i++ {
			// Both time the loop alone, from inside: process and guest
			// start-up are not part of it.
			var stderr bytes.Buffer
			cmd := exec.Command(native, fmt.Sprint(n))
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				b.Fatalf("native compute: %v %s", err, stderr.String())
			}
			var ns int64
			if _, err := fmt.Sscanf(stderr.String(), "elapsed_ns %d", &ns); err != nil {
				b.Fatalf("native compute said %q", stderr.String())
			}
			host += time.Duration(ns)
			guest += time.Duration(guestNs(b, be, "compute", n))
		}
		b.ReportMetric(float64(guest.Milliseconds())/float64(b.N), "guest-ms")
		b.ReportMetric(float64(host.Milliseconds())/float64(b.N), "native-ms")
		b.ReportMetric(float64(guest)/float64(host), "guest/native")
	})
}

// firstByte records when the first console byte arrives.
type firstByte struct {
	once sync.Once
	at   time.Time
}

func (f *firstByte) Write(p []byte) (int, error) {
	f.once.Do(func() { f.at = time.Now() })
	return len(p), nil
}

// BenchmarkLaunch measures, for hello: from the call that starts the
// program (parse, create the space, load, start the thread) to its first
// console write (a few hundred guest instructions after its first), and
// to its exit.
func BenchmarkLaunch(b *testing.B) {
	data, err := os.ReadFile(testutil.Guest(b, "hello"))
	if err != nil {
		b.Fatal(err)
	}
	eachBackend(b, func(b *testing.B, be machine.Backend) {
		mon := vmm.NewMonitor(be, nil)
		var first, exit time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			fb := &firstByte{}
			start := time.Now()
			img, err := vmm.ParseELF(data, vmm.DefaultQuota.Memory)
			if err != nil {
				b.Fatal(err)
			}
			s, err := mon.Launch(vmm.Program{Name: "hello", Image: img, Args: []string{"hello"}}, vmm.Env{Console: fb})
			if err != nil {
				b.Fatal(err)
			}
			if r := s.Wait(); !r.Exited {
				b.Fatal(r)
			}
			exit += time.Since(start)
			first += fb.at.Sub(start)
		}
		b.ReportMetric(float64(first.Microseconds())/float64(b.N), "first-write-µs")
		b.ReportMetric(float64(exit.Microseconds())/float64(b.N), "exit-µs")
	})
}
