package vmm

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"nestvm/abi"
	"nestvm/machine"
)

// Faults go to the parent: a thread's fault stops it and becomes a message
// on its space's exception port; a touch of an absent page of a kept region
// becomes a page request to the region's keeper. The thread sleeps,
// stopped, until the reply, so the handler can read and change its state
// through its thread handle meanwhile.

// handleFault decides what happens to a thread that faulted. false means
// the thread must end (its space is ending).
func (t *Thread) handleFault(vcpu machine.VCPU, f machine.Fault) bool {
	s := t.space
	s.log.Debug("thread faulted", "thread", t.id, "fault", f.String())
	s.mu.Lock()
	h := s.onFault
	exc, excBadge := s.excPort, s.excBadge
	s.mu.Unlock()
	if h != nil && h(&FaultContext{Thread: t, Fault: f, vcpu: vcpu}) {
		return true
	}
	if r, off, ok := s.keptPage(f); ok {
		r.mu.Lock()
		keeper, badge := r.keeper, r.keepBadge
		r.mu.Unlock()
		if keeper != nil {
			return t.request(vcpu, keeper, badge, abi.MsgPage, f, off)
		}
	}
	if exc != nil {
		if fs, ok := exc.server.(FaultServer); ok {
			return t.serveInline(vcpu, fs, excBadge, f)
		}
		return t.request(vcpu, exc, excBadge, abi.MsgFault, f, 0)
	}
	s.end(Result{Fault: &FaultReport{Thread: t.id, Fault: f}})
	return false
}

// keptPage reports whether f is a touch of an absent page of a region with
// a keeper, and which region and offset.
func (s *Space) keptPage(f machine.Fault) (*Region, uint64, bool) {
	if f.Vector != machine.VecPage || f.ErrorCode&machine.PFPresent != 0 {
		return nil, 0, false
	}
	s.mu.Lock()
	m := s.as.find(f.Addr)
	noAccess := m != nil && m.perm == 0 // its keeper must not be asked for a page it cannot map
	s.mu.Unlock()
	if m == nil || m.region == nil || noAccess {
		return nil, 0, false
	}
	off := pageDown(m.off + f.Addr - m.addr)
	r := m.region
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.present == nil || r.isPresent(off/pageSize) {
		// Present already: another thread's request supplied it since.
		return r, off, r.keeper != nil && r.present != nil
	}
	return r, off, true
}

// request sends a fault or page request for the thread to port and sleeps,
// stopped, until the reply says what to do.
func (t *Thread) request(vcpu machine.VCPU, port *Port, badge uint64, kind uint64, f machine.Fault, off uint64) bool {
	s := t.space
	msg := &message{hdr: abi.Msg{Kind: kind, Badge: badge}}
	w := &msg.hdr.Words
	w[abi.FaultWordVector] = uint64(f.Vector)
	w[abi.FaultWordError] = uint64(f.ErrorCode)
	w[abi.FaultWordAddr] = f.Addr
	w[abi.FaultWordRIP] = f.RIP
	w[abi.FaultWordThread] = uint64(t.id)
	w[abi.FaultWordOffset] = off
	if kind == abi.MsgFault {
		regs, err := vcpu.Regs()
		if err != nil {
			s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
			return false
		}
		fpu, err := vcpu.FPU()
		if err != nil {
			s.end(Result{Err: fmt.Errorf("thread %d: %w", t.id, err)})
			return false
		}
		msg.data = encodeState(regs, fpu)
		msg.handles = []*capNode{{handleEntry: handleEntry{obj: t, rights: abi.RightsAll}}}
	}
	t.mu.Lock()
	t.state, t.inFault = abi.ThreadStopped, true
	t.mu.Unlock()
	rep, why := t.call(port, msg, false, vcpu, nil)
	s.mon.dropTransit(rep.handle) // a handle in the reply to a fault goes nowhere
	t.mu.Lock()
	t.inFault = false
	if t.state == abi.ThreadStopped {
		t.state = abi.ThreadRunning
	}
	t.mu.Unlock()
	t.answerReqs(vcpu)
	if why != wakeReady {
		return false
	}
	if rep.err != abi.OK {
		// The handler is gone: nobody can fix the fault.
		s.end(Result{Fault: &FaultReport{Thread: t.id, Fault: f}})
		return false
	}
	switch rep.r0 {
	case abi.FaultResume:
		return true
	case abi.FaultResumeState:
		regs, fpu, ok := decodeState(rep.data)
		if ok && machine.CheckUserRegs(&regs) == nil {
			regs.RFLAGS = regs.RFLAGS&machine.RFlagsUserMask | machine.RFlagsUser
			if vcpu.SetRegs(&regs) == nil && vcpu.SetFPU(&fpu) == nil {
				return true
			}
		}
		s.end(Result{Killed: "its fault handler replied with a malformed thread state", KilledStatus: f.ExitStatus()})
		return false
	case abi.FaultKill:
		s.end(Result{Killed: fmt.Sprintf("killed by its fault handler after thread %d: %s", t.id, f), KilledStatus: int(rep.r1 & 0xff)})
		return false
	}
	s.end(Result{Killed: fmt.Sprintf("its fault handler replied %d, not a fault reply", rep.r0), KilledStatus: f.ExitStatus()})
	return false
}

// pageIn asks the keeper of the page at addr to supply it, for a call
// whose buffer lies there, as the thread's own touch would. false means the
// thread must end.
func (t *Thread) pageIn(addr uint64, write bool) bool {
	f := machine.Fault{Vector: machine.VecPage, ErrorCode: machine.PFUser, Addr: addr, RIP: machine.TrapAddr}
	if write {
		f.ErrorCode |= machine.PFWrite
	}
	r, off, ok := t.space.keptPage(f)
	if !ok {
		return true // supplied meanwhile: decode again
	}
	r.mu.Lock()
	keeper, badge := r.keeper, r.keepBadge
	r.mu.Unlock()
	t.mu.Lock()
	v := t.vcpu
	t.mu.Unlock()
	return t.request(v, keeper, badge, abi.MsgPage, f, off)
}

// notifyExit sends the notice of the space's end to its exception port.
func (s *Space) notifyExit(p *Port, badge uint64) {
	r := s.result
	how, status := r.state()
	msg := &message{hdr: abi.Msg{Kind: abi.MsgExit, Badge: badge}}
	msg.hdr.Words[0] = uint64(how)
	msg.hdr.Words[1] = uint64(status)
	if r.Fault != nil {
		msg.hdr.Words[2] = uint64(r.Fault.Fault.Vector)
		msg.hdr.Words[3] = uint64(r.Fault.Fault.ErrorCode)
		msg.hdr.Words[4] = r.Fault.Fault.Addr
		msg.hdr.Words[5] = r.Fault.Fault.RIP
	}
	if fs, ok := p.server.(FaultServer); ok {
		fs.SpaceEnded(badge, how == abi.SpaceExited, status)
		return
	}
	if p.server != nil {
		return // other host ports are told nothing one-way
	}
	s.mon.enqueue(p, msg)
}

// encodeState lays out a thread's state as the nv_thread_state record.
func encodeState(r machine.Regs, f machine.FPU) []byte {
	st := abi.ThreadState{Regs: r, FPU: f}
	b, _ := binary.Append(nil, binary.LittleEndian, &st)
	return b
}

// stateSize is the size of the nv_thread_state record.
var stateSize = binary.Size(abi.ThreadState{})

// decodeState parses an nv_thread_state record.
func decodeState(b []byte) (machine.Regs, machine.FPU, bool) {
	var st abi.ThreadState
	if len(b) < stateSize || binary.Read(bytes.NewReader(b[:stateSize]), binary.LittleEndian, &st) != nil {
		return machine.Regs{}, machine.FPU{}, false
	}
	return st.Regs, st.FPU, true
}
