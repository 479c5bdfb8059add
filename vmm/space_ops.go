package vmm

import (
	"strings"

	"nestvm/abi"
	"nestvm/machine"
)

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
