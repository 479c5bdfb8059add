//go:build linux && amd64

package kvm

import (
	"errors"
	"fmt"
	"nestvm/abi"
	"nestvm/machine"
	"os"
	"sort"
	"sync"

	gokvm "github.com/bobuhiro11/gokvm/kvm"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

func init() { machine.Register(backend{}) }

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
	v, err := retryValue(func() (uintptr, error) { return gokvm.GetAPIVersion(d.fd) })
	if err != nil {
		return fail(fmt.Errorf("/dev/kvm does not answer KVM_GET_API_VERSION (%v): it is not a KVM device; use --backend emu", err))
	}
	if v != 12 {
		return fail(fmt.Errorf("/dev/kvm speaks API version %d, not 12; use --backend emu", v))
	}
	for _, c := range []struct {
		cap  gokvm.Capability
		name string
	}{
		{gokvm.CapUserMemory, "user memory"},
		{gokvm.CapImmediateExit, "immediate exit"},
		{gokvm.CapSetTSSAddr, "TSS address"},
	} {
		if ok, err := retryValue(func() (uintptr, error) { return gokvm.CheckExtension(d.fd, c.cap) }); err != nil || ok == 0 {
			return fail(fmt.Errorf("/dev/kvm lacks the %s capability this backend needs (Linux 4.11 or newer); use --backend emu", c.name))
		}
	}
	slots, err := retryValue(func() (uintptr, error) { return gokvm.CheckExtension(d.fd, gokvm.CapNRMemSlots) })
	if err != nil || slots == 0 {
		slots = 32 // the documented minimum
	}
	d.slots = int(slots)
	d.chunk = chunkFor(d.slots)
	size, err := retryValue(func() (uintptr, error) { return gokvm.GetVCPUMMmapSize(d.fd) })
	if err != nil {
		return fail(fmt.Errorf("/dev/kvm: vCPU area size: %w", err))
	}
	d.runSize = int(size)
	d.cpuid = &gokvm.CPUID{Nent: 256, Entries: make([]gokvm.CPUIDEntry2, 256)}
	if err := retry(func() error { return gokvm.GetSupportedCPUID(d.fd, d.cpuid) }); err != nil {
		return fail(fmt.Errorf("/dev/kvm: supported CPUID: %w", err))
	}
	d.portable = portableCPUID(d.cpuid)
	d.cpuidPassesThrough = HostIsPVM()
	return d, nil
})

type deviceInfo struct {
	fd      uintptr
	slots   int
	chunk   uint64 // see chunkFor
	runSize int
	cpuid   *gokvm.CPUID // what the host supports: --cpu host
	// portable is cpuid with its feature words cut to machine.PortableCPU:
	// what guests are offered by default.
	portable *gokvm.CPUID
	// cpuidPassesThrough says guests read the host CPU's own CPUID,
	// whatever table the vCPU is given: PVM runs ring-3 guest code on the
	// CPU itself, and without CPUID faulting the instruction does not
	// exit. The table is still set, for the instructions that do exit.
	cpuidPassesThrough bool
}

// cpuid executes CPUID on the host CPU.
func cpuid(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)

// hostFeatures reads the feature words of the host CPU's own CPUID.
func hostFeatures() machine.CPUFeatures {
	var f machine.CPUFeatures
	for w, loc := range machine.CPUIDWord {
		a, b, c, d := cpuid(loc.Leaf, loc.Subleaf)
		f[w] = [4]uint32{a, b, c, d}[loc.Reg]
	}
	return f
}

// portableCPUID returns a copy of host whose feature words offer only
// what machine.PortableCPU has, and leaf 7 subleaf 1 (AVX-VNNI and such,
// which the emulator lacks) none. The other leaves (cache and topology
// descriptions, the limits) stay: they name no instruction.
func portableCPUID(host *gokvm.CPUID) *gokvm.CPUID {
	c := &gokvm.CPUID{Nent: host.Nent, Entries: append([]gokvm.CPUIDEntry2(nil), host.Entries...)}
	for i := range c.Entries[:c.Nent] {
		e := &c.Entries[i]
		regs := [4]*uint32{&e.Eax, &e.Ebx, &e.Ecx, &e.Edx}
		for w, loc := range machine.CPUIDWord {
			if e.Function == loc.Leaf && e.Index == loc.Subleaf {
				*regs[loc.Reg] &= machine.PortableCPU[w]
			}
		}
		if e.Function == 7 && e.Index == 1 {
			e.Eax, e.Ebx, e.Ecx, e.Edx = 0, 0, 0, 0
		}
	}
	return c
}

// features reads the feature words of c.
func features(c *gokvm.CPUID) machine.CPUFeatures {
	var f machine.CPUFeatures
	for _, e := range c.Entries[:c.Nent] {
		regs := [4]uint32{e.Eax, e.Ebx, e.Ecx, e.Edx}
		for w, loc := range machine.CPUIDWord {
			if e.Function == loc.Leaf && e.Index == loc.Subleaf {
				f[w] = regs[loc.Reg]
			}
		}
	}
	return f
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

// backend is the kvm backend; host says its guests are offered the
// host's whole CPUID (--cpu host) rather than machine.PortableCPU's part.
type backend struct{ host bool }

// WithCPU implements machine.Backend.
func (b backend) WithCPU(model string) (machine.Backend, error) {
	switch model {
	case machine.CPUHost:
		return backend{host: true}, nil
	case machine.CPUPortable:
		return backend{}, nil
	}
	return nil, fmt.Errorf("unknown CPU model %q", model)
}

// CPUFeatures implements machine.Backend: what guests read, which is the
// host CPU's own set where CPUID does not exit (PVM), whichever model was
// asked for.
func (b backend) CPUFeatures() machine.CPUFeatures {
	d, err := device()
	if err != nil {
		return machine.CPUFeatures{}
	}
	if d.cpuidPassesThrough {
		return hostFeatures()
	}
	return features(d.cpuidFor(b.host))
}

// cpuidFor is the CPUID guests are offered: the host's, or its portable part.
func (d *deviceInfo) cpuidFor(host bool) *gokvm.CPUID {
	if host {
		return d.cpuid
	}
	return d.portable
}

// Name implements machine.Backend.
func (backend) Name() string { return "kvm" }

// Available implements machine.Backend.
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
	kind := ""
	if HostIsPVM() {
		kind = ", paravirtual (PVM: ring-0 guest code is emulated, exits cost tens of microseconds; CPUID does not exit, so guests see the host CPU's features whatever --cpu says)"
	}
	return fmt.Sprintf("/dev/kvm, API 12, %d memory slots%s", d.slots, kind)
}

// HostIsPVM reports whether /dev/kvm is served by PVM, the KVM module that
// runs guests without VMX or SVM, inside a VM. Guests behave the same
// there: where PVM raises #UD for `int $n` from ring 3, the backend
// reports the #GP a CPU raises (see intGate).
func HostIsPVM() bool {
	_, err := os.Stat("/sys/module/kvm_pvm")
	return err == nil
}

// NewMachine implements machine.Backend: one KVM VM.
func (b backend) NewMachine(cfg machine.MachineConfig) (machine.Machine, error) {
	d, err := device()
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	vmFd, err := retryValue(func() (uintptr, error) { return gokvm.CreateVM(d.fd) })
	if err != nil {
		return nil, fmt.Errorf("create vm: %w", err)
	}
	m := &kvmMachine{log: log, dev: d, cpuid: d.cpuidFor(b.host), fd: vmFd, cpus: map[*vcpu]struct{}{}}
	if err := retry(func() error { return gokvm.SetTSSAddr(vmFd, tssAddr) }); err != nil {
		unix.Close(int(vmFd))
		return nil, fmt.Errorf("create vm: set TSS address: %w", err)
	}
	if err := retry(func() error { return gokvm.SetIdentityMapAddr(vmFd, identityMapAddr) }); err != nil {
		unix.Close(int(vmFd))
		return nil, fmt.Errorf("create vm: set identity map address: %w", err)
	}
	return m, nil
}

// chunkFor returns how much of a large mapping one memory slot covers on
// a host with slots memory slots. KVM keeps bookkeeping per slot in
// proportion to its size (with shadow paging, as on PVM, 8 bytes per 4
// KiB page: 2 MiB of kernel memory for a slot over a whole GiB of a
// space's user window), so a mapping larger than a chunk gets slots chunk by
// chunk, where the monitor puts memory (ProtectMemory). Every space pays
// for the chunks its memory touches, one at least, so a chunk is as small
// as the slots allow: the smallest power of two from minChunk up that
// covers a whole user window in half the slots.
func chunkFor(slots int) uint64 {
	chunk := uint64(minChunk)
	for chunk < maxChunk && (abi.UserTop-abi.UserBase)/chunk > uint64(slots/2) {
		chunk *= 2
	}
	return chunk
}

// The bounds of chunkFor: 2 MiB, the largest page a chunk may hold whole;
// 64 MiB, past which a space's first touch costs too much.
const (
	minChunk = 2 << 20
	maxChunk = 64 << 20
)

// mapping is one MapMemory range and the memory slots that back it.
type mapping struct {
	gpa    uint64
	mem    []byte
	lazy   bool              // slots are added chunk by chunk
	size   uint64            // of a chunk (chunkFor)
	chunks map[uint64]uint32 // chunk number (from gpa, in size units) -> slot
}

func (o *mapping) end() uint64 { return o.gpa + uint64(len(o.mem)) }

// chunk returns the guest-physical address and host memory of chunk n.
func (o *mapping) chunk(n uint64) (uint64, []byte) {
	if !o.lazy {
		return o.gpa, o.mem
	}
	lo := n * o.size
	hi := min(lo+o.size, uint64(len(o.mem)))
	return o.gpa + lo, o.mem[lo:hi]
}

// kvmMachine is one KVM VM.
type kvmMachine struct {
	log hclog.Logger
	dev *deviceInfo
	// cpuid is what this machine's vCPUs are offered (see backend.host).
	cpuid *gokvm.CPUID
	fd    uintptr
	mu    sync.Mutex
	maps  []*mapping // sorted by gpa
	used  map[uint32]bool
	cpus  map[*vcpu]struct{}
	// zapMem backs the page zapShadow maps.
	zapMem []byte
	// spare are closed vCPUs, by number, kept for reuse.
	spare map[int]spareVCPU
	// tainted is set when a vCPU failed: the VM is not recycled.
	tainted bool
}

// MapMemory implements machine.Machine: a mapping up to a chunk gets one
// memory slot now, a larger one slots as ProtectMemory reaches its chunks.
func (m *kvmMachine) MapMemory(gpa uint64, mem []byte, perm machine.Perm) error {
	size := uint64(len(mem))
	if gpa%4096 != 0 || size%4096 != 0 || size == 0 || gpa+size < gpa {
		return fmt.Errorf("map %#x+%#x: not page-aligned", gpa, size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.maps {
		if gpa < o.end() && o.gpa < gpa+size {
			return fmt.Errorf("map %#x+%#x: overlaps the mapping at %#x", gpa, size, o.gpa)
		}
	}
	o := &mapping{gpa: gpa, mem: mem, lazy: size > m.dev.chunk, size: m.dev.chunk, chunks: map[uint64]uint32{}}
	if !o.lazy {
		if err := m.addSlot(o, 0); err != nil {
			return fmt.Errorf("map %#x+%#x: %w", gpa, size, err)
		}
	}
	m.maps = append(m.maps, o)
	sort.Slice(m.maps, func(i, j int) bool { return m.maps[i].gpa < m.maps[j].gpa })
	return nil
}

// addSlot registers chunk n of o in a free memory slot.
func (m *kvmMachine) addSlot(o *mapping, n uint64) error {
	if m.used == nil {
		m.used = map[uint32]bool{}
	}
	slot := uint32(0)
	for m.used[slot] {
		slot++
	}
	if int(slot) >= m.dev.slots {
		return fmt.Errorf("all %d memory slots in use: %w", m.dev.slots, machine.ErrNoSlots)
	}
	gpa, mem := o.chunk(n)
	if err := memoryRegion(m.fd, slot, gpa, mem, 0); err != nil {
		return fmt.Errorf("KVM_SET_USER_MEMORY_REGION %#x+%#x: %w", gpa, len(mem), err)
	}
	m.used[slot] = true
	o.chunks[n] = slot
	return nil
}

// UnmapMemory implements machine.Machine.
func (m *kvmMachine) UnmapMemory(gpa uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, o := range m.maps {
		if o.gpa != gpa {
			continue
		}
		for n, slot := range o.chunks {
			if err := memoryRegion(m.fd, slot, 0, nil, 0); err != nil {
				return fmt.Errorf("unmap %#x: %w", gpa, err)
			}
			delete(m.used, slot)
			delete(o.chunks, n)
		}
		m.maps = append(m.maps[:i], m.maps[i+1:]...)
		return nil
	}
	return fmt.Errorf("unmap %#x: no mapping starts there", gpa)
}

// CodeChanged implements machine.Machine. It is never called: a CPU
// fetches what memory holds (x86 keeps instruction fetch coherent with
// writes, and each entry to the guest serializes), so Features does not
// say TranslatesCode.
func (m *kvmMachine) CodeChanged(gpa, size uint64) {}

// ProtectMemory implements machine.Machine. The page tables enforce every
// permission on KVM; what it does is give the chunks of a large mapping
// that the range touches their memory slots.
func (m *kvmMachine) ProtectMemory(gpa, size uint64, perm machine.Perm) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.find(gpa)
	if o == nil || size == 0 || gpa+size < gpa || gpa+size > o.end() {
		return fmt.Errorf("protect %#x+%#x: not inside one mapping", gpa, size)
	}
	if !o.lazy {
		return nil
	}
	for n := (gpa - o.gpa) / o.size; n <= (gpa+size-1-o.gpa)/o.size; n++ {
		if _, ok := o.chunks[n]; ok {
			continue
		}
		if err := m.addSlot(o, n); err != nil {
			return fmt.Errorf("protect %#x+%#x: %w", gpa, size, err)
		}
	}
	return nil
}

func (m *kvmMachine) find(gpa uint64) *mapping {
	for _, o := range m.maps {
		if gpa >= o.gpa && gpa < o.end() {
			return o
		}
	}
	return nil
}

// read copies guest-physical memory at gpa into buf.
func (m *kvmMachine) read(gpa uint64, buf []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.find(gpa)
	if o == nil || gpa+uint64(len(buf)) > o.end() {
		return fmt.Errorf("guest memory at %#x+%d is not mapped", gpa, len(buf))
	}
	copy(buf, o.mem[gpa-o.gpa:])
	return nil
}

// zapPage is the guest-physical page zapShadow maps and unmaps: page 0,
// which no space ever maps (null pointers must fault).
const zapPage = 0

// zapShadow makes KVM drop every translation it built from the guest's
// page tables, by adding and deleting a one-page memory slot: deleting a
// slot zaps all shadow pages (kvm_mmu_zap_all_fast).
func (m *kvmMachine) zapShadow() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.zapMem == nil {
		mem, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return fmt.Errorf("zap page: %w", err)
		}
		m.zapMem = mem
	}
	slot := uint32(0)
	for m.used[slot] {
		slot++
	}
	if int(slot) >= m.dev.slots {
		return fmt.Errorf("zap shadow pages: all %d memory slots in use: %w", m.dev.slots, machine.ErrNoSlots)
	}
	if err := memoryRegion(m.fd, slot, zapPage, m.zapMem, 0); err != nil {
		return fmt.Errorf("zap shadow pages: add slot: %w", err)
	}
	if err := memoryRegion(m.fd, slot, 0, nil, 0); err != nil {
		return fmt.Errorf("zap shadow pages: delete slot: %w", err)
	}
	return nil
}

// Limits on what a recycled VM carries to its next space: a VM whose
// space ran more threads, or reached more of its user window, is closed
// instead. An idle VM so holds at most recycleVCPUs vCPUs (a descriptor
// and a run area each) and recycleSlots memory slots: the system
// memory's two and up to 22 chunks of the user window (1.4 GiB of it,
// more than a space's default memory quota spreads over: hello's image,
// heap and stack reach 10), whose bookkeeping with shadow paging is
// 128 KiB of kernel memory a chunk. Keeping the slots is the point: a
// space adds them as it maps memory, at some 100 µs each on PVM. KVM
// frees neither a vCPU nor its number before its VM, so vCPUs cannot be
// trimmed instead.
const (
	recycleVCPUs = 4
	recycleSlots = 24
)

var _ machine.Machine = (*kvmMachine)(nil)

// Features implements machine.Machine: a VM can be recycled.
func (m *kvmMachine) Features() machine.Features { return machine.Features{Recycle: true} }

// Recycle implements machine.Machine. What a space leaves in a VM, besides
// the memory the caller replaces, is what KVM derived from it and the
// state of the vCPUs: the shadow pages (or EPT entries) go at once, with
// a memory-slot deletion; a vCPU's pending events are cleared here, and
// everything else a thread can reach is written by NewVCPU and the first
// SetRegs and SetFPU (registers, segment and control registers with CR2,
// the syscall MSRs, the x87/SSE state; ring-3 code cannot enable XSAVE
// state beyond it, with CR4.OSXSAVE clear).
func (m *kvmMachine) Recycle() error {
	m.mu.Lock()
	cpus, spare := len(m.cpus), len(m.spare)
	slots, tainted := len(m.used), m.tainted
	m.mu.Unlock()
	switch {
	case tainted:
		return errors.New("recycle vm: a vCPU failed in it")
	case cpus > 0:
		return fmt.Errorf("recycle vm: %d vCPUs still open", cpus)
	case spare > recycleVCPUs:
		return fmt.Errorf("recycle vm: %d vCPUs, more than the %d a recycled VM keeps", spare, recycleVCPUs)
	case slots > recycleSlots:
		return fmt.Errorf("recycle vm: %d memory slots, more than the %d a recycled VM keeps", slots, recycleSlots)
	}
	if err := m.zapShadow(); err != nil {
		return fmt.Errorf("recycle vm: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Each vCPU is reset here, off the path of the next space's start,
	// to the setup its next thread most likely runs under (the same
	// number in a space laid out the same): its NewVCPU then only checks.
	fpu := toKVMFPU(&resetFPU)
	for id, sp := range m.spare {
		// An exception KVM queued but had not delivered when the thread
		// left (a stop can come between the two) would be delivered to
		// the next space's first thread.
		var ev gokvm.VCPUEvents
		if err := retry(func() error { return gokvm.SetVCPUEvents(sp.fd, &ev) }); err != nil {
			return fmt.Errorf("recycle vm: vcpu %d: clear events: %w", id, err)
		}
		us, err := resetVCPU(sp.fd, sp.setup)
		if err != nil {
			return fmt.Errorf("recycle vm: vcpu %d: %w", id, err)
		}
		if err := setFPU(sp.fd, &fpu); err != nil {
			return fmt.Errorf("recycle vm: vcpu %d: reset fpu: %w", id, err)
		}
		sp.prepared, sp.sregs = true, us
		m.spare[id] = sp
	}
	return nil
}

// Close implements machine.Machine.
func (m *kvmMachine) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.cpus) > 0 {
		return fmt.Errorf("close vm: %d vCPUs still open", len(m.cpus))
	}
	if m.zapMem != nil {
		unix.Munmap(m.zapMem)
		m.zapMem = nil
	}
	var err error
	for id, sp := range m.spare {
		if e := sp.run.unmap(); e != nil && err == nil {
			err = e
		}
		if e := unix.Close(int(sp.fd)); e != nil && err == nil {
			err = e
		}
		delete(m.spare, id)
	}
	if e := unix.Close(int(m.fd)); e != nil && err == nil {
		err = e
	}
	return err
}
