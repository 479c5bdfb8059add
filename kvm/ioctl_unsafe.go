//go:build linux && amd64

package kvm

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"
)

// ioctl numbers gokvm does not export, built with its helpers.
var (
	ioctlRun     = gokvm.IIO(0x80)
	ioctlGetFPU  = gokvm.IIOR(0x8c, unsafe.Sizeof(kvmFPU{}))
	ioctlSetFPU  = gokvm.IIOW(0x8d, unsafe.Sizeof(kvmFPU{}))
	ioctlSetAttr = gokvm.IIOW(0xe1, unsafe.Sizeof(kvmDeviceAttr{}))
)

// kvmDeviceAttr is struct kvm_device_attr.
type kvmDeviceAttr struct {
	Flags uint32
	Group uint32
	Attr  uint64
	Addr  uint64
}

// The vCPU attribute that sets the guest's TSC offset
// (KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET; Linux 5.16 and later).
const (
	attrGroupTSC  = 0
	attrTSCOffset = 0
)

// zeroTSCOffset makes the guest's rdtsc read the host's counter, as the
// time page a clock offers assumes (vmm.ClockServer). KVM otherwise
// starts each VM's counter near 0.
func zeroTSCOffset(fd uintptr) error {
	var off uint64
	a := kvmDeviceAttr{Group: attrGroupTSC, Attr: attrTSCOffset, Addr: uint64(uintptr(unsafe.Pointer(&off)))}
	return retry(func() error {
		_, err := gokvm.Ioctl(fd, ioctlSetAttr, uintptr(unsafe.Pointer(&a)))
		return err
	})
}

// kvmFPU is struct kvm_fpu.
type kvmFPU struct {
	FPR        [8][16]byte
	FCW        uint16
	FSW        uint16
	FTWX       uint8
	_          uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]byte
	MXCSR      uint32
	_          uint32
}

// runKVM enters the guest once. Unlike gokvm.Run it reports EINTR, which
// tells a stop from an exit.
func runKVM(fd uintptr) error {
	_, err := gokvm.Ioctl(fd, ioctlRun, 0)
	return err
}

func getFPU(fd uintptr, f *kvmFPU) error {
	return retry(func() error {
		_, err := gokvm.Ioctl(fd, ioctlGetFPU, uintptr(unsafe.Pointer(f)))
		return err
	})
}

func setFPU(fd uintptr, f *kvmFPU) error {
	return retry(func() error {
		_, err := gokvm.Ioctl(fd, ioctlSetFPU, uintptr(unsafe.Pointer(f)))
		return err
	})
}

// runArea is the vCPU's mmap'd struct kvm_run.
type runArea struct {
	mem []byte
	r   *gokvm.RunData
}

func mapRunArea(vcpuFd int, size int) (*runArea, error) {
	mem, err := unix.Mmap(vcpuFd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap kvm_run: %w", err)
	}
	return &runArea{mem: mem, r: (*gokvm.RunData)(unsafe.Pointer(&mem[0]))}, nil
}

func (a *runArea) unmap() error { return unix.Munmap(a.mem) }

// setImmediateExit writes kvm_run.immediate_exit (byte 1 of the area);
// Stop calls it from another thread, so it updates the aligned 32-bit word
// holding it atomically.
func (a *runArea) setImmediateExit(on bool) {
	w := (*uint32)(unsafe.Pointer(&a.mem[0]))
	for {
		old := atomic.LoadUint32(w)
		v := old &^ 0xff00
		if on {
			v |= 0x100
		}
		if atomic.CompareAndSwapUint32(w, old, v) {
			return
		}
	}
}

// Offsets in struct kvm_run past the exit union, and the bits of
// kvm_valid_regs and kvm_dirty_regs (KVM_CAP_SYNC_REGS): with them KVM
// copies the registers into the run area at every exit and loads the ones
// marked dirty at the next KVM_RUN, which saves an ioctl each way on every
// hypercall.
const (
	runValidRegs = 288
	runDirtyRegs = 296
	runSyncRegs  = 304 // struct kvm_sync_regs: kvm_regs, then kvm_sregs
	syncRegs     = 1 << 0
	syncSregs    = 1 << 1
)

// syncArea returns the run area's copies of the registers.
func (a *runArea) syncArea() (*gokvm.Regs, *gokvm.Sregs) {
	r := (*gokvm.Regs)(unsafe.Pointer(&a.mem[runSyncRegs]))
	s := (*gokvm.Sregs)(unsafe.Pointer(&a.mem[runSyncRegs+unsafe.Sizeof(gokvm.Regs{})]))
	return r, s
}

// word returns the 64-bit field of kvm_run at off.
func (a *runArea) word(off int) *uint64 { return (*uint64)(unsafe.Pointer(&a.mem[off])) }

// ioData returns the bytes of an I/O exit's data.
func (a *runArea) ioData(offset uint64, n int) []byte {
	if offset > uint64(len(a.mem)) || uint64(len(a.mem))-offset < uint64(n) {
		return nil
	}
	return a.mem[offset : offset+uint64(n)]
}

// memoryRegion registers or removes (size 0) a memory slot.
func memoryRegion(vmFd uintptr, slot uint32, gpa uint64, mem []byte, flags uint32) error {
	r := gokvm.UserspaceMemoryRegion{Slot: slot, Flags: flags, GuestPhysAddr: gpa}
	if len(mem) > 0 {
		r.MemorySize = uint64(len(mem))
		r.UserspaceAddr = uint64(uintptr(unsafe.Pointer(&mem[0])))
	}
	return retry(func() error { return gokvm.SetUserMemoryRegion(vmFd, &r) })
}
