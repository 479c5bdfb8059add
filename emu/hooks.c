//go:build cgo && linux && amd64

// C side of the emulator binding: the hooks Unicorn calls while it runs
// guest code, and helpers for what cgo cannot express (variadic
// uc_hook_add, register batches). Kept small: policy lives in Go.

#include <malloc.h>

#include "hooks.h"
#include "_cgo_export.h"

// Inside an instruction hook RIP is the start of the translation block,
// not the instruction, and uc_emu_stop takes effect only at the end of the
// block (its closing jump does not run). The only out the monitor runs is
// the primer's (see enter in emu.go); any other is illegal, and its exact
// address is found afterwards by decoding from the block start.
static void hook_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *ud) {
	nv_cpu *c = ud;
	(void)size; (void)value;
	if (c->exit == NV_EXIT_ILLEGAL_IO)
		return; // the rest of a block after an illegal I/O: already stopping
	if (port == c->enter_port && c->entering) {
		// Just entered ring 3 (see enter in emu.go): the state to restore
		// after every fault. RIP is stale here; it is always rewritten.
		c->entering = 0;
		uc_context_save(uc, c->ctx);
		return;
	}
	uint64_t rip = 0;
	uc_reg_read(uc, UC_X86_REG_RIP, &rip);
	c->exit = NV_EXIT_ILLEGAL_IO;
	c->port = port;
	c->rip = rip;
	uc_emu_stop(uc);
}

// serve performs the hypercall of the trap at the ABI entry.
static void serve(uc_engine *uc, nv_cpu *c) {
	static const int regs[7] = {UC_X86_REG_RDI, UC_X86_REG_RSI, UC_X86_REG_RDX, UC_X86_REG_RCX,
				    UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_RSP};
	void *vals[7] = {&c->args[0], &c->args[1], &c->args[2], &c->args[3], &c->args[4], &c->args[5], &c->rsp};
	uc_reg_read_batch(uc, (int *)regs, vals, 7);
	uint64_t op = c->args[1];
	if (op < 128 && (c->defer_ops[op >> 6] >> (op & 63) & 1)) {
		// An operation that may sleep: Run serves it after the engine
		// has stopped, so that the engine need not wait with it.
		c->exit = NV_EXIT_DEFER;
		uc_emu_stop(uc);
		return;
	}
	int action = nvHypercall(c->handle);
	if (action != NV_CALL_RESTART) {
		uc_reg_write(uc, UC_X86_REG_RAX, &c->ret[0]);
		uc_reg_write(uc, UC_X86_REG_RDX, &c->ret[1]);
	}
	if (action == NV_CALL_CONTINUE && !__atomic_load_n(&c->stop_req, __ATOMIC_ACQUIRE))
		return;
	if (action == NV_CALL_CONTINUE || (action == NV_CALL_RESYNC && __atomic_load_n(&c->stop_req, __ATOMIC_ACQUIRE)))
		action = NV_CALL_STOP; // a Stop arrived during the call: complete it, then stop
	c->exit = NV_EXIT_HCALL;
	c->action = action;
	uc_emu_stop(uc);
}

// The trap page: an MMIO region, as on kvm, where the ABI page's stubs
// store a byte at the offset of their port, so that both backends run the
// same ABI page. Here too RIP is the start of the translation block; the
// ABI entry is a block of its own (every call jumps to it, and it is
// `store; ret`), so a hypercall is recognised by RIP == trap_addr, and a
// stop there leaves RIP at the trap. Any other store (the program's own
// code) is an illegal I/O, and a read a page fault, as on kvm.
static void trap_write(uc_engine *uc, uint64_t off, unsigned size, uint64_t value, void *ud) {
	nv_cpu *c = ud;
	(void)size; (void)value;
	if (c->exit == NV_EXIT_ILLEGAL_IO)
		return;
	if (off == c->null_port)
		return; // the raw-trap benchmark: no ABI work at all
	uint64_t rip = 0;
	uc_reg_read(uc, UC_X86_REG_RIP, &rip);
	if (off != c->hc_port || rip != c->trap_addr) {
		c->exit = NV_EXIT_ILLEGAL_IO;
		c->port = (uint32_t)off;
		c->rip = rip;
		uc_emu_stop(uc);
		return;
	}
	serve(uc, c);
}

static uint64_t trap_read(uc_engine *uc, uint64_t off, unsigned size, void *ud) {
	nv_cpu *c = ud;
	(void)size;
	if (c->exit == NV_EXIT_ILLEGAL_IO)
		return 0;
	c->exit = NV_EXIT_TRAP_READ;
	c->addr = off;
	uc_emu_stop(uc);
	return 0;
}

uc_err nv_map_trap(nv_cpu *c, uint64_t addr) {
	return uc_mmio_map(c->uc, addr, 0x1000, trap_read, c, trap_write, c);
}

static uint32_t hook_in(uc_engine *uc, uint32_t port, int size, void *ud) {
	nv_cpu *c = ud;
	(void)size;
	if (c->exit == NV_EXIT_ILLEGAL_IO)
		return 0;
	c->exit = NV_EXIT_ILLEGAL_IO;
	c->port = port;
	uc_reg_read(uc, UC_X86_REG_RIP, &c->rip);
	uc_emu_stop(uc);
	return 0;
}

static void hook_intr(uc_engine *uc, uint32_t intno, void *ud) {
	nv_cpu *c = ud;
	if (c->exit == NV_EXIT_ILLEGAL_IO) {
		uc_emu_stop(uc); // keep the first, real cause
		return;
	}
	c->exit = NV_EXIT_INTR;
	c->rip = 0;
	c->intno = intno;
	uc_reg_read(uc, UC_X86_REG_CR2, &c->cr2);
	uc_emu_stop(uc);
}

static bool hook_mem(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value, void *ud) {
	nv_cpu *c = ud;
	(void)uc; (void)size; (void)value;
	if (c->exit == NV_EXIT_ILLEGAL_IO)
		return false;
	c->exit = NV_EXIT_MEM;
	c->memtype = type;
	c->addr = addr;
	return false; // not handled: uc_emu_start returns the matching error
}

// Unicorn runs syscall and sysenter as no-ops unless hooked. syscall is
// reported as what it is (a system call for the thread's handler);
// sysenter in 64-bit mode with no SYSENTER_CS raises #GP (Intel), and so
// does it here. In these hooks RIP is the instruction itself, and the stop
// is immediate.
static void hook_syscall(uc_engine *uc, void *ud) {
	nv_cpu *c = ud;
	c->exit = NV_EXIT_SYSCALL;
	uc_reg_read(uc, UC_X86_REG_RIP, &c->rip);
	uc_emu_stop(uc);
}

static void hook_sysenter(uc_engine *uc, void *ud) {
	nv_cpu *c = ud;
	c->exit = NV_EXIT_INTR;
	c->intno = 13;
	uc_reg_read(uc, UC_X86_REG_RIP, &c->rip);
	uc_emu_stop(uc);
}

// Gap fillers: MMIO regions over every address the engine maps no memory
// at (see mapAll in emu.go). A present page-table entry points into one
// only where the machine gained memory after this engine was opened (a
// chunk of the user window that another thread of the space reached): the
// access is then served from that memory, exactly, until the engine's
// next run maps it. Anything else means the monitor broke the rule: stop
// loudly.
static uint8_t *late_host(nv_gap *g, uint64_t off, unsigned size) {
	uint64_t addr = g->base + off;
	unsigned n = (unsigned)(addr >> NV_LATE_SHIFT);
	if (g->late == NULL || addr >> NV_LATE_SHIFT >= NV_LATE_CHUNKS)
		return NULL;
	uint64_t hi = __atomic_load_n(&g->late->hi[n], __ATOMIC_ACQUIRE);
	if (hi == 0 || addr < g->late->lo[n] || addr + size > hi)
		return NULL;
	return (uint8_t *)(g->late->delta[n] + (uintptr_t)addr);
}

static uint64_t gap_read(uc_engine *uc, uint64_t off, unsigned size, void *ud) {
	nv_gap *g = ud;
	uint8_t *h = late_host(g, off, size);
	uint64_t v = 0;
	if (h != NULL && size <= sizeof v) {
		memcpy(&v, h, size);
		return v;
	}
	g->c->exit = NV_EXIT_GAP;
	g->c->addr = g->base + off;
	uc_emu_stop(uc);
	return 0;
}

static void gap_write(uc_engine *uc, uint64_t off, unsigned size, uint64_t value, void *ud) {
	nv_gap *g = ud;
	uint8_t *h = late_host(g, off, size);
	if (h != NULL && size <= sizeof value) {
		memcpy(h, &value, size);
		return;
	}
	g->c->exit = NV_EXIT_GAP;
	g->c->addr = g->base + off;
	uc_emu_stop(uc);
}

uc_err nv_map_gap(nv_gap *g, uint64_t size) {
	return uc_mmio_map(g->c->uc, g->base, size, gap_read, g, gap_write, g);
}

void nv_late_set(nv_late *l, unsigned n, uintptr_t delta, uint64_t lo, uint64_t hi) {
	l->delta[n] = delta;
	l->lo[n] = lo;
	__atomic_store_n(&l->hi[n], hi, __ATOMIC_RELEASE);
}

// A Stop from another thread is taken here, at the start of a translation
// block, before any of its instructions ran: uc_emu_stop called from
// another thread makes the engine leave at its next check, and Unicorn
// checks after every memory access too, then resumes at the block's start
// with the instructions before the check already done (their stores made),
// so they would run twice. Stopped here, the block's entry check leaves
// before its first instruction, and RIP is the block's start exactly.
// enter's run (see emu.go) is not stopped: it ends on its own in a few
// blocks, and the Stop is taken before the thread's first run.
static void hook_block(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
	nv_cpu *c = ud;
	(void)addr; (void)size;
	if (!c->priming && __atomic_load_n(&c->stop_req, __ATOMIC_ACQUIRE))
		uc_emu_stop(uc);
}

uc_err nv_add_hooks(nv_cpu *c) {
	uc_hook h;
	uc_err err;
	if ((err = uc_hook_add(c->uc, &h, UC_HOOK_BLOCK, hook_block, c, 1, 0)))
		return err;
	if ((err = uc_hook_add(c->uc, &h, UC_HOOK_INSN, hook_out, c, 1, 0, UC_X86_INS_OUT)))
		return err;
	if ((err = uc_hook_add(c->uc, &h, UC_HOOK_INSN, hook_in, c, 1, 0, UC_X86_INS_IN)))
		return err;
	if ((err = uc_hook_add(c->uc, &h, UC_HOOK_INTR, hook_intr, c, 1, 0)))
		return err;
	if ((err = uc_hook_add(c->uc, &h, UC_HOOK_INSN, hook_syscall, c, 1, 0, UC_X86_INS_SYSCALL)))
		return err;
	if ((err = uc_hook_add(c->uc, &h, UC_HOOK_INSN, hook_sysenter, c, 1, 0, UC_X86_INS_SYSENTER)))
		return err;
	return uc_hook_add(c->uc, &h, UC_HOOK_MEM_INVALID, hook_mem, c, 1, 0);
}

// Register order of nv_cpu.regs: the field order of abi.ThreadRegs.
static const int gpr_ids[NV_NREGS] = {
	UC_X86_REG_RAX, UC_X86_REG_RBX, UC_X86_REG_RCX, UC_X86_REG_RDX,
	UC_X86_REG_RSI, UC_X86_REG_RDI, UC_X86_REG_RBP, UC_X86_REG_RSP,
	UC_X86_REG_R8, UC_X86_REG_R9, UC_X86_REG_R10, UC_X86_REG_R11,
	UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
	UC_X86_REG_RIP, UC_X86_REG_RFLAGS, UC_X86_REG_FS_BASE, UC_X86_REG_GS_BASE,
};

uc_err nv_read_regs(nv_cpu *c) {
	void *vals[NV_NREGS];
	for (int i = 0; i < NV_NREGS; i++)
		vals[i] = &c->regs[i];
	return uc_reg_read_batch(c->uc, (int *)gpr_ids, vals, NV_NREGS);
}

uc_err nv_write_regs(nv_cpu *c) {
	void *vals[NV_NREGS];
	for (int i = 0; i < NV_NREGS; i++)
		vals[i] = &c->regs[i];
	return uc_reg_write_batch(c->uc, (int *)gpr_ids, vals, NV_NREGS);
}

// FXSAVE layout offsets (see machine/regs.go).
enum { FX_FCW = 0, FX_FSW = 2, FX_FTW = 4, FX_MXCSR = 24, FX_MXCSR_MASK = 28, FX_ST0 = 32, FX_XMM0 = 160 };

uc_err nv_read_fpu(nv_cpu *c, uint8_t *fx) {
	uc_err err;
	uint64_t v = 0;
	memset(fx, 0, 512);
	if ((err = uc_reg_read(c->uc, UC_X86_REG_FPCW, &v)))
		return err;
	memcpy(fx + FX_FCW, &v, 2);
	v = 0;
	if ((err = uc_reg_read(c->uc, UC_X86_REG_FPSW, &v)))
		return err;
	memcpy(fx + FX_FSW, &v, 2);
	v = 0;
	if ((err = uc_reg_read(c->uc, UC_X86_REG_FPTAG, &v)))
		return err;
	// Full tag word (2 bits per physical register, 3 = empty) to the
	// abridged FXSAVE form (1 bit per register, 1 = not empty).
	uint8_t ftw = 0;
	for (int i = 0; i < 8; i++)
		if (((v >> (2 * i)) & 3) != 3)
			ftw |= 1 << i;
	fx[FX_FTW] = ftw;
	uint32_t mxcsr = 0;
	if ((err = uc_reg_read(c->uc, UC_X86_REG_MXCSR, &mxcsr)))
		return err;
	memcpy(fx + FX_MXCSR, &mxcsr, 4);
	uint32_t mask = 0xffff;
	memcpy(fx + FX_MXCSR_MASK, &mask, 4);
	for (int i = 0; i < 8; i++) {
		// ST(i), relative to TOP as FXSAVE stores it: 10 bytes of the
		// 80-bit value (Unicorn 2.0.1 copies them raw).
		uint8_t st[16] = {0};
		if ((err = uc_reg_read(c->uc, UC_X86_REG_ST0 + i, st)))
			return err;
		memcpy(fx + FX_ST0 + 16 * i, st, 10);
	}
	for (int i = 0; i < 16; i++)
		if ((err = uc_reg_read(c->uc, UC_X86_REG_XMM0 + i, fx + FX_XMM0 + 16 * i)))
			return err;
	return UC_ERR_OK;
}

uc_err nv_write_fpu(nv_cpu *c, const uint8_t *fx) {
	uc_err err;
	uint64_t v = 0;
	memcpy(&v, fx + FX_FCW, 2);
	if ((err = uc_reg_write(c->uc, UC_X86_REG_FPCW, &v)))
		return err;
	v = 0;
	memcpy(&v, fx + FX_FSW, 2);
	if ((err = uc_reg_write(c->uc, UC_X86_REG_FPSW, &v)))
		return err;
	v = 0;
	for (int i = 0; i < 8; i++)
		if (!(fx[FX_FTW] & (1 << i)))
			v |= 3ull << (2 * i);
	if ((err = uc_reg_write(c->uc, UC_X86_REG_FPTAG, &v)))
		return err;
	uint32_t mxcsr;
	memcpy(&mxcsr, fx + FX_MXCSR, 4);
	if ((err = uc_reg_write(c->uc, UC_X86_REG_MXCSR, &mxcsr)))
		return err;
	for (int i = 0; i < 8; i++) {
		// After FPSW, whose TOP field decides which register ST(i) is.
		uint8_t st[16] = {0};
		memcpy(st, fx + FX_ST0 + 16 * i, 10);
		if ((err = uc_reg_write(c->uc, UC_X86_REG_ST0 + i, st)))
			return err;
	}
	for (int i = 0; i < 16; i++)
		if ((err = uc_reg_write(c->uc, UC_X86_REG_XMM0 + i, fx + FX_XMM0 + 16 * i)))
			return err;
	return UC_ERR_OK;
}

uc_err nv_write_msr(uc_engine *uc, uint32_t msr, uint64_t value) {
	uc_x86_msr m = {msr, value};
	return uc_reg_write(uc, UC_X86_REG_MSR, &m);
}

uc_err nv_write_table(uc_engine *uc, int reg, uint64_t base, uint32_t limit) {
	uc_x86_mmr m = {0, base, limit, 0};
	return uc_reg_write(uc, reg, &m);
}

static uint64_t nv_flush_read(uc_engine *uc, uint64_t off, unsigned size, void *ud) {
	(void)uc; (void)off; (void)size; (void)ud;
	return 0;
}

uc_err nv_flush_tlb(uc_engine *uc) {
	const uint64_t at = 0xfffffffffffff000ull; /* the one page the gap fillers leave free (emu.go gapTop) */
	uc_err err = uc_mmio_map(uc, at, 0x1000, nv_flush_read, NULL, NULL, NULL);
	if (err != UC_ERR_OK)
		return err;
	return uc_mem_unmap(uc, at, 0x1000);
}

// nv_flush_code drops every translated block.
uc_err nv_flush_code(uc_engine *uc) {
	return uc_ctl(uc, UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0));
}

// nv_forget_code drops the translated blocks of [start, end), which must
// lie in one memory region: Unicorn finds the start's physical page through
// the CPU's address translation and takes the rest as following it.
uc_err nv_forget_code(uc_engine *uc, uint64_t start, uint64_t end) {
	return uc_ctl(uc, UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2), start, end);
}

// nv_trim hands the host the free pages of glibc's heaps, where the
// engines just closed (see pool.go) left their memory: glibc serves
// blocks as large as an engine's 512 KiB hash table from its heaps once
// one such block has been freed, and gives back on its own only what lies
// at a heap's top.
void nv_trim(void) {
	malloc_trim(0);
}
