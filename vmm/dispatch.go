package vmm

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"

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

// result is what an operation returns to its caller.
type result struct {
	r0, r1 uint64
	act    machine.CallAction
	// handle is set when r0 is a handle the operation put in the
	// caller's table: a new object's, or one a server answered with,
	// which no OpInfo announces (port_call's reply).
	handle bool
}

func ok(r0, r1 uint64) result   { return result{r0: r0, r1: r1} }
func gave(h, r1 uint64) result  { return result{r0: h, r1: r1, handle: true} }
func failed(e abi.Error) result { return result{r0: e.Result()} }

// errCode is the ABI error an internal error carries (ErrInvalidArg when it
// carries none).
func errCode(err error) abi.Error {
	var e abi.Error
	if errors.As(err, &e) {
		return e
	}
	return abi.ErrInvalidArg
}

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
	if err := t.decodeBuffers(&inv); err != abi.OK {
		if err == errAbsent {
			// A buffer lies on a page its keeper has not supplied: ask
			// for it as a touch would, then decode the call again.
			if !t.pageIn(inv.absentAt, inv.absentWrite) {
				return result{act: machine.CallStop}
			}
			goto again
		}
		return failed(err)
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

// decodeBuffers checks every buffer argument of inv against the caller's
// address space.
func (t *Thread) decodeBuffers(inv *Invocation) abi.Error {
	s := t.space
	slot := 0
	for _, a := range inv.Info.Args {
		if a.Kind == abi.ArgIn || a.Kind == abi.ArgOut {
			addr, n := inv.Slots[slot], inv.Slots[slot+1]
			if n > abi.MaxBuffer {
				return abi.ErrTooBig
			}
			need := machine.PermRead
			if a.Kind == abi.ArgOut {
				need = machine.PermWrite
			}
			s.mu.Lock()
			b, err := s.as.buffer(addr, n, need)
			at, absent := uint64(0), false
			if err == abi.OK {
				at, absent = s.as.absent(addr, n)
			}
			s.mu.Unlock()
			if err != abi.OK {
				return err
			}
			if absent {
				inv.absentAt, inv.absentWrite = at, a.Kind == abi.ArgOut
				return errAbsent
			}
			inv.bufs = append(inv.bufs, b)
		}
		slot += a.Kind.Slots()
	}
	return abi.OK
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

// callablePort checks that n names a port and may call it (an exception
// port, a keeper).
func callablePort(n *capNode) (*Port, abi.Error) {
	p, isPort := n.obj.(*Port)
	if !isPort {
		return nil, abi.ErrWrongType
	}
	if !n.rights.Has(abi.RightCall) {
		return nil, abi.ErrRights
	}
	return p, abi.OK
}

// portArg is requiredArg for a port the operation will call.
func (t *Thread) portArg(inv *Invocation, i int) (*capNode, *Port, abi.Error) {
	n, e := t.requiredArg(inv, i)
	if e != abi.OK {
		return nil, nil, e
	}
	p, e := callablePort(n)
	return n, p, e
}

// grantedCopy is what space_insert and space_insert_at copy: the handle
// in slot 0, which must carry grant, with the rights in slot 1 at most.
func (t *Thread) grantedCopy(inv *Invocation) (*capNode, handleEntry, abi.Error) {
	src, e := t.requiredArg(inv, 0)
	if e != abi.OK {
		return nil, handleEntry{}, e
	}
	if !src.rights.Has(abi.RightGrant) {
		return nil, handleEntry{}, abi.ErrRights
	}
	entry := src.handleEntry
	entry.rights &= abi.Rights(inv.Slots[1])
	return src, entry, abi.OK
}

// errAbsent is decodeBuffers' report of a buffer on a page not yet
// supplied by its keeper; it never reaches a guest.
const errAbsent = abi.ErrCount + 1

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

// serveHost performs inv on a port served inline by host code.
func (t *Thread) serveHost(p *Port, inv *Invocation) result {
	p.server.Serve(inv)
	// A server may let go of what it stands for once no handle names
	// its port (interpose's stand-ins do): not while it serves.
	runtime.KeepAlive(p)
	if inv.act != machine.CallContinue {
		return result{r0: inv.r0, r1: inv.r1, act: inv.act}
	}
	if inv.err != abi.OK {
		return failed(inv.err)
	}
	if inv.handle != nil {
		h, e := t.space.addHandle(*inv.handle, nil)
		if e != abi.OK {
			return failed(e)
		}
		return gave(h, inv.r1)
	}
	return ok(inv.r0, inv.r1)
}

// callPort delivers inv to the server of a guest-served port as a message
// {operation, arguments, handles} and returns its reply as the result.
func (t *Thread) callPort(p *Port, n *capNode, inv *Invocation) result {
	// inv.Badge is n's, or, forwarded by a layer, the invoker's where
	// the layer's handle has none (ForwardWithOptions).
	msg := &message{hdr: abi.Msg{Kind: abi.MsgCall, Op: uint64(inv.Op), Badge: inv.Badge, Words: inv.Slots}}
	oneWay := inv.Op == abi.OpPortSend
	if oneWay {
		msg.hdr.Kind, msg.hdr.Op = abi.MsgSend, inv.Slots[0]
	}
	var in, out *GuestBuffer
	slot, buf := 0, 0
	for _, a := range inv.Info.Args {
		switch a.Kind {
		case abi.ArgIn:
			if in == nil {
				in = &inv.bufs[buf]
			}
			buf++
		case abi.ArgOut:
			if out == nil {
				out = &inv.bufs[buf]
				msg.hdr.ReplyCap = inv.Slots[slot+1]
			}
			buf++
		case abi.ArgHandle:
			h, e := t.handleArg(inv, slot)
			if e != abi.OK {
				return failed(e)
			}
			if h != nil {
				if !h.rights.Has(abi.RightGrant) {
					return failed(abi.ErrRights)
				}
				msg.handles = append(msg.handles, h)
			}
		}
		slot += a.Kind.Slots()
	}
	mon := t.space.mon
	// Through a layer, the message is the program's: its bytes count
	// against the program's limits and quota, not the layer's.
	msg.sender = t.who().space
	if in != nil {
		if e := msg.charge(in.Len()); e != abi.OK {
			return failed(e)
		}
		msg.data = make([]byte, in.Len())
		in.Read(msg.data)
	}
	if oneWay {
		// The handles travel on their own: the sender may close its
		// copies (a layer drops what it lent) before they arrive.
		for i, h := range msg.handles {
			tn, e := mon.transit(h)
			if e != abi.OK {
				msg.handles = msg.handles[:i]
				mon.dropTransits(msg)
				msg.uncharge()
				return failed(e)
			}
			msg.handles[i] = tn
		}
		if e := mon.enqueue(p, msg); e != abi.OK {
			mon.dropTransits(msg)
			return failed(e)
		}
		return ok(0, 0)
	}
	rep, why := t.call(p, msg, true, nil, inv.early)
	defer mon.dropTransit(rep.handle)
	if r, done := after(why); done {
		return r
	}
	if rep.err != abi.OK {
		return failed(rep.err)
	}
	if out != nil && len(rep.data) > 0 {
		out.Write(rep.data)
	}
	if rep.handle != nil {
		h, e := t.space.addHandle(rep.handle.handleEntry, rep.handle)
		if e != abi.OK {
			return failed(e)
		}
		return gave(h, rep.r1)
	}
	return ok(rep.r0, rep.r1)
}

// handleOp performs the operations on a handle itself.
func (t *Thread) handleOp(n *capNode, inv *Invocation) result {
	s := t.space
	switch inv.Op {
	case abi.OpHandleInfo:
		return ok(uint64(TypeOf(n.obj)), uint64(n.rights))
	case abi.OpHandleIdentify:
		return t.identify(n, inv.bufs[0])
	case abi.OpHandleClose:
		if e := s.removeHandle(n.num); e != abi.OK {
			return failed(e)
		}
		return ok(0, 0)
	case abi.OpHandleDerive:
		rights, badge := abi.Rights(inv.Slots[0]), inv.Slots[1]
		if inv.Slots[0] > uint64(abi.RightsAll) || !n.rights.Has(rights) {
			return failed(abi.ErrRights)
		}
		e := n.handleEntry
		e.rights = rights
		if badge != 0 {
			if n.badge != 0 && n.badge != badge {
				return failed(abi.ErrInvalidArg) // a badge is set once
			}
			e.badge = badge
		}
		h, err := s.addHandle(e, n)
		if err != abi.OK {
			return failed(err)
		}
		return gave(h, 0)
	case abi.OpHandleRevoke:
		return ok(uint64(s.mon.revoke(n)), 0)
	case abi.OpCallBatch:
		return t.callBatch(inv)
	}
	return failed(abi.ErrInvalidOp)
}

// threadOp performs thread operations on target.
func (t *Thread) threadOp(target *Thread, inv *Invocation) result {
	switch inv.Op {
	case abi.OpThreadExit:
		target.exit(inv.Slots[0])
		if target == t.who() {
			return result{act: machine.CallStop}
		}
		target.kill()
		return ok(0, 0)
	case abi.OpThreadStart:
		if e := target.start(); e != abi.OK {
			return failed(e)
		}
		return ok(0, 0)
	case abi.OpThreadStop:
		e, why := target.stopAndWait(t.who())
		if r, done := after(why); done {
			return r
		}
		if e != abi.OK {
			return failed(e)
		}
		if target == t.who() {
			return result{act: machine.CallStop}
		}
		return ok(0, 0)
	case abi.OpThreadGetState:
		if target == t.who() {
			return failed(abi.ErrBusy)
		}
		if inv.Slots[1] < uint64(stateSize) {
			return failed(abi.ErrTooBig)
		}
		regs, fpu, err := target.State()
		if err != nil {
			return failed(errCode(err))
		}
		inv.bufs[0].Write(encodeState(regs, fpu))
		return ok(uint64(stateSize), 0)
	case abi.OpThreadSetState:
		if target == t.who() {
			return failed(abi.ErrBusy)
		}
		regs, fpu, valid := decodeState(inv.bufs[0].Bytes())
		if !valid {
			return failed(abi.ErrInvalidArg)
		}
		if err := target.SetState(regs, fpu); err != nil {
			return failed(errCode(err))
		}
		return ok(0, 0)
	case abi.OpThreadStatus:
		st, status := target.reportedStatus()
		if st == abi.ThreadRunning {
			status = uint64(target.blockedIn())
		}
		return ok(uint64(st), status)
	}
	return failed(abi.ErrInvalidOp)
}

// regionRights are the rights of a handle to a new region.
const regionRights = abi.RightRead | abi.RightWrite | abi.RightExec | abi.RightMap | abi.RightGrant | abi.RightDerive | abi.RightControl

// permRights are the rights a handle to a region needs to map it with perm.
func permRights(perm machine.Perm) abi.Rights {
	r := abi.RightMap
	if perm&machine.PermRead != 0 {
		r |= abi.RightRead
	}
	if perm&machine.PermWrite != 0 {
		r |= abi.RightWrite
	}
	if perm&machine.PermExec != 0 {
		r |= abi.RightExec
	}
	return r
}

// allowedPerm is the most a handle with rights may map a region with.
func allowedPerm(rights abi.Rights) machine.Perm {
	var p machine.Perm
	if rights.Has(abi.RightRead) {
		p |= machine.PermRead
	}
	if rights.Has(abi.RightWrite) {
		p |= machine.PermWrite
	}
	if rights.Has(abi.RightExec) {
		p |= machine.PermExec
	}
	return p
}

// spaceOp performs space operations on sp.
func (t *Thread) spaceOp(sp *Space, inv *Invocation) result {
	a := inv.Slots
	switch inv.Op {
	case abi.OpSpaceCreate:
		if a[0] > abi.UserTop/pageSize || a[1] > MaxThreadsQuota || a[2] > MaxHandlesQuota || a[3] > MaxChildrenQuota {
			return failed(abi.ErrQuota)
		}
		q := Quota{Memory: a[0] * pageSize, Threads: int(a[1]), Handles: int(a[2]), Children: int(a[3])}
		return t.create(abi.RightsAll, func() (Object, abi.Error) {
			child, err := sp.newChild(q)
			if err != nil {
				return nil, errCode(err)
			}
			return child, abi.OK
		}, func(child Object) { child.(*Space).Kill("its creator ended while it was made") })
	case abi.OpSpaceMap:
		rn, e := t.requiredArg(inv, 0)
		if e != abi.OK {
			return failed(e)
		}
		region, isRegion := rn.obj.(*Region)
		if !isRegion {
			return failed(abi.ErrWrongType)
		}
		perm := machine.Perm(a[4])
		if a[4]&^abi.PermAll != 0 {
			return failed(abi.ErrInvalidArg)
		}
		if !rn.rights.Has(permRights(perm)) {
			return failed(abi.ErrRights)
		}
		if err := sp.mapRegion(region, a[1], a[2], a[3], perm, rn.rights); err != nil {
			return failed(errCode(err))
		}
		return ok(0, 0)
	case abi.OpSpaceUnmap:
		if e := sp.unmapRange(t.who(), a[0], a[1]); e != abi.OK {
			return failed(e)
		}
		return t.reenterIf(sp == t.who().space)
	case abi.OpSpaceProtect:
		if a[2]&^abi.PermAll != 0 {
			return failed(abi.ErrInvalidArg)
		}
		if e := sp.protectRange(t.who(), a[0], a[1], machine.Perm(a[2])); e != abi.OK {
			return failed(e)
		}
		return t.reenterIf(sp == t.who().space)
	case abi.OpSpaceInsert:
		src, entry, e := t.grantedCopy(inv)
		if e != abi.OK {
			return failed(e)
		}
		h, e := sp.addHandle(entry, src)
		if e != abi.OK {
			return failed(e)
		}
		return ok(h, 0)
	case abi.OpSpaceRemove:
		if e := sp.removeHandle(a[0]); e != abi.OK {
			return failed(e)
		}
		return ok(0, 0)
	case abi.OpSpaceSetExceptionPort:
		pn, e := t.handleArg(inv, 0)
		if e != abi.OK {
			return failed(e)
		}
		if pn == nil {
			sp.setExceptionPort(nil, 0, abi.RightsAll)
			return ok(0, 0)
		}
		p, e := callablePort(pn)
		if e != abi.OK {
			return failed(e)
		}
		if _, inline := p.server.(FaultServer); p.server != nil && !inline {
			// Faults are messages a handler receives; a host server
			// receives none, and the faulting thread would wait forever.
			return failed(abi.ErrInvalidArg)
		}
		sp.setExceptionPort(p, pn.badge, pn.rights)
		return ok(0, 0)
	case abi.OpSpaceStatus:
		st, status := sp.Status()
		return ok(uint64(st), uint64(status))
	case abi.OpSpaceRunning:
		return ok(sp.running())
	case abi.OpSpaceKill:
		w := t.who()
		if sp == w.space {
			// Killing one's own space is exiting the program.
			sp.end(Result{Exited: true, Status: int(a[0] & 0xff)})
			return result{act: machine.CallStop}
		}
		sp.end(Result{Killed: "killed by space_kill", KilledStatus: int(a[0] & 0xff)})
		// A guest waits for the space to be gone, so that what it held
		// (places in the children quota above all) is free when the call
		// returns. Not a caller inside it, which is ending too, nor host
		// code acting for itself: it may be running on one of the very
		// threads it kills (a layer's handler runs on its caller's), and
		// has Space.Done to wait on.
		if w.id >= 0 && !w.space.within(sp) {
			if r, done := after(w.awaitGone(sp)); done {
				return r
			}
		}
		return ok(0, 0)
	case abi.OpSpaceAbort:
		b := inv.bufs[0].Bytes()
		b = b[:min(len(b), abi.MaxReason)]
		// The reason reaches logs and reports as text.
		reason := strings.ToValidUTF8(string(b), "\uFFFD")
		if reason == "" {
			// Result.Killed says the space was killed by being set.
			reason = "aborted by space_abort"
		}
		w := t.who()
		sp.end(Result{Killed: reason})
		if sp == w.space {
			return result{act: machine.CallStop}
		}
		// As space_kill: a guest elsewhere waits for the space to be gone.
		if w.id >= 0 && !w.space.within(sp) {
			if r, done := after(w.awaitGone(sp)); done {
				return r
			}
		}
		return ok(0, 0)
	case abi.OpThreadCreate:
		var th *Thread
		res := t.create(abi.RightsAll, func() (Object, abi.Error) {
			var err error
			if th, err = sp.NewThread(machine.Regs{RIP: a[0], RSP: a[1], RDI: a[2]}); err != nil {
				return nil, errCode(err)
			}
			return th, abi.OK
		}, nil)
		if int64(res.r0) >= 0 {
			res.r1 = uint64(th.id)
		}
		return res
	case abi.OpRegionCreate:
		return t.create(regionRights, func() (Object, abi.Error) {
			r, err := sp.newRegion(a[0])
			if err != nil {
				return nil, errCode(err)
			}
			return r, abi.OK
		}, nil)
	case abi.OpPortCreate:
		return t.create(abi.RightsAll, func() (Object, abi.Error) {
			p := sp.newGuestPort("port")
			return p, sp.own(p)
		}, nil)
	case abi.OpPortSetCreate:
		return t.create(abi.RightsAll, func() (Object, abi.Error) {
			ps := &PortSet{mon: sp.mon, owner: sp}
			return ps, sp.own(ps)
		}, nil)
	case abi.OpFutexWait:
		e, why := t.futexWait(sp, a[0], a[1], a[2])
		if r, done := after(why); done {
			return r
		}
		if e != abi.OK {
			return failed(e)
		}
		return ok(0, 0)
	case abi.OpFutexWake:
		return ok(sp.mon.futexWake(sp, a[0], a[1]), 0)
	case abi.OpFutexWaitClock:
		return t.futexWaitClock(sp, inv)
	case abi.OpSpaceGetState:
		return t.spaceGetState(sp, inv.bufs[0])
	case abi.OpSpaceInsertAt:
		if a[3]&^abi.InsertMove != 0 {
			return failed(abi.ErrInvalidArg)
		}
		src, entry, e := t.grantedCopy(inv)
		if e != abi.OK {
			return failed(e)
		}
		if a[3]&abi.InsertMove != 0 {
			e = sp.moveAt(src, entry.rights, a[2])
		} else {
			e = sp.insertAt(entry, src, a[2])
		}
		if e != abi.OK {
			return failed(e)
		}
		return ok(a[2], 0)
	}
	return failed(abi.ErrInvalidOp)
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

// own records a port or port set as closed when s ends.
func (s *Space) own(obj Object) abi.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dying {
		return abi.ErrPeerGone
	}
	if len(s.owned) >= s.quota.Handles {
		// Ports and port sets live until their owner ends, whatever
		// becomes of their handles: bound them as the table is bounded,
		// or a create-and-close loop grows the monitor's records forever.
		return abi.ErrQuota
	}
	s.owned = append(s.owned, obj)
	return abi.OK
}

// regionOp performs region operations on r.
func (t *Thread) regionOp(r *Region, inv *Invocation) result {
	a := inv.Slots
	switch inv.Op {
	case abi.OpRegionRead:
		buf := inv.bufs[0]
		tmp := make([]byte, buf.Len())
		n, e := r.Read(a[0], tmp)
		if e != abi.OK {
			return failed(e)
		}
		buf.Write(tmp[:n])
		return ok(uint64(n), 0)
	case abi.OpRegionWrite:
		n, e := r.Write(a[0], inv.bufs[0].Bytes())
		if e != abi.OK {
			return failed(e)
		}
		return ok(uint64(n), 0)
	case abi.OpRegionSize:
		return ok(r.Size(), 0)
	case abi.OpRegionSetKeeper:
		pn, p, e := t.portArg(inv, 0)
		if e != abi.OK {
			return failed(e)
		}
		if p.server != nil {
			return failed(abi.ErrInvalidArg) // a keeper must be able to receive page requests
		}
		if e := r.setKeeper(p, pn.badge, pn.rights); e != abi.OK {
			return failed(e)
		}
		return ok(0, 0)
	case abi.OpRegionEvict:
		if e := r.Evict(t.who(), a[0], a[1], &inv.bufs[0]); e != abi.OK {
			return failed(e)
		}
		return t.reenterIf(true) // the caller's own translations may be stale too
	case abi.OpRegionGetState:
		return t.regionGetState(r, inv.bufs[0])
	case abi.OpRegionSupply:
		if e := r.Supply(a[0], inv.bufs[0].Bytes()); e != abi.OK {
			return failed(e)
		}
		return ok(0, 0)
	case abi.OpRegionDirty, abi.OpRegionAccessed:
		// A bitmap too small is refused before any record is taken.
		if (r.Size()/pageSize+7)/8 > inv.bufs[0].Len() {
			return failed(abi.ErrTooBig)
		}
		var bits []byte
		var count uint64
		var e abi.Error
		if inv.Op == abi.OpRegionAccessed {
			bits, count, e = r.takeAccessed(t.who())
		} else if a[2]&^abi.DirtyEver != 0 {
			e = abi.ErrInvalidArg
		} else {
			bits, count, e = r.takeDirty(t.who(), a[2]&abi.DirtyEver != 0)
		}
		if e != abi.OK {
			return failed(e)
		}
		inv.bufs[0].Write(bits)
		r.mu.Lock()
		mine := false
		for _, m := range r.maps {
			mine = mine || m.space == t.who().space
		}
		r.mu.Unlock()
		res := t.reenterIf(mine)
		res.r0 = count
		return res
	}
	return failed(abi.ErrInvalidOp)
}

// portOp performs the kernel's port operations: receiving and replying on
// guest-served ports and port sets, and adding ports to sets.
func (t *Thread) portOp(obj Object, inv *Invocation) result {
	s := t.space
	a := inv.Slots
	switch inv.Op {
	case abi.OpPortReceive:
		if a[1] < uint64(msgSize) {
			return failed(abi.ErrTooBig)
		}
		msg, why, e := t.receive(obj)
		if r, done := after(why); done {
			return r
		}
		if e != abi.OK {
			return failed(e)
		}
		// Handles the message carries go to whoever the receive is for:
		// through a layer, the guest thread, not the layer's table.
		hdr := t.who().space.deliverWith(msg, t.received)
		inv.bufs[0].Write(encodeMsg(&hdr))
		n := inv.bufs[1].Write(msg.data)
		// A call waits for its reply, but its bytes are delivered and
		// no longer charged: the monitor does not keep them either.
		s.mon.ipc.mu.Lock()
		msg.data = nil
		s.mon.ipc.mu.Unlock()
		return ok(uint64(n), 0)
	case abi.OpPortReply:
		rep := reply{r0: a[1], r1: a[2], data: append([]byte(nil), inv.bufs[0].Bytes()...)}
		hn, e := t.handleArg(inv, 5)
		if e != abi.OK {
			return failed(e)
		}
		if hn != nil {
			if !hn.rights.Has(abi.RightGrant) {
				return failed(abi.ErrRights)
			}
			// It travels on its own: the replier (a layer's lent copy)
			// may be gone before the caller takes it.
			if rep.handle, e = s.mon.transit(hn); e != abi.OK {
				return failed(e)
			}
		}
		if e := s.mon.answer(obj, a[0], rep); e != abi.OK {
			return failed(e)
		}
		return t.stopIfAsked()
	case abi.OpPortGetState:
		p, isPort := obj.(*Port)
		if !isPort {
			return failed(abi.ErrWrongType)
		}
		return t.portGetState(p, inv.bufs[0])
	case abi.OpPortSetGetState:
		set, isSet := obj.(*PortSet)
		if !isSet {
			return failed(abi.ErrWrongType)
		}
		return t.portSetGetState(set, inv.bufs[0])
	case abi.OpPortSetAdd:
		set, isSet := obj.(*PortSet)
		if !isSet {
			return failed(abi.ErrWrongType)
		}
		pn, e := t.requiredArg(inv, 0)
		if e != abi.OK {
			return failed(e)
		}
		p, isPort := pn.obj.(*Port)
		if !isPort || p.server != nil {
			return failed(abi.ErrWrongType)
		}
		if !pn.rights.Has(abi.RightReceive) {
			return failed(abi.ErrRights)
		}
		return failed(s.mon.addToSet(set, p))
	}
	return failed(abi.ErrInvalidOp)
}
