// Package vmm is nestvm's object kernel: the spaces, threads, regions,
// ports and port sets of the ABI (package abi), their handles and rights,
// and the operations on them, run on a backend that executes guest code
// (kvm or emu, through package machine's Backend, Machine and VCPU).
//
// # Layers of the package
//
//	guest code (ring 3)            host code (layers, personalities)
//	     | trap (a store to the trap page)       | Caller.Invoke
//	     v                                       v
//	Thread.Hypercall (dispatch.go) ------> perform: check the handle, the
//	                                       operation, the interface, the
//	                                       rights (check), then the buffer
//	                                       arguments (decodeBuffers)
//	     |                                       |
//	     v                                       v
//	operations, one file per object type: handle_ops.go, space_ops.go,
//	thread_ops.go, region_ops.go, port_ops.go (a port served by host code
//	or a guest), files_ops.go; each checks its arguments before it changes
//	anything, and one that makes an object reserves its handle first
//	     |
//	     v
//	objects: space.go, thread.go, region.go, port.go, ipc.go, futex.go,
//	files.go, stdin.go, timepage.go; state.go reads any object's whole state
//	     |
//	     v
//	package machine: a Shell per space (a Machine with its stub pages,
//	page tables and user window), the host budgets, the backends below
//
// A guest's call and a Go layer's call take the same path from perform on:
// the host API (hostapi.go, and hostapi_ops.go generated from abi) only
// passes Go byte slices where a guest passes addresses. An operation on a
// port served by host code (a files root, a console, a layer's stand-in)
// reaches its Server on the caller's goroutine; on a guest-served port it
// becomes a message (ipc.go).
//
// # A thread's life
//
// thread_status reports four states (abi.ThreadNew and the rest):
//
//	new ──thread_start──> running <──thread_start── stopped <──thread_stop── running
//	                         │                        ^
//	                         │ fault                  │ reply to the fault message
//	                         v                        │ (resume, or resume with registers)
//	                      in fault ───────────────────┘
//	any state ──thread_exit, space end, fatal fault──> exited
//
// A thread in fault is reported as stopped while its fault message waits
// for a reply, and as running while a FaultServer serves its fault inline.
// Running includes blocked in an operation (port_receive, port_call,
// futex_wait): a stop ends the wait, and the thread re-issues the call
// when started again, so a stop is never visible to the program.
//
// # The fault path
//
// A fault (an exception, a page fault, a syscall instruction) stops the
// thread in its backend and reaches handleFault (exception.go), which
// chooses, in order: a handler the kernel installed for the space, the
// keeper of a kept region's absent page (a page request message; the
// keeper supplies the page and the access is retried), a FaultServer on
// the exception port (served inline on the faulting thread's goroutine,
// faultserver.go: how the Linux personality serves system calls), or a
// fault message to the exception port, whose reply resumes the thread,
// resumes it with new registers, or kills the space. With no exception
// port the space ends.
//
// Every failure a guest can cause is an abi.Error returned to it; nothing
// a guest passes may make the monitor panic or reach another space's
// objects.
package vmm
