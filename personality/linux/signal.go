package linux

import (
	"encoding/binary"
	"fmt"
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
		switch a[0] {
		case 0: // SIG_BLOCK
			tc.t.sigmask |= set
		case 1: // SIG_UNBLOCK
			tc.t.sigmask &^= set
		case 2: // SIG_SETMASK
			tc.t.sigmask = set
		default:
			return 0, eINVAL
		}
		tc.t.sigmask &^= 1<<(sigKILL-1) | 1<<(19-1)
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

// sendSelf delivers sig to the calling process: a signal whose action is
// to end the process ends it; one ignored, or with a handler, is
// dropped (handlers do not run yet).
func (tc *task) sendSelf(sig int) errno {
	if sig == 0 {
		return 0
	}
	if sig < 1 || sig > nsig {
		return eINVAL
	}
	tc.p.mu.Lock()
	act := tc.p.sig.actions[sig]
	tc.p.mu.Unlock()
	if sig != sigKILL && (act.handler != sigDefault || defaultIgnored[sig]) {
		if act.handler != sigIgnore && act.handler != sigDefault {
			tc.k.log.Debug("signal handler not run", "pid", tc.p.pid, "signal", sig)
		}
		return 0
	}
	tc.dieOfSignal(sig, fmt.Sprintf("killed by signal %d", sig))
	return 0
}
