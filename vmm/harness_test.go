package vmm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/machine"
)

// The kernel harness: spaces on the stub backend whose threads run no
// guest code but the hypercalls a test hands them. Each call takes the
// path of a trap from a guest (decoding, checks, blocking, stopping,
// killing, on the thread's own goroutine), so tests and fuzz targets can
// drive every operation, several threads at once, without a CPU backend,
// and check afterwards that the monitor is still whole.

// vcpuScripts maps a thread to the script its stub vCPU serves. A thread
// not in it gets a vCPU that only waits to be stopped, like a guest
// spinning in its own code.
var vcpuScripts sync.Map // *Thread -> *script

// script links a test to the stub vCPU of one thread.
type script struct {
	calls  chan *scriptedCall
	closed chan struct{} // closed with the vCPU: the thread has ended
}

// scriptedCall is one hypercall a test hands a thread, and how it ended;
// or, with fault set, a fault the thread raises instead, which ends when
// the thread runs again or ends.
type scriptedCall struct {
	c     machine.Call
	fault *machine.Fault
	act   machine.CallAction
	done  chan struct{}
}

// stubVCPU is the vCPU of a stubMachine.
type stubVCPU struct {
	handler machine.TrapHandler
	script  *script
	thread  *Thread
	stop    chan struct{} // one pending stop, as Stop's contract asks
	once    sync.Once
	// faulting is the scripted fault the thread is in, if any (used
	// only on the thread's goroutine).
	faulting *scriptedCall

	mu   sync.Mutex
	regs machine.Regs
	fpu  machine.FPU
}

func newStubVCPU(cfg machine.VCPUConfig) *stubVCPU {
	v := &stubVCPU{handler: cfg.Handler, stop: make(chan struct{}, 1), fpu: machine.ResetFPU()}
	if t, ok := cfg.Handler.(*Thread); ok {
		v.thread = t
		if sc, ok := vcpuScripts.Load(t); ok {
			v.script = sc.(*script)
		}
	}
	return v
}

func (v *stubVCPU) SetRegs(r *machine.Regs) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.regs = *r
	return nil
}

func (v *stubVCPU) Regs() (machine.Regs, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.regs, nil
}

func (v *stubVCPU) SetFPU(f *machine.FPU) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fpu = *f
	return nil
}

func (v *stubVCPU) FPU() (machine.FPU, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.fpu, nil
}

// Run serves scripted calls until one asks the vCPU to leave guest code,
// or a Stop. A call that asks for a restart is reported as such and not
// issued again: the test decides what the guest does next.
func (v *stubVCPU) Run() (machine.Exit, error) {
	if sc := v.faulting; sc != nil {
		v.faulting = nil // resumed after its fault
		close(sc.done)
	}
	var calls chan *scriptedCall
	if v.script != nil {
		calls = v.script.calls
	}
	for {
		select {
		case <-v.stop:
			return machine.Exit{Kind: machine.ExitStopped}, nil
		case sc := <-calls:
			if sc.fault != nil {
				v.faulting = sc
				return machine.Exit{Kind: machine.ExitFault, Fault: *sc.fault}, nil
			}
			sc.act = v.handler.Hypercall(&sc.c)
			close(sc.done)
			if sc.act != machine.CallContinue {
				return machine.Exit{Kind: machine.ExitStopped}, nil
			}
		}
	}
}

func (v *stubVCPU) Stop() {
	select {
	case v.stop <- struct{}{}:
	default:
	}
}

func (v *stubVCPU) FlushTLB() {}

func (v *stubVCPU) Close() error {
	v.once.Do(func() {
		if v.faulting != nil {
			close(v.faulting.done)
		}
		if v.script != nil {
			vcpuScripts.Delete(v.thread)
			close(v.script.closed)
		}
	})
	return nil
}

// How long a driver lets a call block before it intervenes: a call still
// running after blockGrace is stopped (a restartable wait ends at once),
// one still running stopGrace later is killed, and one that a kill does
// not end within killGrace has blocked the monitor.
const (
	blockGrace = 2 * time.Millisecond
	stopGrace  = 200 * time.Millisecond
	killGrace  = 10 * time.Second
)

// driver plays the guest code of one thread of a stub space: it hands
// the thread calls, one at a time, and sees each end.
type driver struct {
	tb      testing.TB
	t       *Thread
	sc      *script
	rsp     uint64 // the stack pointer calls trap with
	stack   []byte // host view of [rsp, rsp+24): a4 and a5 go at +8 and +16
	pending *scriptedCall
	dead    bool
	// Watchdog counts: calls the driver had to stop, and to kill.
	stopped, killed int
}

// newDriver registers a script for t, which must not have started yet:
// its vCPU serves the driver's calls once t starts.
func newDriver(tb testing.TB, t *Thread, rsp uint64, stack []byte) *driver {
	sc := &script{calls: make(chan *scriptedCall), closed: make(chan struct{})}
	vcpuScripts.Store(t, sc)
	tb.Cleanup(func() { vcpuScripts.Delete(t) })
	return &driver{tb: tb, t: t, sc: sc, rsp: rsp, stack: stack}
}

// issue hands the thread a call and returns without waiting for it;
// nil when the thread has ended. A call still pending is finished first.
func (d *driver) issue(h, op uint64, a [abi.MaxArgSlots]uint64) *scriptedCall {
	d.finish()
	if d.dead {
		return nil
	}
	binary.LittleEndian.PutUint64(d.stack[8:], a[4])
	binary.LittleEndian.PutUint64(d.stack[16:], a[5])
	return d.hand(&scriptedCall{c: machine.Call{Args: [6]uint64{h, op, a[0], a[1], a[2], a[3]}, RSP: d.rsp}, done: make(chan struct{})})
}

// raise makes the thread fault and returns without waiting for the fault
// to be handled; nil when the thread has ended.
func (d *driver) raise(f machine.Fault) *scriptedCall {
	d.finish()
	if d.dead {
		return nil
	}
	return d.hand(&scriptedCall{fault: &f, done: make(chan struct{})})
}

func (d *driver) hand(sc *scriptedCall) *scriptedCall {
	for {
		select {
		case d.sc.calls <- sc:
			d.pending = sc
			return sc
		case <-d.sc.closed:
			d.dead = true
			return nil
		case <-time.After(time.Millisecond):
			// Parked: stopped by a call, or by the watchdog after its
			// last call. Resume it, as whoever stopped it would.
			d.t.start()
		}
	}
}

// call issues a call and waits for it to end (see finish).
func (d *driver) call(h uint64, op abi.Op, args ...uint64) (r0, r1 uint64, act machine.CallAction, ok bool) {
	var a [abi.MaxArgSlots]uint64
	copy(a[:], args)
	sc := d.issue(h, uint64(op), a)
	if sc == nil {
		return 0, 0, 0, false
	}
	d.finish()
	return sc.c.Ret[0], sc.c.Ret[1], sc.act, true
}

// must performs a call that has to succeed and returns its R0. A call
// that restarts (its thread was stopped before it took effect, as the
// watchdog of finish stops one that blocks a while under load) is issued
// again, as the guest's stub issues it again once resumed: R0 is not its
// result. One that restarts for killGrace blocks for good, and fails.
func (d *driver) must(h uint64, op abi.Op, args ...uint64) uint64 {
	d.tb.Helper()
	for deadline := time.Now().Add(killGrace); ; {
		r0, _, act, ok := d.call(h, op, args...)
		if !ok {
			d.tb.Fatalf("%s on handle %d: the thread has ended", op, h)
		}
		if act == machine.CallRestart {
			if time.Now().After(deadline) {
				d.tb.Fatalf("%s on handle %d: restarted for %v, never performed", op, h, killGrace)
			}
			continue
		}
		if e := abi.ResultError(r0); e != abi.OK {
			d.tb.Fatalf("%s on handle %d: %v", op, h, e)
		}
		return r0
	}
}

// settle waits up to grace for the pending call to end, and reports
// whether it has.
func (d *driver) settle(grace time.Duration) bool {
	if d.pending == nil {
		return true
	}
	if waitClosed(d.pending.done, grace) {
		d.pending = nil
		return true
	}
	return false
}

// finish waits for the pending call to end. A call that blocks is
// stopped, then killed; one that even a kill does not end fails the test,
// since then the monitor itself is stuck. A call that the stop leaves
// asleep sleeps where a stop does not reach (a call its server holds, a
// fault its handler has) and is killed at once; one still awake is
// working (copying a large buffer on a loaded host, say) and has until
// killGrace before it is killed too.
func (d *driver) finish() {
	sc := d.pending
	if sc == nil {
		return
	}
	d.pending = nil
	if waitClosed(sc.done, blockGrace) {
		return
	}
	d.stopped++
	if v := d.t.requestStop(); v != nil {
		v.Stop()
	}
	for deadline := time.Now().Add(killGrace); ; {
		if waitClosed(sc.done, stopGrace) {
			return
		}
		if d.t.asleep.Load() || time.Now().After(deadline) {
			break
		}
	}
	d.killed++
	d.t.kill()
	if waitClosed(sc.done, killGrace) {
		return
	}
	what := fmt.Sprintf("%s (%d) on handle %d", abi.Op(sc.c.Args[1]), sc.c.Args[1], sc.c.Args[0])
	if sc.fault != nil {
		what = "the fault " + sc.fault.String()
	}
	d.tb.Fatalf("%s did not end though its thread was killed: the monitor is stuck\n%s", what, goroutines())
}

func waitClosed(c <-chan struct{}, d time.Duration) bool {
	select {
	case <-c:
		return true
	default:
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-c:
		return true
	case <-tm.C:
		return false
	}
}

// goroutines is a dump of every goroutine's stack, for failure messages.
func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// The kernel fixture's guest addresses in space a.
const (
	fixData   = 0x500000 // a read-write page, then a read-only one
	fixRegion = 0x600000 // region R, 4 pages, read-write
	fixKept   = 0x700000 // region K, 2 pages, kept by port P
	fixFree   = 0x800000 // nothing mapped here
	fixStack0 = fixData + 0xe00
	fixStack1 = fixData + 0xf00
	fixMsg    = fixData + 0x800 // where seeds put received messages
	fixBuf    = fixData + 0x400 // where seeds put other buffers
)

// Handle numbers in space a, as the fixture makes them.
const (
	hSpace     = 1  // a itself, every right
	hThread0   = 2  // the thread driven first
	hConsole   = 3  // the console: write, grant, derive
	hClock     = 4  // a clock: read
	hThread1   = 5  // the second driven thread
	hChild     = 6  // a child space c, every right
	hRegion    = 7  // region R, mapped at fixRegion
	hPort      = 8  // port P, owned by a, every right
	hPortCall  = 9  // P with call only, badge 9
	hPortSet   = 10 // a port set owned by a
	hKept      = 11 // region K, kept by P (badge 11), mapped at fixKept
	hChildPort = 12 // a port owned by c
	hChildThr  = 13 // a thread of c, running
	hRegionRO  = 14 // R with read and map only (no grant)
	hConsoleNG = 15 // the console with write only (no grant, no derive)
	hFixed     = 15 // the last handle the fixture makes
)

// Quotas of the child c.
const (
	childPages    = 64
	childThreads  = 4
	childHandles  = 16
	childChildren = 2
)

// kernelFixture is a monitor with a space a, driven by two scripted
// threads and holding one handle to each kind of object (the h*
// constants), and a bystander space b that a holds nothing of. Tests and
// fuzz targets make a do what they like, then check that b is untouched
// and the kernel's records are whole, and that ending both spaces gives
// back every goroutine and file descriptor.
type kernelFixture struct {
	tb      testing.TB
	mon     *Monitor
	a       *Space
	data    *machine.Memory // a's pages at fixData
	d       [2]*driver
	console *bytes.Buffer
	child   *Space

	b          *Space
	bData      *machine.Memory
	bBefore    []byte
	bHandles   int
	bPort      *Port
	bThread    *Thread
	bGuard     uint64 // a handle number in b's table
	goroutines int
	fds        int
}

func newKernelFixture(tb testing.TB) *kernelFixture {
	tb.Helper()
	f := &kernelFixture{tb: tb, console: &bytes.Buffer{}}
	// The clock's time page, once made, is the process's for good (one
	// descriptor, and the goroutine that keeps it): made before
	// counting, it is no fixture's leak.
	hostTime.page()
	f.goroutines, f.fds = runtime.NumGoroutine(), openFDs(tb)
	f.mon = NewMonitor(stubBackend{}, nil)
	var err error
	f.a, err = f.mon.NewSpace("a", DefaultQuota)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.teardown)
	f.data = f.mapData(f.a)
	t0, err := f.a.NewThread(machine.Regs{})
	if err != nil {
		tb.Fatal(err)
	}
	for _, h := range []struct {
		obj    Object
		rights abi.Rights
	}{
		{f.a, abi.RightsAll}, {t0, abi.RightsAll},
		{NewHostPort("console", ConsoleServer(f.console)), abi.RightWrite | abi.RightGrant | abi.RightDerive},
		{NewHostPort("clock", ClockServer()), abi.RightRead},
	} {
		if _, err := f.a.insertHandle(h.obj, h.rights, 0); err != nil {
			tb.Fatal(err)
		}
	}
	page := f.data.Bytes()
	f.d[0] = newDriver(tb, t0, fixStack0, page[fixStack0-fixData:][:24])
	if err := t0.Start(); err != nil {
		tb.Fatal(err)
	}
	d := f.d[0]
	// The rest through calls, as a guest would make them.
	if h := d.must(hSpace, abi.OpThreadCreate, 0, 0, 0); h != hThread1 {
		tb.Fatalf("thread 1 is handle %d", h)
	}
	n, _ := f.a.lookupHandle(hThread1)
	f.d[1] = newDriver(tb, n.obj.(*Thread), fixStack1, page[fixStack1-fixData:][:24])
	d.must(hThread1, abi.OpThreadStart)
	d.must(hSpace, abi.OpSpaceCreate, childPages, childThreads, childHandles, childChildren)
	n, _ = f.a.lookupHandle(hChild)
	f.child = n.obj.(*Space)
	d.must(hSpace, abi.OpRegionCreate, 4*pageSize)
	d.must(hSpace, abi.OpSpaceMap, hRegion, fixRegion, 0, 4*pageSize, abi.PermRead|abi.PermWrite)
	d.must(hSpace, abi.OpPortCreate)
	d.must(hPort, abi.OpHandleDerive, uint64(abi.RightCall), hPortCall)
	d.must(hSpace, abi.OpPortSetCreate)
	d.must(hSpace, abi.OpRegionCreate, 2*pageSize)
	kp := d.must(hPort, abi.OpHandleDerive, uint64(abi.RightCall), hKept)
	d.must(hKept, abi.OpRegionSetKeeper, kp)
	d.must(kp, abi.OpHandleClose)
	d.must(hSpace, abi.OpSpaceMap, hKept, fixKept, 0, 2*pageSize, abi.PermRead|abi.PermWrite)
	d.must(hChild, abi.OpPortCreate)
	d.must(hChild, abi.OpThreadCreate, 0, 0, 0)
	d.must(hChildThr, abi.OpThreadStart)
	d.must(hRegion, abi.OpHandleDerive, uint64(abi.RightRead|abi.RightMap), 0)
	if h := d.must(hConsole, abi.OpHandleDerive, uint64(abi.RightWrite), 0); h != hConsoleNG {
		tb.Fatalf("the fixture's last handle is %d, want %d", h, hConsoleNG)
	}

	// The bystander.
	f.b, err = f.mon.NewSpace("b", DefaultQuota)
	if err != nil {
		tb.Fatal(err)
	}
	f.bData = f.mapData(f.b)
	f.bPort = f.b.newGuestPort("b's port")
	if e := f.b.own(f.bPort); e != abi.OK {
		tb.Fatal(e)
	}
	if e := f.mon.enqueue(f.bPort, &message{hdr: abi.Msg{Kind: abi.MsgSend, Op: 7}, data: []byte("for b")}); e != abi.OK {
		tb.Fatal(e)
	}
	if f.bThread, err = f.b.NewThread(machine.Regs{}); err != nil {
		tb.Fatal(err)
	}
	if err := f.bThread.Start(); err != nil {
		tb.Fatal(err)
	}
	for _, obj := range []Object{f.b, f.bThread, f.bPort} {
		if f.bGuard, err = f.b.insertHandle(obj, abi.RightsAll, 0); err != nil {
			tb.Fatal(err)
		}
	}
	f.bBefore = append([]byte(nil), f.bData.Bytes()...)
	f.bHandles = f.b.handles.count
	return f
}

// mapData maps a read-write page, then a read-only page, at fixData in s,
// filled with a pattern.
func (f *kernelFixture) mapData(s *Space) *machine.Memory {
	data, err := machine.NewMemory("fixture-data", 2*pageSize)
	if err != nil {
		f.tb.Fatal(err)
	}
	for i := range data.Bytes() {
		data.Bytes()[i] = byte(i * 7)
	}
	if err := s.mapAt(fixData, data, 0, pageSize, machine.PermRead|machine.PermWrite); err != nil {
		f.tb.Fatal(err)
	}
	if err := s.mapAt(fixData+pageSize, data, pageSize, pageSize, machine.PermRead); err != nil {
		f.tb.Fatal(err)
	}
	// The test keeps its reference until teardown: drivers write call
	// arguments into it, even after a call ends the space.
	f.tb.Cleanup(func() { data.Unref() })
	return data
}

// spaces returns every space of the fixture's monitor that has not
// finished: a and b and their descendants.
func (f *kernelFixture) spaces() []*Space {
	var out []*Space
	var walk func(s *Space)
	walk = func(s *Space) {
		select {
		case <-s.Done():
			return
		default:
		}
		out = append(out, s)
		s.mu.Lock()
		kids := make([]*Space, 0, len(s.children))
		for c := range s.children {
			kids = append(kids, c)
		}
		s.mu.Unlock()
		for _, c := range kids {
			walk(c)
		}
	}
	walk(f.a)
	walk(f.b)
	return out
}

// quiesce finishes both drivers' pending calls and waits for spaces that
// are ending to finish, so the records can be checked at rest.
func (f *kernelFixture) quiesce() {
	for _, d := range f.d {
		d.finish()
	}
	for _, s := range f.spaces() {
		s.mu.Lock()
		dying := s.dying
		s.mu.Unlock()
		if dying && !waitClosed(s.Done(), killGrace) {
			f.tb.Fatalf("space %s was killed but did not finish\n%s", s.name, goroutines())
		}
	}
}

// check quiesces the fixture and checks what no call of a may change:
// b's memory, handles, queue and threads, and the kernel's own records
// (handle tables, derivation links, quotas).
func (f *kernelFixture) check() {
	f.tb.Helper()
	f.quiesce()
	if !bytes.Equal(f.bData.Bytes(), f.bBefore) {
		f.tb.Errorf("a call in space a changed the memory of space b")
	}
	f.b.mu.Lock()
	bHandles, bDying := f.b.handles.count, f.b.dying
	f.b.mu.Unlock()
	if bHandles != f.bHandles || bDying {
		f.tb.Errorf("space b has %d handles (dying %v), want %d and running", bHandles, bDying, f.bHandles)
	}
	f.mon.ipc.mu.Lock()
	bQueue := len(f.bPort.queue)
	f.mon.ipc.mu.Unlock()
	if bQueue != 1 {
		f.tb.Errorf("space b's port holds %d messages, want 1", bQueue)
	}
	if st, _ := f.bThread.Status(); st != abi.ThreadRunning {
		f.tb.Errorf("space b's thread is in state %d, want running", st)
	}
	checkKernel(f.tb, f.mon, f.spaces())
}

// checkKernel checks the records of spaces at rest: each handle table's
// count matches its slots and stays within its quota, each handle knows
// its space and number, derivation links are mutual and never lead to a
// removed handle, and each space's memory charge is what its regions,
// its own mappings, its queued messages and its children hold, within its
// quota.
func checkKernel(tb testing.TB, m *Monitor, spaces []*Space) {
	tb.Helper()
	m.caps.mu.Lock()
	for _, s := range spaces {
		s.mu.Lock()
		n := 0
		for i, c := range s.handles.slots {
			if c == nil {
				continue
			}
			n++
			switch {
			case i == 0:
				tb.Errorf("%s: slot 0 holds a handle", s.name)
			case c.space != s || c.num != uint64(i):
				tb.Errorf("%s: handle %d thinks it is handle %d of another space", s.name, i, c.num)
			}
			if p := c.parent; p != nil {
				if _, linked := p.kids[c]; !linked || p.gone() {
					tb.Errorf("%s: handle %d derives from a handle that does not list it, or was removed", s.name, i)
				}
			}
			for k := range c.kids {
				if k.parent != c || k.gone() {
					tb.Errorf("%s: handle %d lists a derived handle that is removed or not its own", s.name, i)
				}
			}
		}
		seen := map[uint64]bool{}
		for _, h := range s.handles.free {
			if h == 0 || h >= uint64(len(s.handles.slots)) || s.handles.slots[h] != nil || seen[h] {
				tb.Errorf("%s: free list holds %d, which is not a free slot", s.name, h)
			}
			seen[h] = true
		}
		if n != s.handles.count || (n > s.handles.limit && !s.closedTable) {
			tb.Errorf("%s: %d handles, table counts %d, limit %d", s.name, n, s.handles.count, s.handles.limit)
		}
		if len(s.threads) > s.quota.Threads || s.descendants > s.quota.Children {
			tb.Errorf("%s: %d threads and %d spaces below, over its quota %+v", s.name, len(s.threads), s.descendants, s.quota)
		}
		s.mu.Unlock()
	}
	m.caps.mu.Unlock()

	for _, s := range spaces {
		checkMappings(tb, s)
	}

	used := map[*Space]uint64{}
	for _, s := range spaces {
		s.mu.Lock()
		used[s] = s.memUsed
		s.mu.Unlock()
	}
	// The bytes of messages queued on the spaces' ports are charged to
	// their senders (sendlimit.go).
	queued := map[*Space]uint64{}
	m.ipc.mu.Lock()
	for _, s := range spaces {
		s.mu.Lock()
		owned := append([]Object(nil), s.owned...)
		s.mu.Unlock()
		for _, o := range owned {
			if p, isPort := o.(*Port); isPort {
				for _, msg := range p.queue {
					if msg.sender != nil {
						queued[msg.sender] += msg.charged
					}
				}
			}
		}
	}
	m.ipc.mu.Unlock()
	for _, s := range spaces {
		s.mu.Lock()
		want := queued[s]
		for _, r := range s.regions {
			want += r.mem.Size()
		}
		for _, mp := range s.as.maps {
			if mp.region == nil {
				want += mp.size
			}
		}
		below := 0
		for c := range s.children {
			want += used[c]
			c.mu.Lock()
			below += 1 + c.descendants
			c.mu.Unlock()
		}
		descendants := s.descendants
		s.mu.Unlock()
		if descendants != below {
			tb.Errorf("%s: counts %d spaces below it, has %d", s.name, descendants, below)
		}
		if used[s] != want || used[s] > s.quota.Memory {
			tb.Errorf("%s: charged %#x bytes, holds %#x, quota %#x", s.name, used[s], want, s.quota.Memory)
		}
	}
}

// checkMappings checks the records of s's mappings at rest: they are
// sorted and disjoint, each region lists the mappings of it that s holds
// and no other of s's, the window counts one piece for each, and each
// page's page-table entry is present exactly when the mapping grants
// some access and its page is present, writable exactly when it grants
// writing.
func checkMappings(tb testing.TB, s *Space) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dying || s.hostSpace() {
		return
	}
	maps := s.as.maps
	if n := s.win.Pieces.Load(); n != int64(len(maps)) {
		tb.Errorf("%s: the window counts %d pieces, the space has %d mappings", s.name, n, len(maps))
	}
	regions := map[*Region]bool{}
	for i, m := range maps {
		if m.space != s || m.size == 0 || m.size%pageSize != 0 || m.addr%pageSize != 0 || m.off%pageSize != 0 {
			tb.Errorf("%s: mapping %#x+%#x (offset %#x) is not whole pages of this space", s.name, m.addr, m.size, m.off)
		}
		if i > 0 && maps[i-1].end() > m.addr {
			tb.Errorf("%s: mappings at %#x and %#x overlap or are out of order", s.name, maps[i-1].addr, m.addr)
		}
		if m.perm&^m.limit != 0 {
			tb.Errorf("%s: mapping at %#x grants %s beyond its limit %s", s.name, m.addr, m.perm, m.limit)
		}
		r := m.region
		if r != nil {
			regions[r] = true
		}
		for a := m.addr; a < m.end(); a += pageSize {
			present := m.perm != 0
			if r != nil {
				r.mu.Lock()
				present = present && r.isPresent((m.off+a-m.addr)/pageSize)
				r.mu.Unlock()
			}
			e := s.pt.Lookup(a)
			if got := e&machine.PTEPresent != 0; got != present {
				tb.Errorf("%s: page %#x (mapping at %#x, %s) has a present entry: %v, want %v", s.name, a, m.addr, m.perm, got, present)
				return
			}
			if got := e&machine.PTEWrite != 0; present && got != (m.perm&machine.PermWrite != 0) {
				tb.Errorf("%s: page %#x (mapping at %#x, %s) is writable: %v", s.name, a, m.addr, m.perm, got)
				return
			}
		}
	}
	for r := range regions {
		r.mu.Lock()
		listed := map[*mapping]bool{}
		for _, m := range r.maps {
			if m.space == s {
				listed[m] = true
			}
		}
		r.mu.Unlock()
		for _, m := range maps {
			if m.region == r && !listed[m] {
				tb.Errorf("%s: region does not list its mapping at %#x", s.name, m.addr)
			}
			delete(listed, m)
		}
		if len(listed) > 0 {
			tb.Errorf("%s: region lists %d mappings the space does not hold", s.name, len(listed))
		}
	}
}

// teardown ends both spaces and checks that everything they held went
// with them: their goroutines, file descriptors, pending calls and futex
// waits.
func (f *kernelFixture) teardown() {
	tb := f.tb
	for _, d := range f.d {
		if d != nil && d.pending != nil {
			d.t.kill()
		}
	}
	for _, s := range []*Space{f.a, f.b} {
		if s == nil {
			continue
		}
		s.Kill("test over")
		if !waitClosed(s.Done(), killGrace) {
			tb.Fatalf("space %s did not finish after a kill\n%s", s.name, goroutines())
		}
	}
	if f.child != nil && !waitClosed(f.child.Done(), killGrace) {
		tb.Fatalf("the child space did not finish with its parent\n%s", goroutines())
	}
	f.mon.ipc.mu.Lock()
	calls := len(f.mon.ipc.calls)
	f.mon.ipc.mu.Unlock()
	f.mon.futex.mu.Lock()
	waiters := len(f.mon.futex.waiters)
	f.mon.futex.mu.Unlock()
	if calls != 0 || waiters != 0 {
		tb.Errorf("after every space ended: %d calls await replies, %d futex words have waiters", calls, waiters)
	}
	// Thread goroutines end just after their space finishes; give them a
	// moment. Nothing else in the test starts goroutines or opens files,
	// so the counts must come back exactly.
	deadline := time.Now().Add(killGrace)
	for {
		g, fds := runtime.NumGoroutine(), openFDs(tb)
		if g <= f.goroutines && fds <= f.fds {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after every space ended: %d goroutines (%d before), %d open files (%d before)\n%s",
				g, f.goroutines, fds, f.fds, goroutines())
		}
		time.Sleep(time.Millisecond)
	}
}

// openFDs counts the process's open file descriptors.
func openFDs(tb testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatalf("count open files: %v", err)
	}
	return len(ents)
}

// lastMsg is the last message a driven thread received, as the sequence
// fuzzer's selectors see it.
type lastMsg struct {
	callID, badge, op, offset uint64
	handles                   [abi.MsgHandles]uint64
}

// readMsg reads an nv_msg record from a's memory at addr.
func (f *kernelFixture) readMsg(addr uint64) (abi.Msg, bool) {
	f.a.mu.Lock()
	b, e := f.a.as.buffer(addr, uint64(msgSize), machine.PermRead)
	f.a.mu.Unlock()
	if e != abi.OK {
		return abi.Msg{}, false
	}
	raw := make([]byte, msgSize)
	b.Read(raw)
	var m abi.Msg
	if _, err := binary.Decode(raw, binary.LittleEndian, &m); err != nil {
		return abi.Msg{}, false
	}
	return m, true
}

func (m lastMsg) String() string {
	return fmt.Sprintf("call %d badge %d op %d offset %#x handles %v", m.callID, m.badge, m.op, m.offset, m.handles)
}
