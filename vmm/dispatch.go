package vmm

import (
	"encoding/binary"

	"nestvm/abi"
	"nestvm/machine"
)

// Hypercall implements TrapHandler: it decodes one operation, checks it,
// and performs it. Every failure is an abi.Error returned to the guest;
// nothing a guest passes can make it panic or reach another space.
//
// Decoding follows a fixed order, so a call that is wrong in several ways
// always gets the same error: the handle, the operation, whether the
// object implements the operation's interface, the rights, then the
// arguments.
func (t *Thread) Hypercall(c *machine.Call) machine.CallAction {
	t.inKernel.Store(true)
	r0, r1, act := t.invoke(c)
	c.Ret = [2]uint64{r0, r1}
	t.inKernel.Store(false)
	t.releaseKept()
	// A translation shootdown (Region.Evict) that came while the thread
	// was in here is taken before it runs guest code again: leave the
	// vCPU so the run loop flushes.
	if act == machine.CallContinue && t.flushReq.Load() {
		act = machine.CallStop
	}
	return act
}

// result is what an operation returns to its caller: the kernel's
// operations return one, a host server fills in its Invocation's (Return,
// Fail, ReturnHandle, Restart), and Hypercall turns it into the registers
// and the action the backend takes. An error is R0 as the guest sees it
// (failed), with R1 kept: NV_ETOOBIG says the size needed there.
type result struct {
	r0, r1 uint64
	act    machine.CallAction
	// handle is set when r0 is a handle the operation put in the
	// caller's table: a new object's, or one a server answered with,
	// which no OpInfo announces (port_call's reply).
	handle bool
	// give, set by a host server (ReturnHandle), is an entry still to
	// be placed in the caller's table; its number replaces r0.
	give *handleEntry
}

func ok(r0, r1 uint64) result   { return result{r0: r0, r1: r1} }
func gave(h, r1 uint64) result  { return result{r0: h, r1: r1, handle: true} }
func failed(e abi.Error) result { return result{r0: e.Result()} }

// errCode is the ABI error an internal error carries (ErrInvalidArg when it
// carries none).
func errCode(err error) abi.Error { return abi.ErrorOf(err, abi.ErrInvalidArg) }

// after turns the end of a sleep into the caller's next step: a stopped
// thread re-issues its call when resumed; an ending one stops.
func after(why wakeReason) (result, bool) {
	switch why {
	case wakeStop:
		return result{act: machine.CallRestart}, true
	case wakeExit:
		return result{act: machine.CallStop}, true
	}
	return result{}, false
}

func (t *Thread) invoke(c *machine.Call) (uint64, uint64, machine.CallAction) {
	// thread_status reports the operation while the thread sleeps in it
	// (see Thread.op): what a number beyond 32 bits truncates to is never
	// an operation that sleeps.
	t.op.Store(uint32(c.Args[1]))
	r := t.perform(c)
	t.op.Store(0)
	return r.r0, r.r1, r.act
}

func (t *Thread) perform(c *machine.Call) result {
	var args [abi.MaxArgSlots]uint64
	copy(args[:], c.Args[2:])
	return t.performOn(c.Args[0], c.Args[1], args, c.RSP, true)
}

// performOn decodes, checks and performs operation rawOp on handle h with
// argument slots args. With onStack, a4 and a5 are read from the guest
// stack at rsp, as a direct call passes them; without it (a batch entry)
// args holds every slot.
func (t *Thread) performOn(h, rawOp uint64, args [abi.MaxArgSlots]uint64, rsp uint64, onStack bool) result {
	// A call whose buffer lay on a page its keeper had not supplied starts
	// over here once the keeper answers. A loop, not a recursion: a keeper
	// may answer without supplying as often as it likes, and each round
	// must not cost the monitor stack.
again:
	s := t.space
	op := abi.Op(rawOp)
	if rawOp != uint64(op) {
		op = abi.OpNone // beyond 32 bits: not an operation, however it truncates
	}
	n, info, e := t.check(h, op)
	if e != abi.OK {
		return failed(e)
	}
	slots := args
	if onStack && info.Slots() > 4 {
		// a4 and a5 are on the stack, above the return address.
		s.mu.Lock()
		b, err := s.as.buffer(rsp+8, 16, machine.PermRead)
		s.mu.Unlock()
		if err != abi.OK {
			return failed(err)
		}
		var raw [16]byte
		b.Read(raw[:])
		slots[4] = binary.LittleEndian.Uint64(raw[:])
		slots[5] = binary.LittleEndian.Uint64(raw[8:])
	}
	inv := Invocation{thread: t, Op: op, Info: info, Badge: n.badge, Rights: n.rights, Slots: slots, from: t}
	absent, err := t.decodeBuffers(&inv)
	if err != abi.OK {
		return failed(err)
	}
	if absent != nil {
		// A buffer lies on a page its keeper has not supplied: ask for
		// it as a touch would, then decode the call again.
		if !t.pageIn(absent.at, absent.write) {
			return result{act: machine.CallStop}
		}
		goto again
	}
	return t.execute(n, &inv)
}

// check finds handle h and checks that op may be invoked on it, in the
// fixed order: the handle, the operation, whether the object implements
// the operation's interface, the rights.
func (t *Thread) check(h uint64, op abi.Op) (*capNode, *abi.OpInfo, abi.Error) {
	n, found := t.space.lookupHandle(h)
	if !found {
		return nil, nil, abi.ErrBadHandle
	}
	info, valid := op.Info()
	if !valid {
		return nil, nil, abi.ErrInvalidOp
	}
	if info.Iface != abi.IfaceHandle && !servedBy(n.obj, op) && !implements(n.obj, info.Iface) {
		return nil, nil, abi.ErrWrongType
	}
	if !n.rights.Has(info.Rights) {
		return nil, nil, abi.ErrRights
	}
	return n, info, abi.OK
}

// servedBy reports whether op on obj goes to a port's server. Under the
// uniform interposition rule a port takes every operation, but
// port_receive, port_reply and port_get_state on a guest-served port are
// the kernel's: they are how its server serves, and how its holder saves
// it.
func servedBy(obj Object, op abi.Op) bool {
	p, isPort := obj.(*Port)
	return isPort && (p.server != nil || (op != abi.OpPortReceive && op != abi.OpPortReply && op != abi.OpPortGetState))
}

// execute performs a checked, decoded operation.
func (t *Thread) execute(n *capNode, inv *Invocation) result {
	if inv.Info.Iface == abi.IfaceHandle {
		return t.handleOp(n, inv)
	}
	if servedBy(n.obj, inv.Op) {
		port := n.obj.(*Port)
		if port.server != nil {
			return t.serveHost(port, inv)
		}
		return t.callPort(port, n, inv)
	}
	switch obj := n.obj.(type) {
	case *Thread:
		return t.threadOp(obj, inv)
	case *Space:
		return t.spaceOp(obj, inv)
	case *Region:
		return t.regionOp(obj, inv)
	case *Port, *PortSet:
		return t.portOp(obj, inv)
	}
	return failed(abi.ErrInvalidOp)
}

// implements reports whether a kernel object performs the operations of
// iface.
func implements(obj Object, iface abi.Interface) bool {
	switch obj.(type) {
	case *Thread:
		return iface == abi.IfaceThread
	case *Space:
		return iface == abi.IfaceSpace
	case *Region:
		return iface == abi.IfaceRegion
	case *Port:
		return iface == abi.IfacePort
	case *PortSet:
		return iface == abi.IfacePortSet || iface == abi.IfacePort
	}
	return false
}

// absentPage is where a buffer argument lies on a page its keeper has
// not supplied yet.
type absentPage struct {
	at    uint64
	write bool
}

// view checks that the guest may access [addr, addr+n) of s with need
// (PermRead or PermWrite) and returns host views of it; when part of it
// lies on a page its keeper has not supplied, it returns that page
// instead, for the caller to ask for (pageIn) and look again.
func (s *Space) view(addr, n uint64, need machine.Perm) (userBuffer, *absentPage, abi.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.as.buffer(addr, n, need)
	if err != abi.OK {
		return userBuffer{}, nil, err
	}
	if at, absent := s.as.absent(addr, n); absent {
		return userBuffer{}, &absentPage{at: at, write: need == machine.PermWrite}, abi.OK
	}
	return b, nil, abi.OK
}

// decodeBuffers checks every buffer argument of inv against the caller's
// address space. A buffer on a page not yet supplied is no error: the
// call waits for the page (absent is set), then is decoded again.
func (t *Thread) decodeBuffers(inv *Invocation) (absent *absentPage, e abi.Error) {
	s := t.space
	slot := 0
	for _, a := range inv.Info.Args {
		if a.Kind == abi.ArgIn || a.Kind == abi.ArgOut {
			addr, n := inv.Slots[slot], inv.Slots[slot+1]
			if n > abi.MaxBuffer {
				return nil, abi.ErrTooBig
			}
			need := machine.PermRead
			if a.Kind == abi.ArgOut {
				need = machine.PermWrite
			}
			b, missing, err := s.view(addr, n, need)
			if err != abi.OK || missing != nil {
				return missing, err
			}
			inv.bufs = append(inv.bufs, b)
		}
		slot += a.Kind.Slots()
	}
	return nil, abi.OK
}

// requiredArg is handleArg for an argument that must name a handle:
// NoHandle is a bad handle too.
func (t *Thread) requiredArg(inv *Invocation, i int) (*capNode, abi.Error) {
	n, e := t.handleArg(inv, i)
	if e == abi.OK && n == nil {
		e = abi.ErrBadHandle
	}
	return n, e
}

// handleArg looks up the handle in argument slot i of inv in the caller's
// table; NoHandle gives nil.
func (t *Thread) handleArg(inv *Invocation, i int) (*capNode, abi.Error) {
	h := inv.Slots[i]
	if h == abi.NoHandle {
		return nil, abi.OK
	}
	n, found := t.space.lookupHandle(h)
	if !found {
		return nil, abi.ErrBadHandle
	}
	return n, abi.OK
}

// create performs an operation that makes a new object: it reserves the
// object's handle in the caller's table first (handleReservation), so that
// a full table fails the operation before anything exists, then makes it
// with build and hands it out with rights. undo, when not nil, ends an
// object made for a caller whose space ended before the handle was placed.
func (t *Thread) create(rights abi.Rights, build func() (Object, abi.Error), undo func(Object)) result {
	res, e := t.space.reserveHandle()
	if e != abi.OK {
		return failed(e)
	}
	obj, e := build()
	if e != abi.OK {
		res.cancel()
		return failed(e)
	}
	h, e := res.fill(handleEntry{obj: obj, rights: rights})
	if e != abi.OK {
		if undo != nil {
			undo(obj)
		}
		return failed(e)
	}
	return gave(h, 0)
}

// stopIfAsked returns success, stopping the thread after the call if a
// stop waits for it (a server that has just answered its last call).
func (t *Thread) stopIfAsked() result {
	t.mu.Lock()
	stop := t.stopReq
	t.mu.Unlock()
	if stop && !t.holdsCalls() {
		return result{act: machine.CallStop}
	}
	return ok(0, 0)
}

// reenterIf returns success, making the caller's vCPU leave and re-enter
// guest code when flushed is set: a TLB flush of its own space takes
// effect only at the next entry.
func (t *Thread) reenterIf(flushed bool) result {
	if flushed {
		return result{act: machine.CallStop}
	}
	return ok(0, 0)
}
