package linux

import (
	"encoding/binary"
	"fmt"

	"nestvm/machine"
)

// sigState is a process's signal dispositions: for each signal, the
// handler address (sigDefault, sigIgnore or a function) and its flags,
// mask and restorer, as rt_sigaction gave them.
type sigState struct {
	actions [65]sigAction
}

type sigAction struct {
	handler, flags, restorer, mask uint64
}

const (
	sigDefault = 0
	sigIgnore  = 1
	nsig       = 64
)

// defaultIgnored are the signals whose default action is to do nothing.
var defaultIgnored = map[int]bool{17: true /* SIGCHLD */, 23: true /* SIGURG */, 28: true /* SIGWINCH */, 18: true /* SIGCONT */}

func sysRtSigaction(tc *task, a [6]uint64) (uint64, errno) {
	sig := int(a[0])
	if sig < 1 || sig > nsig || a[3] != 8 {
		return 0, eINVAL
	}
	p := tc.p
	p.mu.Lock()
	old := p.sig.actions[sig]
	p.mu.Unlock()
	if a[2] != 0 {
		var b [32]byte
		binary.LittleEndian.PutUint64(b[0:], old.handler)
		binary.LittleEndian.PutUint64(b[8:], old.flags)
		binary.LittleEndian.PutUint64(b[16:], old.restorer)
		binary.LittleEndian.PutUint64(b[24:], old.mask)
		if e := tc.writeMem(a[2], b[:]); e != 0 {
			return 0, e
		}
	}
	if a[1] != 0 {
		if sig == sigKILL || sig == 19 /* SIGSTOP */ {
			return 0, eINVAL
		}
		var b [32]byte
		if e := tc.readMem(a[1], b[:]); e != 0 {
			return 0, e
		}
		act := sigAction{
			handler: binary.LittleEndian.Uint64(b[0:]), flags: binary.LittleEndian.Uint64(b[8:]),
			restorer: binary.LittleEndian.Uint64(b[16:]), mask: binary.LittleEndian.Uint64(b[24:]),
		}
		p.mu.Lock()
		p.sig.actions[sig] = act
		p.mu.Unlock()
	}
	return 0, 0
}

// setSigmask sets the thread's signal mask, less the signals no mask
// blocks. Only the thread's own goroutine changes it, but a save reads it
// (snapshot, under the process's lock) while the thread may still be
// serving its own system call, so the change is made under that lock.
func (tc *task) setSigmask(mask uint64) {
	tc.p.mu.Lock()
	tc.t.sigmask = mask &^ (1<<(sigKILL-1) | 1<<(19-1))
	tc.p.mu.Unlock()
}

func sysRtSigprocmask(tc *task, a [6]uint64) (uint64, errno) {
	if a[3] != 8 {
		return 0, eINVAL
	}
	old := tc.t.sigmask
	if a[2] != 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], old)
		if e := tc.writeMem(a[2], b[:]); e != 0 {
			return 0, e
		}
	}
	if a[1] != 0 {
		var b [8]byte
		if e := tc.readMem(a[1], b[:]); e != 0 {
			return 0, e
		}
		set := binary.LittleEndian.Uint64(b[:])
		mask := old
		switch a[0] {
		case 0: // SIG_BLOCK
			mask |= set
		case 1: // SIG_UNBLOCK
			mask &^= set
		case 2: // SIG_SETMASK
			mask = set
		default:
			return 0, eINVAL
		}
		tc.setSigmask(mask)
	}
	return 0, 0
}

func sysSigaltstack(tc *task, a [6]uint64) (uint64, errno) {
	if a[1] != 0 {
		var b [24]byte
		binary.LittleEndian.PutUint64(b[0:], tc.t.altstack[0])
		binary.LittleEndian.PutUint64(b[8:], tc.t.altstack[1])
		binary.LittleEndian.PutUint64(b[16:], tc.t.altstack[2])
		if tc.t.altstack[2] == 0 {
			binary.LittleEndian.PutUint32(b[8:], 2) // SS_DISABLE
		}
		if e := tc.writeMem(a[1], b[:]); e != 0 {
			return 0, e
		}
	}
	if a[0] != 0 {
		var b [24]byte
		if e := tc.readMem(a[0], b[:]); e != 0 {
			return 0, e
		}
		tc.t.altstack = [3]uint64{binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[16:])}
	}
	return 0, 0
}

// Signal action flags (asm/signal.h).
const (
	saSiginfo   = 0x4
	saOnstack   = 0x08000000
	saRestart   = 0x10000000
	saNodefer   = 0x40000000
	saResethand = 0x80000000
	saRestorer  = 0x04000000
)

// siginfo codes.
const (
	siUser     = 0
	siTkill    = -6
	segvMaperr = 1
	segvAccerr = 2
	cldExited  = 1
	cldKilled  = 2
)

// sigInfo is what a delivered signal's siginfo says.
type sigInfo struct {
	signo, code int32
	pid, uid    int32
	status      int32
	addr        uint64
	value       uint64     // a timer's sigev_value (with code siTimer)
	fault       *faultInfo // for a signal a CPU fault raised
}

type faultInfo struct {
	trapno, err, cr2 uint64
}

// fatalByDefault reports whether sig's default action ends the process.
func fatalByDefault(sig int) bool {
	return !defaultIgnored[sig] && sig != 19 && sig != 20 && sig != 21 && sig != 22
}

// post makes sig pending for process p, or carries out its default action
// at once when that is to end p. It reports whether p was ended.
func (k *kernel) post(p *process, info sigInfo) bool {
	sig := int(info.signo)
	p.mu.Lock()
	act := p.sig.actions[sig]
	p.mu.Unlock()
	switch {
	case sig == sigKILL || (act.handler == sigDefault && fatalByDefault(sig)):
		k.exit(p, sig, "")
		return true
	case act.handler == sigIgnore || act.handler == sigDefault:
		return false
	}
	p.mu.Lock()
	p.pending[sig] = info
	p.mu.Unlock()
	p.signals.notify()
	return false
}

// signal posts info to p as post does, from outside p (kill from another
// process, a child's SIGCHLD), and when a handler will take it kicks a
// thread of p that runs guest code, as Linux interrupts a running
// thread: one making no system call would otherwise never take it. It
// reports whether p was ended.
func (k *kernel) signal(p *process, info sigInfo) bool {
	if k.post(p, info) {
		return true
	}
	p.mu.Lock()
	handled := p.sig.actions[info.signo].handler > sigIgnore
	p.mu.Unlock()
	if handled {
		k.kick(p)
	}
	return false
}

// sendSelf sends sig to the calling process (raise, abort, kill of
// itself, SIGPIPE).
func (tc *task) sendSelf(sig int) errno {
	if sig == 0 {
		return 0
	}
	if sig < 1 || sig > nsig {
		return eINVAL
	}
	if tc.k.post(tc.p, sigInfo{signo: int32(sig), code: siTkill, pid: int32(tc.p.pid)}) {
		tc.held = true
		tc.fc.Kill(128+sig, fmt.Sprintf("killed by signal %d", sig))
	}
	return 0
}

// nextSignal takes a pending signal the thread does not block.
func (tc *task) nextSignal() (sigInfo, bool) {
	p := tc.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for sig, info := range p.pending {
		if tc.t.sigmask&(1<<(sig-1)) == 0 {
			delete(p.pending, sig)
			return info, true
		}
	}
	return sigInfo{}, false
}

// signalPending reports whether a signal the thread does not block is
// pending: a blocking call ends with EINTR for it.
func (tc *task) signalPending() bool {
	p := tc.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for sig := range p.pending {
		if tc.t.sigmask&(1<<(sig-1)) == 0 {
			return true
		}
	}
	return false
}

// Layout of the x86-64 signal frame (arch/x86/include/asm/sigframe.h,
// uapi/asm/sigcontext.h): the return address, a ucontext (flags, link,
// stack, sigcontext, mask), then the siginfo; the FXSAVE area lies below.
const (
	ucFlags    = 0
	ucStack    = 16
	ucMcontext = 40
	ucSigmask  = ucMcontext + 256
	ucSize     = ucSigmask + 8
	frameUC    = 8
	frameInfo  = frameUC + ucSize
	frameSize  = frameInfo + 128
	fxSize     = 512
	redZone    = 128
)

// sigcontext register order: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx,
// rsp, rip, eflags.
func sigcontextRegs(r *machine.Regs) []*uint64 {
	return []*uint64{&r.R8, &r.R9, &r.R10, &r.R11, &r.R12, &r.R13, &r.R14, &r.R15,
		&r.RDI, &r.RSI, &r.RBP, &r.RBX, &r.RDX, &r.RAX, &r.RCX, &r.RSP, &r.RIP, &r.RFLAGS}
}

// deliver sets the thread up to run the handler of info's signal, with
// regs the state it returns to after rt_sigreturn. false means the frame
// could not be written: the process is ended by SIGSEGV, as Linux does.
func (tc *task) deliver(info sigInfo, regs machine.Regs) bool {
	sig := int(info.signo)
	p, t := tc.p, tc.t
	p.mu.Lock()
	act := p.sig.actions[sig]
	if act.flags&saResethand != 0 {
		p.sig.actions[sig] = sigAction{}
	}
	p.mu.Unlock()
	if act.handler == sigDefault || act.handler == sigIgnore {
		return true // changed meanwhile: nothing to run
	}
	fpu, err := tc.fc.FPU()
	if err != nil {
		return false
	}
	sp := regs.RSP - redZone
	onAlt := t.altstack[2] != 0 && regs.RSP > t.altstack[0] && regs.RSP <= t.altstack[0]+t.altstack[2]
	if act.flags&saOnstack != 0 && t.altstack[2] != 0 && t.altstack[1]&2 == 0 && !onAlt {
		sp = t.altstack[0] + t.altstack[2]
	}
	fx := (sp - fxSize) &^ 63
	frame := ((fx - frameSize) &^ 15) - 8
	b := make([]byte, frameSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], act.restorer)
	uc := b[frameUC:]
	le.PutUint64(uc[ucStack:], t.altstack[0])
	le.PutUint32(uc[ucStack+8:], uint32(t.altstack[1]))
	le.PutUint64(uc[ucStack+16:], t.altstack[2])
	mc := uc[ucMcontext:]
	for i, r := range sigcontextRegs(&regs) {
		le.PutUint64(mc[i*8:], *r)
	}
	le.PutUint16(mc[144:], 0x33) // cs: user code, as Linux reports it
	le.PutUint16(mc[150:], 0x2b) // ss
	if info.fault != nil {
		le.PutUint64(mc[152:], info.fault.err)
		le.PutUint64(mc[160:], info.fault.trapno)
		le.PutUint64(mc[176:], info.fault.cr2)
	}
	le.PutUint64(mc[168:], t.sigmask)
	le.PutUint64(mc[184:], fx)
	le.PutUint64(uc[ucSigmask:], t.sigmask)
	si := b[frameInfo:]
	le.PutUint32(si[0:], uint32(info.signo))
	le.PutUint32(si[8:], uint32(info.code))
	switch {
	case info.fault != nil:
		le.PutUint64(si[16:], info.addr)
	case info.code == siTimer:
		// _timer: the timer's id, its overrun count, its sigev_value.
		le.PutUint32(si[16:], uint32(info.pid))
		le.PutUint32(si[20:], uint32(info.status))
		le.PutUint64(si[24:], info.value)
	default:
		le.PutUint32(si[16:], uint32(info.pid))
		le.PutUint32(si[20:], uint32(info.uid))
		le.PutUint32(si[24:], uint32(info.status))
	}
	if tc.writeMem(fx, fpu[:]) != 0 || tc.writeMem(frame, b) != 0 || act.flags&saRestorer == 0 {
		return false
	}
	mask := t.sigmask | act.mask
	if act.flags&saNodefer == 0 {
		mask |= 1 << (sig - 1)
	}
	tc.setSigmask(mask)
	h := regs
	h.RIP, h.RSP = act.handler, frame
	h.RDI, h.RSI, h.RDX, h.RAX = uint64(sig), frame+frameInfo, frame+frameUC, 0
	h.RFLAGS &^= 0x400 // DF clear, as the ABI requires at a call
	if err := tc.fc.SetFPU(machine.ResetFPU()); err != nil {
		return false
	}
	return tc.fc.SetRegs(h) == nil
}

// sysRtSigreturn restores the state a signal frame saved.
func sysRtSigreturn(tc *task, _ [6]uint64) (uint64, errno) {
	frame := tc.regs.RSP - 8
	b := make([]byte, frameSize)
	if tc.readMem(frame, b) != 0 {
		tc.dieOfSignal(sigSEGV, "rt_sigreturn with a bad frame")
		return 0, 0
	}
	le := binary.LittleEndian
	uc := b[frameUC:]
	mc := uc[ucMcontext:]
	r := tc.regs
	for i, p := range sigcontextRegs(&r) {
		*p = le.Uint64(mc[i*8:])
	}
	if fx := le.Uint64(mc[184:]); fx != 0 {
		var fpu machine.FPU
		if tc.readMem(fx, fpu[:]) != 0 || tc.fc.SetFPU(fpu) != nil {
			tc.dieOfSignal(sigSEGV, "rt_sigreturn with a bad FPU state")
			return 0, 0
		}
	}
	tc.setSigmask(le.Uint64(uc[ucSigmask:]))
	if err := tc.fc.SetRegs(r); err != nil {
		tc.dieOfSignal(sigSEGV, "rt_sigreturn with a bad state")
		return 0, 0
	}
	tc.raw = true
	return 0, 0
}

// sysPause waits for a signal: it always ends with EINTR (or the
// process's death).
func sysPause(tc *task, _ [6]uint64) (uint64, errno) {
	if tc.block(func() bool { return false }, noDeadline) == blockHeld {
		return 0, 0
	}
	return 0, eINTR
}

// sysRtSigsuspend waits for a signal with the mask given in place of the
// thread's; the handler runs with that mask, and rt_sigreturn restores
// the one before.
func sysRtSigsuspend(tc *task, a [6]uint64) (uint64, errno) {
	if a[1] != 8 {
		return 0, eINVAL
	}
	var b [8]byte
	if e := tc.readMem(a[0], b[:]); e != 0 {
		return 0, e
	}
	old := tc.t.sigmask
	tc.setSigmask(binary.LittleEndian.Uint64(b[:]))
	res := tc.block(func() bool { return false }, noDeadline)
	if res == blockHeld {
		tc.setSigmask(old)
		return 0, 0
	}
	// The handler runs now, under the temporary mask; the frame keeps
	// the old one, which rt_sigreturn puts back.
	info, ok := tc.nextSignal()
	tc.setSigmask(old)
	if ok {
		regs := tc.regs
		regs.RAX = errResult(eINTR)
		regs.RIP += 2
		regs.RCX, regs.R11 = regs.RIP, regs.RFLAGS
		tc.raw = true
		if !tc.deliver(info, regs) {
			tc.dieOfSignal(sigSEGV, fmt.Sprintf("cannot deliver signal %d", info.signo))
		}
		return 0, 0
	}
	return 0, eINTR
}
