package emu

import (
	"encoding/binary"

	"golang.org/x/arch/x86/x86asm"

	"nestvm/machine"
)

// walk translates addr through the 4-level page tables rooted at cr3 and
// returns the leaf entry; ok is false when a level is missing or
// unreadable. read reads guest-physical memory.
func walk(read func(gpa uint64, buf []byte) bool, cr3, addr uint64) (pte uint64, ok bool) {
	var b [8]byte
	table := cr3 &^ 0xfff
	for level := 3; level >= 0; level-- {
		i := addr >> (12 + 9*uint(level)) & 511
		if !read(table+i*8, b[:]) {
			return 0, false
		}
		e := binary.LittleEndian.Uint64(b[:])
		if level == 0 || e&1 == 0 || level == 1 && e&0x80 != 0 {
			return e, true // a 4 KiB leaf, a missing level, or a 2 MiB page
		}
		table = e & 0x000f_ffff_ffff_f000
	}
	return 0, false
}

// classifyAccess decides whether the instruction insn at rip, which faulted
// on addr, was fetching, reading or writing, as the page-fault error code
// the emulator does not report would say. It decodes the instruction: the
// destination of most instructions is their first operand, pushes and calls
// write the stack, and string instructions write at rdi.
//
// insn holds the bytes that could be fetched at rip; when they do not hold a
// whole instruction, the fetch itself is what faulted.
func classifyAccess(insn []byte, rip, rsp, rdi, addr uint64) machine.Access {
	if addr >= rip+uint64(len(insn)) && addr < rip+15 {
		return machine.AccessExec // the bytes at addr could not be fetched
	}
	inst, err := x86asm.Decode(insn, 64)
	if err != nil {
		return machine.AccessRead // an instruction the decoder does not know
	}
	switch inst.Op {
	case x86asm.PUSH, x86asm.CALL, x86asm.PUSHF, x86asm.PUSHFQ, x86asm.ENTER:
		if addr < rsp && rsp-addr <= 64 {
			return machine.AccessWrite
		}
		return machine.AccessRead
	case x86asm.POP, x86asm.POPF, x86asm.POPFQ, x86asm.RET, x86asm.LEAVE:
		// These read the stack; only "pop m" writes, to its operand.
		if addr >= rsp && addr-rsp < 64 {
			return machine.AccessRead
		}
		if _, ok := inst.Args[0].(x86asm.Mem); ok && inst.Op == x86asm.POP {
			return machine.AccessWrite
		}
		return machine.AccessRead
	case x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ,
		x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ:
		if addr >= rdi && addr-rdi < 4096 || rdi > addr && rdi-addr < 4096 {
			return machine.AccessWrite
		}
		return machine.AccessRead
	case x86asm.CMP, x86asm.TEST, x86asm.BT, x86asm.JMP, x86asm.LGDT, x86asm.LIDT,
		x86asm.UCOMISS, x86asm.UCOMISD, x86asm.COMISS, x86asm.COMISD, x86asm.PREFETCHT0,
		x86asm.PREFETCHT1, x86asm.PREFETCHT2, x86asm.PREFETCHNTA, x86asm.CLFLUSH:
		return machine.AccessRead
	}
	if _, ok := inst.Args[0].(x86asm.Mem); ok {
		return machine.AccessWrite
	}
	return machine.AccessRead
}

// findIO returns the address of the first I/O instruction in code, which
// starts at start (a translation block), or start when there is none.
func findIO(code []byte, start uint64) uint64 {
	for off := 0; off < len(code); {
		inst, err := x86asm.Decode(code[off:], 64)
		if err != nil {
			break
		}
		switch inst.Op {
		case x86asm.IN, x86asm.OUT, x86asm.INSB, x86asm.INSW, x86asm.INSD,
			x86asm.OUTSB, x86asm.OUTSW, x86asm.OUTSD:
			return start + uint64(off)
		}
		off += inst.Len
	}
	return start
}

// stackFault reports whether the instruction insn, which the emulator
// reported as #GP, faulted on a non-canonical address it reaches through
// the stack segment: a push, pop, call, ret or leave with a non-canonical
// stack pointer, or a memory operand based on RSP or RBP. A CPU raises
// #SS(0) for those and #GP(0) for the others; the emulator raises #GP for
// all of them.
func stackFault(insn []byte, r *machine.Regs) bool {
	inst, err := x86asm.Decode(insn, 64)
	if err != nil {
		return false
	}
	switch inst.Op {
	case x86asm.PUSH, x86asm.CALL, x86asm.PUSHF, x86asm.PUSHFQ, x86asm.ENTER:
		if !canonical(r.RSP - 8) {
			return true
		}
	case x86asm.POP, x86asm.POPF, x86asm.POPFQ, x86asm.RET, x86asm.IRETQ:
		if !canonical(r.RSP) {
			return true
		}
	case x86asm.LEAVE:
		if !canonical(r.RBP) {
			return true
		}
	}
	for _, a := range inst.Args {
		m, ok := a.(x86asm.Mem)
		if !ok || m.Segment != 0 || (m.Base != x86asm.RSP && m.Base != x86asm.RBP) {
			continue
		}
		ea := regValue(m.Base, r) + uint64(m.Disp)
		if m.Index != 0 {
			ea += regValue(m.Index, r) * uint64(m.Scale)
		}
		if !canonical(ea) {
			return true
		}
	}
	return false
}

// canonical reports whether addr is canonical with 48-bit addresses.
func canonical(addr uint64) bool {
	top := addr >> 47
	return top == 0 || top == 1<<17-1
}

// regValue is the value of a 64-bit general register; 0 for others.
func regValue(reg x86asm.Reg, r *machine.Regs) uint64 {
	switch reg {
	case x86asm.RAX:
		return r.RAX
	case x86asm.RBX:
		return r.RBX
	case x86asm.RCX:
		return r.RCX
	case x86asm.RDX:
		return r.RDX
	case x86asm.RSI:
		return r.RSI
	case x86asm.RDI:
		return r.RDI
	case x86asm.RBP:
		return r.RBP
	case x86asm.RSP:
		return r.RSP
	case x86asm.R8:
		return r.R8
	case x86asm.R9:
		return r.R9
	case x86asm.R10:
		return r.R10
	case x86asm.R11:
		return r.R11
	case x86asm.R12:
		return r.R12
	case x86asm.R13:
		return r.R13
	case x86asm.R14:
		return r.R14
	case x86asm.R15:
		return r.R15
	}
	return 0
}
