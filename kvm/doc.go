// Package kvm is the KVM backend: guest code runs on /dev/kvm, through
// gokvm's kvm package plus the ioctls it lacks (KVM_RUN that reports
// EINTR, the FPU, immediate exit).
//
// How a vCPU runs (see vcpu.go):
//   - guest code is always at CPL3; hypercalls are `out` to
//     vmm.HypercallPort from the ABI page, served inline between two
//     KVM_RUN calls;
//   - exceptions enter the ring-0 stub through the IDT, which pushes the
//     vector and traps to vmm.FaultPort; the backend reads the frame from
//     the ring-0 stack and puts the thread back in ring 3 at the faulting
//     instruction, so a fault is one exit, whatever the vector;
//   - KVM completes an `out` (and advances RIP past it) only when KVM_RUN
//     is entered again, and only if RIP was not changed meanwhile. So
//     before returning from Run after an I/O exit, or changing RIP, the
//     backend re-enters KVM_RUN with immediate_exit set: that completes the
//     I/O without running guest code, as the KVM API documentation
//     prescribes;
//   - Stop sets immediate_exit and signals the vCPU's thread (SIGURG, which
//     the Go runtime already uses and ignores safely), so a KVM_RUN in
//     progress or about to start returns EINTR.
//
// The package builds only on linux/amd64; elsewhere the backend is absent
// and vmm.Lookup says so.
package kvm
