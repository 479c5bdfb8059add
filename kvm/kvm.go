//go:build linux && amd64

package kvm

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"nestvm/vmm"
)

func init() { vmm.Register(backend{}) }

// Guest-physical pages KVM needs for itself on Intel without unrestricted
// guest support: three for KVM_SET_TSS_ADDR and one for the identity-map
// page. Both ioctls take 32-bit addresses, so they cannot go above the
// user range; they sit in the first megabyte, which the monitor never maps.
const (
	tssAddr         = 0xfb000
	identityMapAddr = 0xfe000
)

// device is /dev/kvm, opened once per process.
var device = sync.OnceValues(func() (*deviceInfo, error) {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(err)
	}
	d := &deviceInfo{fd: uintptr(fd)}
	fail := func(err error) (*deviceInfo, error) {
		unix.Close(fd)
		return nil, err
	}
	if v, err := gokvm.GetAPIVersion(d.fd); err != nil || v != 12 {
		return fail(fmt.Errorf("/dev/kvm speaks API version %d (%v), not 12; use --backend emu", v, err))
	}
	for _, c := range []struct {
		cap  gokvm.Capability
		name string
	}{
		{gokvm.CapUserMemory, "user memory"},
		{gokvm.CapImmediateExit, "immediate exit"},
		{gokvm.CapSetTSSAddr, "TSS address"},
	} {
		if ok, err := gokvm.CheckExtension(d.fd, c.cap); err != nil || ok == 0 {
			return fail(fmt.Errorf("/dev/kvm lacks the %s capability this backend needs (Linux 4.11 or newer); use --backend emu", c.name))
		}
	}
	slots, err := gokvm.CheckExtension(d.fd, gokvm.CapNRMemSlots)
	if err != nil || slots == 0 {
		slots = 32 // the documented minimum
	}
	d.slots = int(slots)
	size, err := gokvm.GetVCPUMMmapSize(d.fd)
	if err != nil {
		return fail(fmt.Errorf("/dev/kvm: vCPU area size: %w", err))
	}
	d.runSize = int(size)
	d.cpuid = &gokvm.CPUID{Nent: 256, Entries: make([]gokvm.CPUIDEntry2, 256)}
	if err := gokvm.GetSupportedCPUID(d.fd, d.cpuid); err != nil {
		return fail(fmt.Errorf("/dev/kvm: supported CPUID: %w", err))
	}
	return d, nil
})

type deviceInfo struct {
	fd      uintptr
	slots   int
	runSize int
	cpuid   *gokvm.CPUID
}

// openError explains why /dev/kvm would not open, with what to do.
func openError(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return errors.New("no /dev/kvm on this host (no KVM, or a VM without nested virtualisation); use --backend emu")
	case errors.Is(err, os.ErrPermission):
		return errors.New("/dev/kvm: permission denied; add your user to the kvm group, or use --backend emu")
	}
	return fmt.Errorf("/dev/kvm: %w; use --backend emu", err)
}

type backend struct{}

// Name implements vmm.Backend.
func (backend) Name() string { return "kvm" }

// Available implements vmm.Backend.
func (backend) Available() error {
	_, err := device()
	return err
}

// Describe says which KVM the host offers, for nestvm info.
func (backend) Describe() string {
	d, err := device()
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("/dev/kvm, API 12, %d memory slots", d.slots)
}

// NewMachine implements vmm.Backend: one KVM VM.
func (backend) NewMachine(cfg vmm.MachineConfig) (vmm.Machine, error) {
	d, err := device()
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	vmFd, err := gokvm.CreateVM(d.fd)
	if err != nil {
		return nil, fmt.Errorf("create vm: %w", err)
	}
	m := &machine{log: log, dev: d, fd: vmFd, cpus: map[*vcpu]struct{}{}}
	if err := gokvm.SetTSSAddr(vmFd, tssAddr); err != nil {
		unix.Close(int(vmFd))
		return nil, fmt.Errorf("create vm: set TSS address: %w", err)
	}
	if err := gokvm.SetIdentityMapAddr(vmFd, identityMapAddr); err != nil {
		unix.Close(int(vmFd))
		return nil, fmt.Errorf("create vm: set identity map address: %w", err)
	}
	return m, nil
}

// slotMapping is one memory slot.
type slotMapping struct {
	slot  uint32
	gpa   uint64
	mem   []byte
	dirty bool // dirty logging on
}

// machine is one KVM VM.
type machine struct {
	log  hclog.Logger
	dev  *deviceInfo
	fd   uintptr
	mu   sync.Mutex
	maps []*slotMapping // sorted by gpa
	used map[uint32]bool
	cpus map[*vcpu]struct{}
}

// MapMemory implements vmm.Machine with one memory slot per mapping.
func (m *machine) MapMemory(gpa uint64, mem []byte, perm vmm.Perm) error {
	size := uint64(len(mem))
	if gpa%4096 != 0 || size%4096 != 0 || size == 0 || gpa+size < gpa {
		return fmt.Errorf("map %#x+%#x: not page-aligned", gpa, size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.maps {
		if gpa < o.gpa+uint64(len(o.mem)) && o.gpa < gpa+size {
			return fmt.Errorf("map %#x+%#x: overlaps the mapping at %#x", gpa, size, o.gpa)
		}
	}
	if m.used == nil {
		m.used = map[uint32]bool{}
	}
	slot := uint32(0)
	for m.used[slot] {
		slot++
	}
	if int(slot) >= m.dev.slots {
		return fmt.Errorf("map %#x+%#x: all %d slots in use: %w", gpa, size, m.dev.slots, vmm.ErrNoSlots)
	}
	if err := memoryRegion(m.fd, slot, gpa, mem, 0); err != nil {
		return fmt.Errorf("map %#x+%#x: KVM_SET_USER_MEMORY_REGION: %w", gpa, size, err)
	}
	m.used[slot] = true
	m.maps = append(m.maps, &slotMapping{slot: slot, gpa: gpa, mem: mem})
	sort.Slice(m.maps, func(i, j int) bool { return m.maps[i].gpa < m.maps[j].gpa })
	return nil
}

// UnmapMemory implements vmm.Machine.
func (m *machine) UnmapMemory(gpa uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, o := range m.maps {
		if o.gpa == gpa {
			if err := memoryRegion(m.fd, o.slot, gpa, nil, 0); err != nil {
				return fmt.Errorf("unmap %#x: %w", gpa, err)
			}
			delete(m.used, o.slot)
			m.maps = append(m.maps[:i], m.maps[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("unmap %#x: no mapping starts there", gpa)
}

// ProtectMemory implements vmm.Machine. The page tables enforce every
// permission on KVM, so it only checks the range.
func (m *machine) ProtectMemory(gpa, size uint64, perm vmm.Perm) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.find(gpa); o == nil || gpa+size < gpa || gpa+size > o.gpa+uint64(len(o.mem)) {
		return fmt.Errorf("protect %#x+%#x: not inside one mapping", gpa, size)
	}
	return nil
}

func (m *machine) find(gpa uint64) *slotMapping {
	for _, o := range m.maps {
		if gpa >= o.gpa && gpa < o.gpa+uint64(len(o.mem)) {
			return o
		}
	}
	return nil
}

// read copies guest-physical memory at gpa into buf.
func (m *machine) read(gpa uint64, buf []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.find(gpa)
	if o == nil || gpa+uint64(len(buf)) > o.gpa+uint64(len(o.mem)) {
		return fmt.Errorf("guest memory at %#x+%d is not mapped", gpa, len(buf))
	}
	copy(buf, o.mem[gpa-o.gpa:])
	return nil
}

// DirtyLogger is implemented by machines that can report which pages the
// guest wrote (KVM's dirty log), for incremental checkpoints.
type DirtyLogger interface {
	// StartDirtyLog starts logging writes to the mapping at gpa.
	StartDirtyLog(gpa uint64) error
	// DirtyLog returns one bit per page of the mapping at gpa, set for
	// pages written since the last call (or StartDirtyLog), and clears it.
	DirtyLog(gpa uint64) ([]uint64, error)
}

var _ DirtyLogger = (*machine)(nil)

// StartDirtyLog implements DirtyLogger.
func (m *machine) StartDirtyLog(gpa uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.maps {
		if o.gpa == gpa {
			if err := memoryRegion(m.fd, o.slot, gpa, o.mem, 1); err != nil { // KVM_MEM_LOG_DIRTY_PAGES
				return fmt.Errorf("dirty log %#x: %w", gpa, err)
			}
			o.dirty = true
			return nil
		}
	}
	return fmt.Errorf("dirty log %#x: no mapping starts there", gpa)
}

// DirtyLog implements DirtyLogger.
func (m *machine) DirtyLog(gpa uint64) ([]uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.maps {
		if o.gpa == gpa {
			if !o.dirty {
				return nil, fmt.Errorf("dirty log %#x: not started", gpa)
			}
			pages := len(o.mem) / 4096
			bitmap := make([]uint64, (pages+63)/64)
			if err := dirtyLog(m.fd, o.slot, bitmap); err != nil {
				return nil, fmt.Errorf("dirty log %#x: %w", gpa, err)
			}
			return bitmap, nil
		}
	}
	return nil, fmt.Errorf("dirty log %#x: no mapping starts there", gpa)
}

// Close implements vmm.Machine.
func (m *machine) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.cpus) > 0 {
		return fmt.Errorf("close vm: %d vCPUs still open", len(m.cpus))
	}
	return unix.Close(int(m.fd))
}
