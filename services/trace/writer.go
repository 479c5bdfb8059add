package trace

import (
	"strings"
	"sync"
	"time"

	"nestvm/abi"
	"nestvm/vmm"
)

// Records are written off the calling thread. A traced call used to
// decode, format and write its record inline, which cost about 1 µs on
// top of a 450 ns call on emu; now the call copies what it saw (the
// values, and the bytes of its buffers it shows) into an event, and the
// layer's writer goroutine turns events into lines, in the order the calls
// finished, and writes them a batch at a time.
//
//	calling threads --push--> pending --take, every linger--> writer --Write--> file or stderr
//	     (wait while maxPending events do)                 (counts, Records, lines)
//
// The file is complete when the layer closes: Close drains what is
// pending, then writes the summary. A monitor that dies without closing
// its layers (a Go panic, SIGKILL, a second Ctrl-C) loses the events not
// yet taken, at most a linger's worth of calls or maxPending of them.
const (
	// linger is how long the writer lets events gather after a batch: one
	// wake-up and one write per linger, not per call. It bounds how late a
	// line reaches stderr.
	linger = time.Millisecond
	// maxPending bounds the events waiting: a program that calls faster
	// than its records can be written waits for the writer.
	maxPending = 1 << 14
	// kickAt wakes the writer before its linger is over.
	kickAt = 1 << 12
	// maxBufs is the most buffers an operation has (TestMaxBufs).
	maxBufs = 2
	// flushAt is how many bytes of lines the writer gathers before writing.
	flushAt = 256 << 10
)

// event is one recorded call as the calling thread saw it: plain values,
// nothing formatted, so the call pays only for copying them. Its fields
// are ordered to pack: every call copies it.
type event struct {
	caller  vmm.Invoker // the calling thread; Identity 0 for host code
	cap     string
	capID   uint64
	at, dur time.Duration // when the call began (since the run's time 0), how long the forwarded call took
	r0, r1  uint64
	// vals holds each argument: a value, a handle's number in the
	// caller's table, or a buffer's length or capacity.
	vals [abi.MaxArgSlots]uint64
	err  abi.Error // why the call failed, when failed
	op   abi.Op
	// htype is the type of the object handle argument i named, where bit
	// i of hasType is set.
	htype   [abi.MaxArgSlots]abi.ObjectType
	hasType uint8
	capType abi.ObjectType
	failed  bool
	bufs    [maxBufs]preview
	// sys is set for a Linux system call a personality below served
	// (syscalls.go); the fields above are then unused but for at and dur.
	sys *sysRecord
}

// info describes ev's operation.
func (ev *event) info() *abi.OpInfo { return &abi.Ops[ev.op] }

// preview is a buffer's first bytes, as a record shows them.
type preview struct {
	set   bool
	trunc bool // the buffer holds more than n bytes
	n     uint8
	data  [previewLen]byte
}

// read previews the first n bytes of b.
func (p *preview) read(b vmm.GuestBuffer, n uint64) {
	m := min(n, b.Len(), previewLen)
	b.Read(p.data[:m])
	p.set, p.trunc, p.n = true, n > m, uint8(m)
}

// outPreview says, per operation, whether a record shows what its out
// buffer was filled with: there is one, and R0 says how much of it was.
var outPreview = func() (t [abi.OpCount]bool) {
	for op := range abi.Ops {
		info := &abi.Ops[op]
		outs := 0
		for _, a := range info.Args {
			if a.Kind == abi.ArgOut {
				outs++
			}
		}
		t[op] = outs == 1 && strings.HasPrefix(info.R0, "the number of bytes")
	}
	return t
}()

// chunkLen is how many events a chunk of the queue holds, and maxFree
// how many empty chunks it keeps.
const (
	chunkLen = 256
	maxFree  = 48
)

// chunk is a piece of the queue. The queue grows and shrinks by chunks,
// never by copying what it holds: a slice that grew while the writer
// lagged copied megabytes while a call waited.
type chunk struct {
	n  int
	ev [chunkLen]event
}

// queue holds the events between the calling threads and the writer.
type queue struct {
	mu      sync.Mutex
	notFull sync.Cond // with mu: pending dropped below maxPending, or closing
	pending []*chunk  // in the order the calls ended; the last one filling
	count   int       // events in pending
	spare   []*chunk  // the writer's last batch, emptied, for pending to reuse
	free    []*chunk  // empty chunks
	idle    bool      // the writer waits on wake for the next event
	closing bool      // the layer is closing: take no more events
	wake    chan struct{}
	done    chan struct{} // closed when the writer has written everything
}

// push queues ev, waiting while the queue is full (unless the layer
// failed: its writer only counts what is left). It reports false when
// the layer closed before ev could be queued.
func (l *Layer) push(ev *event) bool {
	q := &l.q
	q.mu.Lock()
	for q.count >= maxPending && !q.closing && !l.failed.Load() {
		q.kick()
		q.notFull.Wait()
	}
	if q.closing {
		q.mu.Unlock()
		return false
	}
	var c *chunk
	if n := len(q.pending); n > 0 && q.pending[n-1].n < chunkLen {
		c = q.pending[n-1]
	} else {
		if n := len(q.free); n > 0 {
			c, q.free = q.free[n-1], q.free[:n-1]
		} else {
			c = new(chunk)
		}
		q.pending = append(q.pending, c)
	}
	c.ev[c.n] = *ev
	c.n++
	q.count++
	wake := q.idle || q.count == kickAt
	q.idle = false
	q.mu.Unlock()
	if wake {
		q.kick()
	}
	return true
}

// kick wakes the writer, if it is not already due to wake.
func (q *queue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take waits for events and returns them, with whether the layer is
// closing (then they are the last).
func (q *queue) take() ([]*chunk, bool) {
	q.mu.Lock()
	for q.count == 0 && !q.closing {
		q.idle = true
		q.mu.Unlock()
		<-q.wake
		q.mu.Lock()
	}
	batch := q.pending
	q.pending, q.spare, q.count = q.spare, nil, 0
	closing := q.closing
	q.notFull.Broadcast()
	q.mu.Unlock()
	return batch, closing
}

// recycle gives a taken batch back for reuse.
func (q *queue) recycle(batch []*chunk) {
	for _, c := range batch {
		clear(c.ev[:c.n]) // the strings they hold may go
		c.n = 0
	}
	q.mu.Lock()
	// Keep enough for a linger's calls, host calls included; what a lag
	// made goes.
	q.free = append(q.free, batch[:min(len(batch), maxFree-len(q.free))]...)
	clear(batch)
	q.spare = batch[:0]
	q.mu.Unlock()
}

// close makes the writer write what is pending and end, and waits for it.
func (q *queue) close() {
	q.mu.Lock()
	q.closing = true
	q.notFull.Broadcast()
	q.mu.Unlock()
	q.kick()
	<-q.done
}

// startWriter starts the layer's writer goroutine.
func (l *Layer) startWriter() {
	l.q.notFull.L = &l.q.mu
	l.q.wake = make(chan struct{}, 1)
	l.q.done = make(chan struct{})
	go l.writer()
}

// writer turns events into lines and writes them, until the layer closes.
func (l *Layer) writer() {
	defer close(l.q.done)
	var sc scratch
	var line []byte
	broken := false // a write failed: count the rest, write nothing more
	timer := time.NewTimer(linger)
	defer timer.Stop()
	for {
		batch, closing := l.q.take()
		for _, c := range batch {
			for i := range c.ev[:c.n] {
				line = l.emit(line, &c.ev[i], &sc, broken)
				if len(line) >= flushAt && !broken {
					line, broken = l.flush(line)
				}
			}
		}
		if !broken {
			line, broken = l.flush(line)
		}
		l.q.recycle(batch)
		if closing {
			return
		}
		// Since Go 1.23 Reset leaves no stale tick behind.
		timer.Reset(linger)
		select {
		case <-l.q.wake:
		case <-timer.C:
		}
	}
}

// scratch is where the writer keeps what it reuses from record to record:
// JSON fragments, and the Record a text line is made from.
type scratch struct {
	json   jsonCache
	rec    Record
	args   [abi.MaxArgSlots]Arg
	thread int
	vals   [abi.MaxArgSlots]uint64
}

// emit counts ev in the summary and appends its line to b, unless the
// output is broken.
func (l *Layer) emit(b []byte, ev *event, sc *scratch, broken bool) []byte {
	if ev.sys != nil {
		return l.emitSyscall(b, ev, broken)
	}
	st := &l.stats[ev.op]
	st.calls++
	if ev.failed {
		st.errors++
	}
	st.dur += ev.dur
	if broken {
		return b
	}
	if l.opts.Format == JSONL {
		return append(sc.json.appendEvent(b, l.label, ev), '\n')
	}
	return appendText(b, l.record(ev, sc))
}

// flush writes b and returns it emptied, and whether the write failed.
// A write that fails fails the layer, which ends its program.
func (l *Layer) flush(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return b, false
	}
	if _, err := l.out.Write(b); err != nil {
		l.fail(l.writeErr(err))
		return b[:0], true
	}
	return b[:0], false
}

// record is ev as a Record, built in sc.
func (l *Layer) record(ev *event, sc *scratch) *Record {
	rec := &sc.rec
	*rec = Record{Kind: "call", Layer: l.label, Time: ev.at.Seconds(), Space: "host",
		Cap: ev.cap, CapID: ev.capID, Type: ev.capType.String(), Op: ev.info().Name, Args: sc.args[:0]}
	if from := &ev.caller; from.Identity != 0 {
		sc.thread = from.Thread
		rec.Space, rec.Thread = from.Space, &sc.thread
	}
	buf := 0
	for i, a := range ev.info().Args {
		arg := Arg{Name: a.Name}
		sc.vals[i] = ev.vals[i]
		switch a.Kind {
		case abi.ArgValue:
			arg.Kind, arg.Value = "value", &sc.vals[i]
		case abi.ArgHandle:
			arg.Kind, arg.Value = "handle", &sc.vals[i]
			if ev.hasType&(1<<i) != 0 {
				arg.Type = ev.htype[i].String()
			}
		case abi.ArgIn, abi.ArgOut:
			arg.Kind, arg.Len = "out", &sc.vals[i]
			if a.Kind == abi.ArgIn {
				arg.Kind = "in"
			}
			if p := &ev.bufs[buf]; p.set {
				arg.raw = p.data[:p.n]
				s := string(arg.raw)
				arg.Data, arg.Truncated = &s, p.trunc
			}
			buf++
		}
		rec.Args = append(rec.Args, arg)
	}
	rec.DurNS = ev.dur.Nanoseconds()
	if ev.failed {
		rec.Error = "NV_E?"
		if int(ev.err) < len(abi.ErrorSymbols) {
			rec.Error = abi.ErrorSymbols[ev.err]
		}
		rec.R0, rec.R1 = ev.err.Result(), ev.r1
	} else {
		rec.OK, rec.R1 = true, ev.r1
		if ev.info().R0Handle {
			rec.Handle = true // r0 named it in the layer's table: meaningless below
		} else {
			rec.R0 = ev.r0
		}
	}
	return rec
}
