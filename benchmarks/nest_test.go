package benchmarks

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

// nestDepths are the depths BenchmarkNest runs hello at: 0 is hello
// launched by the monitor, k > 0 is hello under k guest nesters.
var nestDepths = []int{0, 1, 2, 3}

// helloOut is what hello prints without arguments.
const helloOut = "Hello, nestvm!\n"

// nestLauncher launches hello at a depth: the ELF images parsed from
// build/guests on each launch (as BenchmarkLaunch does), and a files root
// holding nest.elf and hello.elf for the nesters to read.
type nestLauncher struct {
	mon   *vmm.Monitor
	files *vmm.Files
	nest  []byte // nest.elf
	hello []byte // hello.elf
}

func newNestLauncher(b *testing.B, be machine.Backend) *nestLauncher {
	b.Helper()
	l := &nestLauncher{mon: vmm.NewMonitor(be, nil)}
	dir := b.TempDir()
	for name, dst := range map[string]*[]byte{"nest": &l.nest, "hello": &l.hello} {
		data, err := os.ReadFile(testutil.Guest(b, name))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".elf"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		*dst = data
	}
	files, err := vmm.FilesServer(dir, false)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { files.Close() })
	l.files = files
	return l
}

// run launches hello at depth and returns the time from the launch call
// (the ELF parse included) to the end of the top space, failing b unless
// hello printed its greeting and everything exited 0.
func (l *nestLauncher) run(b *testing.B, depth int) time.Duration {
	b.Helper()
	name, data, args := "hello", l.hello, []string{"hello"}
	if depth > 0 {
		name, data, args = "nest", l.nest, []string{"nest"}
		for range depth - 1 {
			args = append(args, "nest.elf")
		}
		args = append(args, "hello.elf")
	}
	var out, errs bytes.Buffer
	start := time.Now()
	img, err := vmm.ParseELF(data, vmm.DefaultQuota.Memory)
	if err != nil {
		b.Fatal(err)
	}
	s, err := l.mon.Launch(vmm.Program{Name: name, Image: img, Args: args}, vmm.Env{Console: &out, Stderr: &errs, Files: l.files})
	if err != nil {
		b.Fatal(err)
	}
	r := s.Wait()
	d := time.Since(start)
	if !r.Exited || r.Status != 0 || out.String() != helloOut || errs.Len() != 0 {
		b.Fatalf("hello at depth %d (%q): %s, stdout %q, stderr %q; want an exit with 0, %q and nothing",
			depth, args, r, out.String(), errs.String(), helloOut)
	}
	return d
}

// BenchmarkNest runs hello at nesting depths 0 to 3 (0: launched by the
// monitor; k: under k guest nesters, "nest nest ... hello.elf", each of
// which reads the next program through the files root, builds its child's
// space and pages it itself) and times each from the launch to the exit
// of the top space. Every iteration runs every depth, so the ratios
// depth-k/depth-0 are measured side by side; the last metric is the mean
// cost of one nester level, (depth 3 - depth 0) / 3. ns/op is the sum of
// the four.
func BenchmarkNest(b *testing.B) {
	eachBackend(b, func(b *testing.B, be machine.Backend) {
		l := newNestLauncher(b, be)
		for _, d := range nestDepths {
			l.run(b, d) // once untimed: the first launch of each pays for warming up
		}
		total := make([]time.Duration, len(nestDepths))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for k, d := range nestDepths {
				total[k] += l.run(b, d)
			}
		}
		b.StopTimer()
		us := func(k int) float64 { return float64(total[k].Nanoseconds()) / 1e3 / float64(b.N) }
		for k, d := range nestDepths {
			b.ReportMetric(us(k), fmt.Sprintf("depth%d-µs", d))
		}
		for k, d := range nestDepths[1:] {
			b.ReportMetric(us(k+1)/us(0), fmt.Sprintf("depth%d/depth0", d))
		}
		last := len(nestDepths) - 1
		b.ReportMetric((us(last)-us(0))/float64(nestDepths[last]), "level-µs")
	})
}
