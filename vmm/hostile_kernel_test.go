package vmm

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nestvm/abi"
	"nestvm/machine"
)

// Regression tests for bad input the kernel fixture found or the hostile
// guest tries, each pinned down at the level of the kernel so that it
// fails the same way on every run.

// A region is charged to one space and freed when that space ends, while
// other spaces may still hold handles to it. Operations on it then fail
// with ErrPeerGone, and one already copying when the owner ends finishes
// on memory that stays valid until it is done.
func TestRegionOfEndedOwner(t *testing.T) {
	f := newKernelFixture(t)
	r := f.d[0].must(hChild, abi.OpRegionCreate, childPages*pageSize)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			op := abi.OpRegionWrite
			if i%2 == 1 {
				op = abi.OpRegionRead
			}
			f.d[1].call(r, op, 0, fixRegion, 4*pageSize)
		}
	}()
	time.Sleep(5 * time.Millisecond)
	f.child.Kill("test")
	if !waitClosed(f.child.Done(), killGrace) {
		t.Fatal("the child did not end")
	}
	close(stop)
	<-done
	buf := uint64(fixBuf)
	for _, c := range []struct {
		op   abi.Op
		args []uint64
	}{
		{abi.OpRegionRead, []uint64{0, buf, 64}},
		{abi.OpRegionWrite, []uint64{0, buf, 64}},
		{abi.OpRegionSupply, []uint64{0, fixData, pageSize}},
		{abi.OpSpaceMap, []uint64{r, fixFree, 0, pageSize, abi.PermRead}},
	} {
		h := r
		if c.op == abi.OpSpaceMap {
			h = hSpace
		}
		r0, _, _, _ := f.d[0].call(h, c.op, c.args...)
		if e := abi.ResultError(r0); e != abi.ErrPeerGone {
			t.Errorf("%s on a region whose owner ended: %v, want %v", c.op, e, abi.ErrPeerGone)
		}
	}
	if r0, _, _, _ := f.d[0].call(r, abi.OpRegionSize); r0 != childPages*pageSize {
		t.Errorf("region_size of a region whose owner ended: %#x, want %#x", r0, childPages*pageSize)
	}
	f.check()
}

// A request to read or change a stopped thread's state (thread_get_state,
// thread_set_state, a TLB flush) is answered whatever the thread does
// next: it may be resumed, or killed, before its goroutine takes the
// request. The caller must neither wait forever nor have its request run
// without the thread's vCPU.
func TestStateRequestsAnswered(t *testing.T) {
	f := newKernelFixture(t)
	th1 := f.d[1].t
	for i := 0; i < 300; i++ {
		// Resumed: the request must not wait for the thread's next sleep,
		// nor run then with no vCPU.
		f.d[0].must(hThread1, abi.OpThreadStop)
		got := make(chan error, 1)
		go func() {
			_, _, err := th1.State()
			got <- err
		}()
		go th1.start()
		f.d[1].call(hSpace, abi.OpFutexWait, fixData, 0x150e0700, 1000)
		select {
		case <-got:
		case <-time.After(killGrace):
			t.Fatalf("round %d: thread_get_state on a thread resumed meanwhile never returned\n%s", i, goroutines())
		}
	}
	for i := 0; i < 300; i++ {
		// Killed: the request must be answered though the thread ends.
		th, err := f.a.NewThread(machine.Regs{})
		if err != nil {
			t.Fatal(err)
		}
		if err := th.Start(); err != nil {
			t.Fatal(err)
		}
		th.stopAndWait(nil)
		got := make(chan error, 1)
		go func() {
			_, _, err := th.State()
			got <- err
		}()
		go th.kill()
		select {
		case <-got:
		case <-time.After(killGrace):
			t.Fatalf("round %d: thread_get_state on a thread killed meanwhile never returned\n%s", i, goroutines())
		}
	}
	f.check()
}

// A keeper that answers a page request without supplying the page makes
// the call whose buffer lies there ask again, as a touch would. However
// often it does, the monitor's stack must not grow: a guest keeper
// answering forever would otherwise overflow it.
func TestPageInRetriesInPlace(t *testing.T) {
	f := newKernelFixture(t)
	sc := f.d[0].issue(hConsole, uint64(abi.OpConsoleWrite), [abi.MaxArgSlots]uint64{fixKept, 16})
	n, _ := f.a.lookupHandle(hPort)
	port := n.obj.(*Port)
	var last uint64
	request := func() abi.Msg {
		t.Helper()
		// The keeper receives once the request is queued: a receive
		// left waiting for it is stopped by the driver's watchdog under
		// load and restarts, taking nothing.
		for deadline := time.Now().Add(killGrace); ; runtime.Gosched() {
			f.mon.ipc.mu.Lock()
			queued := len(port.queue)
			f.mon.ipc.mu.Unlock()
			if queued > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no page request came\n%s", goroutines())
			}
		}
		r0, _, act, ok := f.d[1].call(hPort, abi.OpPortReceive, fixMsg, uint64(msgSize), 0, 0)
		if !ok {
			t.Fatal("the keeper thread ended")
		}
		if e := abi.ResultError(r0); act != machine.CallContinue || e != abi.OK {
			t.Fatalf("port_receive with a request queued: %v, action %v", e, act)
		}
		m, ok := f.readMsg(fixMsg)
		if !ok || m.Kind != abi.MsgPage || m.Words[abi.FaultWordOffset] != 0 || m.CallID == last {
			t.Fatalf("the keeper got %+v, want a new request for page 0 (the last was call %d)", m, last)
		}
		last = m.CallID
		return m
	}
	for i := 0; i < 100; i++ {
		f.d[1].must(hPort, abi.OpPortReply, request().CallID, abi.FaultResume, 0, 0, 0, 0)
	}
	m := request()
	if n := strings.Count(goroutines(), "vmm.(*Thread).perform("); n > 3 {
		t.Errorf("after 100 page requests for one call, %d frames of perform are on the stacks", n)
	}
	f.d[1].must(hKept, abi.OpRegionSupply, 0, fixData, pageSize)
	f.d[1].must(hPort, abi.OpPortReply, m.CallID, abi.FaultResume, 0, 0, 0, 0)
	if r0, _, _, _ := f.d[1].call(hPort, abi.OpPortReply, m.CallID, abi.FaultResume, 0, 0, 0, 0); abi.ResultError(r0) != abi.ErrNotFound {
		t.Errorf("port_reply to a call answered already: %v, want %v", abi.ResultError(r0), abi.ErrNotFound)
	}
	f.d[0].finish()
	if sc.c.Ret[0] != 16 {
		t.Errorf("console_write from the kept page: %#x, want 16", sc.c.Ret[0])
	}
	f.check()
}

// A thread ended before it ever started gives back its place in its
// space's thread quota, as a thread that ran does: a program creating
// threads it then decides not to run must not run out of them.
func TestUnstartedThreadsFreeTheirPlace(t *testing.T) {
	f := newKernelFixture(t)
	for i := 0; i < 3*childThreads; i++ {
		h, _, _, _ := f.d[0].call(hChild, abi.OpThreadCreate, abi.UserBase, 0, 0)
		if e := abi.ResultError(h); e != abi.OK {
			t.Fatalf("round %d: thread_create: %v", i, e)
		}
		f.d[0].must(h, abi.OpThreadExit, 0)
		if st, _, _, _ := f.d[0].call(h, abi.OpThreadStatus); st != abi.ThreadExited {
			t.Fatalf("round %d: thread_status after thread_exit: %d", i, st)
		}
		if r0, _, _, _ := f.d[0].call(h, abi.OpThreadStart); abi.ResultError(r0) != abi.ErrBusy {
			t.Fatalf("round %d: thread_start after thread_exit: %v, want %v", i, abi.ResultError(r0), abi.ErrBusy)
		}
		f.d[0].must(h, abi.OpHandleClose)
	}
	f.child.mu.Lock()
	n := len(f.child.threads)
	f.child.mu.Unlock()
	if n != 1 {
		t.Errorf("the child holds %d threads, want its one running thread", n)
	}
	f.check()
}

// A space's exception port must be a port guest threads serve: a fault
// sent to a host server would wait for a receive that never comes, and
// the faulting space would hang, stopped, instead of dying of its fault.
func TestExceptionPortServedByGuest(t *testing.T) {
	f := newKernelFixture(t)
	h, err := f.a.insertHandle(NewHostPort("host", ConsoleServer(f.console)), abi.RightCall, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r0, _, _, _ := f.d[0].call(hSpace, abi.OpSpaceSetExceptionPort, h); abi.ResultError(r0) != abi.ErrInvalidArg {
		t.Errorf("space_set_exception_port with a host port: %v, want %v", abi.ResultError(r0), abi.ErrInvalidArg)
	}
	f.d[1].raise(machine.Fault{Vector: machine.VecInvalidOp, RIP: abi.UserBase})
	if !waitClosed(f.a.Done(), killGrace) {
		t.Fatalf("a space whose thread faulted did not end\n%s", goroutines())
	}
	if r := f.a.Wait(); r.Fault == nil || r.Fault.Fault.Vector != machine.VecInvalidOp {
		t.Errorf("the space ended with %s, want its thread's fault", r)
	}
}

// A handle travelling in a message is revoked while the receiver takes
// it: either it arrives and the revoke takes it back, or it arrives as
// no handle; never does it survive its source's revocation.
func TestHandleRevokedInFlight(t *testing.T) {
	f := newKernelFixture(t)
	for i := 0; i < 200; i++ {
		x := f.d[0].must(hConsole, abi.OpHandleDerive, uint64(abi.RightWrite|abi.RightGrant), 0)
		f.d[0].must(hPortCall, abi.OpPortSend, 1, 0, 0, x)
		f.d[1].issue(hPort, uint64(abi.OpPortReceive), [abi.MaxArgSlots]uint64{fixMsg, uint64(msgSize)})
		f.d[0].must(hConsole, abi.OpHandleRevoke)
		f.d[1].finish()
		m, ok := f.readMsg(fixMsg)
		if !ok || m.NHandles != 1 {
			t.Fatalf("round %d: received %+v", i, m)
		}
		if h := m.Handles[0]; h != abi.NoHandle {
			if r0, _, _, _ := f.d[1].call(h, abi.OpHandleInfo); abi.ResultError(r0) != abi.ErrBadHandle {
				t.Fatalf("round %d: the handle received, %d, outlived the revocation of its source", i, h)
			}
		}
	}
	f.check()
}

// One-way messages wait in the monitor until someone receives them. A
// space sending where nobody receives cannot make the monitor hold more
// than a bounded number and size of them: past that its sends fail with
// ErrWouldBlock, and succeed again once the receiver catches up.
func TestQueuedSendsBounded(t *testing.T) {
	f := newKernelFixture(t)
	const tries = 5000
	sent := 0
	for ; sent < tries; sent++ {
		r0, _, _, ok := f.d[0].call(hPortCall, abi.OpPortSend, 1, fixData, pageSize, 0)
		if !ok {
			t.Fatalf("send %d: the sending thread ended", sent)
		}
		if e := abi.ResultError(r0); e == abi.ErrWouldBlock {
			break
		} else if e != abi.OK {
			t.Fatalf("send %d: %v", sent, e)
		}
	}
	if sent == tries || sent == 0 {
		t.Fatalf("%d page-sized sends queued where nobody receives, want a bound below %d", sent, tries)
	}
	f.d[1].must(hPort, abi.OpPortReceive, fixMsg, uint64(msgSize), 0, 0)
	f.d[0].must(hPortCall, abi.OpPortSend, 1, fixData, pageSize, 0)
	f.check()

	// Bytes too: a few sends of a large buffer reach the bound.
	f = newKernelFixture(t)
	r := f.d[0].must(hSpace, abi.OpRegionCreate, abi.MaxBuffer/2)
	f.d[0].must(hSpace, abi.OpSpaceMap, r, 0x1000000, 0, abi.MaxBuffer/2, abi.PermRead)
	big := 0
	for ; big < 8; big++ {
		r0, _, _, ok := f.d[0].call(hPortCall, abi.OpPortSend, 1, 0x1000000, abi.MaxBuffer/2, 0)
		if !ok {
			t.Fatalf("send %d of %d MiB: the sending thread ended", big, abi.MaxBuffer>>21)
		}
		if e := abi.ResultError(r0); e == abi.ErrWouldBlock {
			break
		} else if e != abi.OK {
			t.Fatalf("send %d of %d MiB: %v", big, abi.MaxBuffer>>21, e)
		}
	}
	if big == 8 || big == 0 {
		t.Errorf("%d sends of %d MiB queued where nobody receives, want a bound above 0 and below 8", big, abi.MaxBuffer>>21)
	}
	f.check()
}

// Ports and port sets live as long as the space that owns them, whatever
// becomes of their handles, so a space can own only so many: past its
// handle quota port_create and port_set_create fail with ErrQuota, and a
// create-and-close loop cannot grow the monitor's records without end.
func TestOwnedPortsBounded(t *testing.T) {
	f := newKernelFixture(t)
	made := 0
	for i := 0; i < 4*childHandles; i++ {
		op := abi.OpPortCreate
		if i%2 == 1 {
			op = abi.OpPortSetCreate
		}
		r0, _, _, _ := f.d[0].call(hChild, op)
		if e := abi.ResultError(r0); e == abi.ErrQuota {
			break
		} else if e != abi.OK {
			t.Fatalf("%s %d: %v", op, i, e)
		}
		f.d[0].must(r0, abi.OpHandleClose)
		made++
	}
	f.child.mu.Lock()
	owned := len(f.child.owned)
	f.child.mu.Unlock()
	if made == 4*childHandles || owned > childHandles {
		t.Errorf("the child owns %d ports and port sets after %d creations, want at most its handle quota %d", owned, made, childHandles)
	}
	f.check()
}

// A space's children quota bounds every space below it, not only its
// children: each space costs the monitor a machine, memory and address
// space, and a program holding a child's handle could otherwise grow a
// tree of them, children's children, without any thread of theirs.
func TestSpaceTreeBounded(t *testing.T) {
	f := newKernelFixture(t)
	level, total := []uint64{hChild}, 0
	for depth := 0; depth < 6 && len(level) > 0; depth++ {
		var next []uint64
		for _, h := range level {
			for {
				r0, _, _, _ := f.d[0].call(h, abi.OpSpaceCreate, 1, 1, 4, 0)
				if e := abi.ResultError(r0); e == abi.ErrQuota {
					break
				} else if e != abi.OK {
					t.Fatalf("space_create at depth %d: %v", depth, e)
				}
				next = append(next, r0)
				total++
			}
		}
		level = next
	}
	if total != childChildren {
		t.Errorf("a child with a children quota of %d holds %d spaces below it", childChildren, total)
	}
	// Ending spaces gives their places back.
	f.d[0].must(hChild, abi.OpSpaceKill, 0)
	f.quiesce()
	for i := 0; i < 3*DefaultQuota.Children; i++ {
		h := f.d[0].must(hSpace, abi.OpSpaceCreate, 1, 1, 4, 1)
		f.d[0].must(h, abi.OpSpaceKill, 0)
		f.d[0].must(h, abi.OpHandleClose)
	}
	f.check()
}

// Ending a thread that never ran does not end its space, even when no
// thread of the space has run yet: a parent setting up a child may create
// threads and drop some before it starts any.
func TestUnstartedThreadExitKeepsSpace(t *testing.T) {
	f := newKernelFixture(t)
	c := f.d[0].must(hSpace, abi.OpSpaceCreate, 4, 2, 4, 0)
	f.d[0].must(c, abi.OpThreadCreate, abi.UserBase, 0, 0)
	t2 := f.d[0].must(c, abi.OpThreadCreate, abi.UserBase, 0, 0)
	f.d[0].must(t2, abi.OpThreadExit, 3)
	if st, _, _, _ := f.d[0].call(c, abi.OpSpaceStatus); st != abi.SpaceRunning {
		t.Errorf("after thread_exit of an unstarted thread its space is in state %d, want running", st)
	}
	f.d[0].must(c, abi.OpThreadCreate, abi.UserBase, 0, 0)
	f.check()
}

// The fifth and sixth arguments of an operation are on the caller's
// stack: a stack pointer in the reserved range, at an unmapped page,
// wrapping, or with only the fifth argument readable, gets EFAULT, for
// each operation that has them.
func TestStackArgumentsChecked(t *testing.T) {
	f := newKernelFixture(t)
	ops := []struct {
		h  uint64
		op abi.Op
	}{
		{hSpace, abi.OpSpaceMap}, {hPort, abi.OpPortReply}, {hPortCall, abi.OpPortCall},
	}
	for _, rsp := range []uint64{abi.ReservedBase, abi.ReservedTop - 16, fixFree, ^uint64(0) - 8, fixData + 2*pageSize - 16, 0} {
		for _, c := range ops {
			if abi.Ops[c.op].Slots() <= 4 {
				t.Fatalf("%s takes no stack arguments", c.op)
			}
			sc := f.d[0].hand(&scriptedCall{c: machine.Call{Args: [6]uint64{c.h, uint64(c.op)}, RSP: rsp}, done: make(chan struct{})})
			f.d[0].finish()
			if e := abi.ResultError(sc.c.Ret[0]); e != abi.ErrBadAddress {
				t.Errorf("%s with the stack at %#x: %v, want %v", c.op, rsp, e, abi.ErrBadAddress)
			}
		}
	}
	f.check()
}

// Guests' memory takes host mappings and descriptors from pools the
// process shares with the Go runtime, which dies when it cannot map
// memory. Mapping one page at every other page, or making one-page
// regions by the thousand, must exhaust the monitor's budget, not the
// pools: the operation fails with ErrNoMemory while the process can still
// map memory and open files, and ending the space gives it all back.
func TestHostResourcesBudgeted(t *testing.T) {
	for _, c := range []struct {
		what string
		op   func(f *kernelFixture, i uint64) uint64
	}{
		{"one-page mappings", func(f *kernelFixture, i uint64) uint64 {
			r0, _, _, _ := f.d[0].call(hSpace, abi.OpSpaceMap, hRegion, 0x1000000+2*i*pageSize, 0, pageSize, abi.PermRead)
			return r0
		}},
		{"one-page regions", func(f *kernelFixture, i uint64) uint64 {
			r0, _, _, _ := f.d[0].call(hSpace, abi.OpRegionCreate, pageSize)
			if abi.ResultError(r0) == abi.OK {
				f.d[0].must(r0, abi.OpHandleClose)
			}
			return r0
		}},
	} {
		t.Run(strings.ReplaceAll(c.what, " ", "_"), func(t *testing.T) {
			// The monitor's time page (timepage.go) lives as long as the
			// process, a descriptor and a mapping of the budgets: made
			// first, so that what the spaces take is all that is counted.
			hostTime.page()
			maps, fds := machine.HostMaps.Used.Load(), machine.HostFDs.Used.Load()
			t.Cleanup(func() {
				// After the fixture's teardown: cleanups run last first.
				if m, f := machine.HostMaps.Used.Load(), machine.HostFDs.Used.Load(); m > maps || f > fds {
					t.Errorf("after the spaces ended the budgets hold %d mappings and %d descriptors, %d and %d before", m, f, maps, fds)
				}
			})
			f := newKernelFixture(t)
			limit := uint64(max(machine.HostMaps.Limit, machine.HostFDs.Limit))
			i := uint64(0)
			for ; i < limit; i++ {
				if e := abi.ResultError(c.op(f, i)); e == abi.ErrNoMemory {
					break
				} else if e != abi.OK {
					t.Fatalf("%s %d: %v", c.what, i, e)
				}
			}
			if i == limit {
				t.Fatalf("%d %s and no ErrNoMemory", i, c.what)
			}
			b, err := unix.Mmap(-1, 0, 64<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err != nil {
				t.Fatalf("after %d %s the process cannot map memory: %v", i, c.what, err)
			}
			unix.Munmap(b)
			file, err := os.Open("/proc/self/status")
			if err != nil {
				t.Fatalf("after %d %s the process cannot open a file: %v", i, c.what, err)
			}
			file.Close()
			f.check()
		})
	}
}

// space_get_state gives the reader copies of the handles a space's
// mappings and exception port were made with. They carry no more rights
// than those handles had: a space that holds a region only to read, and
// maps it, must not get it back writable (or passable) by reading its
// own state, nor a handle to its exception port with more than call.
func TestStateCopiesKeepRights(t *testing.T) {
	f := newKernelFixture(t)
	d := f.d[0]
	r := d.must(hSpace, abi.OpRegionCreate, pageSize)
	ro := d.must(r, abi.OpHandleDerive, uint64(abi.RightRead|abi.RightMap), 0)
	d.must(hSpace, abi.OpSpaceMap, ro, fixFree, 0, pageSize, abi.PermRead)
	d.must(r, abi.OpHandleClose) // a now holds the region to read only
	ep := d.must(hPort, abi.OpHandleDerive, uint64(abi.RightCall), 21)
	d.must(hSpace, abi.OpSpaceSetExceptionPort, ep)

	const buf = fixData + 0x100 // 0xd00 bytes up to the stack
	r0, r1, _, _ := d.call(hSpace, abi.OpSpaceGetState, buf, 0xd00)
	if e := abi.ResultError(r0); e != abi.OK {
		t.Fatalf("space_get_state: %v (needs %d bytes)", e, r1)
	}
	// Every handle naming the region or the exception port is one of
	// those two or a copy: none may have more rights than they had.
	rn, _ := f.a.lookupHandle(ro)
	region := rn.obj
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	var regions, ports int
	for _, n := range f.a.handles.slots {
		switch {
		case n == nil:
		case n.obj == region:
			regions++
			if !abi.Rights(abi.RightRead | abi.RightMap).Has(n.rights) {
				t.Errorf("a copy of a region mapped through a read-only handle has rights %s", n.rights)
			}
		case n.badge == 21:
			ports++
			if !abi.RightCall.Has(n.rights) {
				t.Errorf("a copy of the exception port, set through a call-only handle, has rights %s", n.rights)
			}
		}
	}
	if regions != 3 || ports != 3 {
		t.Errorf("%d handles name the region and %d the exception port, want 3 each (the original, its copy, the mapping's or port's copy)", regions, ports)
	}
}

// region_get_state gives the reader a copy of the region's keeper port,
// with no more rights than the handle the keeper was set through had.
func TestKeeperCopyKeepsRights(t *testing.T) {
	f := newKernelFixture(t)
	d := f.d[0]
	r := d.must(hSpace, abi.OpRegionCreate, pageSize)
	kp := d.must(hPort, abi.OpHandleDerive, uint64(abi.RightCall), 33)
	d.must(r, abi.OpRegionSetKeeper, kp)
	d.must(kp, abi.OpHandleClose)
	d.must(r, abi.OpRegionGetState, fixBuf, 0x400)
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	n := 0
	for _, c := range f.a.handles.slots {
		if c != nil && c.badge == 33 {
			n++
			if !abi.RightCall.Has(c.rights) {
				t.Errorf("the copy of a keeper set through a call-only handle has rights %s", c.rights)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d copies of the keeper, want 1", n)
	}
}

// A thread waiting in thread_stop for a thread that cannot stop yet (it is
// inside a call a server holds) can itself be stopped: it leaves the wait
// to re-issue thread_stop when resumed. Before, it could only be killed,
// so a parent stopping a subtree could wait on one of its own threads.
func TestStopperStops(t *testing.T) {
	f := newKernelFixture(t)
	release := make(chan struct{})
	blocker := NewHostPort("blocker", ServerFunc(func(inv *Invocation) {
		<-release
		inv.Return(0, 0)
	}))
	h, e := f.a.addHandle(handleEntry{obj: blocker, rights: abi.RightsAll}, nil)
	if e != abi.OK {
		t.Fatal(e)
	}
	held := f.d[1].issue(h, uint64(abi.OpClockRead), [abi.MaxArgSlots]uint64{})
	stopper := f.d[0].issue(hThread1, uint64(abi.OpThreadStop), [abi.MaxArgSlots]uint64{})
	if waitClosed(stopper.done, 50*time.Millisecond) {
		t.Fatalf("thread_stop returned while its target was inside a held call: act %v", stopper.act)
	}
	if v := f.d[0].t.requestStop(); v != nil {
		v.Stop()
	}
	if !waitClosed(stopper.done, killGrace) {
		close(release)
		t.Fatalf("a thread waiting in thread_stop could not be stopped\n%s", goroutines())
	}
	if stopper.act != machine.CallRestart {
		t.Errorf("the stopped stopper's call ended with %v, want a restart", stopper.act)
	}
	f.d[0].pending = nil
	close(release)
	if !waitClosed(held.done, killGrace) {
		t.Fatalf("the held call never ended")
	}
	f.d[1].pending = nil
	// Resumed, the stopper asks again and the target, out of its call
	// now, stops.
	f.d[0].must(hThread1, abi.OpThreadStop)
	if st, _ := f.d[1].t.Status(); st != abi.ThreadStopped {
		t.Errorf("the target's status after the re-issued stop: %d", st)
	}
	f.check()
}

// TestFutexWaitClockGuestServer: futex_wait_clock on a clock a guest
// serves is a clock_wait call to that server, which a futex_wake of the
// word ends at once, the call withdrawn though the server has received
// it: the waiter is not left until a server that may never answer does.
// So it is when a Go layer's stand-in for the clock passes the clock_wait
// on to the guest server. The server's late reply is dropped.
func TestFutexWaitClockGuestServer(t *testing.T) {
	for _, layered := range []bool{false, true} {
		t.Run(fmt.Sprintf("layered=%v", layered), func(t *testing.T) {
			f := newKernelFixture(t)
			clock := f.d[0].must(hPort, abi.OpHandleDerive, uint64(abi.RightCall|abi.RightRead), 0)
			if layered {
				n, _ := f.a.lookupHandle(clock)
				c := f.a.mon.NewHostSpace("stand-in", Quota{Handles: 16}).NewCaller()
				inner, err := c.Insert(n.obj, n.rights, n.badge)
				if err != nil {
					t.Fatal(err)
				}
				stand := NewHostPort("clock stand-in", ServerFunc(func(inv *Invocation) { inv.Complete(inv.Forward(c, inner)) }))
				h, e := f.a.addHandle(handleEntry{obj: stand, rights: abi.RightCall | abi.RightRead}, nil)
				if e != abi.OK {
					t.Fatal(e)
				}
				clock = h
			}
			sc := f.d[1].issue(hSpace, uint64(abi.OpFutexWaitClock), [abi.MaxArgSlots]uint64{fixData, 0x150e0700, clock, abi.ClockMonotonic, 0})
			f.d[0].must(hPort, abi.OpPortReceive, fixMsg, uint64(msgSize), fixBuf, 64)
			m, ok := f.readMsg(fixMsg)
			if !ok || m.Kind != abi.MsgCall || m.Op != uint64(abi.OpClockWait) || m.Words[0] != abi.ClockMonotonic || m.Words[1] != 0 {
				t.Fatalf("the clock's server received %+v, want a clock_wait call with no deadline", m)
			}
			if n := f.d[0].must(hSpace, abi.OpFutexWake, fixData, 1); n != 1 {
				t.Fatalf("futex_wake woke %d, want the waiter", n)
			}
			if !waitClosed(sc.done, killGrace) {
				t.Fatalf("futex_wait_clock went on waiting for its clock's server after a futex_wake\n%s", goroutines())
			}
			if r0 := sc.c.Ret[0]; r0 != 0 || sc.act != machine.CallContinue {
				t.Errorf("futex_wait_clock woken: R0 %d, action %v; want 0", int64(r0), sc.act)
			}
			if r0, _, _, _ := f.d[0].call(hPort, abi.OpPortReply, m.CallID, 0, 0, fixBuf, 0, abi.NoHandle); r0 != 0 {
				t.Errorf("the late reply to the withdrawn clock_wait: R0 %d, want 0 (dropped)", int64(r0))
			}
			f.check()
		})
	}
}

// TestFutexWaitClockStopped: a thread stopped while it waits in
// futex_wait_clock (on the monitor's clock, an hour ahead) leaves the call
// to re-issue it when resumed, and meanwhile is not the word's waiter: a
// futex_wake finds nobody. Re-issued, with the same absolute deadline, it
// waits again, and a wake ends it with 0.
func TestFutexWaitClockStopped(t *testing.T) {
	f := newKernelFixture(t)
	args := [abi.MaxArgSlots]uint64{fixData, 0x150e0700, hClock, abi.ClockMonotonic, monotonicNow() + uint64(time.Hour)}
	waiting := func() {
		for f.d[1].t.blockedIn() != abi.OpFutexWaitClock {
			runtime.Gosched()
		}
	}
	sc := f.d[1].issue(hSpace, uint64(abi.OpFutexWaitClock), args)
	waiting()
	f.d[0].must(hThread1, abi.OpThreadStop)
	if !waitClosed(sc.done, killGrace) {
		t.Fatalf("futex_wait_clock went on after thread_stop\n%s", goroutines())
	}
	if sc.act != machine.CallRestart {
		t.Errorf("futex_wait_clock of a stopped thread: action %v, R0 %d; want a restart", sc.act, int64(sc.c.Ret[0]))
	}
	f.d[1].pending = nil
	if n := f.d[0].must(hSpace, abi.OpFutexWake, fixData, 1); n != 0 {
		t.Errorf("futex_wake woke %d while the only waiter was stopped out of its wait, want 0", n)
	}
	sc = f.d[1].issue(hSpace, uint64(abi.OpFutexWaitClock), args)
	waiting()
	if n := f.d[0].must(hSpace, abi.OpFutexWake, fixData, 1); n != 1 {
		t.Errorf("futex_wake woke %d, want the re-issued waiter", n)
	}
	if !waitClosed(sc.done, killGrace) {
		t.Fatalf("futex_wait_clock went on after a futex_wake\n%s", goroutines())
	}
	if r0 := sc.c.Ret[0]; r0 != 0 || sc.act != machine.CallContinue {
		t.Errorf("futex_wait_clock woken: R0 %d, action %v; want 0", int64(r0), sc.act)
	}
	f.d[1].pending = nil
	f.check()
}

// A thread_start while another thread waits in thread_stop for the same
// thread (the target inside a call its server holds) does not leave the
// stopper waiting for good: the start cancels the request that was not
// yet taken, and the stopper asks again. Before, the target went on
// running and the stopper waited as long as it did (a checkpoint stopping
// a Linux program hung when the personality resumed a thread it had
// stopped for a signal).
func TestStopOutlivesStart(t *testing.T) {
	f := newKernelFixture(t)
	gate, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	holder := NewHostPort("holder", ServerFunc(func(inv *Invocation) {
		<-gate
		if !inv.Hold(release) {
			inv.Restart()
			return
		}
		inv.Return(0, 0)
	}))
	h, e := f.a.addHandle(handleEntry{obj: holder, rights: abi.RightsAll}, nil)
	if e != abi.OK {
		t.Fatal(e)
	}
	target := f.d[1].t
	held := f.d[1].issue(h, uint64(abi.OpClockRead), [abi.MaxArgSlots]uint64{})
	stopper := f.d[0].issue(hThread1, uint64(abi.OpThreadStop), [abi.MaxArgSlots]uint64{})
	for asked := false; !asked; {
		target.mu.Lock()
		asked = target.stopReq
		target.mu.Unlock()
		runtime.Gosched()
	}
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if !waitClosed(stopper.done, killGrace) {
		t.Fatalf("thread_stop never returned once a thread_start cancelled its request\n%s", goroutines())
	}
	if st, _ := target.Status(); st != abi.ThreadStopped {
		t.Errorf("the target's status after thread_stop returned: %d", st)
	}
	if !waitClosed(held.done, killGrace) || held.act != machine.CallRestart {
		t.Errorf("the held call ended with %v, want a restart", held.act)
	}
	f.d[1].pending = nil
	f.d[0].pending = nil
}
