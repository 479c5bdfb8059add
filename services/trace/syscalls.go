package trace

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"nestvm/abi"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/vmm"
)

// A personality's fault server (personality/linux) describes the system
// calls it serves, so that a trace above it shows them as strace does.
type syscallDescriber interface {
	DescribeSyscall(fc *vmm.FaultCall) (name, call string)
	DescribeResult(fc *vmm.FaultCall, before machine.Regs) (result string, ok bool)
}

// signalDescriber is a syscallDescriber that also says which signal's
// handler a thread was sent into as its system call returned.
type signalDescriber interface {
	DescribeSignal(fc *vmm.FaultCall, before machine.Regs) (string, bool)
}

// sysRecord is a system call, as the fault tap saw it, or (signal set)
// the delivery of a signal as one returned.
type sysRecord struct {
	pid, thread  int
	name, call   string
	result       string
	ok, finished bool
	signal       string
}

// SyscallRecord is one system call, as a JSON Lines record.
type SyscallRecord struct {
	Kind   string  `json:"kind"` // "syscall", or "signal" for a handler the call returned into (Call describes the signal)
	Layer  string  `json:"layer"`
	Time   float64 `json:"time"`
	PID    int     `json:"pid"`    // the badge of the process's exception port: its pid
	Thread int     `json:"thread"` // the thread's number in its space
	Name   string  `json:"name"`
	Call   string  `json:"call"`   // the call with its arguments, as strace shows it
	Result string  `json:"result"` // its value, or -1 and the errno; "?" when it did not return
	OK     bool    `json:"ok"`
	DurNS  int64   `json:"dur_ns"`
}

// tapFaults handles space_set_exception_port of a port served inline by
// a personality: the space gets the layer's own fault server instead,
// which records each system call and passes it on. It reports false when
// the port is not such a server (a guest's exception port: its faults are
// messages, which the layer sees through the port already).
func (l *Layer) tapFaults(c *interpose.Call) bool {
	obj, _, _, ok := c.Inv.HandleArg(0)
	if !ok || obj == nil {
		return false
	}
	fs, ok := vmm.ServerOf(obj).(vmm.FaultServer)
	if !ok {
		return false
	}
	d, ok := fs.(syscallDescriber)
	if !ok {
		return false
	}
	tap := vmm.NewHostPort(l.label+":syscalls", &faultTap{l: l, inner: fs, desc: d})
	l.sysTraced.Store(true)
	lend := func(o vmm.Object, rights abi.Rights, badge uint64, _ bool) (vmm.Object, abi.Rights, uint64) {
		if o == obj {
			return tap, rights, badge
		}
		return o, rights, badge
	}
	var ev event
	if l.opts.ABI {
		l.begin(c, &ev)
		ev.at = time.Since(l.start)
	}
	r0, r1, err := c.ForwardLending(lend)
	if l.opts.ABI {
		ev.dur = time.Since(l.start) - ev.at
		l.finish(c, &ev, r0, r1, err)
		l.push(&ev)
	}
	return true
}

// faultTap stands between a space and the personality serving its
// faults: each system call is served by the personality, inline as
// before, and recorded on its way through.
type faultTap struct {
	l     *Layer
	inner vmm.FaultServer
	desc  syscallDescriber
}

// Serve implements vmm.Server: operations on the port go to the
// personality's.
func (t *faultTap) Serve(inv *vmm.Invocation) { t.inner.Serve(inv) }

// SpaceEnded implements vmm.FaultServer.
func (t *faultTap) SpaceEnded(badge uint64, exited bool, status int) {
	t.inner.SpaceEnded(badge, exited, status)
}

// ServeFault implements vmm.FaultServer.
func (t *faultTap) ServeFault(fc *vmm.FaultCall) {
	l := t.l
	if fc.Fault.Vector != machine.VecSyscall || l.failed.Load() {
		t.inner.ServeFault(fc)
		return
	}
	before, err := fc.Regs()
	if err != nil {
		t.inner.ServeFault(fc)
		return
	}
	if !l.taps.begin() {
		t.inner.ServeFault(fc) // the layer is closing: unrecorded
		return
	}
	defer l.taps.end()
	rec := &sysRecord{pid: int(fc.Badge), thread: fc.Thread}
	rec.name, rec.call = t.desc.DescribeSyscall(fc)
	ev := event{sys: rec}
	ev.at = time.Since(l.start)
	t.inner.ServeFault(fc)
	ev.dur = time.Since(l.start) - ev.at
	rec.result, rec.ok = t.desc.DescribeResult(fc, before)
	l.push(&ev)
	if sd, ok := t.desc.(signalDescriber); ok {
		if sig, ok := sd.DescribeSignal(fc, before); ok {
			name, _, _ := strings.Cut(sig, " ")
			l.push(&event{at: ev.at + ev.dur, sys: &sysRecord{pid: rec.pid, thread: rec.thread, name: name, call: sig, signal: sig}})
		}
	}
}

// inflight counts the system calls being recorded, so that closing the
// layer waits for them: the call that ends a program (exit_group) ends
// the run, and so closes the layer, before its own record is pushed.
type inflight struct {
	mu      sync.Mutex
	cond    *sync.Cond
	n       int
	closing bool
}

func (f *inflight) begin() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.n++
	return true
}

func (f *inflight) end() {
	f.mu.Lock()
	f.n--
	if f.n == 0 && f.cond != nil {
		f.cond.Broadcast()
	}
	f.mu.Unlock()
}

// drain refuses new calls and waits for those being recorded. Every one
// ends: a run's end ends the threads whose calls are held.
func (f *inflight) drain() {
	f.mu.Lock()
	f.closing = true
	if f.cond == nil {
		f.cond = sync.NewCond(&f.mu)
	}
	for f.n > 0 {
		f.cond.Wait()
	}
	f.mu.Unlock()
}

// emitSyscall counts a system call in the summary and appends its line.
func (l *Layer) emitSyscall(b []byte, ev *event, broken bool) []byte {
	rec := ev.sys
	if rec.signal != "" {
		if broken {
			return b
		}
		if l.opts.Format == JSONL {
			line, _ := json.Marshal(SyscallRecord{Kind: "signal", Layer: l.label, Time: ev.at.Seconds(), PID: rec.pid, Thread: rec.thread,
				Name: rec.name, Call: rec.call})
			return append(append(b, line...), '\n')
		}
		return fmt.Appendf(b, "[%s] %.6f pid %d:t%d --- %s ---\n", l.label, ev.at.Seconds(), rec.pid, rec.thread, rec.signal)
	}
	if l.sysStats == nil {
		l.sysStats = map[string]*opStat{}
	}
	st := l.sysStats[rec.name]
	if st == nil {
		st = &opStat{}
		l.sysStats[rec.name] = st
	}
	st.calls++
	if !rec.ok {
		st.errors++
	}
	st.dur += ev.dur
	if broken {
		return b
	}
	if l.opts.Format == JSONL {
		line, _ := json.Marshal(SyscallRecord{Kind: "syscall", Layer: l.label, Time: ev.at.Seconds(), PID: rec.pid, Thread: rec.thread,
			Name: rec.name, Call: rec.call, Result: rec.result, OK: rec.ok, DurNS: ev.dur.Nanoseconds()})
		return append(append(b, line...), '\n')
	}
	return fmt.Appendf(b, "[%s] %.6f pid %d:t%d %s = %s <%s>\n", l.label, ev.at.Seconds(), rec.pid, rec.thread, rec.call, rec.result, formatDur(ev.dur))
}
