// Package emu is the software backend: it runs guest code on the Unicorn
// CPU emulator (Debian's libunicorn-dev 2.0.1) through a thin cgo binding
// of its own, with the same guest binaries, ABI page and exits as kvm.
// The binding is unicorn.go (over the hooks in hooks.c), the package's one
// Go file with cgo or unsafe; the machine, vCPU and engine pool are pure
// Go over it.
//
// It is built only with cgo; a CGO_ENABLED=0 binary has no emu backend and
// machine.Lookup("emu") says how to get one.
//
// Unicorn 2.0.1 behaves in ways this package is built around (each is
// exercised by the tables every backend runs: vmm/machine_test.go and
// internal/backendtest):
//   - ring 3 is entered only by an iretq executed in ring 0;
//   - after one handled exception every later one arrives as a double
//     fault, because the emulator never clears its "previous exception"
//     state. The cure: save the CPU context right after entering ring 3
//     and restore it (then write the thread's registers back) before
//     resuming a thread after any fault;
//   - uc_emu_start with a count or an until address installs an internal
//     hook, and the next uc_emu_start after the hook set changes flushes
//     the translation cache, which costs a second or more; so the engine
//     enters ring 3 in one plain run that traps once to save the context
//     and then faults once on purpose (the primer) to stop;
//   - Unicorn checks its own memory map before walking the page tables,
//     and an access to an address it has no memory at ends the run with
//     RIP at the start of the translation block, so every address the
//     machine does not map is filled with an MMIO region the page tables
//     never reach (RAM regions that large exhaust QEMU's RAM-block space);
//   - the guest IDT is never used: exceptions reach an interrupt hook with
//     the vector, RIP and CR2 but no error code, so page-fault error codes
//     are rebuilt from the page tables and the faulting instruction;
//   - EFER.NXE is ignored and a page-table entry with bit 63 set faults as
//     reserved, so no-exec is enforced with per-mapping memory permissions
//     (the machine's Features say NoPageTableNX);
//   - `out` is caught by an instruction hook at any IOPL, and a store to
//     an MMIO region calls its write callback, but inside either RIP is
//     the start of the translation block and a stop takes effect only at
//     the block's end; hypercalls are served inside the callback (each
//     uc_emu_start costs about 2 µs), and the ABI entry is a block of its
//     own, so RIP there is exact. The ABI page's stubs store to the trap
//     page as on kvm, so both backends run the same ABI page,
//     and a program that jumps into the middle of a stub runs the same
//     bytes on both; only the primer uses `out`;
//   - uc_emu_stop from another thread makes the engine leave at its next
//     check, and Unicorn checks after every memory access as well as at
//     the start of each translation block; leaving after an access sets
//     RIP to the block's start with the instructions before it already
//     run, so resuming would run them (their stores included) again. So
//     Stop only raises a flag, and a block hook stops the engine before a
//     block's first instruction: a stop lands between two instructions.
//     The hook is a helper call in every block, about 2.5 ns: 1.4x to 2x
//     on a compute loop whose every round is one short block, nothing
//     measurable on calls;
//   - syscall and sysenter are no-ops unless hooked (they are, and raise
//     #UD and #GP as a CPU would here); "int $n" reports vector n past the
//     instruction instead of #GP at it;
//   - ud2 ends uc_emu_start with UC_ERR_INSN_INVALID rather than vector 6.
//
// An engine costs about 800 KiB once it has run, so a thread holds one
// only while it runs guest code: a thread waiting in a call, stopped, or
// in a fault being served lends its engine to a pool, which closes it
// after a while; the thread's state is kept in Go meanwhile (pool.go).
// An engine costs about 0.5 ms of CPU to open, map and close, so one whose
// thread has ended is parked for the next thread of its machine, the
// next space's once the machine is recycled, its translated user code
// dropped (park.go).
package emu
