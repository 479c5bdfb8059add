// Package kvm is the KVM backend: guest code runs on /dev/kvm, through
// gokvm's kvm package plus what it lacks (KVM_RUN that reports EINTR,
// EINTR retries for every other ioctl, the FPU, immediate exit, the
// registers shared through the run area, chunked memory slots).
//
// How a vCPU runs (see vcpu.go):
//   - guest code is always at CPL3, with RFLAGS.IOPL 0. Hypercalls are a
//     one-byte store from the ABI page to machine.TrapPageAddr+port, a page
//     the page tables map but no memory slot backs, so every KVM (VMX,
//     SVM, and PVM, which raises #GP for `out` from ring 3 whatever IOPL
//     says) exits with KVM_EXIT_MMIO. The store has retired when KVM
//     exits, so the call is served inline and the vCPU re-entered with
//     no completion step;
//   - registers travel through kvm_run (KVM_CAP_SYNC_REGS): KVM writes
//     them there at every exit and loads those marked dirty at the next
//     KVM_RUN, so a hypercall costs one exit and no register ioctls;
//   - exceptions enter the ring-0 stub through the IDT, which pushes the
//     vector and does `out` to machine.FaultPort (allowed at CPL0); the
//     backend reads the frame from the ring-0 stack and puts the thread
//     back in ring 3 at the faulting instruction, so a fault is one exit,
//     whatever the vector;
//   - KVM completes an `out` (and an MMIO load) only when KVM_RUN is
//     entered again, and on some hosts by running its emulator over the
//     instruction. So before returning from Run after such an exit, or
//     changing RIP, the backend re-enters KVM_RUN with immediate_exit set:
//     that completes the I/O without running guest code, as the KVM API
//     documentation prescribes;
//   - syscall, with EFER.SCE clear, raises #UD on VMX and SVM; PVM jumps
//     to MSR_LSTAR instead, so LSTAR points at a stub in the ABI page
//     that traps to machine.SyscallPort, and the backend reports the same #UD;
//   - Stop sets immediate_exit and signals the vCPU's thread (SIGURG, which
//     the Go runtime already uses and ignores safely), so a KVM_RUN in
//     progress or about to start returns EINTR. A stop that finds the
//     vCPU inside the ring-0 stub (between an exception and its trap)
//     lets the stub run on to the trap first: a thread is never stopped
//     holding the stub's registers.
//
// Memory: each GiB of a space's user window that its memory reaches is
// one machine mapping (machine.WindowChunk), but KVM's per-slot
// bookkeeping grows with the slot (with PVM's shadow paging, 2 MiB for a
// slot over a GiB), so large mappings get their slots chunk by
// chunk as the monitor first maps memory there, chunks as small as the
// host's slot count allows (chunkFor: 8 MiB where KVM offers 32764).
//
// The package builds only on linux/amd64; elsewhere the backend is absent
// and machine.Lookup says so.
package kvm
