package trace

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/null"
	"nestvm/vmm"
)

// benchClock runs "bench clock n" under the layers made by mk (none when
// mk is nil) and returns the guest's own time for one clock_read, in
// nanoseconds: the guest times the loop alone, so start-up and the
// layers' Close are not part of it.
func benchClock(b *testing.B, be machine.Backend, n int, mk func() []nester.Layer) float64 {
	b.Helper()
	data, err := os.ReadFile(testutil.Guest(b, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	img, err := vmm.ParseELF(data, vmm.DefaultQuota.Memory)
	if err != nil {
		b.Fatal(err)
	}
	mon := vmm.NewMonitor(be, nil)
	var out bytes.Buffer
	root, rootSpace := nester.Root(mon, nester.RootConfig{Console: &out, Stderr: io.Discard})
	defer rootSpace.Kill("bench over")
	var layers []nester.Layer
	if mk != nil {
		layers = mk()
	}
	r, err := nester.Launch(mon, root, layers, nester.Program{Name: "bench", Image: img, Args: []string{"bench", "clock", fmt.Sprint(n)}})
	if err != nil {
		b.Fatal(err)
	}
	res := r.Wait()
	if !res.Exited || res.Status != 0 || res.Err != nil {
		b.Fatalf("bench clock %d: %s (%v); output %q", n, res, res.Err, out.String())
	}
	s := out.String()
	var got, ns int64
	if i := strings.LastIndex(s, "bench "); i < 0 {
		b.Fatalf("unexpected bench output %q", s)
	} else if _, err := fmt.Sscanf(s[i:], "bench clock %d %d", &got, &ns); err != nil || got != int64(n) {
		b.Fatalf("unexpected bench output %q", s)
	}
	return float64(ns) / float64(n)
}

// BenchmarkCall compares one clock_read (the call nestvm bench's ipc
// workload makes) bare, under a null layer (which wraps nothing), under a
// trace that wraps the clock but records nothing (ops= filters it out:
// the cost of interposing alone), under a trace writing JSON Lines to a
// file and under one writing text to a file. Each runs in turn within one
// iteration, so that the ratios (jsonl/bare: DESIGN.md §5 wants it under
// 1.5) compare like with like on a noisy host. ns/op is the JSON Lines
// trace's call. jsonl-ns minus wrap-ns is what recording adds on the
// calling thread (two clock readings, a copy into the queue), plus the
// writer goroutine's work where it has no core of its own.
//
//	go test -run '^$' -bench Call -count 5 ./services/trace
func BenchmarkCall(b *testing.B) {
	for _, name := range backendtest.Names {
		b.Run(name, func(b *testing.B) {
			be := backendtest.Get(b, name)
			n := 100000
			if name == "kvm" {
				n = 1000 // each call is a real exit: tens of µs on a PVM host
			}
			dir := b.TempDir()
			jsonl := func() []nester.Layer {
				l, err := New(filepath.Join(dir, "t.jsonl"), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				return []nester.Layer{l}
			}
			text := func() []nester.Layer {
				l, err := New("format=text,file="+filepath.Join(dir, "t.txt"), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				return []nester.Layer{l}
			}
			// A trace whose filter records nothing still wraps every
			// capability: what interposing alone costs.
			wrapOnly := func() []nester.Layer {
				l, err := New("ops=console_write", io.Discard, nil)
				if err != nil {
					b.Fatal(err)
				}
				return []nester.Layer{l}
			}
			nullLayer := func() []nester.Layer { return []nester.Layer{null.Layer{}} }
			var bare, nul, wrap, tj, tt float64
			for i := 0; i < b.N; i++ {
				bare += benchClock(b, be, n, nil)
				nul += benchClock(b, be, n, nullLayer)
				wrap += benchClock(b, be, n, wrapOnly)
				tj += benchClock(b, be, n, jsonl)
				tt += benchClock(b, be, n, text)
			}
			k := float64(b.N)
			b.ReportMetric(tj/k, "ns/op")
			b.ReportMetric(bare/k, "bare-ns")
			b.ReportMetric(nul/k, "null-ns")
			b.ReportMetric(wrap/k, "wrap-ns")
			b.ReportMetric(tj/k, "jsonl-ns")
			b.ReportMetric(tt/k, "text-ns")
			b.ReportMetric(nul/bare, "null/bare")
			b.ReportMetric(wrap/bare, "wrap/bare")
			b.ReportMetric(tj/bare, "jsonl/bare")
			b.ReportMetric(tt/bare, "text/bare")
		})
	}
}

type nopBackend struct{}

func (nopBackend) Name() string                                              { return "none" }
func (nopBackend) Available() error                                          { return nil }
func (nopBackend) Describe() string                                          { return "no machine" }
func (nopBackend) CPUFeatures() machine.CPUFeatures                          { return machine.CPUFeatures{} }
func (b nopBackend) WithCPU(string) (machine.Backend, error)                 { return b, nil }
func (nopBackend) NewMachine(machine.MachineConfig) (machine.Machine, error) { return nil, nil }

// BenchmarkHostCall measures a clock_read host side (no guest, no trap,
// none of a backend's noise): bare, through a trace that records nothing
// (ops= filters it out: what interposing costs) and through a trace
// writing JSON Lines to /dev/null. Host calls come faster than the writer
// formats records, so the last one waits for the writer: its ns/op is
// what formatting one record costs, not what a guest's call waits for.
func BenchmarkHostCall(b *testing.B) {
	for _, tc := range []struct{ name, args string }{
		{"bare", ""},
		{"wrap", "ops=console_write"},
		{"jsonl", os.DevNull},
	} {
		b.Run(tc.name, func(b *testing.B) {
			mon := vmm.NewMonitor(nopBackend{}, nil)
			root, rootSpace := nester.Root(mon, nester.RootConfig{Console: io.Discard})
			defer rootSpace.Kill("bench over")
			env := root
			if tc.name != "bare" {
				l, err := New(tc.args, io.Discard, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				if env, err = l.Wrap(mon, root); err != nil {
					b.Fatal(err)
				}
			}
			host := mon.NewHost("bench", vmm.DefaultQuota)
			defer host.Kill("bench over")
			c := host.NewCaller()
			clock := env.Caps[nester.CapClock]
			h, err := c.Insert(clock.Obj, clock.Rights, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := c.ClockRead(h, abi.ClockMonotonic); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
