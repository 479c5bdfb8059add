// Package trace is a layer that records every operation of the subtree
// below it, in the spirit of strace. It wraps every capability of its
// parent's environment, deep (border control: a handle that comes out of a
// call, an opened file or a created space, is wrapped in turn), and writes
// one record per operation: when it began (seconds since the outermost
// trace of the run started, so stacked traces agree), the calling space and thread, the capability (its name in the
// environment, or the call it came out of, "files.files_open") and the type
// of the object it names, the operation, its decoded arguments, the result
// and how long the forwarded call took.
//
// Records go to stderr as text by default:
//
//	[trace] 0.000123 root/child:t0 console(port) console_write(data="Hello, world!\n"/14) = 14 <2µs>
//
// or to a file as JSON Lines (trace=FILE), one Record per line and a
// Summary record last. When the program ends the layer writes counts per
// operation: text lines on stderr (or at the end of a text file), a
// {"kind":"summary"} record in a JSON Lines file.
//
// A trace under another trace records what passes through it: the inner
// one sees the program's calls, the outer one the calls the inner forwards
// (the same operations, on the inner layer's handles).
//
// A traced call only copies what its record needs; a goroutine of the
// layer formats and writes the records, in the order the calls ended
// (writer.go), so that recording costs the program little more than
// interposing does. Everything is written when the layer closes.
//
// A trace that cannot write its records, or fails in any other way, ends
// the program it traces (every space made through its environment's space
// capability, with space_abort, saying why) and reports why when it is
// closed; the monitor goes on.
package trace

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/interpose"
	"nestvm/nester"
	"nestvm/vmm"
)

// previewLen is how many bytes of a buffer a record shows.
const previewLen = 32

// perMonitor numbers the trace layers wrapped in each monitor, outermost
// first, for the default labels: trace, trace2, trace3...
var (
	perMonitorMu sync.Mutex
	perMonitor   = map[*vmm.Monitor]*monCount{}
)

type monCount struct {
	made, live int
	start      time.Time // the outermost trace's start: every trace of a run counts time from it
}

// Layer is a trace layer.
type Layer struct {
	opts  Options
	label string
	log   hclog.Logger
	start time.Time

	out    io.Writer // where records go: the file, or stderr
	file   *os.File
	host   *vmm.Host
	mon    *vmm.Monitor
	failed atomic.Bool

	q        queue               // events on their way to the writer
	stats    [abi.OpCount]opStat // the writer's until it ends, then Close's
	sysStats map[string]*opStat  // system calls by name: the writer's too
	// sysTraced is set once a personality's system calls are recorded:
	// the ABI operations it performs for them are then left out, unless
	// the abi option asks for them.
	sysTraced atomic.Bool
	taps      inflight // system calls being recorded (syscalls.go)

	mu      sync.Mutex // guards what follows
	err     error      // the first failure
	wrapped bool
	// w wraps the environment's capabilities (nil before Wrap); it keeps
	// the programs made through them, which a failure ends.
	w *interpose.Wrapper

	once sync.Once
	cerr error

	// tap is set for a layer NewTap made: it records only while a
	// writer is attached (attached counts them), and never fails.
	tap      bool
	attached atomic.Int32
	sinks    *fanout

	// testHook, when set, runs before each recorded call is forwarded
	// (tests make it panic).
	testHook func(*interpose.Call)
	// testAfter, when set, runs after each recorded call is forwarded.
	testAfter func(*interpose.Call)
}

type opStat struct {
	calls, errors int
	dur           time.Duration
}

// New makes a trace layer from its --layer arguments (see Usage). Text
// records without a file go to stderr. A file is created (truncated)
// here, so one that cannot be written fails before anything runs.
func New(args string, stderr io.Writer, log hclog.Logger) (*Layer, error) {
	o, err := ParseOptions(args)
	if err != nil {
		return nil, err
	}
	return Open(o, stderr, log)
}

// Open makes a trace layer with options o.
func Open(o Options, stderr io.Writer, log hclog.Logger) (*Layer, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	l := &Layer{opts: o, log: log, out: stderr}
	if o.File != "" {
		f, err := os.OpenFile(o.File, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("cannot write the trace file: %w", err)
		}
		// No bufio: the writer gathers a batch of lines and writes it at
		// once.
		l.file, l.out = f, f
	}
	l.label = o.Label
	if l.label == "" {
		l.label = "trace" // until Wrap numbers it
	}
	return l, nil
}

// Name implements nester.Layer.
func (l *Layer) Name() string { return "trace" }

// Label returns the tag of the layer's records (final once the layer has
// wrapped an environment).
func (l *Layer) Label() string { return l.label }

// Wrap implements nester.Layer: every capability of the parent's
// environment is wrapped, deep.
func (l *Layer) Wrap(mon *vmm.Monitor, parent nester.Env) (nester.Env, error) {
	// The host space holds a handle for every capability wrapped, and
	// every handle that comes out of a call is: a program that opens many
	// files must not run out of them here first.
	q := vmm.DefaultQuota
	q.Handles = 1 << 20
	perMonitorMu.Lock()
	mc := perMonitor[mon]
	if mc == nil {
		mc = &monCount{start: time.Now()}
		perMonitor[mon] = mc
	}
	if !l.tap { // a tap takes no number from the traces the user stacked
		mc.made++
	}
	mc.live++
	if l.opts.Label == "" && mc.made > 1 {
		l.label = "trace" + strconv.Itoa(mc.made)
	}
	perMonitorMu.Unlock()
	l.mon = mon
	l.start = mc.start
	l.host = mon.NewHost(l.label, q)
	// A tap wraps the environment's capabilities alone: what the program
	// makes with them (its regions, threads, ports, children, open files)
	// stays its own, unwrapped, so a checkpoint below can save it, and
	// costs nothing.
	w := &interpose.Wrapper{Host: l.host, Deep: !l.tap, Layer: l.label, Handler: interpose.HandlerFunc(l.handle)}
	l.mu.Lock()
	l.wrapped, l.w = true, w
	l.mu.Unlock()
	l.startWriter()
	return parent.WrapAll(w)
}

// wants reports whether the filters let c's operation be recorded.
func (l *Layer) wants(c *interpose.Call) bool {
	if l.opts.Ops != nil && !l.opts.Ops[c.Inv.Op] {
		return false
	}
	if l.opts.Types != nil && !l.opts.Types[c.Type.String()] && !l.opts.Types[c.Inv.Info.Iface.String()] {
		return false
	}
	return true
}

// handle is the Wrapper's handler: it forwards every call, recording the
// ones the filters let through. It only captures what the record needs
// (see writer.go): the writer formats and writes it.
func (l *Layer) handle(c *interpose.Call) {
	if l.tap && l.attached.Load() == 0 {
		c.Forward()
		return
	}
	if l.failed.Load() {
		c.Deny(abi.ErrIO)
		return
	}
	// A tap leaves a personality's fault server in place: the checkpoint
	// of a Linux program names it as the program's runner.
	if c.Inv.Op == abi.OpSpaceSetExceptionPort && !l.tap && l.tapFaults(c) {
		return
	}
	if !l.wants(c) || (l.sysTraced.Load() && !l.opts.ABI) {
		c.Forward()
		return
	}
	// A panic ends the call (denied, unless it was forwarded and done:
	// the interposer would forward it again) and the program.
	done := false
	defer func() {
		if p := recover(); p != nil {
			l.fail(fmt.Errorf("panic in %s %s: %v", c.Name, c.Inv.Info.Name, p))
			if !done {
				c.Deny(abi.ErrIO)
			}
		}
	}()
	var ev event
	l.begin(c, &ev)
	if l.testHook != nil {
		l.testHook(c)
	}
	// One clock reading marks both when the call began and when the
	// forwarded call did: they are nanoseconds apart.
	ev.at = time.Since(l.start)
	r0, r1, err := c.Forward()
	ev.dur = time.Since(l.start) - ev.at
	done = true
	if l.testAfter != nil {
		l.testAfter(c)
	}
	l.finish(c, &ev, r0, r1, err)
	l.push(&ev)
}

// fail records the layer's first failure and ends the program it
// traces: every space made through the environment's space capability,
// with the spaces below them.
func (l *Layer) fail(err error) {
	l.mu.Lock()
	first := l.err == nil
	if first {
		l.err = err
	}
	w := l.w
	l.mu.Unlock()
	l.failed.Store(true)
	if !first {
		return
	}
	l.log.Error("trace failed; ending the program it traces", "error", err)
	if w != nil {
		w.EndPrograms(fmt.Sprintf("layer %s failed: %v", l.label, err))
	}
}

// Record is one operation, as a JSON Lines record.
type Record struct {
	Kind   string  `json:"kind"`   // "call"
	Layer  string  `json:"layer"`  // the layer's label
	Time   float64 `json:"time"`   // when the call began: seconds since the run's outermost trace started
	Space  string  `json:"space"`  // the calling thread's space; "host" for host code
	Thread *int    `json:"thread"` // the calling thread's number in its space; null for host code
	Cap    string  `json:"cap"`    // the capability: its name in the environment, or the call it came from
	CapID  uint64  `json:"cap_id"` // numbers the layer's wrapped capabilities, from 1
	Type   string  `json:"type"`   // the type of the object the capability names
	Op     string  `json:"op"`
	Args   []Arg   `json:"args"`
	OK     bool    `json:"ok"`
	R0     uint64  `json:"r0"`
	R1     uint64  `json:"r1"`
	Handle bool    `json:"handle,omitempty"` // R0 is a new handle (wrapped in turn)
	Error  string  `json:"error,omitempty"`  // the error's symbol (NV_EDENIED) when not OK
	DurNS  int64   `json:"dur_ns"`           // how long the forwarded call took
}

// Arg is one decoded argument.
type Arg struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // value, handle, in or out
	// Value is a value argument, or a handle argument's number in the
	// caller's table.
	Value *uint64 `json:"value,omitempty"`
	// Type is the type of the object a handle argument names.
	Type string `json:"type,omitempty"`
	// Len is an in buffer's length or an out buffer's capacity.
	Len *uint64 `json:"len,omitempty"`
	// Data previews the buffer's first bytes (an out buffer's once
	// filled, when the result says how much was): at most 32 bytes, as a
	// string with invalid UTF-8 replaced.
	Data      *string `json:"data,omitempty"`
	Truncated bool    `json:"truncated,omitempty"`

	raw []byte
}

// begin captures c's arguments before it is forwarded.
func (l *Layer) begin(c *interpose.Call, ev *event) {
	inv := c.Inv
	ev.caller, ev.op = inv.Invoker(), inv.Op
	ev.cap, ev.capID, ev.capType = c.Name, c.ID, c.Type
	slot, buf := 0, 0
	for i, a := range inv.Info.Args {
		switch a.Kind {
		case abi.ArgValue:
			ev.vals[i] = inv.Slots[slot]
		case abi.ArgHandle:
			ev.vals[i] = inv.Slots[slot]
			if obj, _, _, ok := inv.HandleArg(slot); ok && obj != nil {
				ev.htype[i] = obj.ObjectType()
				ev.hasType |= 1 << i
			}
		case abi.ArgIn, abi.ArgOut:
			b := inv.Buffer(buf)
			ev.vals[i] = b.Len()
			if a.Kind == abi.ArgIn {
				ev.bufs[buf].read(b, b.Len())
			}
			buf++
		}
		slot += a.Kind.Slots()
	}
}

// finish captures c's result.
func (l *Layer) finish(c *interpose.Call, ev *event, r0, r1 uint64, err error) {
	ev.r0, ev.r1 = r0, r1
	if err != nil {
		e := abi.ErrorOf(err, abi.ErrIO)
		ev.failed, ev.err = true, e
		return
	}
	// An out buffer the result says how much of was filled.
	if outPreview[c.Inv.Op] {
		buf := 0
		for _, a := range c.Inv.Info.Args {
			if a.Kind == abi.ArgOut {
				b := c.Inv.Buffer(buf)
				ev.bufs[buf].read(b, min(r0, b.Len()))
			}
			if a.Kind == abi.ArgIn || a.Kind == abi.ArgOut {
				buf++
			}
		}
	}
}

// writeErr is the failure to write records.
func (l *Layer) writeErr(err error) error {
	return fmt.Errorf("writing %s: %w", l.dest(), err)
}

func (l *Layer) dest() string {
	if l.file != nil {
		return l.opts.File
	}
	return "stderr"
}

// appendText appends rec as one line of text.
func appendText(b []byte, r *Record) []byte {
	b = append(b, '[')
	b = append(b, r.Layer...)
	b = append(b, "] "...)
	b = strconv.AppendFloat(b, r.Time, 'f', 6, 64)
	b = append(b, ' ')
	if r.Thread != nil {
		b = append(b, r.Space...)
		b = append(b, ":t"...)
		b = strconv.AppendInt(b, int64(*r.Thread), 10)
		b = append(b, ' ')
	} else {
		b = append(b, "host "...)
	}
	b = append(b, r.Cap...)
	b = append(b, '(')
	b = append(b, r.Type...)
	b = append(b, ") "...)
	b = append(b, r.Op...)
	b = append(b, '(')
	for i := range r.Args {
		a := &r.Args[i]
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, a.Name...)
		b = append(b, '=')
		switch a.Kind {
		case "value":
			b = appendValue(b, *a.Value)
		case "handle":
			if *a.Value == abi.NoHandle {
				b = append(b, "none"...)
			} else {
				b = append(b, 'h')
				b = strconv.AppendUint(b, *a.Value, 10)
				if a.Type != "" {
					b = append(b, '(')
					b = append(b, a.Type...)
					b = append(b, ')')
				}
			}
		case "in", "out":
			if a.Data != nil {
				b = strconv.AppendQuote(b, string(a.raw))
				if a.Truncated {
					b = append(b, "..."...)
				}
				b = append(b, '/')
			} else {
				b = append(b, '[')
			}
			b = strconv.AppendUint(b, *a.Len, 10)
			if a.Data == nil {
				b = append(b, ']')
			}
		}
	}
	b = append(b, ") = "...)
	switch {
	case !r.OK:
		b = append(b, r.Error...)
		b = append(b, " ("...)
		b = append(b, abi.ResultError(r.R0).Error()...)
		b = append(b, ')')
	case r.Handle:
		b = append(b, "handle"...)
	default:
		b = appendValue(b, r.R0)
		if r.R1 != 0 {
			b = append(b, ", "...)
			b = appendValue(b, r.R1)
		}
	}
	b = append(b, " <"...)
	b = append(b, formatDur(time.Duration(r.DurNS))...)
	return append(b, ">\n"...)
}

// appendValue appends small values in decimal, others in hex.
func appendValue(b []byte, v uint64) []byte {
	if v < 1<<16 {
		return strconv.AppendUint(b, v, 10)
	}
	return strconv.AppendUint(append(b, "0x"...), v, 16)
}

func formatDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return d.String()
	case d < time.Millisecond:
		return d.Round(100 * time.Nanosecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

// Summary is the last record of a JSON Lines trace: counts per operation.
type Summary struct {
	Kind   string             `json:"kind"` // "summary"
	Layer  string             `json:"layer"`
	Start  string             `json:"start"` // when the run's outermost trace started (time 0), RFC 3339
	Calls  int                `json:"calls"`
	Errors int                `json:"errors"`
	DurNS  int64              `json:"dur_ns"` // time spent in the forwarded calls
	Ops    map[string]OpCount `json:"ops"`
	// Syscalls counts the system calls of a Linux program, by name.
	Syscalls map[string]OpCount `json:"syscalls,omitempty"`
	Failed   string             `json:"failed,omitempty"` // why the layer ended its program
}

// OpCount is one operation's line of the summary.
type OpCount struct {
	Calls  int   `json:"calls"`
	Errors int   `json:"errors"`
	DurNS  int64 `json:"dur_ns"`
}

func (l *Layer) summary() Summary {
	s := Summary{Kind: "summary", Layer: l.label, Start: l.start.Format(time.RFC3339Nano), Ops: map[string]OpCount{}}
	for op := range l.stats {
		st := &l.stats[op]
		if st.calls == 0 {
			continue
		}
		s.Ops[abi.Op(op).String()] = OpCount{Calls: st.calls, Errors: st.errors, DurNS: st.dur.Nanoseconds()}
		s.Calls += st.calls
		s.Errors += st.errors
		s.DurNS += st.dur.Nanoseconds()
	}
	for name, st := range l.sysStats {
		if s.Syscalls == nil {
			s.Syscalls = map[string]OpCount{}
		}
		s.Syscalls[name] = OpCount{Calls: st.calls, Errors: st.errors, DurNS: st.dur.Nanoseconds()}
	}
	if l.err != nil {
		s.Failed = l.err.Error()
	}
	return s
}

// writeSummary writes the summary; l.mu is held.
func (l *Layer) writeSummary() error {
	s := l.summary()
	if l.opts.Format == JSONL {
		line, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = l.out.Write(append(line, '\n'))
		return err
	}
	var b strings.Builder
	p := "[" + l.label + "] "
	fmt.Fprintf(&b, "%ssummary: %d calls, %d errors, %s in calls\n", p, s.Calls, s.Errors, formatDur(time.Duration(s.DurNS)))
	names := make([]string, 0, len(s.Ops))
	for n := range s.Ops {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, c := s.Ops[names[i]], s.Ops[names[j]]
		if a.Calls != c.Calls {
			return a.Calls > c.Calls
		}
		return names[i] < names[j]
	})
	if len(names) > 0 {
		fmt.Fprintf(&b, "%s%8s %8s %12s  %s\n", p, "calls", "errors", "time", "operation")
	}
	for _, n := range names {
		o := s.Ops[n]
		fmt.Fprintf(&b, "%s%8d %8d %12s  %s\n", p, o.Calls, o.Errors, formatDur(time.Duration(o.DurNS)), n)
	}
	sys := make([]string, 0, len(s.Syscalls))
	for n := range s.Syscalls {
		sys = append(sys, n)
	}
	sort.Slice(sys, func(i, j int) bool {
		a, c := s.Syscalls[sys[i]], s.Syscalls[sys[j]]
		if a.Calls != c.Calls {
			return a.Calls > c.Calls
		}
		return sys[i] < sys[j]
	})
	if len(sys) > 0 {
		fmt.Fprintf(&b, "%s%8s %8s %12s  %s\n", p, "calls", "errors", "time", "system call")
	}
	for _, n := range sys {
		o := s.Syscalls[n]
		fmt.Fprintf(&b, "%s%8d %8d %12s  %s\n", p, o.Calls, o.Errors, formatDur(time.Duration(o.DurNS)), n)
	}
	_, err := io.WriteString(l.out, b.String())
	return err
}

// Close implements nester.Layer: it writes the records still pending and
// the summary, closes the file, and reports a failure that ended the
// program.
func (l *Layer) Close() error {
	l.once.Do(func() {
		if l.host != nil {
			l.host.Kill("layer closed")
		}
		if l.mon != nil {
			perMonitorMu.Lock()
			if mc := perMonitor[l.mon]; mc != nil {
				if mc.live--; mc.live == 0 {
					delete(perMonitor, l.mon)
				}
			}
			perMonitorMu.Unlock()
		}
		if l.wrapped {
			// Every record of a call that ended is written before the
			// summary; calls that end from now on go unrecorded.
			l.taps.drain()
			l.q.close()
		}
		if l.sinks != nil {
			l.sinks.close()
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		var errs []error
		if l.err != nil {
			errs = append(errs, l.err)
		}
		if l.wrapped && l.opts.Summary {
			if err := l.writeSummary(); err != nil && l.err == nil {
				errs = append(errs, fmt.Errorf("writing the summary to %s: %w", l.dest(), err))
			}
		}
		if l.file != nil {
			if err := l.file.Close(); err != nil && l.err == nil {
				errs = append(errs, fmt.Errorf("closing %s: %w", l.opts.File, err))
			}
		}
		l.cerr = errors.Join(errs...)
		if l.cerr != nil && l.label != l.Name() {
			l.cerr = fmt.Errorf("%s: %w", l.label, l.cerr)
		}
	})
	return l.cerr
}

func init() {
	nester.Register(nester.Kind{
		Name:    "trace",
		Summary: "records every operation of the program below it (strace-like text on stderr, or JSON Lines to a file)",
		Usage:   Usage,
		New: nester.Maker(func(args string, h nester.Host) (*Layer, error) {
			return New(args, h.Stderr, h.Log)
		}),
	})
}
