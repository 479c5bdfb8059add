package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"nestvm/benchmarks"
	"nestvm/nester"
)

// benchHelp is what nestvm bench -help prints; newFlagSet lists its
// flags after it.
func benchHelp() string {
	var b strings.Builder
	b.WriteString(`Usage: nestvm bench [flags]

Runs each workload at each depth under each kind of layer, --reps times,
and prints a table of the median time from launch to exit and the slowdown
against the same workload at depth 0 of the same run. Depth N stacks N
copies of the layer between the monitor and the program; depth 0 runs it
through the same loader with no layer. Runs are interleaved (each
repetition runs every layer and depth once, in a shuffled order) so drift
spreads evenly; one untimed run of each workload comes first.

Workloads:
`)
	for _, w := range benchmarks.Workloads() {
		fmt.Fprintf(&b, "  %-9s %s\n", w.Name, w.Summary)
	}
	b.WriteString(`
A layer spec is NAME or NAME=ARGS, as nestvm run --layer takes it (nestvm
layers lists them). In ARGS, {tmp} is replaced by a temporary directory
that bench removes at the end and {level} by the copy's level (1 nearest
the monitor), so a layer that writes a file can be benchmarked writing
one file per copy, not to the terminal:

  nestvm bench --layers 'null;trace={tmp}/trace-{level}.jsonl' --depth 0-4

fanout's spaces/s is the rate the guest created its children at, as it
measured it. Its KiB/space is what the monitor's resident memory grew by,
per live space, from just before the launch to once every thread of the
program waits (space_running counts none busy) and the memory has stopped
falling: read every 250 ms (emu closes the engine a waiting thread lent
250-500 ms after it was lent) until it has not fallen for two readings in
a row, 10 s at most. Both readings are taken after the Go heap and
malloc's heaps give back what they do not use. The monitor has run the workload before (the
warm-up), so OS threads and heaps kept from earlier runs are reused and
not counted: the first spaces a fresh monitor holds cost more.

fanout's host KiB/space is what the host's used memory (MemTotal less
MemAvailable in /proc/meminfo) grew by over the same interval, per live
space: it holds what the kernel keeps for each space, which the monitor's
resident memory does not show (on kvm its VM and vCPU: about 0.7 MiB on a
PVM host), and the monitor's own growth. Every other process on the host
moves it too: on a shared host it changes by tens of MiB from one second
to the next, so read it at --fanout 1000 or more on a quiet host. A note
says when it came out below 0 or below KiB/space. --fanout N
sets how many live spaces it holds (1 to 4,096), and the quotas they
need; on kvm each new VM costs more the more the monitor has mapped, so a
run of thousands can outlast the default --timeout (4,000 spaces took
6 minutes to create on a PVM host).

A bare trace runs as trace={tmp}/trace-{level}.jsonl, and a bare refmon as
refmon={tmp}/policy.hcl with a policy bench writes that allows the
workloads and checks each call against a few rules; the table says so.

Progress goes to stderr, the table to stdout. The exit status is 0, 2 for
bad flags, 125 when a run fails and 130 when interrupted.
`)
	return b.String()
}

// cmdBench is nestvm bench: it reads the flags, has package benchmarks
// run the workloads, shows progress on stderr and prints the report.
func cmdBench(args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("nestvm bench", stderr, benchHelp())
	var layerSpecs layerFlag
	fl.Var(&layerSpecs, "layers", "`layers` to stack, comma-separated (a layer's own arguments may follow its name=; separate specs that contain commas with ';' or repeat --layers; null when none is given)")
	depthFlag := fl.String("depth", "0-4", "`depths` to run at: N (0 to N) or A-B; depth 0 runs with no layer")
	workloadFlag := fl.String("workload", "compute,memtouch,ipc,hello", "`workloads` to run, comma-separated: "+benchmarks.WorkloadNames())
	fanoutN := fl.Int("fanout", benchmarks.FanoutDefault, fmt.Sprintf("`count` of live spaces the fanout workload holds, 1 to %d", benchmarks.FanoutMax))
	reps := fl.Int("reps", 5, "`count` of runs of each workload, layer and depth; the table gives the median")
	backend := fl.String("backend", "auto", "`backend` guest code runs on: auto (kvm when /dev/kvm opens, else emu), kvm or emu")
	cpu := cpuFlag(fl)
	guests := fl.String("guests", "", "`directory` holding the guest programs (default: guests/ beside the nestvm binary, else build/guests)")
	jsonOut := fl.String("json", "", "write the host, the backend and every row as JSON to `file`")
	csvOut := fl.String("csv", "", "write the rows as CSV to `file`")
	plotOut := fl.String("plot", "", "draw slowdown against depth, one line per layer and workload, as SVG to `file`")
	timeout := fl.Duration("timeout", time.Minute, "stop a run that takes longer than this `duration` and fail")
	logLevel := fl.String("log-level", "warn", "`level` of log detail on stderr: "+logLevels)
	if status, done := parseFlags(fl, args); done {
		return status
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "nestvm bench: "+format+"\n", a...)
		return nester.StatusUsage
	}
	if fl.NArg() > 0 {
		return usageErr("unexpected argument %q", fl.Arg(0))
	}
	if len(layerSpecs) == 0 {
		layerSpecs = layerFlag{"null"}
	}
	specs, err := splitLayerSpecs(layerSpecs)
	if err != nil {
		return usageErr("--layers: %v", err)
	}
	lo, hi, err := parseDepth(*depthFlag)
	if err != nil {
		return usageErr("--depth: %v", err)
	}
	var works []benchmarks.Workload
	for _, name := range strings.Split(*workloadFlag, ",") {
		name = strings.TrimSpace(name)
		w, ok := benchmarks.FindWorkload(name)
		if !ok {
			return usageErr("--workload: no workload named %q (there are: %s)", name, benchmarks.WorkloadNames())
		}
		if w.Name == "fanout" {
			w = benchmarks.SizeFanout(w, *fanoutN)
		}
		works = append(works, w)
	}
	if *fanoutN < 1 || *fanoutN > benchmarks.FanoutMax {
		return usageErr("--fanout: %d: want 1 to %d live spaces", *fanoutN, benchmarks.FanoutMax)
	}
	if *reps < 1 {
		return usageErr("--reps: %d: want at least 1", *reps)
	}
	log, err := newLogger(*logLevel, stderr)
	if err != nil {
		return usageErr("--log-level: %v", err)
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "nestvm bench: "+format+"\n", a...)
		return nester.StatusMonitor
	}

	dir := *guests
	if dir == "" {
		dir = defaultGuestDir()
	}
	prog := newProgress(stderr)
	// Every layer is made once before anything runs: a bad name or
	// argument is the user's to fix first.
	bench, err := benchmarks.New(benchmarks.Config{Workloads: works, Layers: specs, DepthLo: lo, DepthHi: hi, Reps: *reps,
		GuestDir: dir, Timeout: *timeout, Log: log, Stderr: stderr,
		Progress: func(step, total int, what string) { prog.show(fmt.Sprintf("[%d/%d] %s", step, total, what)) }})
	var layerErr *benchmarks.LayerError
	var guestErr *benchmarks.GuestError
	switch {
	case errors.As(err, &layerErr):
		return usageErr("--layers: %v", err)
	case errors.As(err, &guestErr):
		return fail("%v (build the guests with make guests, or name their directory with --guests)", err)
	case err != nil:
		return fail("%v", err)
	}
	defer bench.Close()
	b, err := pickBackend(*backend, *cpu, log)
	if err != nil {
		return fail("%v", err)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		select {
		case sig := <-sigs:
			cancel(fmt.Errorf("%w by %s", benchmarks.ErrInterrupted, sig))
		case <-ctx.Done():
		}
	}()

	rep, err := bench.Run(ctx, b)
	prog.done()
	if err != nil {
		if errors.Is(err, benchmarks.ErrInterrupted) {
			fmt.Fprintf(stderr, "nestvm bench: %v\n", err)
			return nester.StatusInterrupt
		}
		return fail("%v", err)
	}
	printBenchTable(stdout, rep)
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return fail("--json: %v", err)
		}
	}
	if *csvOut != "" {
		if err := writeBenchCSV(*csvOut, rep.Rows); err != nil {
			return fail("--csv: %v", err)
		}
	}
	if *plotOut != "" {
		f, err := os.Create(*plotOut)
		if err != nil {
			return fail("--plot: %v", err)
		}
		err = writeBenchSVG(f, rep)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail("--plot: %v", err)
		}
	}
	return 0
}

// splitLayerSpecs splits the --layers values into layer specs. Each value
// is split at ';' when it holds one, and otherwise at commas, where a piece
// that is not the name of a registered layer but holds '=' continues the
// spec before it ("trace=out.jsonl,format=json" is one spec): a layer's
// arguments may hold commas, as nestvm run --layer takes them.
func splitLayerSpecs(values []string) ([]string, error) {
	registered := map[string]bool{}
	var names []string
	for _, k := range nester.Kinds() {
		registered[k.Name] = true
		names = append(names, k.Name)
	}
	var specs []string
	for _, v := range values {
		var pieces []string
		if strings.Contains(v, ";") {
			pieces = strings.Split(v, ";")
		} else {
			for _, p := range strings.Split(v, ",") {
				name, _ := nester.ParseSpec(p)
				if !registered[name] && strings.Contains(p, "=") && len(pieces) > 0 && strings.Contains(pieces[len(pieces)-1], "=") {
					pieces[len(pieces)-1] += "," + p
					continue
				}
				pieces = append(pieces, p)
			}
		}
		for _, p := range pieces {
			p = strings.TrimSpace(p)
			if p == "" {
				return nil, fmt.Errorf("empty layer in %q", v)
			}
			name, _ := nester.ParseSpec(p)
			if !registered[name] {
				return nil, fmt.Errorf("no layer named %q (there are: %s; see nestvm layers)", name, strings.Join(names, ", "))
			}
			specs = append(specs, p)
		}
	}
	return specs, nil
}

// parseDepth reads --depth: "N" is 0 to N, "A-B" is A to B.
func parseDepth(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(s), "-")
	if lo, err = strconv.Atoi(a); err != nil || lo < 0 {
		return 0, 0, fmt.Errorf("%q: want N or A-B, with 0 <= A <= B", s)
	}
	if !isRange {
		lo, hi = 0, lo
	} else if hi, err = strconv.Atoi(b); err != nil || hi < lo {
		return 0, 0, fmt.Errorf("%q: want N or A-B, with 0 <= A <= B", s)
	}
	if hi > 64 {
		return 0, 0, fmt.Errorf("%q: at most 64 levels", s)
	}
	return lo, hi, nil
}

// defaultGuestDir is guests/ beside the running binary (build/nestvm and
// build/guests), else build/guests under the current directory.
func defaultGuestDir() string {
	if d := os.Getenv("NESTVM_GUESTS"); d != "" {
		return d
	}
	if exe, err := os.Executable(); err == nil {
		d := filepath.Join(filepath.Dir(exe), "guests")
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return filepath.Join("build", "guests")
}

// progress shows one line of progress on stderr: rewritten in place on a
// terminal, one line per step otherwise.
type progress struct {
	w    io.Writer
	tty  bool
	last int
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) show(line string) {
	line = "nestvm bench: " + line
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	pad := ""
	if n := p.last - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.last = len(line)
}

func (p *progress) done() {
	if p.tty && p.last > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.last))
	}
}

// printBenchTable prints rep as a table, with the notes and a warning
// when the host was busy.
func printBenchTable(w io.Writer, rep benchmarks.Report) {
	fmt.Fprintf(w, "nestvm bench: backend %s; host %s\n", rep.BackendLabel(), rep.Host.Summary)
	fmt.Fprintf(w, "median of %d runs from launch to exit; slowdown against depth 0 (no layer) of the same run\n", rep.Reps)
	for _, n := range rep.Notes {
		fmt.Fprintln(w, n)
	}
	if busy := max(rep.Host.LoadBefore, rep.Host.LoadAfter); busy > float64(rep.Host.CPUs)/2 {
		fmt.Fprintf(w, "warning: the host was busy (load average %.1f, then %.1f, on %d CPUs): expect noise; min is steadier than median\n",
			rep.Host.LoadBefore, rep.Host.LoadAfter, rep.Host.CPUs)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tlayer\tdepth\tmedian\tmin\tmax\tslowdown\tper level\tmin slowdown\tcall\tcall slowdown\tnative call\tspaces/s\tKiB/space\thost KiB/space\t")
	for _, r := range rep.Rows {
		per, call, cs, nat, rate, kib, hostKiB := "", "", "", "", "", "", ""
		if r.NativeCallNS > 0 {
			nat = fmt.Sprintf("%.0f ns (%.2fx)", r.NativeCallNS, r.CallVsNative)
		}
		if r.SpacesPerSec > 0 {
			rate = fmt.Sprintf("%.0f", r.SpacesPerSec)
		}
		if r.KiBPerSpace != 0 {
			kib = fmt.Sprintf("%.0f", r.KiBPerSpace)
		}
		if r.HostKiBPerSpace != nil {
			hostKiB = fmt.Sprintf("%.0f", *r.HostKiBPerSpace)
		}
		if r.Depth > 0 {
			per = fmt.Sprintf("%+.2f%%", (r.PerLevel-1)*100)
		}
		if r.CallNS > 0 {
			call = fmt.Sprintf("%.0f ns", r.CallNS)
			cs = fmt.Sprintf("%.3fx", r.CallSlowdown)
			if r.Depth > 0 {
				cs += fmt.Sprintf(" (%.3fx/level)", r.CallPerLevel)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%.3fx\t%s\t%.3fx\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Workload, r.Layer, r.Depth,
			fmtNS(r.MedianNS), fmtNS(r.MinNS), fmtNS(r.MaxNS), r.Slowdown, per, r.MinSlowdown, call, cs, nat, rate, kib, hostKiB)
	}
	tw.Flush()
}

func fmtNS(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f µs", float64(d)/1e3)
	}
}

// writeBenchCSV writes rows to the file path as CSV, under a header.
func writeBenchCSV(path string, rows []benchmarks.Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"workload", "layer", "depth", "reps", "median_ns", "min_ns", "max_ns", "slowdown", "slowdown_per_level", "min_slowdown", "call_ns", "call_slowdown", "call_slowdown_per_level", "spaces_per_s", "kib_per_space", "host_kib_per_space", "spaces", "native_call_ns", "call_vs_native"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range rows {
		call, cs, cpl, rate := "", "", "", ""
		if r.CallNS > 0 {
			call, cs, cpl = g(r.CallNS), g(r.CallSlowdown), g(r.CallPerLevel)
		}
		kib, hostKiB, nat, vs, spaces := "", "", "", "", ""
		if r.SpacesPerSec > 0 {
			rate, kib = g(r.SpacesPerSec), g(r.KiBPerSpace)
		}
		if r.HostKiBPerSpace != nil {
			hostKiB = g(*r.HostKiBPerSpace)
		}
		if r.Spaces > 0 {
			spaces = strconv.Itoa(r.Spaces)
		}
		if r.NativeCallNS > 0 {
			nat, vs = g(r.NativeCallNS), g(r.CallVsNative)
		}
		w.Write([]string{r.Workload, r.Layer, strconv.Itoa(r.Depth), strconv.Itoa(r.Reps),
			strconv.FormatInt(r.MedianNS, 10), strconv.FormatInt(r.MinNS, 10), strconv.FormatInt(r.MaxNS, 10),
			g(r.Slowdown), g(r.PerLevel), g(r.MinSlowdown), call, cs, cpl, rate, kib, hostKiB, spaces, nat, vs})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
