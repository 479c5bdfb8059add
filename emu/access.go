package emu

import (
	"encoding/binary"

	"golang.org/x/arch/x86/x86asm"

	"nestvm/vmm"
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
func classifyAccess(insn []byte, rip, rsp, rdi, addr uint64) vmm.Access {
	if addr >= rip+uint64(len(insn)) && addr < rip+15 {
		return vmm.AccessExec // the bytes at addr could not be fetched
	}
	inst, err := x86asm.Decode(insn, 64)
	if err != nil {
		return vmm.AccessRead // an instruction the decoder does not know
	}
	switch inst.Op {
	case x86asm.PUSH, x86asm.CALL, x86asm.PUSHF, x86asm.PUSHFQ, x86asm.ENTER:
		if addr < rsp && rsp-addr <= 64 {
			return vmm.AccessWrite
		}
		return vmm.AccessRead
	case x86asm.POP, x86asm.POPF, x86asm.POPFQ, x86asm.RET, x86asm.LEAVE:
		// These read the stack; only "pop m" writes, to its operand.
		if addr >= rsp && addr-rsp < 64 {
			return vmm.AccessRead
		}
		if _, ok := inst.Args[0].(x86asm.Mem); ok && inst.Op == x86asm.POP {
			return vmm.AccessWrite
		}
		return vmm.AccessRead
	case x86asm.STOSB, x86asm.STOSW, x86asm.STOSD, x86asm.STOSQ,
		x86asm.MOVSB, x86asm.MOVSW, x86asm.MOVSD, x86asm.MOVSQ:
		if addr >= rdi && addr-rdi < 4096 || rdi > addr && rdi-addr < 4096 {
			return vmm.AccessWrite
		}
		return vmm.AccessRead
	case x86asm.CMP, x86asm.TEST, x86asm.BT, x86asm.JMP, x86asm.LGDT, x86asm.LIDT,
		x86asm.UCOMISS, x86asm.UCOMISD, x86asm.COMISS, x86asm.COMISD, x86asm.PREFETCHT0,
		x86asm.PREFETCHT1, x86asm.PREFETCHT2, x86asm.PREFETCHNTA, x86asm.CLFLUSH:
		return vmm.AccessRead
	}
	if _, ok := inst.Args[0].(x86asm.Mem); ok {
		return vmm.AccessWrite
	}
	return vmm.AccessRead
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
