package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	linuxp "nestvm/personality/linux"

	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// ErrInterrupted is what a run ended by its context's cancellation wraps,
// when the cause the context was cancelled with does not say otherwise.
var ErrInterrupted = errors.New("interrupted")

// Config is what a bench runs: workloads at a range of depths under each
// layer, so many times.
type Config struct {
	// Workloads run in this order, each under every layer and depth.
	Workloads []Workload
	// Layers are layer specs, NAME or NAME=ARGS as nester.New takes
	// them; in ARGS, {tmp} is the bench's temporary directory and {level}
	// the copy's level (1 nearest the monitor). A bare name in
	// LayerDefaults runs as its default spec.
	Layers []string
	// DepthLo and DepthHi are the depths each layer runs at; depth 0
	// runs the workload through the same loader with no layer.
	DepthLo, DepthHi int
	// Reps is how many times each cell runs, after one untimed warm-up
	// run of each workload.
	Reps int
	// GuestDir holds the workloads' programs, GUEST.elf.
	GuestDir string
	// Timeout ends a run that lasts longer, and fails the bench.
	Timeout time.Duration
	Log     hclog.Logger
	// Stderr is the layers' (trace's records, when told to write there).
	Stderr io.Writer
	// Progress, when set, is told of each run before it starts: the
	// step's number, how many there are, and what it runs.
	Progress func(step, total int, what string)
}

// LayerDefault is the spec a layer named bare in Config.Layers is
// measured with, and why.
type LayerDefault struct {
	Spec, Why     string
	File, Content string // a file the bench writes under {tmp} first
}

// LayerDefaults are the arguments a layer named bare is measured with:
// trace alone writes every operation to the terminal, and refmon needs a
// policy.
var LayerDefaults = map[string]LayerDefault{
	"trace": {Spec: "trace={tmp}/trace-{level}.jsonl", Why: "JSON Lines to a temporary file, not the terminal"},
	"refmon": {Spec: "refmon={tmp}/policy.hcl", Why: "a policy that allows the workloads, with a rule for each kind of call they make",
		File: "policy.hcl", Content: benchPolicy},
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

// LayerError is a layer spec that makes no layer: the user's to fix.
type LayerError struct {
	Spec string
	Err  error
}

func (e *LayerError) Error() string { return e.Err.Error() }
func (e *LayerError) Unwrap() error { return e.Err }

// GuestError is a workload whose program cannot be read.
type GuestError struct {
	Workload string
	Err      error
}

func (e *GuestError) Error() string { return fmt.Sprintf("workload %s: %v", e.Workload, e.Err) }
func (e *GuestError) Unwrap() error { return e.Err }

// Bench is a prepared bench: layers checked, programs read, a temporary
// directory for what the layers write. Close removes that directory.
type Bench struct {
	cfg    Config
	tmp    string
	actual map[string]string // the spec each Config.Layers spec runs as
	notes  []string
	images map[string][]byte
}

// New prepares cfg to run: it makes every layer once, so a bad name or
// argument (a *LayerError) is found before anything runs, and reads every
// workload's program (a *GuestError when one cannot be).
func New(cfg Config) (*Bench, error) {
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	tmp, err := os.MkdirTemp("", "nestvm-bench-")
	if err != nil {
		return nil, err
	}
	b := &Bench{cfg: cfg, tmp: tmp, actual: map[string]string{}, images: map[string][]byte{}}
	if err := b.prepare(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bench) prepare() error {
	for _, spec := range b.cfg.Layers {
		b.actual[spec] = spec
		d, ok := LayerDefaults[spec]
		if !ok {
			continue
		}
		if d.File != "" {
			if err := os.WriteFile(filepath.Join(b.tmp, d.File), []byte(d.Content), 0o644); err != nil {
				return err
			}
		}
		b.actual[spec] = d.Spec
		b.notes = append(b.notes, fmt.Sprintf("%s runs as %s (%s)", spec, d.Spec, d.Why))
	}
	for _, w := range b.cfg.Workloads {
		if w.Hold != "" {
			b.notes = append(b.notes, fmt.Sprintf("%s holds %d live spaces; KiB/space is read once every thread waits and the monitor's memory has settled", w.Name, w.Children),
				fmt.Sprintf("%s's host KiB/space is the host's used memory (MemTotal - MemAvailable) over the same interval: the kernel's part of each space too, and whatever else the host did meanwhile", w.Name))
		}
	}
	for _, spec := range b.cfg.Layers {
		l, err := nester.New(expandSpec(b.actual[spec], b.tmp, 1), b.layerHost())
		if err != nil {
			return &LayerError{Spec: spec, Err: err}
		}
		if err := l.Close(); err != nil {
			return fmt.Errorf("layer %s: %w", spec, err)
		}
	}
	for _, w := range b.cfg.Workloads {
		data, err := os.ReadFile(filepath.Join(b.cfg.GuestDir, w.Guest+".elf"))
		if err != nil {
			return &GuestError{Workload: w.Name, Err: err}
		}
		b.images[w.Guest] = data
	}
	return nil
}

func (b *Bench) layerHost() nester.Host {
	return nester.Host{Log: b.cfg.Log.Named("layer"), Stderr: b.cfg.Stderr}
}

// Notes say how the numbers are to be read: what a bare layer ran as,
// how many spaces a workload held.
func (b *Bench) Notes() []string { return slices.Clone(b.notes) }

// Close removes what the layers wrote.
func (b *Bench) Close() error { return os.RemoveAll(b.tmp) }

// expandSpec fills in {tmp} and {level} in a layer spec's arguments.
func expandSpec(spec, tmp string, level int) string {
	return strings.NewReplacer("{tmp}", tmp, "{level}", strconv.Itoa(level)).Replace(spec)
}

// Run runs every cell on one monitor of backend be and reports the
// medians. Cancelling ctx ends the run in progress and returns the
// context's cause (ErrInterrupted when it gave none).
func (b *Bench) Run(ctx context.Context, be machine.Backend) (Report, error) {
	r := &runner{Bench: b, mon: vmm.NewMonitor(be, b.cfg.Log), backend: be.Name(), ctx: ctx}
	loadBefore := loadAverage()
	rows, err := r.runAll()
	if err != nil {
		return Report{}, err
	}
	host := DescribeHost()
	host.LoadBefore, host.LoadAfter = loadBefore, loadAverage()
	notes := b.Notes()
	for _, row := range rows {
		if h := row.HostKiBPerSpace; h != nil && (*h <= 0 || *h < row.KiBPerSpace) {
			notes = append(notes, fmt.Sprintf("%s, %s: host KiB/space (%.0f) is below 0 or below KiB/space (%.0f), which it includes: other work on the host gave back memory while it ran; rerun on a quieter host",
				row.Workload, cellLabel(row.Layer, row.Depth), *h, row.KiBPerSpace))
		}
	}
	return Report{Host: host, Backend: be.Name(), Reps: b.cfg.Reps, Time: time.Now().UTC().Format(time.RFC3339),
		Notes: notes, Rows: rows}, nil
}

// runner runs workloads on one monitor.
type runner struct {
	*Bench
	mon     *vmm.Monitor
	backend string
	ctx     context.Context
}

// cause is why ctx ended.
func (r *runner) cause() error {
	if err := context.Cause(r.ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ErrInterrupted
}

// cellLabel names a layer and depth as the progress shows them.
func cellLabel(spec string, depth int) string {
	if depth == 0 {
		return "no layer"
	}
	return fmt.Sprintf("%s x%d", spec, depth)
}

// cellKey names one cell of the table; depth 0 is shared by every layer
// (layer "").
type cellKey struct {
	work, layer string
	depth       int
}

// sample is one run's time, and what the guest printed of its own.
type sample struct {
	total        time.Duration
	callNS       float64
	spacesPerSec float64
	kibPerSpace  float64
	// hostKiBPerSpace is set when hostKnown is: it may be 0 or less.
	hostKiBPerSpace float64
	hostKnown       bool
}

func (r *runner) progress(step, total int, what string) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(step, total, what)
	}
}

func (r *runner) runAll() ([]Row, error) {
	type cell struct {
		w     Workload
		spec  string
		depth int
	}
	works, specs, lo, hi, reps := r.cfg.Workloads, r.cfg.Layers, r.cfg.DepthLo, r.cfg.DepthHi, r.cfg.Reps
	var cells []cell
	for _, w := range works {
		cells = append(cells, cell{w, "", 0})
		for _, spec := range specs {
			for d := max(lo, 1); d <= hi; d++ {
				cells = append(cells, cell{w, spec, d})
			}
		}
	}
	samples := map[cellKey][]sample{}
	natives := map[string][]float64{} // per-call times of native runs
	total := len(works) + len(cells)*reps
	for _, w := range works {
		if w.Linux {
			total += reps
		}
	}
	n := 0
	// One untimed run of each workload first: the first run pays for
	// what later ones find warm (page cache, the backend's set-up).
	for _, w := range works {
		n++
		r.progress(n, total, w.Name+": warm-up")
		if _, err := r.runOnce(w, "", 0); err != nil {
			return nil, err
		}
	}
	// Each repetition runs the cells of a workload in a new order, so no
	// depth always pays for coming first after another workload.
	rng := rand.New(rand.NewPCG(1, 2))
	for rep := 1; rep <= reps; rep++ {
		order := slices.Clone(cells)
		for i := 0; i < len(order); {
			j := i
			for j < len(order) && order[j].w.Name == order[i].w.Name {
				j++
			}
			group := order[i:j]
			rng.Shuffle(len(group), func(a, b int) { group[a], group[b] = group[b], group[a] })
			i = j
		}
		for _, c := range order {
			n++
			label := cellLabel(c.spec, c.depth)
			r.progress(n, total, fmt.Sprintf("%s, %s, rep %d/%d", c.w.Name, label, rep, reps))
			s, err := r.runOnce(c.w, c.spec, c.depth)
			if err != nil {
				return nil, fmt.Errorf("%s, %s: %w", c.w.Name, label, err)
			}
			k := cellKey{c.w.Name, c.spec, c.depth}
			samples[k] = append(samples[k], s)
		}
		for _, w := range works {
			if !w.Linux {
				continue
			}
			n++
			r.progress(n, total, fmt.Sprintf("%s, native, rep %d/%d", w.Name, rep, reps))
			ns, err := r.runNative(w)
			if err != nil {
				return nil, fmt.Errorf("%s, native: %w", w.Name, err)
			}
			natives[w.Name] = append(natives[w.Name], ns)
		}
	}

	var rows []Row
	for _, w := range works {
		base := summarize(samples[cellKey{w.Name, "", 0}])
		for _, spec := range specs {
			for d := lo; d <= hi; d++ {
				key := cellKey{w.Name, spec, d}
				if d == 0 {
					key.layer = ""
				}
				row := summarize(samples[key])
				row.Workload, row.Layer, row.Depth = w.Name, spec, d
				if w.Hold != "" {
					row.Spaces = w.Children
				}
				row.Slowdown = float64(row.MedianNS) / float64(base.MedianNS)
				row.MinSlowdown = float64(row.MinNS) / float64(base.MinNS)
				row.PerLevel = 1
				if d > 0 {
					row.PerLevel = math.Pow(row.Slowdown, 1/float64(d))
				}
				if nat := natives[w.Name]; len(nat) > 0 && row.CallNS > 0 {
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

func summarize(ss []sample) Row {
	if len(ss) == 0 {
		return Row{}
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
	row := Row{Reps: len(ss), MedianNS: med, MinNS: totals[0], MaxNS: totals[len(totals)-1], CallNS: median(calls), SpacesPerSec: median(rates), KiBPerSpace: median(kibs)}
	var hosts []float64
	for _, s := range ss {
		if s.hostKnown {
			hosts = append(hosts, s.hostKiBPerSpace)
		}
	}
	if len(hosts) > 0 {
		m := median(hosts)
		row.HostKiBPerSpace = &m
	}
	return row
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
func (r *runner) runNative(w Workload) (float64, error) {
	path := filepath.Join(r.tmp, "native-"+w.Guest)
	if _, err := os.Stat(path); err != nil {
		if err := os.WriteFile(path, r.images[w.Guest], 0o755); err != nil {
			return 0, err
		}
	}
	args := w.Args(r.backend)
	out, err := exec.CommandContext(r.ctx, path, args[1:]...).Output()
	if r.ctx.Err() != nil {
		return 0, r.cause()
	}
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
// from the launch to the program's exit. The program is loaded as nestvm
// run loads it: by nester's loader, through the environment the layers
// make (the root's own at depth 0).
func (r *runner) runOnce(w Workload, spec string, depth int) (sample, error) {
	img, err := vmm.ParseELFWith(r.images[w.Guest], vmm.DefaultQuota.Memory, vmm.ELFOptions{TLS: w.Linux})
	if err != nil {
		return sample{}, fmt.Errorf("%s.elf: %w", w.Guest, err)
	}
	var pers nester.Personality
	if w.Linux {
		pers = &linuxp.Personality{Exe: "/" + w.Guest}
	}
	var layers []nester.Layer
	for i := 1; i <= depth; i++ {
		l, err := nester.New(expandSpec(r.actual[spec], r.tmp, i), r.layerHost())
		if err != nil {
			for _, made := range layers {
				made.Close()
			}
			return sample{}, err
		}
		layers = append(layers, l)
	}
	out, errs := &tailBuffer{max: 4096}, &tailBuffer{max: 4096}
	cfg := nester.RootConfig{Console: out, Stderr: errs, Children: w.Children, Handles: w.Handles, Threads: w.Threads, Log: r.cfg.Log}
	var held <-chan struct{}
	var release *io.PipeWriter
	var settled chan memReading
	quit := make(chan struct{})
	defer close(quit)
	if w.Hold != "" {
		pr, pw := io.Pipe()
		defer pw.Close()
		cfg.Stdin, release = pr, pw
		ch := make(chan struct{})
		out.seen, out.seenCh, held = w.Hold, ch, ch
	}
	root, seat := nester.Root(r.mon, cfg)
	defer seat.Kill("bench run over")
	// The last run's garbage is collected now, not on this run's clock.
	// Where bench reads the memory live spaces hold, it gives what the
	// Go heap and malloc's heaps do not use back to the host, here and
	// when it reads again (settle): memory an earlier run left free would
	// otherwise be counted before, and reused unseen or given back during
	// the run (by emu's pool, which trims malloc's heaps).
	if w.Hold != "" {
		releaseFree()
	} else {
		runtime.GC()
	}
	before := readMemory()
	var atHold memReading
	start := time.Now()
	run, err := nester.Launch(r.mon, root, layers, nester.Program{Name: w.Guest, Image: img, Args: w.Args(r.backend), Personality: pers})
	if err != nil {
		return sample{}, err
	}
	timer := time.NewTimer(r.cfg.Timeout)
	defer timer.Stop()
	var res vmm.Result
	for ended := false; !ended; {
		select {
		case <-held:
			// Every space is live, and stays so until the input ends.
			held = nil
			settled = make(chan memReading, 1)
			c := seat.NewCaller()
			go func() { settled <- settle(c, root.Caps[nester.CapSpace].Obj, quit, r.cfg.Log) }()
		case m := <-settled:
			settled = nil
			if m.err != nil {
				run.Kill(nester.StatusMonitor, "bench could not read the monitor's memory")
				run.Wait()
				return sample{}, m.err
			}
			atHold = m
			release.Close()
		case <-run.Done():
			res, ended = run.Wait(), true
		case <-timer.C:
			run.Kill(nester.StatusTimeout, "timeout")
			run.Wait()
			return sample{}, fmt.Errorf("no exit after %s (--timeout)", r.cfg.Timeout)
		case <-r.ctx.Done():
			run.Kill(nester.StatusInterrupt, "interrupted")
			run.Wait()
			return sample{}, r.cause()
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
	case !strings.Contains(out.String(), w.Want):
		return sample{}, fmt.Errorf("output %q lacks %q", out.String(), w.Want)
	}
	s := sample{total: elapsed}
	s.callNS = callTime(out.String())
	// fanout prints "fanout N created in NS ns" first.
	if f := strings.Fields(out.String()); len(f) >= 6 && f[0] == "fanout" && f[2] == "created" {
		n, err1 := strconv.ParseFloat(f[1], 64)
		ns, err2 := strconv.ParseFloat(f[4], 64)
		if err1 == nil && err2 == nil && ns > 0 {
			s.spacesPerSec = n / (ns / 1e9)
			if before.rssKiB > 0 && atHold.rssKiB > 0 {
				s.kibPerSpace = float64(atHold.rssKiB-before.rssKiB) / n
			}
			if before.hostKiB > 0 && atHold.hostKiB > 0 {
				s.hostKiBPerSpace, s.hostKnown = float64(atHold.hostKiB-before.hostKiB)/n, true
			}
		}
	}
	return s, nil
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
