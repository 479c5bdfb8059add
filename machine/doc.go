// Package machine is what the object kernel (package vmm) and the backends
// (kvm, emu) share: the Backend, Machine and VCPU interfaces a backend
// implements, and everything both sides of that interface must agree on.
//
//	vmm (spaces, threads, regions, ports, ...)
//	     |  builds a Shell per space, runs its threads' VCPUs
//	     v
//	machine: Backend, Machine, VCPU; Exit and Fault; Regs, FPU; CPUSetup,
//	         CPUFeatures; the system memory layout and stub pages; page
//	         tables; Memory and the user Window; Shell and ShellPool; the
//	         host's mapping and descriptor budgets
//	     ^
//	     |  implement Backend, Machine and VCPU; Register from init
//	kvm (/dev/kvm), emu (Unicorn)
//
// A backend imports machine and abi only, never the object kernel: it runs
// guest code in a memory map and reports why it stopped (an Exit: a Fault
// with vector, address and access, or a stop), and it hands each hypercall
// to the TrapHandler it was given. What a call means is the kernel's.
//
// Every space is identity-mapped and laid out the same way (layout.go):
// the ABI page with its stubs, the ring-0 stub pages kvm needs, the trap
// page, the vCPU areas and the page-table pool, in one system Memory below
// abi.UserBase, and the user range above it, backed by a Window that the
// kernel maps Memory objects into. PageTables builds the tables the CPU
// walks in that pool; a Shell is a Machine with both mapped, which a
// ShellPool keeps for the next space where the backend can recycle it.
package machine
