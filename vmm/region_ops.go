package vmm

import (
	"nestvm/abi"
	"nestvm/machine"
)

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
