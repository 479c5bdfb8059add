//go:build linux && amd64

package kvm

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"nestvm/internal/testutil"
	"nestvm/machine"
)

func TestIoctlNumbers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"KVM_RUN", ioctlRun, 0xae80},
		{"KVM_GET_FPU", ioctlGetFPU, 0x81a0ae8c},
		{"KVM_SET_FPU", ioctlSetFPU, 0x41a0ae8d},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}

func TestFPUConversionRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100; i++ {
		var f machine.FPU
		for j := range f {
			f[j] = byte(r.Uint32())
		}
		// Only what struct kvm_fpu carries survives: the reserved byte 5,
		// the MXCSR mask (a constant) and the reserved tail are not kept.
		f[5] = 0
		f[machine.FXMXCSRMsk], f[machine.FXMXCSRMsk+1], f[machine.FXMXCSRMsk+2], f[machine.FXMXCSRMsk+3] = 0xff, 0xff, 0, 0
		clear(f[machine.FXXMM0+16*16:])
		k := toKVMFPU(&f)
		back := fromKVMFPU(&k)
		if back != f {
			t.Fatalf("round trip changed the state:\n% x\n% x", f[:64], back[:64])
		}
	}
	reset := machine.ResetFPU()
	k := toKVMFPU(&reset)
	if k.FCW != 0x37f || k.MXCSR != 0x1f80 {
		t.Fatalf("reset state converts to fcw %#x mxcsr %#x", k.FCW, k.MXCSR)
	}
}

func TestUserSregs(t *testing.T) {
	setup := machine.CPUSetup{
		CR0: machine.CR0Value, CR3: 0x200000, CR4: machine.CR4Value, EFER: machine.EFERValue,
		GDTBase: 0x110000, GDTLimit: 0x37, IDTBase: 0x102000, IDTLimit: 0xfff,
		TSSBase: 0x110080, TSSLimit: 0x67, TSSSel: machine.SelTSS,
		UserCS: machine.SelUserCode, UserSS: machine.SelUserData,
	}
	in := gokvm.Sregs{ApicBase: 0xfee00900}
	s := userSregs(in, setup, 0x1234, 0x5678)
	if s.CS.Selector != 0x23 || s.CS.DPL != 3 || s.CS.L != 1 || s.CS.DB != 0 || s.CS.Typ != 0xb || s.CS.S != 1 || s.CS.Present != 1 {
		t.Errorf("CS %+v: want a present 64-bit DPL-3 code segment", s.CS)
	}
	for name, seg := range map[string]gokvm.Segment{"SS": s.SS, "DS": s.DS, "ES": s.ES, "FS": s.FS, "GS": s.GS} {
		if seg.Selector != 0x1b || seg.DPL != 3 || seg.Typ != 3 || seg.S != 1 || seg.Present != 1 {
			t.Errorf("%s %+v: want a present DPL-3 writable data segment", name, seg)
		}
	}
	if s.FS.Base != 0x1234 || s.GS.Base != 0x5678 {
		t.Errorf("fs/gs base %#x/%#x", s.FS.Base, s.GS.Base)
	}
	if s.TR.Typ != 0xb || s.TR.Base != 0x110080 || s.TR.Limit != 0x67 || s.TR.Selector != 0x28 || s.TR.S != 0 {
		t.Errorf("TR %+v: want the busy 64-bit TSS", s.TR)
	}
	if s.GDT.Base != 0x110000 || s.GDT.Limit != 0x37 || s.IDT.Base != 0x102000 || s.IDT.Limit != 0xfff {
		t.Errorf("GDT %+v IDT %+v", s.GDT, s.IDT)
	}
	if s.CR3 != 0x200000 || s.CR0&(1<<31) == 0 || s.EFER&(1<<10) == 0 || s.CR4&(1<<5) == 0 {
		t.Errorf("control registers cr0 %#x cr3 %#x cr4 %#x efer %#x", s.CR0, s.CR3, s.CR4, s.EFER)
	}
	if s.ApicBase != in.ApicBase {
		t.Errorf("the APIC base was not kept")
	}
}

func TestDecodeIO(t *testing.T) {
	// direction out (1), size 1, port 0x4e, count 1, data at offset 0x1000.
	io := decodeIO(1|1<<8|0x4e<<16|1<<32, 0x1000)
	if !io.out || io.size != 1 || io.port != 0x4e || io.count != 1 || io.offset != 0x1000 {
		t.Fatalf("decoded %+v", io)
	}
	if in := decodeIO(0|4<<8|0x60<<16, 0); in.out || in.size != 4 || in.port != 0x60 {
		t.Fatalf("decoded an in as %+v", in)
	}
}

func TestParseFrame(t *testing.T) {
	var b [machine.FrameSize]byte
	words := []uint64{14, 6, 0x401234, 0x23, 0x3202, 0x7fff0000, 0x1b}
	for i, w := range words {
		for j := 0; j < 8; j++ {
			b[i*8+j] = byte(w >> (8 * j))
		}
	}
	f := parseFrame(b[:])
	if f.vector != 14 || f.errorCode != 6 || f.rip != 0x401234 || f.cs != 0x23 || f.rflags != 0x3202 || f.rsp != 0x7fff0000 || f.ss != 0x1b {
		t.Fatalf("frame %+v", f)
	}
}

func TestExitError(t *testing.T) {
	e := &ExitError{exitShutdown, "boom"}
	if !strings.Contains(e.Error(), "kvm exit 8 (shutdown): boom") {
		t.Fatalf("%q", e.Error())
	}
	if !strings.Contains((&ExitError{200, "x"}).Error(), "unknown to nestvm") {
		t.Fatalf("unknown reasons are not named as such")
	}
}

// TestAvailableExplains checks what a host without usable /dev/kvm hears.
func TestAvailableExplains(t *testing.T) {
	err := backend{}.Available()
	if err == nil {
		testutil.RequireKVM(t) // it works: nothing to explain
		return
	}
	if !strings.Contains(err.Error(), "/dev/kvm") || !strings.Contains(err.Error(), "--backend emu") {
		t.Fatalf("Available() = %q: want it to name /dev/kvm and suggest --backend emu", err)
	}
	_, lerr := machine.Lookup("kvm")
	if lerr == nil || !errors.Is(lerr, err) && !strings.Contains(lerr.Error(), err.Error()) {
		t.Fatalf("Lookup(kvm) = %v, want it to carry %v", lerr, err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errNoEnt, "no /dev/kvm on this host"},
		{errPerm, "permission denied; add your user to the kvm group"},
	} {
		if got := openError(tc.err).Error(); !strings.Contains(got, tc.want) || !strings.Contains(got, "--backend emu") {
			t.Errorf("openError(%v) = %q", tc.err, got)
		}
	}
}

func TestDecodeMMIO(t *testing.T) {
	// A 1-byte store to 0x10304e: phys_addr, then len 1 and is_write 1.
	mm := decodeMMIO(0x10304e, 1|1<<32)
	if mm.addr != 0x10304e || mm.len != 1 || !mm.write {
		t.Fatalf("decoded %+v", mm)
	}
	if ld := decodeMMIO(0x103000, 8); ld.write || ld.len != 8 {
		t.Fatalf("decoded a load as %+v", ld)
	}
}

// TestSyncAreaLayout checks the structs the backend overlays on kvm_run's
// sync area against the kernel's sizes (struct kvm_regs, kvm_sregs).
func TestSyncAreaLayout(t *testing.T) {
	if n := unsafe.Sizeof(gokvm.Regs{}); n != 144 {
		t.Errorf("sizeof kvm_regs = %d, want 144", n)
	}
	if n := unsafe.Sizeof(gokvm.Sregs{}); n != 312 {
		t.Errorf("sizeof kvm_sregs = %d, want 312", n)
	}
	if runSyncRegs+144+312 > 4096 {
		t.Errorf("sync area ends past the first page of kvm_run")
	}
}

// TestChunkedSlots maps a large range and checks that memory slots appear
// only for the chunks ProtectMemory reaches, that the dirty log spans the
// whole mapping, and that unmapping frees every slot.
func TestChunkedSlots(t *testing.T) {
	testutil.RequireKVM(t)
	if err := (backend{}).Available(); err != nil {
		t.Skipf("kvm unavailable: %v", err)
	}
	vm, err := backend{}.NewMachine(machine.MachineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m := vm.(*kvmMachine)
	defer m.Close()
	chunkSize := m.dev.chunk
	base, size := uint64(0x400000), 4*chunkSize
	mem, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	if err := m.MapMemory(base, mem, machine.PermRead|machine.PermWrite); err != nil {
		t.Fatal(err)
	}
	if n := len(m.used); n != 0 {
		t.Fatalf("%d slots before any ProtectMemory, want 0", n)
	}
	// One page in chunk 0, and a range straddling chunks 2 and 3.
	if err := m.ProtectMemory(base, 4096, machine.PermRead); err != nil {
		t.Fatal(err)
	}
	if err := m.ProtectMemory(base+3*chunkSize-4096, 8192, machine.PermRead); err != nil {
		t.Fatal(err)
	}
	if err := m.ProtectMemory(base+16, 4096, machine.PermRead); err != nil {
		t.Fatal(err)
	}
	if err := m.ProtectMemory(base+size-4096, 8192, machine.PermRead); err == nil {
		t.Fatal("a range running past the mapping was accepted")
	}
	got := map[uint64]bool{}
	for n := range m.maps[0].chunks {
		got[n] = true
	}
	if len(got) != 3 || !got[0] || !got[2] || !got[3] {
		t.Fatalf("chunks with slots %v, want 0, 2 and 3", got)
	}
	if err := m.UnmapMemory(base); err != nil {
		t.Fatal(err)
	}
	if n := len(m.used); n != 0 {
		t.Fatalf("%d slots left after unmap", n)
	}
}

// The ioctl numbers gokvm derives from its structs hold only where the
// structs have the kernel's sizes.
func TestStructSizes(t *testing.T) {
	if n := unsafe.Sizeof(gokvm.VCPUEvents{}); n != 64 {
		t.Errorf("struct kvm_vcpu_events is %d bytes, want 64", n)
	}
}

// noCalls is a trap handler for a vCPU that never runs guest code.
type noCalls struct{}

func (noCalls) Hypercall(*machine.Call) machine.CallAction { return machine.CallStop }

// A Run that takes a stop while its Stop is still being made (its caller
// preempted before Stop takes the vCPU's lock, as happens under load) must
// not leave the run area's immediate_exit set with no stop pending: every
// later KVM_RUN would then return EINTR at once, and the thread spin in
// Run without running guest code until some other Stop came (a thread of
// kerneltest's mem area hung so).
func TestStopTakenWhileStopping(t *testing.T) {
	testutil.RequireKVM(t)
	if err := (backend{}).Available(); err != nil {
		t.Skipf("kvm unavailable: %v", err)
	}
	vm, err := backend{}.NewMachine(machine.MachineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	setup := machine.CPUSetup{ // as TestUserSregs: the vCPU never runs guest code
		CR0: machine.CR0Value, CR3: 0x200000, CR4: machine.CR4Value, EFER: machine.EFERValue,
		GDTBase: 0x110000, GDTLimit: 0x37, IDTBase: 0x102000, IDTLimit: 0xfff,
		TSSBase: 0x110080, TSSLimit: 0x67, TSSSel: machine.SelTSS,
		KernelCS: machine.SelKernelCode, UserCS: machine.SelUserCode, UserSS: machine.SelUserData,
	}
	cpu, err := vm.NewVCPU(machine.VCPUConfig{ID: 0, CPU: setup, Handler: noCalls{}})
	if err != nil {
		t.Fatal(err)
	}
	v := cpu.(*vcpu)
	defer v.Close()
	immediate := func() bool {
		return atomic.LoadUint32((*uint32)(unsafe.Pointer(&v.run.mem[0])))&0xff00 != 0
	}
	// Where Stop's caller may be preempted, Run takes whatever stop is
	// marked already; a Run with a stop marked enters no guest code.
	took := false
	stopping = func(s *vcpu) {
		if s == v && s.stopReq.Load() {
			took = true
			if exit, err := s.Run(); err != nil || exit.Kind != machine.ExitStopped {
				t.Errorf("Run with a stop marked: %v, %v; want a stop", exit, err)
			}
		}
	}
	defer func() { stopping = nil }()
	v.Stop()
	stopping = nil
	if immediate() && !v.stopReq.Load() {
		t.Fatalf("Stop left immediate_exit set with no stop pending (a Run took the stop midway: %v)", took)
	}
	if exit, err := v.Run(); err != nil || exit.Kind != machine.ExitStopped {
		t.Fatalf("Run after Stop: %v, %v; want a stop", exit, err)
	}
	if immediate() || v.stopReq.Load() {
		t.Errorf("after Run took the stop: immediate_exit %v, stop pending %v; want neither", immediate(), v.stopReq.Load())
	}
}
