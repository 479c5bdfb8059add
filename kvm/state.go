//go:build linux && amd64

package kvm

import (
	"encoding/binary"

	gokvm "github.com/bobuhiro11/gokvm/kvm"

	"nestvm/machine"
)

// userSregs returns sregs (as read from the vCPU) changed to the state
// guest threads always run in: long mode at CPL3 with the monitor's page
// tables and descriptor tables, and fsBase/gsBase as the thread's.
func userSregs(sregs gokvm.Sregs, s machine.CPUSetup, fsBase, gsBase uint64) gokvm.Sregs {
	code := gokvm.Segment{
		Base: 0, Limit: 0xffffffff, Selector: s.UserCS,
		Typ: 0xb, Present: 1, DPL: 3, S: 1, L: 1, G: 1, // execute/read, accessed, 64-bit
	}
	data := gokvm.Segment{
		Base: 0, Limit: 0xffffffff, Selector: s.UserSS,
		Typ: 0x3, Present: 1, DPL: 3, DB: 1, S: 1, G: 1, // read/write, accessed
	}
	sregs.CS = code
	sregs.SS, sregs.DS, sregs.ES = data, data, data
	sregs.FS, sregs.GS = data, data
	sregs.FS.Base, sregs.GS.Base = fsBase, gsBase
	sregs.TR = gokvm.Segment{
		Base: s.TSSBase, Limit: s.TSSLimit, Selector: s.TSSSel,
		Typ: 0xb, Present: 1, // busy 64-bit TSS
	}
	sregs.LDT = gokvm.Segment{Limit: 0xffff, Typ: 0x2, Present: 1}
	sregs.GDT = gokvm.Descriptor{Base: s.GDTBase, Limit: s.GDTLimit}
	sregs.IDT = gokvm.Descriptor{Base: s.IDTBase, Limit: s.IDTLimit}
	sregs.CR0, sregs.CR3, sregs.CR4, sregs.EFER = s.CR0, s.CR3, s.CR4, s.EFER
	return sregs
}

func toKVMRegs(r *machine.Regs) gokvm.Regs {
	return gokvm.Regs{
		RAX: r.RAX, RBX: r.RBX, RCX: r.RCX, RDX: r.RDX, RSI: r.RSI, RDI: r.RDI, RSP: r.RSP, RBP: r.RBP,
		R8: r.R8, R9: r.R9, R10: r.R10, R11: r.R11, R12: r.R12, R13: r.R13, R14: r.R14, R15: r.R15,
		RIP: r.RIP, RFLAGS: r.RFLAGS,
	}
}

func fromKVMRegs(k *gokvm.Regs, fsBase, gsBase uint64) machine.Regs {
	return machine.Regs{
		RAX: k.RAX, RBX: k.RBX, RCX: k.RCX, RDX: k.RDX, RSI: k.RSI, RDI: k.RDI, RBP: k.RBP, RSP: k.RSP,
		R8: k.R8, R9: k.R9, R10: k.R10, R11: k.R11, R12: k.R12, R13: k.R13, R14: k.R14, R15: k.R15,
		RIP: k.RIP, RFLAGS: k.RFLAGS, FSBase: fsBase, GSBase: gsBase,
	}
}

// toKVMFPU converts the FXSAVE layout to struct kvm_fpu.
func toKVMFPU(f *machine.FPU) kvmFPU {
	le := binary.LittleEndian
	var k kvmFPU
	k.FCW = le.Uint16(f[0:])
	k.FSW = le.Uint16(f[2:])
	k.FTWX = f[4]
	k.LastOpcode = le.Uint16(f[6:])
	k.LastIP = le.Uint64(f[8:])
	k.LastDP = le.Uint64(f[16:])
	k.MXCSR = le.Uint32(f[machine.FXMXCSR:])
	for i := range k.FPR {
		copy(k.FPR[i][:], f[machine.FXST0+16*i:][:16])
	}
	for i := range k.XMM {
		copy(k.XMM[i][:], f[machine.FXXMM0+16*i:][:16])
	}
	return k
}

// fromKVMFPU converts struct kvm_fpu to the FXSAVE layout.
func fromKVMFPU(k *kvmFPU) machine.FPU {
	le := binary.LittleEndian
	var f machine.FPU
	le.PutUint16(f[0:], k.FCW)
	le.PutUint16(f[2:], k.FSW)
	f[4] = k.FTWX
	le.PutUint16(f[6:], k.LastOpcode)
	le.PutUint64(f[8:], k.LastIP)
	le.PutUint64(f[16:], k.LastDP)
	le.PutUint32(f[machine.FXMXCSR:], k.MXCSR)
	le.PutUint32(f[machine.FXMXCSRMsk:], 0xffff)
	for i := range k.FPR {
		copy(f[machine.FXST0+16*i:], k.FPR[i][:])
	}
	for i := range k.XMM {
		copy(f[machine.FXXMM0+16*i:], k.XMM[i][:])
	}
	return f
}

// frame is the ring-0 fault frame (machine.FrameVector...machine.FrameSS).
type frame struct {
	vector, errorCode, rip, cs, rflags, rsp, ss uint64
}

func parseFrame(b []byte) frame {
	le := binary.LittleEndian
	return frame{
		vector: le.Uint64(b[machine.FrameVector:]), errorCode: le.Uint64(b[machine.FrameError:]),
		rip: le.Uint64(b[machine.FrameRIP:]), cs: le.Uint64(b[machine.FrameCS:]), rflags: le.Uint64(b[machine.FrameRFlags:]),
		rsp: le.Uint64(b[machine.FrameRSP:]), ss: le.Uint64(b[machine.FrameSS:]),
	}
}
