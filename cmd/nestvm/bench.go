package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"nestvm/machine"
	linuxp "nestvm/personality/linux"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/nester"
	"nestvm/vmm"
)

// A benchWorkload is a guest program and its arguments, sized to take tens
// of milliseconds on each backend.
type benchWorkload struct {
	name    string
	summary string
	guest   string // build/guests/GUEST.elf
	// args returns the program's arguments (argv[0] included) for a
	// backend: PVM's exits cost tens of microseconds where the emulator's
	// cost half of one, so call-heavy workloads are sized per backend.
	args func(backend string) []string
	// want is what its output must contain for the run to count.
	want string
	// linux is set for a Linux program, run under the Linux personality.
	// The host runs it natively too, each repetition, for the native
	// per-call time its rows show beside nestvm's.
	linux bool
	// children, handles and threads are the program's quotas (0: the
	// default).
	children, handles, threads int
	// hold, when set, is what the program prints once its spaces are all
	// live, and then waits for its standard input to end: bench measures
	// the monitor's memory in between, once every thread waits and the
	// monitor's memory has settled.
	hold string
}

// fanoutDefault is how many live spaces the fanout workload holds when
// --fanout does not say; fanoutMax is the most the fanout guest creates.
const (
	fanoutDefault = 100
	fanoutMax     = 4096
)

// sizeFanout returns the fanout workload holding n live spaces, with the
// quotas they need: a space handle each in the program's table, and a
// thread each below it.
func sizeFanout(w benchWorkload, n int) benchWorkload {
	w.args = func(string) []string { return []string{"fanout", strconv.Itoa(n), "hold"} }
	w.want = fmt.Sprintf("fanout %d torn down in ", n)
	w.children, w.handles, w.threads = n, 4*n+100, n+10
	return w
}

var benchWorkloads = []benchWorkload{
	{"compute", "20M rounds of a CPU-bound loop: no calls to interpose on", "compute",
		func(string) []string { return []string{"compute", "20000000"} }, "checksum", false, 0, 0, 0, ""},
	{"memtouch", "writes and reads back 16 MiB of heap: page faults, no calls", "memtouch",
		func(string) []string { return []string{"memtouch", "16"} }, "checksum", false, 0, 0, 0, ""},
	{"ipc", "clock_read calls on the clock handle, which layers wrap (100000 on emu, 1000 on kvm)", "bench",
		func(b string) []string {
			if b == "emu" {
				return []string{"bench", "clock", "100000"}
			}
			return []string{"bench", "clock", "1000"}
		}, "bench clock ", false, 0, 0, 0, ""},
	{"hello", "prints a greeting: launch and exit dominate", "hello",
		func(string) []string { return []string{"hello"} }, "Hello, nestvm!", false, 0, 0, 0, ""},
	{"syscall", "getppid calls of a Linux program, each a fault the Linux personality serves (100000 on emu, 1000 on kvm)", "lxbench",
		func(b string) []string {
			if b == "emu" {
				return []string{"lxbench", "syscall", "100000"}
			}
			return []string{"lxbench", "syscall", "1000"}
		}, "bench syscall ", true, 0, 0, 0, ""},
	{"clock", "clock_gettime(CLOCK_MONOTONIC) calls of a Linux program through its vDSO, which reads the clock's time page with no exit (200000 on emu, 1000000 on kvm)", "lxbench",
		func(b string) []string {
			if b == "emu" {
				return []string{"lxbench", "vdso", "200000"}
			}
			return []string{"lxbench", "vdso", "1000000"}
		}, "bench vdso ", true, 0, 0, 0, ""},
	{"spawn", "child spaces created, started and waited for one at a time, each with a thread that exits at once (20 on emu, 50 on kvm)", "bench",
		func(b string) []string {
			if b == "emu" {
				return []string{"bench", "spawn", "20"}
			}
			return []string{"bench", "spawn", "50"}
		}, "bench spawn ", false, 0, 0, 0, ""},
	sizeFanout(benchWorkload{name: "fanout", guest: "fanout", hold: " created in ",
		summary: "live child spaces (100, or --fanout's count), each with a thread blocked in a call: the rate they are created at, and the monitor memory each holds once they all wait and the monitor has settled"},
		fanoutDefault),
}

func findWorkload(name string) (benchWorkload, bool) {
	for _, w := range benchWorkloads {
		if w.name == name {
			return w, true
		}
	}
	return benchWorkload{}, false
}

// benchRow is one line of the result: a workload under depth copies of a
// layer.
type benchRow struct {
	Workload string  `json:"workload"`
	Layer    string  `json:"layer"`
	Depth    int     `json:"depth"`
	Reps     int     `json:"reps"`
	MedianNS int64   `json:"median_ns"`
	MinNS    int64   `json:"min_ns"`
	MaxNS    int64   `json:"max_ns"`
	Slowdown float64 `json:"slowdown"`
	// MinSlowdown is min_ns over min_ns at depth 0: steadier than the
	// median's on a busy host, since noise only ever adds time.
	MinSlowdown float64 `json:"min_slowdown"`
	// PerLevel is slowdown^(1/depth): the cost each level adds (1 at
	// depth 0).
	PerLevel float64 `json:"slowdown_per_level"`
	// For ipc and spawn: the median time of one call (of one child, for
	// spawn) as the guest measured it, and its ratio to the same at depth
	// 0.
	CallNS       float64 `json:"call_ns,omitempty"`
	CallSlowdown float64 `json:"call_slowdown,omitempty"`
	// CallPerLevel is call_slowdown^(1/depth): what each level adds to
	// one interposed call.
	CallPerLevel float64 `json:"call_slowdown_per_level,omitempty"`
	// For fanout: the median rate at which the guest created its live
	// spaces, as it measured it, and the median growth of the monitor's
	// resident memory per live space, from just before the launch to when
	// every thread of the program waited and the memory had settled
	// (bencher.settle), each reading taken after the Go heap and malloc's
	// heaps gave back what they do not use.
	SpacesPerSec float64 `json:"spaces_per_s,omitempty"`
	KiBPerSpace  float64 `json:"kib_per_space,omitempty"`
	// Spaces is how many live spaces fanout held (--fanout).
	Spaces int `json:"spaces,omitempty"`
	// For a Linux program: the median time of one call when the host
	// runs it natively, in the same repetitions, and call_ns over it.
	NativeCallNS float64 `json:"native_call_ns,omitempty"`
	CallVsNative float64 `json:"call_vs_native,omitempty"`
}

// benchHost describes the machine the numbers come from.
type benchHost struct {
	CPU     string `json:"cpu"`
	CPUs    int    `json:"cpus"`
	OS      string `json:"os"`
	Kernel  string `json:"kernel"`
	KVM     string `json:"kvm"` // "none", "kvm" or "pvm"
	Go      string `json:"go"`
	Summary string `json:"summary"`
	// Load is the 1-minute load average when the runs began and ended:
	// other work on the host makes the numbers noisy.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// loadAverage is the host's 1-minute load average, -1 when unknown.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// benchReport is what --json writes.
type benchReport struct {
	Host    benchHost  `json:"host"`
	Backend string     `json:"backend"`
	Reps    int        `json:"reps"`
	Time    string     `json:"time"`
	Notes   []string   `json:"notes,omitempty"`
	Rows    []benchRow `json:"rows"`
}

func cmdBench(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("nestvm bench", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var layerSpecs layerFlag
	fl.Var(&layerSpecs, "layers", "`layers` to stack, comma-separated (a layer's own arguments may follow its name=; separate specs that contain commas with ';' or repeat --layers; null when none is given)")
	depthFlag := fl.String("depth", "0-4", "`depths` to run at: N (0 to N) or A-B; depth 0 runs with no layer")
	workloadFlag := fl.String("workload", "compute,memtouch,ipc,hello", "`workloads` to run, comma-separated: "+workloadNames())
	fanoutN := fl.Int("fanout", fanoutDefault, fmt.Sprintf("`count` of live spaces the fanout workload holds, 1 to %d", fanoutMax))
	reps := fl.Int("reps", 5, "`count` of runs of each workload, layer and depth; the table gives the median")
	backend := fl.String("backend", "auto", "`backend` guest code runs on: auto (kvm when /dev/kvm opens, else emu), kvm or emu")
	cpu := cpuFlag(fl)
	guests := fl.String("guests", "", "`directory` holding the guest programs (default: guests/ beside the nestvm binary, else build/guests)")
	jsonOut := fl.String("json", "", "write the host, the backend and every row as JSON to `file`")
	csvOut := fl.String("csv", "", "write the rows as CSV to `file`")
	plotOut := fl.String("plot", "", "draw slowdown against depth, one line per layer and workload, as SVG to `file`")
	timeout := fl.Duration("timeout", time.Minute, "stop a run that takes longer than this `duration` and fail")
	logLevel := fl.String("log-level", "warn", "`level` of log detail on stderr: "+logLevels)
	fl.Usage = func() {
		fmt.Fprintf(fl.Output(), `Usage: nestvm bench [flags]

Runs each workload at each depth under each kind of layer, --reps times,
and prints a table of the median time from launch to exit and the slowdown
against the same workload at depth 0 of the same run. Depth N stacks N
copies of the layer between the monitor and the program; depth 0 runs it
through the same loader with no layer. Runs are interleaved (each
repetition runs every layer and depth once, in a shuffled order) so drift
spreads evenly; one untimed run of each workload comes first.

Workloads:
`)
		for _, w := range benchWorkloads {
			fmt.Fprintf(fl.Output(), "  %-9s %s\n", w.name, w.summary)
		}
		fmt.Fprintf(fl.Output(), `
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
not counted: the first spaces a fresh monitor holds cost more. --fanout N
sets how many live spaces it holds, and the quotas they need; each space
reserves 64 GiB of the monitor's address space, so a host with 4-level
paging holds about 2,040; on kvm a run of thousands can outlast the
default --timeout (2,000 took 77 s on a PVM host).

A bare trace runs as trace={tmp}/trace-{level}.jsonl, and a bare refmon as
refmon={tmp}/policy.hcl with a policy bench writes that allows the
workloads and checks each call against a few rules; the table says so.

Progress goes to stderr, the table to stdout. The exit status is 0, 2 for
bad flags, 125 when a run fails and 130 when interrupted.

Flags:
`)
		printFlags(fl)
	}
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "nestvm bench: "+format+"\n", a...)
		return exitUsage
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
	var works []benchWorkload
	for _, name := range strings.Split(*workloadFlag, ",") {
		name = strings.TrimSpace(name)
		w, ok := findWorkload(name)
		if !ok {
			return usageErr("--workload: no workload named %q (there are: %s)", name, workloadNames())
		}
		if w.name == "fanout" {
			w = sizeFanout(w, *fanoutN)
		}
		works = append(works, w)
	}
	if *fanoutN < 1 || *fanoutN > fanoutMax {
		return usageErr("--fanout: %d: want 1 to %d live spaces", *fanoutN, fanoutMax)
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
		return exitMonitor
	}

	tmp, err := os.MkdirTemp("", "nestvm-bench-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(tmp)
	// A bare name of a layer that needs arguments to be measured fairly
	// runs with bench's own (a file under tmp, not the terminal).
	actual := map[string]string{}
	var notes []string
	for _, spec := range specs {
		actual[spec] = spec
		d, ok := benchDefaults[spec]
		if !ok {
			continue
		}
		if d.file != "" {
			if err := os.WriteFile(filepath.Join(tmp, d.file), []byte(d.content), 0o644); err != nil {
				return fail("%v", err)
			}
		}
		actual[spec] = d.spec
		notes = append(notes, fmt.Sprintf("%s runs as %s (%s)", spec, d.spec, d.why))
	}
	for _, w := range works {
		if w.hold != "" {
			notes = append(notes, fmt.Sprintf("%s holds %d live spaces; KiB/space is read once every thread waits and the monitor's memory has settled", w.name, w.children))
		}
	}
	// Every layer is made once before anything runs: a bad name or
	// argument is the user's to fix first.
	for _, spec := range specs {
		l, err := nester.New(expandSpec(actual[spec], tmp, 1), nester.Host{Log: log.Named("layer"), Stderr: stderr})
		if err != nil {
			return usageErr("--layers: %v", err)
		}
		if err := l.Close(); err != nil {
			return fail("layer %s: %v", spec, err)
		}
	}
	dir := *guests
	if dir == "" {
		dir = defaultGuestDir()
	}
	images := map[string][]byte{}
	for _, w := range works {
		path := filepath.Join(dir, w.guest+".elf")
		data, err := os.ReadFile(path)
		if err != nil {
			return fail("workload %s: %v (build the guests with make guests, or name their directory with --guests)", w.name, err)
		}
		images[w.guest] = data
	}
	b, err := pickBackend(*backend, *cpu, log)
	if err != nil {
		return fail("%v", err)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	bn := &bencher{
		mon: vmm.NewMonitor(b, log), backend: b.Name(), images: images, tmp: tmp, actual: actual,
		timeout: *timeout, sigs: sigs, log: log, stderr: stderr,
	}
	prog := newProgress(stderr)
	loadBefore := loadAverage()
	rows, err := bn.runAll(works, specs, lo, hi, *reps, prog)
	prog.done()
	if err != nil {
		if errors.Is(err, errInterrupted) {
			fmt.Fprintf(stderr, "nestvm bench: %v\n", err)
			return exitInterrupt
		}
		return fail("%v", err)
	}
	host := describeHost()
	host.LoadBefore, host.LoadAfter = loadBefore, loadAverage()
	rep := benchReport{Host: host, Backend: b.Name(), Reps: *reps, Time: time.Now().UTC().Format(time.RFC3339), Notes: notes, Rows: rows}
	printBenchTable(stdout, rep)
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return fail("--json: %v", err)
		}
	}
	if *csvOut != "" {
		if err := writeBenchCSV(*csvOut, rows); err != nil {
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

// benchDefaults are the arguments a layer named bare in --layers is
// measured with: trace alone writes every operation to the terminal, and
// refmon needs a policy.
var benchDefaults = map[string]struct {
	spec, why     string
	file, content string // a file bench writes under {tmp} first
}{
	"trace": {spec: "trace={tmp}/trace-{level}.jsonl", why: "JSON Lines to a temporary file, not the terminal"},
	"refmon": {spec: "refmon={tmp}/policy.hcl", why: "a policy that allows the workloads, with a rule for each kind of call they make",
		file: "policy.hcl", content: benchPolicy},
}

// benchPolicy is the refmon policy bench measures with: every call is
// checked against rules, and none is denied.
const benchPolicy = `# nestvm bench: allows what the workloads do, checking calls against rules.
default = "allow"
rule "files-read-only" {
  op    = ["files_open"]
  flags = ["read"]
}
rule "console-writes" {
  op        = ["console_write"]
  max_bytes = 65536
}
rule "memory" {
  op        = ["region_create"]
  max_pages = 1048576
}
`

func workloadNames() string {
	var names []string
	for _, w := range benchWorkloads {
		names = append(names, w.name)
	}
	return strings.Join(names, ", ")
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

// expandSpec fills in {tmp} and {level} in a layer spec's arguments.
func expandSpec(spec, tmp string, level int) string {
	return strings.NewReplacer("{tmp}", tmp, "{level}", strconv.Itoa(level)).Replace(spec)
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

var errInterrupted = errors.New("interrupted")

// bencher runs workloads on one monitor.
type bencher struct {
	mon     *vmm.Monitor
	backend string
	images  map[string][]byte
	tmp     string
	actual  map[string]string // the spec each --layers spec runs as
	timeout time.Duration
	sigs    <-chan os.Signal
	log     hclog.Logger
	stderr  io.Writer // the layers' (trace's records)
}

// benchKey names one cell of the table; depth 0 is shared by every layer
// (layer "").
type benchKey struct {
	work, layer string
	depth       int
}

// sample is one run's time, and the per-call time the guest printed.
type sample struct {
	total        time.Duration
	callNS       float64
	spacesPerSec float64
	kibPerSpace  float64
}

func (bn *bencher) runAll(works []benchWorkload, specs []string, lo, hi, reps int, prog *progress) ([]benchRow, error) {
	type cell struct {
		w     benchWorkload
		spec  string
		depth int
	}
	var cells []cell
	for _, w := range works {
		cells = append(cells, cell{w, "", 0})
		for _, spec := range specs {
			for d := max(lo, 1); d <= hi; d++ {
				cells = append(cells, cell{w, spec, d})
			}
		}
	}
	samples := map[benchKey][]sample{}
	natives := map[string][]float64{} // per-call times of native runs
	total := len(works) + len(cells)*reps
	for _, w := range works {
		if w.linux {
			total += reps
		}
	}
	n := 0
	// One untimed run of each workload first: the first run pays for
	// what later ones find warm (page cache, the backend's set-up).
	for _, w := range works {
		n++
		prog.show(fmt.Sprintf("[%d/%d] %s: warm-up", n, total, w.name))
		if _, err := bn.runOnce(w, "", 0); err != nil {
			return nil, err
		}
	}
	// Each repetition runs the cells of a workload in a new order, so no
	// depth always pays for coming first after another workload.
	rng := rand.New(rand.NewPCG(1, 2))
	for r := 1; r <= reps; r++ {
		order := slices.Clone(cells)
		for i := 0; i < len(order); {
			j := i
			for j < len(order) && order[j].w.name == order[i].w.name {
				j++
			}
			group := order[i:j]
			rng.Shuffle(len(group), func(a, b int) { group[a], group[b] = group[b], group[a] })
			i = j
		}
		for _, c := range order {
			n++
			label := "no layer"
			if c.depth > 0 {
				label = fmt.Sprintf("%s x%d", c.spec, c.depth)
			}
			prog.show(fmt.Sprintf("[%d/%d] %s, %s, rep %d/%d", n, total, c.w.name, label, r, reps))
			s, err := bn.runOnce(c.w, c.spec, c.depth)
			if err != nil {
				return nil, fmt.Errorf("%s, %s: %w", c.w.name, label, err)
			}
			k := benchKey{c.w.name, c.spec, c.depth}
			samples[k] = append(samples[k], s)
		}
		for _, w := range works {
			if !w.linux {
				continue
			}
			n++
			prog.show(fmt.Sprintf("[%d/%d] %s, native, rep %d/%d", n, total, w.name, r, reps))
			ns, err := bn.runNative(w)
			if err != nil {
				return nil, fmt.Errorf("%s, native: %w", w.name, err)
			}
			natives[w.name] = append(natives[w.name], ns)
		}
	}

	var rows []benchRow
	for _, w := range works {
		base := summarize(samples[benchKey{w.name, "", 0}])
		for _, spec := range specs {
			for d := lo; d <= hi; d++ {
				key := benchKey{w.name, spec, d}
				if d == 0 {
					key.layer = ""
				}
				row := summarize(samples[key])
				row.Workload, row.Layer, row.Depth = w.name, spec, d
				if w.hold != "" {
					row.Spaces = w.children
				}
				row.Slowdown = float64(row.MedianNS) / float64(base.MedianNS)
				row.MinSlowdown = float64(row.MinNS) / float64(base.MinNS)
				row.PerLevel = 1
				if d > 0 {
					row.PerLevel = math.Pow(row.Slowdown, 1/float64(d))
				}
				if nat := natives[w.name]; len(nat) > 0 && row.CallNS > 0 {
					row.NativeCallNS = median(slices.Clone(nat))
					row.CallVsNative = row.CallNS / row.NativeCallNS
				}
				if base.CallNS > 0 {
					row.CallSlowdown = row.CallNS / base.CallNS
					row.CallPerLevel = 1
					if d > 0 {
						row.CallPerLevel = math.Pow(row.CallSlowdown, 1/float64(d))
					}
				}
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

func summarize(ss []sample) benchRow {
	if len(ss) == 0 {
		return benchRow{}
	}
	totals := make([]int64, len(ss))
	calls := make([]float64, len(ss))
	rates := make([]float64, len(ss))
	kibs := make([]float64, len(ss))
	for i, s := range ss {
		totals[i], calls[i], rates[i], kibs[i] = int64(s.total), s.callNS, s.spacesPerSec, s.kibPerSpace
	}
	sort.Slice(totals, func(i, j int) bool { return totals[i] < totals[j] })
	med := totals[len(totals)/2]
	if len(ss)%2 == 0 {
		med = (totals[len(totals)/2-1] + med) / 2
	}
	return benchRow{Reps: len(ss), MedianNS: med, MinNS: totals[0], MaxNS: totals[len(totals)-1], CallNS: median(calls), SpacesPerSec: median(rates), KiBPerSpace: median(kibs)}
}

// median is the median of vs, which it sorts.
func median(vs []float64) float64 {
	sort.Float64s(vs)
	m := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		m = (vs[len(vs)/2-1] + m) / 2
	}
	return m
}

// runNative runs the Linux program of w on the host, with the arguments
// it has under nestvm, and returns the time of one call it printed.
func (bn *bencher) runNative(w benchWorkload) (float64, error) {
	path := filepath.Join(bn.tmp, "native-"+w.guest)
	if _, err := os.Stat(path); err != nil {
		if err := os.WriteFile(path, bn.images[w.guest], 0o755); err != nil {
			return 0, err
		}
	}
	args := w.args(bn.backend)
	out, err := exec.Command(path, args[1:]...).Output()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if ns := callTime(string(out)); ns > 0 {
		return ns, nil
	}
	return 0, fmt.Errorf("%s: output %q has no call time", path, out)
}

// callTime is the time of one call in what the bench guest and lxbench
// print, "bench MODE N NS" (the time of N calls); 0 when it is not that.
func callTime(out string) float64 {
	f := strings.Fields(out)
	if len(f) != 4 || f[0] != "bench" {
		return 0
	}
	n, err1 := strconv.ParseFloat(f[2], 64)
	ns, err2 := strconv.ParseFloat(f[3], 64)
	if err1 != nil || err2 != nil || n <= 0 {
		return 0
	}
	return ns / n
}

// runOnce runs w under depth copies of the layer spec and returns the time
// from the launch to the program's exit.
func (bn *bencher) runOnce(w benchWorkload, spec string, depth int) (sample, error) {
	img, err := vmm.ParseELFWith(bn.images[w.guest], vmm.DefaultQuota.Memory, vmm.ELFOptions{TLS: w.linux})
	if err != nil {
		return sample{}, fmt.Errorf("%s.elf: %w", w.guest, err)
	}
	var pers nester.Personality
	if w.linux {
		pers = &linuxp.Personality{Exe: "/" + w.guest}
	}
	var layers []nester.Layer
	for i := 1; i <= depth; i++ {
		l, err := nester.New(expandSpec(bn.actual[spec], bn.tmp, i), nester.Host{Log: bn.log.Named("layer"), Stderr: bn.stderr})
		if err != nil {
			for _, made := range layers {
				made.Close()
			}
			return sample{}, err
		}
		layers = append(layers, l)
	}
	out, errs := &tailBuffer{max: 4096}, &tailBuffer{max: 4096}
	cfg := nester.RootConfig{Console: out, Stderr: errs, Children: w.children, Handles: w.handles, Threads: w.threads, Log: bn.log}
	var held <-chan struct{}
	var release *io.PipeWriter
	var settled chan settledRSS
	quit := make(chan struct{})
	defer close(quit)
	if w.hold != "" {
		pr, pw := io.Pipe()
		defer pw.Close()
		cfg.Stdin, release = pr, pw
		ch := make(chan struct{})
		out.seen, out.seenCh, held = w.hold, ch, ch
	}
	root, rootSpace := nester.Root(bn.mon, cfg)
	defer rootSpace.Kill("bench run over")
	// The last run's garbage is collected now, not on this run's clock.
	// Where bench reads the memory live spaces hold, it gives what the
	// Go heap and malloc's heaps do not use back to the host, here and
	// when it reads again (settle): memory an earlier run left free would
	// otherwise be counted before, and reused unseen or given back during
	// the run (by emu's pool, which trims malloc's heaps).
	if w.hold != "" {
		releaseFree()
	} else {
		runtime.GC()
	}
	rssBefore := residentKiB()
	var rssHeld int64
	start := time.Now()
	r, err := nester.Launch(bn.mon, root, layers, nester.Program{Name: w.guest, Image: img, Args: w.args(bn.backend), Personality: pers})
	if err != nil {
		return sample{}, err
	}
	timer := time.NewTimer(bn.timeout)
	defer timer.Stop()
	var res vmm.Result
	for ended := false; !ended; {
		select {
		case <-held:
			// Every space is live, and stays so until the input ends.
			held = nil
			settled = make(chan settledRSS, 1)
			go func() { settled <- bn.settle(rootSpace, quit) }()
		case m := <-settled:
			settled = nil
			if m.err != nil {
				r.Kill(exitMonitor, "bench could not read the monitor's memory")
				r.Wait()
				return sample{}, m.err
			}
			rssHeld = m.kib
			release.Close()
		case <-r.Done():
			res, ended = r.Wait(), true
		case <-timer.C:
			r.Kill(exitTimeout, "timeout")
			r.Wait()
			return sample{}, fmt.Errorf("no exit after %s (--timeout)", bn.timeout)
		case sig := <-bn.sigs:
			r.Kill(exitInterrupt, "interrupted")
			r.Wait()
			return sample{}, fmt.Errorf("%w by %s", errInterrupted, sig)
		}
	}
	elapsed := time.Since(start)
	switch {
	case res.Err != nil:
		return sample{}, res.Err
	case res.Fault != nil:
		return sample{}, fmt.Errorf("thread %d: %s", res.Fault.Thread, res.Fault.Fault)
	case res.Killed != "":
		return sample{}, fmt.Errorf("killed: %s", res.Killed)
	case res.Status != 0:
		return sample{}, fmt.Errorf("exit status %d; stderr %q", res.Status, errs.String())
	case !strings.Contains(out.String(), w.want):
		return sample{}, fmt.Errorf("output %q lacks %q", out.String(), w.want)
	}
	s := sample{total: elapsed}
	s.callNS = callTime(out.String())
	// fanout prints "fanout N created in NS ns" first.
	if f := strings.Fields(out.String()); len(f) >= 6 && f[0] == "fanout" && f[2] == "created" {
		n, err1 := strconv.ParseFloat(f[1], 64)
		ns, err2 := strconv.ParseFloat(f[4], 64)
		if err1 == nil && err2 == nil && ns > 0 {
			s.spacesPerSec = n / (ns / 1e9)
			if rssBefore > 0 && rssHeld > 0 {
				s.kibPerSpace = float64(rssHeld-rssBefore) / n
			}
		}
	}
	return s, nil
}

// Settling: how often bench reads the monitor's memory while it waits for
// it to stop falling, and for how long at most. The period is emu's engine
// pool's: an engine lent by a thread that went to wait is closed 250-500
// ms later (emu/pool.go), and the memory it held goes back to the host.
const (
	settlePeriod  = 250 * time.Millisecond
	settleSamples = 40
	// settleSteady is how many periods in a row the memory must not
	// fall for it to count as settled: two cover the pool's longest wait.
	settleSteady = 2
	// runningPoll is how often bench asks space_running whether every
	// thread waits.
	runningPoll = 5 * time.Millisecond
)

// settledRSS is what settle read: the monitor's resident KiB, or why not.
type settledRSS struct {
	kib int64
	err error
}

// settle waits until every thread of root's subtree waits (space_running:
// none busy, some waiting) and then until the monitor's resident memory
// stops falling: sampled every settlePeriod, it has not fallen below the
// lowest sample so far by more than a tolerance for settleSteady periods
// in a row, or settleSamples have been taken. It returns the last sample.
// It gives up, with a zero result, when quit closes.
func (bn *bencher) settle(root *vmm.Host, quit <-chan struct{}) settledRSS {
	c := root.NewCaller()
	h, err := c.Self(abi.RightRead)
	if err != nil {
		return settledRSS{err: fmt.Errorf("space_running: %w", err)}
	}
	defer c.HandleClose(h)
	tick := time.NewTicker(runningPoll)
	defer tick.Stop()
	for {
		busy, waiting, err := c.SpaceRunning(h)
		if err != nil {
			return settledRSS{err: fmt.Errorf("space_running: %w", err)}
		}
		if busy == 0 && waiting > 0 {
			break
		}
		select {
		case <-quit:
			return settledRSS{}
		case <-tick.C:
		}
	}
	tick.Reset(settlePeriod)
	cur := residentKiB()
	waited, samples := cur, 1
	low := cur
	for i, steady := 1, 0; steady < settleSteady && i < settleSamples; i++ {
		select {
		case <-quit:
			return settledRSS{}
		case <-tick.C:
		}
		cur = residentKiB()
		samples++
		// Less than 1% of what is resident is noise (the Go
		// runtime returning memory a little at a time), not a fall.
		if cur < low-max(64, low/100) {
			steady = 0
		} else {
			steady++
		}
		low = min(low, cur)
	}
	releaseFree()
	cur = residentKiB()
	bn.log.Debug("fanout memory settled", "all_wait_kib", waited, "samples", samples, "settled_kib", cur)
	return settledRSS{kib: cur}
}

// releaseFree gives the host what the Go heap and malloc's heaps hold
// free, so that resident memory is what is in use.
func releaseFree() {
	debug.FreeOSMemory()
	trimMalloc()
}

// residentKiB is the monitor's resident memory in KiB, 0 when unknown.
func residentKiB() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return n
		}
	}
	return 0
}

// tailBuffer keeps the last max bytes written to it: a workload's console
// output, which bench checks but does not print. When seen is set, seenCh
// is closed once the output holds it.
type tailBuffer struct {
	mu     sync.Mutex
	max    int
	buf    []byte
	seen   string
	seenCh chan struct{}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	if t.seenCh != nil && strings.Contains(string(t.buf), t.seen) {
		close(t.seenCh)
		t.seenCh = nil
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
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

// describeHost reads what the numbers depend on: the CPU, the kernel and
// what serves /dev/kvm.
func describeHost() benchHost {
	h := benchHost{CPU: "unknown CPU", CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), KVM: "none"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPU = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(data))
	}
	if _, err := machine.Lookup("kvm"); err == nil {
		h.KVM = "kvm"
		if hostIsPVM() {
			h.KVM = "pvm"
		}
	}
	kvmDesc := map[string]string{"none": "no /dev/kvm", "kvm": "/dev/kvm", "pvm": "/dev/kvm is PVM (paravirtual, inside a VM)"}[h.KVM]
	h.Summary = fmt.Sprintf("%s, %d CPUs, %s %s, %s", h.CPU, h.CPUs, runtime.GOOS, h.Kernel, kvmDesc)
	return h
}

// backendLabel names the backend as the numbers should be read: kvm on
// PVM is not kvm on hardware virtualization.
func backendLabel(rep benchReport) string {
	if rep.Backend == "kvm" && rep.Host.KVM == "pvm" {
		return "kvm (PVM)"
	}
	return rep.Backend
}

func printBenchTable(w io.Writer, rep benchReport) {
	fmt.Fprintf(w, "nestvm bench: backend %s; host %s\n", backendLabel(rep), rep.Host.Summary)
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
	fmt.Fprintln(tw, "workload\tlayer\tdepth\tmedian\tmin\tmax\tslowdown\tper level\tmin slowdown\tcall\tcall slowdown\tnative call\tspaces/s\tKiB/space\t")
	for _, r := range rep.Rows {
		per, call, cs, nat, rate, kib := "", "", "", "", "", ""
		if r.NativeCallNS > 0 {
			nat = fmt.Sprintf("%.0f ns (%.2fx)", r.NativeCallNS, r.CallVsNative)
		}
		if r.SpacesPerSec > 0 {
			rate = fmt.Sprintf("%.0f", r.SpacesPerSec)
		}
		if r.KiBPerSpace != 0 {
			kib = fmt.Sprintf("%.0f", r.KiBPerSpace)
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
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%.3fx\t%s\t%.3fx\t%s\t%s\t%s\t%s\t%s\t\n", r.Workload, r.Layer, r.Depth,
			fmtNS(r.MedianNS), fmtNS(r.MinNS), fmtNS(r.MaxNS), r.Slowdown, per, r.MinSlowdown, call, cs, nat, rate, kib)
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

func writeBenchCSV(path string, rows []benchRow) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"workload", "layer", "depth", "reps", "median_ns", "min_ns", "max_ns", "slowdown", "slowdown_per_level", "min_slowdown", "call_ns", "call_slowdown", "call_slowdown_per_level", "spaces_per_s", "kib_per_space", "spaces", "native_call_ns", "call_vs_native"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range rows {
		call, cs, cpl, rate := "", "", "", ""
		if r.CallNS > 0 {
			call, cs, cpl = g(r.CallNS), g(r.CallSlowdown), g(r.CallPerLevel)
		}
		kib, nat, vs, spaces := "", "", "", ""
		if r.SpacesPerSec > 0 {
			rate, kib = g(r.SpacesPerSec), g(r.KiBPerSpace)
		}
		if r.Spaces > 0 {
			spaces = strconv.Itoa(r.Spaces)
		}
		if r.NativeCallNS > 0 {
			nat, vs = g(r.NativeCallNS), g(r.CallVsNative)
		}
		w.Write([]string{r.Workload, r.Layer, strconv.Itoa(r.Depth), strconv.Itoa(r.Reps),
			strconv.FormatInt(r.MedianNS, 10), strconv.FormatInt(r.MinNS, 10), strconv.FormatInt(r.MaxNS, 10),
			g(r.Slowdown), g(r.PerLevel), g(r.MinSlowdown), call, cs, cpl, rate, kib, spaces, nat, vs})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
