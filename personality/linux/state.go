package linux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"time"

	"nestvm/abi"
	"nestvm/machine"
	"nestvm/vmm"
)

// The personality's state, as server_get_state on its port answers it
// (the container's exception port, badge 0), so that a checkpoint taken
// above the personality carries what Linux keeps about its processes and
// a restore rebuilds the personality from it (Resume).
//
// The record names what the checkpoint saves by the numbers of the
// container's table, which a restore keeps: each process's space and each
// thread by its number there. Files are named by path, flags and offset
// and opened again on restore, through the files capability of the
// restoring run; pipes, eventfds and epoll instances travel by content.
// Memory travels in the checkpoint's regions; the record has Linux's view
// of it (the areas, brk). A thread held in a blocking call has its
// registers at its syscall, so it issues it again when resumed: no waiter
// is in the record. A timer can expire while a save reads the subtree
// (every thread stopped), and a save whose two reads of the record differ
// is taken again, so the record holds of a timer only what its expiries
// do not change: a one-shot timer's deadline, an interval timer's phase
// (its deadline modulo its interval), on the host's wall clock and on the
// process's monotonic clock; a pending timer
// signal carries no overrun count, and timer_getoverrun reads 0 after a
// restore. They resume with the time they had left when the checkpoint was
// taken (nester.SaveTimed), counted on the process's clock when the
// checkpoint says what that clock read (under a layer that owns time, such
// as timewarp, host and virtual time do not move together): the time the
// program spent saved does not pass for them.
//
// Layout, little-endian: the magic, a version, then the fields in the
// order encode writes them; a list is a uint32 count and its elements, a
// string or byte string a uint32 length and its bytes. decodeState checks
// every count and length against the bytes left and the limits below
// before it allocates anything.
const (
	stateMagic = "NVLINUX\x00"
	// stateVersion is the version encode writes. Version 1 had no timers
	// and no sigev_value in pending signals, version 2 no sleep end on the
	// clock, version 3 no kicked registers, version 4 no timer deadlines
	// on the clock; all still decode.
	stateVersion = 5

	maxStateProcs   = 1 << 12
	maxStateThreads = 1 << 10 // a process's
	maxStateFiles   = 1 << 16
	maxStateVMAs    = 1 << 16
	maxStateFDs     = maxFDs
	maxStatePath    = 4096
	// maxStateSize bounds a whole record: every pipe full, and room for the
	// rest.
	maxStateSize = 64 << 20
)

// RunnerName is the name the personality's record is saved under.
const RunnerName = "linux"

// savedState is a decoded record.
type savedState struct {
	nextPID int
	files   []savedFile
	pipes   [][]byte
	procs   []savedProc
}

type savedFile struct {
	kind   kind
	path   string
	flags  int
	off    int64
	cap    string // the capability a console or stdin description names
	pipe   int    // index in pipes, for kindPipe
	count  uint64 // an eventfd's
	sem    bool
	items  []savedItem // an epoll's
	refs   int         // descriptors naming it, counted on decode
	handle uint64      // reopened, on restore
}

type savedItem struct {
	fd, file   int
	events     uint32
	data, seen uint64
}

type savedProc struct {
	pid, ppid int
	exited    bool
	didExec   bool
	wstatus   int
	slot      uint64
	exe, cwd  string
	umask     uint32
	sig       sigState
	pending   []sigInfo
	threads   []savedThread
	mm        savedMM
	fds       []savedFD
	real      savedTimer   // ITIMER_REAL
	posix     []savedTimer // timer_create's
}

// savedTimer is a timer as snapshot found it.
type savedTimer struct {
	id     int // timer_create's id
	clock  uint64
	info   sigInfo
	notify bool
	// deadline is a one-shot timer's deadline in Unix nanoseconds, an
	// interval timer's phase (a deadline modulo the interval) plus 1; 0:
	// disarmed.
	deadline int64
	interval time.Duration
	// onClock is the same on the process's monotonic clock; 0: unknown.
	onClock uint64
}

// next is when t expires next at or after at, and false when disarmed.
func (t savedTimer) next(at time.Time) (time.Time, bool) {
	if t.deadline == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, expiry(t.deadline, t.interval, at.UnixNano())), true
}

// nextOnClock is next on the process's monotonic clock, at its reading
// at; false when disarmed, or when the record has no deadline on the
// clock.
func (t savedTimer) nextOnClock(at uint64) (uint64, bool) {
	if t.deadline == 0 || t.onClock == 0 || at > math.MaxInt64 || t.onClock > math.MaxInt64 {
		return 0, false
	}
	return uint64(expiry(int64(t.onClock), t.interval, int64(at))), true
}

// expiry is when a timer saved as d (a one-shot timer's deadline, an
// interval timer's phase plus 1) expires next at or after now, on the
// clock d counts on.
func expiry(d int64, interval time.Duration, now int64) int64 {
	if interval == 0 {
		return d
	}
	phase, iv := d-1, int64(interval)
	n := now - (now-phase)%iv // the latest expiry at or before now, as phase counts
	if n < now {
		n += iv
	}
	return n
}

type savedThread struct {
	num        int
	tid        int
	slot       uint64
	clearTID   uint64
	sigmask    uint64
	altstack   [3]uint64
	sleepUntil int64  // Unix nanoseconds the sleep it is held in ends; 0: none
	sleepClock uint64 // the same end on the process's monotonic clock; 0: unknown
	// kicked are the registers a kick stopped the thread with, when it
	// was saved on its way to the kick code's system call (kick.go).
	kicked *abi.ThreadRegs
}

type savedMM struct {
	brkStart, brk, brkMapped uint64
	vmas                     []savedVMA
}

type savedVMA struct {
	start, end, off uint64
	prot            int
	mapped          bool
}

type savedFD struct {
	fd      int
	file    int
	cloexec bool
}

// Serve implements vmm.Server: the personality's port answers
// server_get_state, through the container's exception port, with its
// record; faults come to ServeFault.
func (k *kernel) Serve(inv *vmm.Invocation) {
	if inv.Op != abi.OpServerGetState || inv.Badge != 0 {
		inv.Fail(abi.ErrInvalidOp)
		return
	}
	rec, err := k.snapshot()
	if err != nil {
		if errors.Is(err, errExiting) {
			// Busy says "ask again"; asked again at once, a loaded
			// host may not have run the exit meanwhile, so the answer
			// waits for it first.
			k.log.Debug("state not saved yet: waiting for an exit", "error", err)
			inv.Hold(k.exitsWait())
			inv.Fail(abi.ErrBusy)
			return
		}
		k.log.Warn("state not saved", "error", err)
		inv.Fail(abi.ErrIO)
		return
	}
	inv.ReturnRecord(append([]byte(RunnerName+"\x00"), rec...))
}

// errNotSaved is snapshot's refusal of a state it cannot record.
var errNotSaved = errors.New("a checkpoint cannot save it")

// exitsWait returns a channel closed once no exit is half done.
func (k *kernel) exitsWait() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.exitsDone == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	return k.exitsDone
}

// errExiting is snapshot's refusal while a process is half way through
// its exit.
var errExiting = errors.New("a process is ending")

// snapshot encodes the personality's state. Every thread of its
// processes must be stopped (a checkpoint above stops them first), so
// nothing changes while it reads.
func (k *kernel) snapshot() ([]byte, error) {
	k.mu.Lock()
	procs := slices.Collect(maps.Values(k.procs))
	sort.Slice(procs, func(i, j int) bool { return procs[i].pid < procs[j].pid })
	nextPID, ended, exiting := k.nextPID, k.ended, k.exiting
	type life struct {
		exited, didExec bool
		wstatus, ppid   int
	}
	lives := make([]life, len(procs))
	for i, p := range procs {
		lives[i] = life{p.exited, p.didExec, p.wstatus, p.ppid}
	}
	k.mu.Unlock()
	if ended {
		return nil, fmt.Errorf("the first process has ended: %w", errNotSaved)
	}
	if exiting > 0 {
		// Its space and threads may be in the container's table or not,
		// as exit has got: a save reading both now would have a thread
		// whose space it cannot find. The save asks again (its runner
		// changed), and exit is done in a moment.
		return nil, errExiting
	}

	fileIdx := map[*file]int{}
	pipeIdx := map[*pipe]int{}
	var files []*file
	var pipes []*pipe
	var addFile func(f *file) int
	addFile = func(f *file) int {
		if i, ok := fileIdx[f]; ok {
			return i
		}
		fileIdx[f] = len(files)
		files = append(files, f)
		if f.pipe != nil {
			if _, ok := pipeIdx[f.pipe]; !ok {
				pipeIdx[f.pipe] = len(pipes)
				pipes = append(pipes, f.pipe)
			}
		}
		if f.epoll != nil {
			f.epoll.mu.Lock()
			items := slices.Collect(maps.Values(f.epoll.items))
			f.epoll.mu.Unlock()
			for _, it := range items {
				addFile(it.f)
			}
		}
		return fileIdx[f]
	}
	w := &stateWriter{}
	var pw stateWriter // the processes, written after the files they name
	pw.u32(uint32(len(procs)))
	for i, p := range procs {
		l := lives[i]
		p.mu.Lock()
		pw.u32(uint32(p.pid))
		pw.u32(uint32(l.ppid))
		pw.bool(l.exited)
		pw.bool(l.didExec)
		pw.u32(uint32(l.wstatus))
		pw.u64(p.slot)
		pw.str(p.exe)
		pw.str(p.cwd)
		pw.u32(p.umask)
		for _, a := range p.sig.actions {
			pw.u64(a.handler)
			pw.u64(a.flags)
			pw.u64(a.restorer)
			pw.u64(a.mask)
		}
		sigs := make([]int, 0, len(p.pending))
		for s := range p.pending {
			sigs = append(sigs, s)
		}
		sort.Ints(sigs)
		pw.u32(uint32(len(sigs)))
		for _, s := range sigs {
			in := p.pending[s]
			pw.u32(uint32(in.signo))
			pw.u32(uint32(in.code))
			pw.u32(uint32(in.pid))
			pw.u32(uint32(in.uid))
			if in.code == siTimer || in.code == siKernel && in.signo == sigALRM {
				// A timer's overrun count, which its expiries during
				// the save change: see savedTimer.
				in.status = 0
			}
			pw.u32(uint32(in.status))
			pw.u64(in.addr)
			pw.u64(in.value)
			pw.bool(in.fault != nil)
			if in.fault != nil {
				pw.u64(in.fault.trapno)
				pw.u64(in.fault.err)
				pw.u64(in.fault.cr2)
			}
		}
		nums := make([]int, 0, len(p.threads))
		for n := range p.threads {
			nums = append(nums, n)
		}
		sort.Ints(nums)
		pw.u32(uint32(len(nums)))
		for _, n := range nums {
			t := p.threads[n]
			pw.u32(uint32(n))
			pw.u32(uint32(t.tid))
			pw.u64(t.slot)
			pw.u64(t.clearTID)
			pw.u64(t.sigmask)
			for _, v := range t.altstack {
				pw.u64(v)
			}
			var until int64
			var onClock uint64
			if !t.sleepUntil.IsZero() {
				until, onClock = max(t.sleepUntil.UnixNano(), 1), t.sleepDL.ns
			}
			pw.u64(uint64(until))
			pw.u64(onClock)
			pw.bool(t.kick.regs != nil)
			if t.kick.regs != nil {
				pw.b, _ = binary.Append(pw.b, binary.LittleEndian, t.kick.regs)
			}
		}
		m, fds := p.mm, p.fds
		p.mu.Unlock()
		if m == nil || l.exited {
			pw.bool(false)
		} else {
			pw.bool(true)
			m.mu.Lock()
			pw.u64(m.brkStart)
			pw.u64(m.brk)
			pw.u64(m.brkMapped)
			pw.u32(uint32(len(m.vmas)))
			for _, v := range m.vmas {
				pw.u64(v.start)
				pw.u64(v.end)
				pw.u64(v.off)
				pw.u32(uint32(v.prot))
				pw.bool(v.region != 0)
			}
			m.mu.Unlock()
		}
		var ents []savedFD
		var fs []*file
		if fds != nil && !l.exited {
			fds.mu.Lock()
			for fd, e := range fds.files {
				ents = append(ents, savedFD{fd: fd, cloexec: e.cloexec})
				fs = append(fs, e.f)
			}
			fds.mu.Unlock()
		}
		order := make([]int, len(ents))
		for j := range order {
			order[j] = j
		}
		sort.Slice(order, func(a, b int) bool { return ents[order[a]].fd < ents[order[b]].fd })
		pw.u32(uint32(len(ents)))
		for _, j := range order {
			pw.u32(uint32(ents[j].fd))
			pw.u32(uint32(addFile(fs[j])))
			pw.bool(ents[j].cloexec)
		}
		real, posix := p.timers.saved()
		if l.exited {
			real, posix = savedTimer{}, nil
		}
		pw.timer(real)
		pw.u32(uint32(len(posix)))
		for _, t := range posix {
			pw.timer(t)
		}
	}

	w.raw([]byte(stateMagic))
	w.u32(stateVersion)
	w.u64(uint64(nextPID))
	w.u32(uint32(len(pipes)))
	for _, pp := range pipes {
		pp.mu.Lock()
		w.bytes(pp.buf)
		pp.mu.Unlock()
	}
	w.u32(uint32(len(files)))
	for _, f := range files {
		f.mu.Lock()
		w.u32(uint32(f.kind))
		w.str(f.path)
		w.u32(uint32(f.flags))
		w.u64(uint64(f.off))
		w.str(k.capOf(f))
		pi := -1
		if f.pipe != nil {
			pi = pipeIdx[f.pipe]
		}
		w.u32(uint32(pi))
		ev, ep := f.event, f.epoll
		f.mu.Unlock()
		if ev != nil {
			ev.mu.Lock()
			w.u64(ev.count)
			w.bool(ev.semaphore)
			ev.mu.Unlock()
		} else {
			w.u64(0)
			w.bool(false)
		}
		if ep == nil {
			w.u32(0)
			continue
		}
		ep.mu.Lock()
		fds := make([]int, 0, len(ep.items))
		for fd := range ep.items {
			fds = append(fds, fd)
		}
		sort.Ints(fds)
		w.u32(uint32(len(fds)))
		for _, fd := range fds {
			it := ep.items[fd]
			w.u32(uint32(it.fd))
			w.u32(uint32(fileIdx[it.f]))
			w.u32(it.events)
			w.u64(it.data)
			w.u64(it.seen)
		}
		ep.mu.Unlock()
	}
	w.raw(pw.b)
	if len(w.b) > maxStateSize {
		return nil, fmt.Errorf("a record of %d bytes, more than %d: %w", len(w.b), maxStateSize, errNotSaved)
	}
	return w.b, nil
}

// capOf names the capability a console or stdin description writes or
// reads, for a restore to reconnect it to its run's.
func (k *kernel) capOf(f *file) string {
	if f.kind != kindConsole && f.kind != kindStdin {
		return ""
	}
	for name, h := range k.caps {
		if h == f.handle {
			return name
		}
	}
	return ""
}

type stateWriter struct{ b []byte }

// timer writes a saved timer.
func (w *stateWriter) timer(t savedTimer) {
	w.u32(uint32(t.id))
	w.u64(t.clock)
	w.u32(uint32(t.info.signo))
	w.u32(uint32(t.info.code))
	w.u32(uint32(t.info.pid))
	w.u64(t.info.value)
	w.bool(t.notify)
	w.u64(uint64(t.deadline))
	w.u64(uint64(t.interval))
	w.u64(t.onClock)
}

// savedTimerSize is the bytes a saved timer takes.
const savedTimerSize = 4 + 8 + 4*3 + 8 + 1 + 8*3

// timerSize is the bytes a saved timer takes in a record of version v.
func timerSize(v uint32) int {
	if v < 5 {
		return savedTimerSize - 8 // no deadline on the clock
	}
	return savedTimerSize
}

// timer reads a saved timer of a record of version v.
func (r *stateReader) timer(v uint32) savedTimer {
	t := savedTimer{id: int(int32(r.u32("timer id"))), clock: r.u64("timer clock")}
	t.info = sigInfo{signo: int32(r.u32("timer signal")), code: int32(r.u32("timer code")), pid: int32(r.u32("timer id")), value: r.u64("timer value")}
	t.notify = r.bool("timer notify")
	t.deadline, t.interval = int64(r.u64("timer deadline")), time.Duration(r.u64("timer interval"))
	if v >= 5 {
		t.onClock = r.u64("timer deadline on the clock")
	}
	return t
}

func (w *stateWriter) raw(b []byte) { w.b = append(w.b, b...) }
func (w *stateWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *stateWriter) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *stateWriter) bytes(b []byte) {
	w.u32(uint32(len(b)))
	w.b = append(w.b, b...)
}
func (w *stateWriter) str(s string) { w.bytes([]byte(s)) }
func (w *stateWriter) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

// stateReader reads a record, each length checked against what is left.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, a...)
	}
}

func (r *stateReader) take(n uint64, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("truncated: %s needs %d bytes, %d are left", what, n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *stateReader) u32(what string) uint32 {
	if b := r.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *stateReader) u64(what string) uint64 {
	if b := r.take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *stateReader) bool(what string) bool {
	b := r.take(1, what)
	if b != nil && b[0] > 1 {
		r.fail("%s: %d is not a boolean", what, b[0])
	}
	return b != nil && b[0] == 1
}

func (r *stateReader) bytes(what string, max uint64) []byte {
	n := uint64(r.u32(what + " length"))
	if r.err == nil && n > max {
		r.fail("%s: %d bytes, more than %d", what, n, max)
		return nil
	}
	return append([]byte(nil), r.take(n, what)...)
}

func (r *stateReader) str(what string) string { return string(r.bytes(what, maxStatePath)) }

// count reads a list's length, refusing one over max or one the bytes
// left cannot hold at min bytes an element.
func (r *stateReader) count(what string, max, min int) int {
	n := uint64(r.u32(what + " count"))
	if r.err != nil {
		return 0
	}
	if n > uint64(max) || n*uint64(min) > uint64(len(r.b)) {
		r.fail("%d %s: more than %d, or more than the %d bytes left hold", n, what, max, len(r.b))
		return 0
	}
	return int(n)
}

// decodeState parses and checks a record: every index names something
// the record has, every number is in its range, so that Resume meets
// nothing that does not exist.
func decodeState(b []byte) (*savedState, error) {
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("the Linux personality's record: %d bytes, more than %d", len(b), maxStateSize)
	}
	r := &stateReader{b: b}
	if m := r.take(uint64(len(stateMagic)), "magic"); r.err == nil && string(m) != stateMagic {
		return nil, errors.New("the Linux personality's record: no magic")
	}
	v := r.u32("version")
	if r.err == nil && (v < 1 || v > stateVersion) {
		return nil, fmt.Errorf("the Linux personality's record: version %d, this nestvm reads 1 to %d", v, stateVersion)
	}
	st := &savedState{}
	st.nextPID = int(r.u64("next pid"))
	for range r.count("pipes", maxStateFiles, 4) {
		st.pipes = append(st.pipes, r.bytes("pipe contents", pipeSize))
	}
	for range r.count("files", maxStateFiles, 4*5+8*2+1+4) {
		f := savedFile{kind: kind(r.u32("file kind")), path: r.str("file path"), flags: int(r.u32("file flags")), off: int64(r.u64("file offset")),
			cap: r.str("file capability"), pipe: int(int32(r.u32("file pipe")))}
		f.count, f.sem = r.u64("eventfd count"), r.bool("eventfd semaphore")
		for range r.count("epoll items", maxStateFDs, 4*3+8*2) {
			f.items = append(f.items, savedItem{fd: int(r.u32("epoll fd")), file: int(r.u32("epoll file")), events: r.u32("epoll events"),
				data: r.u64("epoll data"), seen: r.u64("epoll seen")})
		}
		st.files = append(st.files, f)
	}
	for range r.count("processes", maxStateProcs, 4*5+8+2+65*32) {
		p := savedProc{pid: int(r.u32("pid")), ppid: int(r.u32("ppid")), exited: r.bool("exited"), didExec: r.bool("exec'd"),
			wstatus: int(r.u32("wait status")), slot: r.u64("space slot"), exe: r.str("exe"), cwd: r.str("cwd"), umask: r.u32("umask")}
		for i := range p.sig.actions {
			p.sig.actions[i] = sigAction{handler: r.u64("sigaction"), flags: r.u64("sigaction"), restorer: r.u64("sigaction"), mask: r.u64("sigaction")}
		}
		for range r.count("pending signals", nsig+1, 4*5+8+1) {
			in := sigInfo{signo: int32(r.u32("siginfo")), code: int32(r.u32("siginfo")), pid: int32(r.u32("siginfo")), uid: int32(r.u32("siginfo")),
				status: int32(r.u32("siginfo")), addr: r.u64("siginfo")}
			if v >= 2 {
				in.value = r.u64("siginfo value")
			}
			if r.bool("siginfo fault") {
				in.fault = &faultInfo{trapno: r.u64("fault"), err: r.u64("fault"), cr2: r.u64("fault")}
			}
			p.pending = append(p.pending, in)
		}
		for range r.count("threads", maxStateThreads, 4*2+8*6) {
			t := savedThread{num: int(r.u32("thread number")), tid: int(r.u32("tid")), slot: r.u64("thread slot"), clearTID: r.u64("clear tid"), sigmask: r.u64("sigmask")}
			for i := range t.altstack {
				t.altstack[i] = r.u64("altstack")
			}
			if v >= 2 {
				t.sleepUntil = int64(r.u64("sleep end"))
			}
			if v >= 3 {
				t.sleepClock = r.u64("sleep end on the clock")
			}
			if v >= 4 && r.bool("kicked") {
				var regs abi.ThreadRegs
				if b := r.take(uint64(binary.Size(regs)), "kicked registers"); b != nil {
					binary.Decode(b, binary.LittleEndian, &regs)
					t.kicked = &regs
				}
			}
			p.threads = append(p.threads, t)
		}
		if r.bool("memory map") {
			p.mm = savedMM{brkStart: r.u64("brk"), brk: r.u64("brk"), brkMapped: r.u64("brk")}
			for range r.count("areas", maxStateVMAs, 8*3+4+1) {
				p.mm.vmas = append(p.mm.vmas, savedVMA{start: r.u64("area"), end: r.u64("area"), off: r.u64("area"), prot: int(r.u32("area")), mapped: r.bool("area")})
			}
		}
		for range r.count("descriptors", maxStateFDs, 4*2+1) {
			p.fds = append(p.fds, savedFD{fd: int(r.u32("fd")), file: int(r.u32("fd file")), cloexec: r.bool("cloexec")})
		}
		if v >= 2 {
			p.real = r.timer(v)
			for range r.count("timers", maxTimers, timerSize(v)) {
				p.posix = append(p.posix, r.timer(v))
			}
		}
		st.procs = append(st.procs, p)
	}
	if r.err != nil {
		return nil, fmt.Errorf("the Linux personality's record: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("the Linux personality's record: %d bytes left over", len(r.b))
	}
	if err := st.validate(); err != nil {
		return nil, fmt.Errorf("the Linux personality's record: %w", err)
	}
	return st, nil
}

// validate checks the references and ranges decodeState cannot check
// field by field.
func (st *savedState) validate() error {
	if st.nextPID < 1 || st.nextPID > 1<<22 {
		return fmt.Errorf("next pid %d out of range", st.nextPID)
	}
	for i, f := range st.files {
		switch f.kind {
		case kindFile, kindDir, kindNull, kindZero, kindRandom, kindEventfd, kindEpoll:
		case kindConsole, kindStdin:
			if f.cap == "" {
				return fmt.Errorf("file %d: a console of no capability", i)
			}
		case kindPipe:
			if f.pipe < 0 || f.pipe >= len(st.pipes) {
				return fmt.Errorf("file %d: pipe %d does not exist", i, f.pipe)
			}
		default:
			return fmt.Errorf("file %d: unknown kind %d", i, f.kind)
		}
		if f.kind != kindPipe && f.pipe != -1 {
			return fmt.Errorf("file %d: a pipe index on a %d", i, f.kind)
		}
		if f.off < 0 {
			return fmt.Errorf("file %d: offset %d", i, f.off)
		}
		if (f.kind == kindFile || f.kind == kindDir) && (len(f.path) == 0 || f.path[0] != '/') {
			return fmt.Errorf("file %d: path %q is not absolute", i, f.path)
		}
		if len(f.items) > 0 && f.kind != kindEpoll {
			return fmt.Errorf("file %d: epoll items on a %d", i, f.kind)
		}
		for _, it := range f.items {
			if it.file < 0 || it.file >= len(st.files) || it.file == i {
				return fmt.Errorf("file %d: an epoll item names file %d", i, it.file)
			}
		}
	}
	pids := map[int]bool{}
	slots := map[uint64]bool{}
	slot := func(n uint64, what string) error {
		if n == abi.NoHandle || n >= 1<<16 || slots[n] {
			return fmt.Errorf("%s: container slot %d out of range or used twice", what, n)
		}
		slots[n] = true
		return nil
	}
	for _, p := range st.procs {
		what := fmt.Sprintf("process %d", p.pid)
		if p.pid < 1 || p.pid >= st.nextPID+1 || pids[p.pid] {
			return fmt.Errorf("%s: pid out of range or listed twice", what)
		}
		pids[p.pid] = true
		if p.ppid < 0 || p.ppid > st.nextPID {
			return fmt.Errorf("%s: parent %d out of range", what, p.ppid)
		}
		if p.exited {
			if len(p.threads) != 0 || len(p.fds) != 0 {
				return fmt.Errorf("%s: ended, yet with threads or descriptors", what)
			}
			continue
		}
		if err := slot(p.slot, what); err != nil {
			return err
		}
		if len(p.threads) == 0 {
			return fmt.Errorf("%s: no thread", what)
		}
		nums := map[int]bool{}
		for _, t := range p.threads {
			if t.num < 0 || t.num >= machine.MaxVCPUs || nums[t.num] || t.tid < 1 || t.tid > st.nextPID {
				return fmt.Errorf("%s: thread %d (tid %d) out of range or listed twice", what, t.num, t.tid)
			}
			nums[t.num] = true
			if err := slot(t.slot, what); err != nil {
				return err
			}
		}
		var end uint64
		for _, v := range p.mm.vmas {
			if v.start%pageSize != 0 || v.end%pageSize != 0 || v.off%pageSize != 0 || v.start >= v.end || v.start < end ||
				v.start < abi.UserBase || v.end > abi.UserTop || v.prot&^(protRead|protWrite|protExec) != 0 {
				return fmt.Errorf("%s: area [%#x, %#x) out of range or order", what, v.start, v.end)
			}
			end = v.end
		}
		if p.mm.brkStart > p.mm.brk && p.mm.brk != 0 || p.mm.brkMapped > abi.UserTop || p.mm.brk > abi.UserTop {
			return fmt.Errorf("%s: brk %#x..%#x out of range", what, p.mm.brkStart, p.mm.brk)
		}
		fds := map[int]bool{}
		for _, d := range p.fds {
			if d.fd < 0 || d.fd >= maxFDs || fds[d.fd] || d.file < 0 || d.file >= len(st.files) {
				return fmt.Errorf("%s: descriptor %d (file %d) out of range or listed twice", what, d.fd, d.file)
			}
			fds[d.fd] = true
			st.files[d.file].refs++
		}
		for _, in := range p.pending {
			if in.signo < 1 || in.signo > nsig {
				return fmt.Errorf("%s: pending signal %d", what, in.signo)
			}
		}
		ids := map[int]bool{}
		for i, t := range append([]savedTimer{p.real}, p.posix...) {
			posix := i > 0
			if t.deadline < 0 || t.interval < 0 || t.interval > 0 && t.onClock > uint64(t.interval) || (t.notify || !posix) && (t.info.signo < 1 || t.info.signo > nsig) && (t.deadline > 0 || posix) {
				return fmt.Errorf("%s: timer %d: signal %d, deadline %d, interval %v, out of range", what, t.id, t.info.signo, t.deadline, t.interval)
			}
			if posix && (t.id < 0 || t.id >= maxTimers || ids[t.id] || !timerClock(t.clock)) {
				return fmt.Errorf("%s: timer %d out of range, listed twice or of an unknown clock", what, t.id)
			}
			if posix {
				ids[t.id] = true
			}
		}
	}
	if !pids[1] {
		return errors.New("no process 1")
	}
	for _, p := range st.procs {
		if p.pid == 1 && p.exited {
			return errors.New("process 1 has ended")
		}
	}
	return nil
}

// saved returns s's timers as a record keeps them: ITIMER_REAL, and
// timer_create's by id.
func (s *timerSet) saved() (real savedTimer, posix []savedTimer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	save := func(id int, tm *timer) savedTimer {
		t := savedTimer{id: id, clock: tm.clock, info: tm.info, notify: tm.notify, interval: tm.interval}
		switch {
		case tm.deadline == 0:
		case tm.interval == 0:
			t.deadline, t.onClock = max(tm.host.UnixNano(), 1), tm.deadline
		default:
			d := tm.host.UnixNano() % int64(tm.interval)
			if d < 0 {
				d += int64(tm.interval)
			}
			t.deadline, t.onClock = d+1, tm.deadline%uint64(tm.interval)+1
		}
		return t
	}
	real = save(0, &s.real)
	ids := make([]int, 0, len(s.posix))
	for id := range s.posix {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		posix = append(posix, save(id, s.posix[id]))
	}
	return real, posix
}
