//go:build cgo && linux && amd64

package emu

// The binding: a small Go API over Unicorn and the hooks of hooks.c, with
// Go types only in its signatures. It is the package's one file with cgo
// or unsafe (internal/archtest checks), so the cgo pointer rules hold here
// or nowhere: the hooks reach a vCPU only through a cgo.Handle, and C
// memory keeps no Go pointer; the host memory engines map is the
// machine's, never Go's heap.

/*
#cgo LDFLAGS: -lunicorn
#include <stdlib.h>
#include "hooks.h"
*/
import "C"

import (
	"errors"
	"runtime/cgo"
	"sync/atomic"
	"unsafe"

	"nestvm/machine"
)

// UcError is an error code returned by the Unicorn library.
type UcError uint32

// ucOK and ucInsnInvalid are the codes of a run that Run tells apart: one
// that a hook or a Stop ended, and one ended by an instruction the
// emulator does not know (ud2).
const (
	ucOK          UcError = C.UC_ERR_OK
	ucInsnInvalid UcError = C.UC_ERR_INSN_INVALID
)

func (e UcError) Error() string { return "unicorn: " + C.GoString(C.uc_strerror(C.uc_err(e))) }

// ucErr is nil for UC_ERR_OK, else e as an error.
func ucErr(e C.uc_err) error {
	if e == C.UC_ERR_OK {
		return nil
	}
	return UcError(e)
}

// unicornVersion reports the major and minor version of the linked-in
// library, and its whole version word (major, minor, patch, extra, a byte
// each).
func unicornVersion() (major, minor, word uint32) {
	var ma, mi C.uint
	w := C.uc_version(&ma, &mi)
	return uint32(ma), uint32(mi), uint32(w)
}

// trimHeap gives the host the free memory of malloc's heaps.
func trimHeap() { C.nv_trim() }

// Why the last run of an engine stopped, as its hooks recorded it.
const (
	exitNone      = C.NV_EXIT_NONE
	exitHcall     = C.NV_EXIT_HCALL
	exitIntr      = C.NV_EXIT_INTR
	exitMem       = C.NV_EXIT_MEM
	exitIllegalIO = C.NV_EXIT_ILLEGAL_IO
	exitGap       = C.NV_EXIT_GAP
	exitSyscall   = C.NV_EXIT_SYSCALL
	exitTrapRead  = C.NV_EXIT_TRAP_READ
	exitDefer     = C.NV_EXIT_DEFER
)

// What the hypercall hook does after a call (machine.CallAction, and
// callResync: continue once the engine has taken the regions the call
// gave the machine, or dropped the code it changed).
const (
	callContinue = C.NV_CALL_CONTINUE
	callStop     = C.NV_CALL_STOP
	callRestart  = C.NV_CALL_RESTART
	callResync   = C.NV_CALL_RESYNC
)

// Unicorn memory access types (uc_mem_type) the invalid-memory hook sees.
const (
	ucMemReadUnmapped  = C.UC_MEM_READ_UNMAPPED
	ucMemWriteUnmapped = C.UC_MEM_WRITE_UNMAPPED
	ucMemFetchUnmapped = C.UC_MEM_FETCH_UNMAPPED
	ucMemWriteProt     = C.UC_MEM_WRITE_PROT
	ucMemReadProt      = C.UC_MEM_READ_PROT
	ucMemFetchProt     = C.UC_MEM_FETCH_PROT
)

// ucReg names a Unicorn x86 register.
type ucReg int

// The registers enter sets one by one.
const (
	regCR0  ucReg = C.UC_X86_REG_CR0
	regCR3  ucReg = C.UC_X86_REG_CR3
	regCR4  ucReg = C.UC_X86_REG_CR4
	regCS   ucReg = C.UC_X86_REG_CS
	regSS   ucReg = C.UC_X86_REG_SS
	regRSP  ucReg = C.UC_X86_REG_RSP
	regGDTR ucReg = C.UC_X86_REG_GDTR
	regIDTR ucReg = C.UC_X86_REG_IDTR
)

// lateTable is the machine's record of memory it gained after its first
// vCPU (nv_late), which gap fillers read while their engine runs. It is C
// memory because engines hold pointers to it.
type lateTable struct{ t *C.nv_late }

// newLateTable allocates an empty table; nil when out of memory.
func newLateTable() *lateTable {
	t := (*C.nv_late)(C.calloc(1, C.sizeof_nv_late))
	if t == nil {
		return nil
	}
	return &lateTable{t}
}

// set lets gap fillers serve mem at gpa, if it lies in one of the GiBs the
// table covers.
func (l *lateTable) set(gpa uint64, mem []byte) {
	size := uint64(len(mem))
	if n := gpa >> C.NV_LATE_SHIFT; n < C.NV_LATE_CHUNKS && (gpa+size-1)>>C.NV_LATE_SHIFT == n {
		C.nv_late_set(l.t, C.unsigned(n), C.uintptr_t(uintptr(unsafe.Pointer(&mem[0]))-uintptr(gpa)), C.uint64_t(gpa), C.uint64_t(gpa+size))
	}
}

// clear forgets the memory set at gpa, if the table has it.
func (l *lateTable) clear(gpa uint64) {
	if n := gpa >> C.NV_LATE_SHIFT; n < C.NV_LATE_CHUNKS && l.t.lo[n] == C.uint64_t(gpa) {
		C.nv_late_set(l.t, C.unsigned(n), 0, 0, 0)
	}
}

// free releases the table; no engine may still hold it.
func (l *lateTable) free() { C.free(unsafe.Pointer(l.t)) }

// engine is one Unicorn instance with the hooks of hooks.c, and the state
// they share with Go (nv_cpu, C memory so that the hooks can hold it while
// Go's garbage collector runs).
type engine struct {
	c      *C.nv_cpu
	handle cgo.Handle
	gaps   []*C.nv_gap // what the gap fillers' callbacks get
}

// openEngine opens an engine for v, whose hypercalls its hook serves
// (nvHypercall), trapping as s says; deferOps is the bitmap of operations
// the hook leaves to Run. The engine has no hooks and no memory yet.
func openEngine(v *vcpu, s *machine.CPUSetup, deferOps [2]uint64) (*engine, error) {
	c := (*C.nv_cpu)(C.calloc(1, C.sizeof_nv_cpu))
	if c == nil {
		return nil, errors.New("out of memory")
	}
	if err := ucErr(C.uc_open(C.UC_ARCH_X86, C.UC_MODE_64, &c.uc)); err != nil {
		C.free(unsafe.Pointer(c))
		return nil, err
	}
	e := &engine{c: c, handle: cgo.NewHandle(v)}
	c.handle = C.uintptr_t(e.handle)
	c.trap_addr = C.uint64_t(s.TrapAddr)
	c.hc_port = C.uint32_t(s.HypercallPort)
	c.null_port = C.uint32_t(s.NullPort)
	c.enter_port = C.uint32_t(s.EnterPort)
	for i, w := range deferOps {
		c.defer_ops[i] = C.uint64_t(w)
	}
	return e, nil
}

// close closes the engine and frees what it held; its hooks are gone, so
// nothing reaches the vCPU through it any more.
func (e *engine) close() {
	c := e.c
	if c.ctx != nil {
		C.uc_context_free(c.ctx)
	}
	C.uc_close(c.uc)
	C.free(unsafe.Pointer(c))
	for _, g := range e.gaps {
		C.free(unsafe.Pointer(g))
	}
	e.handle.Delete()
	e.c, e.gaps, e.handle = nil, nil, 0
}

// rebind makes the engine's hooks serve v from now on: an engine a closed
// vCPU parked (see park in emu.go) goes to the next vCPU that takes it.
func (e *engine) rebind(v *vcpu) {
	e.handle.Delete()
	e.handle = cgo.NewHandle(v)
	e.c.handle = C.uintptr_t(e.handle)
}

// flushCode drops every block the engine translated.
func (e *engine) flushCode() error { return ucErr(C.nv_flush_code(e.c.uc)) }

// forgetCode drops the blocks translated from [start, end), which lies in
// one region of the engine's map (see nv_forget_code).
func (e *engine) forgetCode(start, end uint64) error {
	return ucErr(C.nv_forget_code(e.c.uc, C.uint64_t(start), C.uint64_t(end)))
}

// addHooks installs the hooks of hooks.c.
func (e *engine) addHooks() error { return ucErr(C.nv_add_hooks(e.c)) }

// setStop raises or clears the stop flag the hooks read; any thread may
// call it while the engine is open.
func (e *engine) setStop(on bool) {
	var x int32
	if on {
		x = 1
	}
	atomic.StoreInt32((*int32)(unsafe.Pointer(&e.c.stop_req)), x)
}

// mapMemory maps mem at gpa, readable and writable, and executable when
// exec. mem must not be Go memory: the engine keeps pointing into it.
func (e *engine) mapMemory(gpa uint64, mem []byte, exec bool) error {
	return ucErr(C.uc_mem_map_ptr(e.c.uc, C.uint64_t(gpa), C.size_t(len(mem)), ucPerm(exec), unsafe.Pointer(&mem[0])))
}

// protect makes [gpa, gpa+size) readable and writable, and executable
// when exec.
func (e *engine) protect(gpa, size uint64, exec bool) error {
	return ucErr(C.uc_mem_protect(e.c.uc, C.uint64_t(gpa), C.size_t(size), ucPerm(exec)))
}

func ucPerm(exec bool) C.uint32_t {
	perm := C.uint32_t(C.UC_PROT_READ | C.UC_PROT_WRITE)
	if exec {
		perm |= C.UC_PROT_EXEC
	}
	return perm
}

// mapTrap maps the trap page's MMIO region at addr.
func (e *engine) mapTrap(addr uint64) error { return ucErr(C.nv_map_trap(e.c, C.uint64_t(addr))) }

// mapGap maps a gap filler over [from, end), which serves what late
// holds.
func (e *engine) mapGap(from, end uint64, late *lateTable) error {
	g := (*C.nv_gap)(C.calloc(1, C.sizeof_nv_gap))
	if g == nil {
		return errors.New("out of memory")
	}
	g.c, g.late, g.base = e.c, late.t, C.uint64_t(from)
	if err := ucErr(C.nv_map_gap(g, C.uint64_t(end-from))); err != nil {
		C.free(unsafe.Pointer(g))
		return err
	}
	e.gaps = append(e.gaps, g)
	return nil
}

// writeMem writes b at the guest address addr.
func (e *engine) writeMem(addr uint64, b []byte) error {
	return ucErr(C.uc_mem_write(e.c.uc, C.uint64_t(addr), unsafe.Pointer(&b[0]), C.size_t(len(b))))
}

// writeReg writes one register.
func (e *engine) writeReg(reg ucReg, val uint64) error {
	x := C.uint64_t(val)
	return ucErr(C.uc_reg_write(e.c.uc, C.int(reg), unsafe.Pointer(&x)))
}

// readReg reads one register.
func (e *engine) readReg(reg ucReg) (uint64, error) {
	var x C.uint64_t
	err := ucErr(C.uc_reg_read(e.c.uc, C.int(reg), unsafe.Pointer(&x)))
	return uint64(x), err
}

// writeMSR writes a model-specific register.
func (e *engine) writeMSR(msr uint32, val uint64) error {
	return ucErr(C.nv_write_msr(e.c.uc, C.uint32_t(msr), C.uint64_t(val)))
}

// writeTable writes a descriptor-table register (regGDTR, regIDTR).
func (e *engine) writeTable(reg ucReg, base uint64, limit uint32) error {
	return ucErr(C.nv_write_table(e.c.uc, C.int(reg), C.uint64_t(base), C.uint32_t(limit)))
}

// regSlice views Regs (20 uint64 fields, in the order nv_cpu.regs uses) as
// a slice.
func regSlice(r *machine.Regs) []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(r)), C.NV_NREGS)
}

// writeRegs writes the thread's registers, in one batch.
func (e *engine) writeRegs(r *machine.Regs) error {
	for i, x := range regSlice(r) {
		e.c.regs[i] = C.uint64_t(x)
	}
	return ucErr(C.nv_write_regs(e.c))
}

// readRegs reads the thread's registers, in one batch.
func (e *engine) readRegs(r *machine.Regs) error {
	if err := ucErr(C.nv_read_regs(e.c)); err != nil {
		return err
	}
	for i := range regSlice(r) {
		regSlice(r)[i] = uint64(e.c.regs[i])
	}
	return nil
}

// readFPU reads the x87/SSE state, as FXSAVE lays it out.
func (e *engine) readFPU(f *machine.FPU) error {
	if err := ucErr(C.nv_read_fpu(e.c, &e.c.fpu[0])); err != nil {
		return err
	}
	copy(f[:], unsafe.Slice((*byte)(unsafe.Pointer(&e.c.fpu[0])), len(e.c.fpu)))
	return nil
}

// writeFPU writes the x87/SSE state, as FXSAVE lays it out.
func (e *engine) writeFPU(f *machine.FPU) error {
	return ucErr(C.nv_write_fpu(e.c, (*C.uint8_t)(unsafe.Pointer(&f[0]))))
}

// flushTLB drops the engine's cached translations (see nv_flush_tlb).
func (e *engine) flushTLB() error { return ucErr(C.nv_flush_tlb(e.c.uc)) }

// allocContext allocates the context that the EnterPort trap saves and
// restoreContext restores.
func (e *engine) allocContext() error { return ucErr(C.uc_context_alloc(e.c.uc, &e.c.ctx)) }

// restoreContext restores the context saved on entering ring 3.
func (e *engine) restoreContext() error { return ucErr(C.uc_context_restore(e.c.uc, e.c.ctx)) }

// run runs guest code from rip until a hook or a Stop stops the engine,
// and returns uc_emu_start's code; exit says what the hooks recorded.
func (e *engine) run(rip uint64) UcError {
	e.c.exit = exitNone
	return UcError(C.uc_emu_start(e.c.uc, C.uint64_t(rip), 0, 0, 0))
}

// runEntry is enter's run from rip: the EnterPort trap saves the context
// (entered reports whether it ran), and a Stop does not cut the run
// short.
func (e *engine) runEntry(rip uint64) (entered bool, err error) {
	e.c.entering = 1
	e.c.priming = 1
	code := e.run(rip)
	e.c.priming = 0
	if code != ucOK {
		return e.c.entering == 0, code
	}
	return e.c.entering == 0, nil
}

// exitRecord is what the hooks recorded of the last run (see nv_cpu).
type exitRecord struct {
	kind, action, memtype int
	intno, port           uint32
	cr2, addr, rip        uint64
}

// exit returns what the hooks recorded of the last run.
func (e *engine) exit() exitRecord {
	c := e.c
	return exitRecord{
		kind: int(c.exit), action: int(c.action), memtype: int(c.memtype),
		intno: uint32(c.intno), port: uint32(c.port),
		cr2: uint64(c.cr2), addr: uint64(c.addr), rip: uint64(c.rip),
	}
}

// loadCall fills call with the arguments of the hypercall the hook caught.
func (e *engine) loadCall(call *machine.Call) {
	c := e.c
	call.RSP = uint64(c.rsp)
	for i := range call.Args {
		call.Args[i] = uint64(c.args[i])
	}
}

// setResult gives the hook the results of the hypercall it is serving.
func (e *engine) setResult(ret [2]uint64) {
	e.c.ret[0] = C.uint64_t(ret[0])
	e.c.ret[1] = C.uint64_t(ret[1])
}

// nvHypercall is the hypercall hook's way into Go: it serves the call of
// the vCPU that h names and returns what the hook does next (callContinue
// and the others).
//
//export nvHypercall
func nvHypercall(h C.uintptr_t) C.int {
	return C.int(cgo.Handle(h).Value().(*vcpu).hypercall())
}
