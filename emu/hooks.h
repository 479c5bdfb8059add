//go:build cgo && linux && amd64

// Shared between hooks.c and the cgo preamble of unicorn.go, the binding.
#ifndef NESTVM_EMU_HOOKS_H
#define NESTVM_EMU_HOOKS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unicorn/unicorn.h>

// Why the last uc_emu_start stopped, as the hooks recorded it.
enum { NV_EXIT_NONE, NV_EXIT_HCALL, NV_EXIT_INTR, NV_EXIT_MEM, NV_EXIT_ILLEGAL_IO, NV_EXIT_GAP, NV_EXIT_SYSCALL, NV_EXIT_TRAP_READ, NV_EXIT_DEFER };

// Mirrors machine.CallAction; NV_CALL_RESYNC is NV_CALL_CONTINUE after a
// call that grew the machine's memory map: the engine stops after the
// call, takes the new regions, and runs on.
enum { NV_CALL_CONTINUE, NV_CALL_STOP, NV_CALL_RESTART, NV_CALL_RESYNC };

// Memory the machine gained after its first vCPU, by GiB of guest
// address (machine.WindowChunk): an engine opened before it still has a
// gap filler there until its next run, and the filler serves an access
// from the memory itself (see gap_read). delta is host address minus
// guest address; hi is set last, and non-zero means the entry is valid.
#define NV_LATE_SHIFT 30
#define NV_LATE_CHUNKS 64
typedef struct nv_late {
	uintptr_t delta[NV_LATE_CHUNKS];
	uint64_t lo[NV_LATE_CHUNKS], hi[NV_LATE_CHUNKS];
} nv_late;

// What a gap filler's callbacks are given: offsets arrive relative to base.
typedef struct nv_gap {
	struct nv_cpu *c;
	nv_late *late;
	uint64_t base;
} nv_gap;

#define NV_NREGS 20

// One vCPU's state shared between Go and the hooks. Allocated in C so the
// hooks can hold a pointer to it while Go's garbage collector runs.
typedef struct nv_cpu {
	uc_engine *uc;
	uintptr_t handle; // cgo.Handle of the Go vcpu
	uint64_t trap_addr;
	uint32_t hc_port, null_port, enter_port;
	uc_context *ctx;  // saved on entering ring 3; restored after faults
	int entering;     // the next EnterPort trap saves ctx
	int priming;      // enter's run, which a Stop must not cut short
	int stop_req; // set by Stop from another thread; read in hook_block and serve
	uint64_t defer_ops[2]; // operations that may sleep: Run serves them outside the engine

	// The hypercall being served.
	uint64_t args[6], rsp, ret[2];

	// Exit record of the last run.
	int exit, action, memtype;
	uint32_t intno, port;
	uint64_t cr2, addr, rip;

	uint64_t regs[NV_NREGS];
	uint8_t fpu[512];
} nv_cpu;

uc_err nv_add_hooks(nv_cpu *c);
uc_err nv_map_gap(nv_gap *g, uint64_t size);
void nv_late_set(nv_late *l, unsigned n, uintptr_t delta, uint64_t lo, uint64_t hi);
uc_err nv_map_trap(nv_cpu *c, uint64_t addr);
uc_err nv_read_regs(nv_cpu *c);
uc_err nv_write_regs(nv_cpu *c);
uc_err nv_read_fpu(nv_cpu *c, uint8_t *fx);
uc_err nv_write_fpu(nv_cpu *c, const uint8_t *fx);
uc_err nv_write_msr(uc_engine *uc, uint32_t msr, uint64_t value);
uc_err nv_write_table(uc_engine *uc, int reg, uint64_t base, uint32_t limit);
uc_err nv_flush_tlb(uc_engine *uc);
uc_err nv_flush_code(uc_engine *uc);
uc_err nv_forget_code(uc_engine *uc, uint64_t start, uint64_t end);
void nv_trim(void);

#endif
