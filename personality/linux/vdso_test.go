package linux_test

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/trace"
)

// TestVDSOClock runs c/clock, which reads the clocks 300,000 times
// through the C library, then again in a forked child and in an executed
// one, under the trace layer: the readings must be right (monotonic never
// back, realtime the host's to within a second) and none of them a system
// call, since the vDSO answers them all, in each of the three processes.
func TestVDSOClock(t *testing.T) {
	prog := builtC(t, "clock")
	want, wantStatus := native(t, prog, "fork="+prog)
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		var rec testutil.Buffer
		tr, err := trace.New("", &rec, nil)
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		out, errs, res := runLinux(t, b, prog, runOpts{layers: []nester.Layer{tr}}, "fork=/"+filepath.Base(prog), "show")
		after := time.Now()
		m := regexp.MustCompile(`(?m)^realtime (\d+)\n`).FindStringSubmatchIndex(out)
		if m == nil || status(res) != wantStatus || out[:m[0]] != want {
			t.Fatalf("got %q, status %d (%s), stderr %q; native %q, status %d", out, status(res), res, errs, want, wantStatus)
		}
		ns, _ := strconv.ParseInt(out[m[2]:m[3]], 10, 64)
		if rt := time.Unix(0, ns); rt.Before(before.Add(-time.Second)) || rt.After(after.Add(time.Second)) {
			t.Errorf("the program's realtime %v is not within a second of the host's run, %v to %v", rt, before, after)
		}
		// The program's own system calls for time are the two the vDSO
		// leaves to the kernel, in each process: a CPU-time clock, and a
		// clock Linux has not got.
		var calls []string
		for _, m := range regexp.MustCompile(`(?m) pid \d+:t\d+ ((?:clock_gettime|gettimeofday|time)\([^,)]*)`).FindAllStringSubmatch(rec.String(), -1) {
			calls = append(calls, m[1])
		}
		if strings.Join(calls, " ") != strings.TrimSpace(strings.Repeat("clock_gettime(2 clock_gettime(1234 ", 3)) {
			t.Errorf("system calls for the time: %q; want only clock_gettime(2) and clock_gettime(1234), the vDSO answering the rest:\n%s", calls, rec.String())
		}
	})
}

// TestVDSOClockGo runs go/timers, whose runtime reads the clock through
// the vDSO (__vdso_clock_gettime, and __vdso_gettimeofday for
// syscall.Gettimeofday), under the trace layer: its output must be
// native Linux's, and none of its readings a system call.
func TestVDSOClockGo(t *testing.T) {
	prog := goProgram(t, "go/timers")
	want, wantStatus := native(t, prog)
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		if b.Name() == "emu" {
			// As in TestGoThreadsAsNative: the Go runtime's threads share
			// atomics, which emu's engines do not make atomic across
			// threads (one run in three hung here). TestVDSOClock covers
			// the vDSO on emu.
			t.Skip("emu: locked instructions are not atomic across threads (Unicorn 2.0.1)")
		}
		var rec testutil.Buffer
		tr, err := trace.New("", &rec, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, errs, res := runLinux(t, b, prog, runOpts{layers: []nester.Layer{tr}})
		if out != want || status(res) != wantStatus {
			t.Fatalf("got %q, status %d (%s), stderr %q; native %q, status %d", out, status(res), res, errs, want, wantStatus)
		}
		if m := regexp.MustCompile(`(?m) pid \d+:t\d+ (clock_gettime|gettimeofday|time)\(.*$`).FindAllString(rec.String(), -1); m != nil {
			t.Errorf("system calls where the vDSO should answer: %q", m)
		}
	})
}
