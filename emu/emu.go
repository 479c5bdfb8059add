//go:build cgo && linux && amd64

package emu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"nestvm/machine"
)

func init() { machine.Register(backend{}) }

type backend struct{}

// Name implements machine.Backend.
func (backend) Name() string { return "emu" }

// Available implements machine.Backend. The library is linked in, so only its
// version can be wrong.
func (backend) Available() error {
	major, minor, _ := unicornVersion()
	if major != 2 {
		return fmt.Errorf("libunicorn %d.%d is linked in; nestvm needs Unicorn 2", major, minor)
	}
	return nil
}

// Describe says which Unicorn is linked in, for nestvm info.
func (backend) Describe() string {
	_, _, v := unicornVersion()
	return fmt.Sprintf("Unicorn %d.%d.%d (software emulation)", v>>24, v>>16&0xff, v>>8&0xff)
}

// WithCPU implements machine.Backend: the engine has one model, the portable
// one, whichever is asked for.
func (b backend) WithCPU(string) (machine.Backend, error) { return b, nil }

// CPUFeatures implements machine.Backend: the engine's one CPU model, which
// machine.PortableCPU describes (a test checks it against what a guest reads).
func (backend) CPUFeatures() machine.CPUFeatures { return machine.PortableCPU }

// NewMachine implements machine.Backend.
func (backend) NewMachine(cfg machine.MachineConfig) (machine.Machine, error) {
	log := cfg.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	late := newLateTable()
	if late == nil {
		return nil, errors.New("new machine: out of memory")
	}
	return &emuMachine{log: log, maps: map[uint64]*mapping{}, cpus: map[*vcpu]struct{}{}, lateTab: late}, nil
}

type mapping struct {
	gpa  uint64
	mem  []byte
	perm machine.Perm
}

// emuMachine is one guest-physical memory map. Unicorn keeps a memory map per
// engine and each running vCPU has an engine of its own, so the machine
// holds the map and each engine copies it when opened. After the first
// vCPU the map only grows (machine.Machine's contract: chunks of the user
// window), and so does exec permission change: each engine catches up on
// both at its next run, on leaving a call that grew the map, or when a
// fetch is refused; meanwhile its gap filler serves the new memory
// (gap_read in hooks.c).
type emuMachine struct {
	log     hclog.Logger
	mu      sync.Mutex
	maps    map[uint64]*mapping
	started bool // a vCPU exists: new mappings are late
	exec    spans
	execGen uint64
	// everExec is every range exec was ever granted in: where an engine
	// may have translated code, so where a change of code matters.
	everExec spans
	cpus     map[*vcpu]struct{}
	// late are the mappings made since the first vCPU, in order; lateGen
	// is their number, read without the lock by engines checking whether
	// they are behind. lateTab lets gap fillers reach them (C memory:
	// engines hold pointers to it).
	late    []*mapping
	lateGen atomic.Int64
	lateTab *lateTable
}

// Features implements machine.Machine: Unicorn 2.0.1 treats PTE bit 63 as
// reserved whatever EFER.NXE says, a machine can be recycled (its shell
// then spares the next space a memfd, its mappings and the stub pages;
// see machine.ShellPool), and the engines run code they translated, so
// they must hear where the monitor changed it (CodeChanged).
func (m *emuMachine) Features() machine.Features {
	return machine.Features{NoPageTableNX: true, Recycle: true, TranslatesCode: true}
}

// Recycle implements machine.Machine. The map stays (same host memory, new
// contents), and where code may run goes back to what MapMemory said, as
// on a machine given the same MapMemory calls. An engine that a vCPU of
// the old space parked (see park) holds none of its code or state by the
// time a vCPU of the next space takes it.
func (m *emuMachine) Recycle() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.maps == nil:
		return errors.New("recycle machine: closed")
	case len(m.cpus) > 0:
		return fmt.Errorf("recycle machine: %d vCPUs still open", len(m.cpus))
	}
	m.exec = nil
	for _, o := range m.maps {
		m.exec.set(o.gpa, o.gpa+uint64(len(o.mem)), o.perm&machine.PermExec != 0)
	}
	// What the old space ran is dropped from every engine it left.
	m.everExec = m.exec.clone()
	m.execGen++
	return nil
}

// MapMemory implements machine.Machine.
func (m *emuMachine) MapMemory(gpa uint64, mem []byte, perm machine.Perm) error {
	size := uint64(len(mem))
	if gpa%pageSize != 0 || size%pageSize != 0 || size == 0 || gpa+size < gpa || gpa+size > gapTop {
		return fmt.Errorf("map %#x+%#x: not page-aligned or out of range", gpa, size)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.maps == nil {
		return fmt.Errorf("map %#x+%#x: the machine is closed", gpa, size)
	}
	for _, o := range m.maps {
		if gpa < o.gpa+uint64(len(o.mem)) && o.gpa < gpa+size {
			return fmt.Errorf("map %#x+%#x: overlaps mapping at %#x", gpa, size, o.gpa)
		}
	}
	o := &mapping{gpa: gpa, mem: mem, perm: perm}
	m.maps[gpa] = o
	m.exec.set(gpa, gpa+size, perm&machine.PermExec != 0)
	if perm&machine.PermExec != 0 {
		m.everExec.set(gpa, gpa+size, true)
	}
	m.execGen++
	if m.started {
		// Before an engine can learn of it (it is behind once lateGen
		// moves), and before the page tables point into it (the caller
		// writes them after this returns): a gap filler must serve it.
		m.lateTab.set(gpa, mem)
		m.late = append(m.late, o)
		m.lateGen.Store(int64(len(m.late)))
	}
	return nil
}

// UnmapMemory implements machine.Machine.
func (m *emuMachine) UnmapMemory(gpa uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.maps[gpa]
	if !ok {
		return fmt.Errorf("unmap %#x: no mapping starts there", gpa)
	}
	if len(m.cpus) > 0 {
		return fmt.Errorf("unmap %#x: vCPUs still exist", gpa)
	}
	m.exec.set(gpa, gpa+uint64(len(o.mem)), false)
	delete(m.maps, gpa)
	for i, l := range m.late {
		if l == o {
			// No engine exists to be behind: the numbering can change.
			m.late = append(m.late[:i], m.late[i+1:]...)
			m.lateGen.Store(int64(len(m.late)))
			m.lateTab.clear(gpa)
			break
		}
	}
	return nil
}

// CodeChanged implements machine.Machine: Unicorn keys what it translated
// by guest-physical page and sees no write the monitor makes through the
// host, so each vCPU whose engine may hold blocks translated from the
// range drops them before it next runs.
func (m *emuMachine) CodeChanged(gpa, size uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.everExec.overlaps(gpa, gpa+size) {
		return // no code can have been translated from there
	}
	for v := range m.cpus {
		v.changedMu.Lock()
		v.changed.set(gpa, gpa+size, true)
		v.changedMu.Unlock()
		v.codeChanged.Store(true)
	}
}

// ProtectMemory implements machine.Machine: it records where code may run.
func (m *emuMachine) ProtectMemory(gpa, size uint64, perm machine.Perm) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	inside := false
	for _, o := range m.maps {
		if gpa >= o.gpa && gpa+size >= gpa && gpa+size <= o.gpa+uint64(len(o.mem)) {
			inside = true
			break
		}
	}
	if !inside || gpa%pageSize != 0 || size%pageSize != 0 {
		return fmt.Errorf("protect %#x+%#x: not a page-aligned range inside one mapping", gpa, size)
	}
	m.exec.set(gpa, gpa+size, perm&machine.PermExec != 0)
	if perm&machine.PermExec != 0 {
		m.everExec.set(gpa, gpa+size, true)
	}
	m.execGen++
	return nil
}

// Close implements machine.Machine.
func (m *emuMachine) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.cpus) > 0 {
		return fmt.Errorf("close machine: %d vCPUs still open", len(m.cpus))
	}
	// Before the late table goes: parked engines' gap fillers point to it.
	enginePool.evict(m)
	m.maps, m.late = nil, nil
	if m.lateTab != nil {
		m.lateTab.free()
		m.lateTab = nil
	}
	return nil
}

// read copies guest-physical memory through the machine's map (the page
// tables and faulting instructions are read this way). The caller must only
// read pages that are present in the page tables or part of the system
// memory: other window pages may have no host memory behind them.
func (m *emuMachine) read(gpa uint64, buf []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.maps {
		if gpa >= o.gpa && gpa+uint64(len(buf)) >= gpa && gpa+uint64(len(buf)) <= o.gpa+uint64(len(o.mem)) {
			return copy(buf, o.mem[gpa-o.gpa:]) == len(buf)
		}
	}
	return false
}

const pageSize = 4096

// gapTop is the end of the address range gap fillers cover: every page but
// the last, whose end would not fit in 64 bits.
const gapTop = 1<<64 - pageSize

// vcpu is one guest thread and, while it runs guest code, the engine that
// runs it (see pool).
type vcpu struct {
	m     *emuMachine
	log   hclog.Logger
	cfg   machine.CPUSetup
	hcall machine.TrapHandler

	// c is the engine, nil while the vCPU has none. The vCPU's goroutine
	// uses it between the pool's acquire and release; while it is lent,
	// engMu guards it and the state fields below against the pool
	// closing it.
	c     *engine
	engMu sync.Mutex

	// Where the engine is, and the vCPU's place on the pool's idle list;
	// guarded by the pool's lock.
	where      int
	prev, next *vcpu
	idleEpoch  uint64

	exec     spans  // where this engine lets code run
	mapped   []span // the engine's memory regions, sorted
	execGen  uint64 // the machine's execGen that exec reflects
	lateSeen int64  // how many of the machine's late mappings the engine has
	// ran is every user address the engine has let code run at since it
	// was opened or last taken from the parked engines: where it may
	// hold translated blocks of user memory.
	ran spans
	// failed: a run ended in an error, and the engine is not parked.
	failed bool
	// changed is where the machine's code changed (CodeChanged) since the
	// vCPU last looked; codeChanged says there is some.
	changedMu   sync.Mutex
	changed     spans
	codeChanged atomic.Bool

	shelved              bool // an engine of this vCPU has been closed
	regs                 machine.Regs
	fpu                  machine.FPU
	regsDirty, fpuDirty  bool
	entered, needRestore bool
	flushTLB             bool

	// mu orders Stop against Run and Close: a Stop must not write to a
	// closed engine's state, and a Run that is starting either sees the
	// request or leaves it for the block hook.
	mu      sync.Mutex
	closed  bool
	stopReq atomic.Bool
}

// noHugeCode turns transparent huge pages off for the process before the
// first engine opens. Unicorn asks for huge pages on each engine's 1 GiB
// code buffer (QEMU's MADV_HUGEPAGE), so the first translated block costs
// a whole 2 MiB page per engine, most of the monitor memory of a space
// whose thread waits in a call; with 4 KiB pages an engine holds only the
// code it translated. The flag is per process and there is no way to
// reach the buffer itself through Unicorn's API, so it covers the Go heap
// too, which asks for no huge pages on its own.
var noHugeCode sync.Once

// NewVCPU implements machine.Machine.
func (m *emuMachine) NewVCPU(cfg machine.VCPUConfig) (machine.VCPU, error) {
	if cfg.Handler == nil {
		return nil, errors.New("new vcpu: no trap handler")
	}
	log := cfg.Log
	if log == nil {
		log = m.log
	}
	noHugeCode.Do(func() {
		if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
			log.Debug("transparent huge pages stay on: each engine's code buffer costs 2 MiB", "err", err)
		}
	})
	v := &vcpu{m: m, log: log, cfg: cfg.CPU, hcall: cfg.Handler}
	m.mu.Lock()
	m.started = true
	m.cpus[v] = struct{}{}
	m.mu.Unlock()
	v.fpu = machine.ResetFPU()
	v.fpuDirty = true
	return v, nil
}

// open gives v an engine with the machine's memory: one parked in the
// machine if it can take one (reuse), else a fresh one, whose next run
// enters ring 3; either way the run loads the thread's state, which Go
// holds.
func (v *vcpu) open() error {
	if v.reuse() {
		return nil
	}
	c, err := openEngine(v, &v.cfg, deferMask)
	if err != nil {
		return fmt.Errorf("open engine: %w", err)
	}
	enginePool.opening(v.shelved)
	v.mu.Lock()
	v.c = c
	if v.stopReq.Load() {
		c.setStop(true)
	}
	v.mu.Unlock()
	if err := c.addHooks(); err != nil {
		v.destroy()
		return fmt.Errorf("open engine: add hooks: %w", err)
	}
	v.m.mu.Lock()
	maps := make([]*mapping, 0, len(v.m.maps))
	for _, o := range v.m.maps {
		maps = append(maps, o)
	}
	v.lateSeen = int64(len(v.m.late))
	v.m.mu.Unlock()
	v.mapped = nil
	if err := v.mapAll(maps); err != nil {
		v.destroy()
		return fmt.Errorf("open engine: %w", err)
	}
	v.entered, v.needRestore, v.flushTLB = false, false, false
	v.regsDirty, v.fpuDirty = true, true
	return nil
}

// shelve closes v's engine, keeping in Go what of the thread's state only
// the engine held. Callers hold engMu, and v is not running.
func (v *vcpu) shelve() {
	if v.c == nil {
		return
	}
	if v.entered && !v.fpuDirty {
		if err := v.readFPU(); err != nil {
			v.log.Error("emu: the FPU state of a thread could not be read before its engine closed; it starts over from reset", "err", err)
			v.fpu = machine.ResetFPU()
		}
	}
	v.fpuDirty, v.regsDirty = true, true
	v.entered, v.needRestore = false, false
	v.shelved = true
	v.destroy()
}

// destroy closes v's engine.
func (v *vcpu) destroy() {
	v.mu.Lock()
	c := v.c
	v.c = nil // Stop no longer reaches it
	v.mu.Unlock()
	if c == nil {
		return
	}
	c.close()
	enginePool.closing()
	v.mapped, v.exec, v.execGen, v.lateSeen, v.ran = nil, nil, 0, 0, nil
}

// Close implements machine.VCPU.
func (v *vcpu) Close() error {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	enginePool.drop(v, v.park)
	v.m.mu.Lock()
	delete(v.m.cpus, v)
	v.m.mu.Unlock()
	return nil
}

// SetRegs implements machine.VCPU.
func (v *vcpu) SetRegs(r *machine.Regs) error {
	v.engMu.Lock()
	defer v.engMu.Unlock()
	v.regs = *r
	v.regsDirty = true
	return nil
}

// Regs implements machine.VCPU.
func (v *vcpu) Regs() (machine.Regs, error) { return v.regs, nil }

// SetFPU implements machine.VCPU.
func (v *vcpu) SetFPU(f *machine.FPU) error {
	v.engMu.Lock()
	defer v.engMu.Unlock()
	v.fpu = *f
	v.fpuDirty = true
	return nil
}

// FPU implements machine.VCPU.
func (v *vcpu) FPU() (machine.FPU, error) {
	v.engMu.Lock()
	defer v.engMu.Unlock()
	if v.c != nil && v.entered && !v.fpuDirty {
		if err := v.readFPU(); err != nil {
			return machine.FPU{}, err
		}
	}
	return v.fpu, nil
}

// readFPU copies the engine's x87/SSE state into v.fpu.
func (v *vcpu) readFPU() error {
	if err := v.c.readFPU(&v.fpu); err != nil {
		return fmt.Errorf("read fpu: %w", err)
	}
	return nil
}

// FlushTLB implements machine.VCPU.
func (v *vcpu) FlushTLB() { v.flushTLB = true }

// Stop implements machine.VCPU. It only raises the engine's stop flag, which
// the block hook reads at the start of every translation block and the
// hypercall hook on its way out of a call: the engine then stops between
// two instructions. uc_emu_stop from this thread would stop it sooner,
// but anywhere inside a block, and Unicorn resumes such a block at its
// start, running again whatever of it had already run (see hook_block in
// hooks.c). A flag that only the engine's own thread clears cannot be
// lost either, whenever it lands.
func (v *vcpu) Stop() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.stopReq.Store(true)
	if v.c != nil {
		v.c.setStop(true)
	}
}

// enter puts a fresh engine into the state every run starts from: the
// system registers loaded, ring 3 entered through iretq, the context saved
// right after (by the EnterPort trap at PrimerAddr, in hook_out), and one
// fault taken (the primer load that follows the trap), which also stops
// the engine. All in one uc_emu_start without a count or an until address:
// either makes Unicorn install an internal hook, and changing the hook set
// makes the next uc_emu_start flush the translation cache, which memsets
// the whole code buffer (a second or more).
func (v *vcpu) enter() error {
	e := v.c
	s := v.cfg
	steps := []struct {
		what string
		err  func() error
	}{
		{"cr3", func() error { return e.writeReg(regCR3, s.CR3) }},
		{"cr4", func() error { return e.writeReg(regCR4, s.CR4) }},
		{"efer", func() error { return e.writeMSR(0xc0000080, s.EFER) }},
		{"cr0", func() error { return e.writeReg(regCR0, s.CR0) }},
		{"gdtr", func() error { return e.writeTable(regGDTR, s.GDTBase, uint32(s.GDTLimit)) }},
		{"idtr", func() error { return e.writeTable(regIDTR, s.IDTBase, uint32(s.IDTLimit)) }},
		{"cs", func() error { return e.writeReg(regCS, uint64(s.KernelCS)) }},
		{"ss", func() error { return e.writeReg(regSS, uint64(s.KernelSS)) }},
	}
	for _, st := range steps {
		if err := st.err(); err != nil {
			return fmt.Errorf("enter ring 3: set %s: %w", st.what, err)
		}
	}
	// The iret frame: RIP, CS, RFLAGS, RSP, SS.
	frame := []uint64{s.PrimerAddr, uint64(s.UserCS), machine.RFlagsUser, s.KernelStackTop, uint64(s.UserSS)}
	sp := s.KernelStackTop - uint64(8*len(frame))
	raw := make([]byte, 0, 8*len(frame))
	for _, w := range frame {
		raw = binary.LittleEndian.AppendUint64(raw, w)
	}
	if err := e.writeMem(sp, raw); err != nil {
		return fmt.Errorf("enter ring 3: write iret frame: %w", err)
	}
	if err := e.writeReg(regRSP, sp); err != nil {
		return fmt.Errorf("enter ring 3: %w", err)
	}
	if err := e.allocContext(); err != nil {
		return fmt.Errorf("enter ring 3: %w", err)
	}
	entered, err := e.runEntry(s.IretAddr)
	switch exit := e.exit().kind; {
	case err != nil:
		return fmt.Errorf("enter ring 3: %w", err)
	case !entered:
		return errors.New("enter ring 3: the entry trap did not run")
	case exit != exitIntr:
		return fmt.Errorf("enter ring 3: the primer did not fault (exit %d)", exit)
	}
	cs, _ := e.readReg(regCS)
	if uint16(cs)&3 != 3 {
		return fmt.Errorf("enter ring 3: at CPL %d after iretq", cs&3)
	}
	v.entered = true
	v.needRestore = true
	return nil
}

// mapAll gives a new engine the machine's memory and fills the gaps.
//
// Unicorn checks its own memory map before walking the page tables, and an
// access it finds no memory for ends the run with RIP at the start of the
// translation block, not at the instruction (and after the block's earlier
// instructions ran). So every address the machine does not map gets a gap
// filler: an MMIO region, which Unicorn treats as memory, so the access
// reaches the page walk and raises a precise #PF (or #GP when the address
// is not canonical). Gap fillers are MMIO rather than RAM because RAM
// regions this large exhaust QEMU's RAM-block address space, after which a
// uc_mem_protect that splits a region aborts the process.
func (v *vcpu) mapAll(maps []*mapping) error {
	sort.Slice(maps, func(i, j int) bool { return maps[i].gpa < maps[j].gpa })
	v.m.mu.Lock()
	exec, gen := v.m.exec.clone(), v.m.execGen
	v.m.mu.Unlock()
	next := uint64(0)
	gap := v.fillGap
	// The trap page lies in a gap: it gets the trap's MMIO region.
	trap := v.cfg.TrapPage
	fill := func(end uint64) error {
		if trap < next || trap >= end {
			return gap(next, end)
		}
		if err := gap(next, trap); err != nil {
			return err
		}
		if err := v.c.mapTrap(trap); err != nil {
			return fmt.Errorf("map the trap page at %#x: %w", trap, err)
		}
		return gap(trap+pageSize, end)
	}
	for _, o := range maps {
		if err := fill(o.gpa); err != nil {
			return err
		}
		if err := v.mapPieces(o, exec); err != nil {
			return err
		}
		next = o.gpa + uint64(len(o.mem))
	}
	if err := fill(gapTop); err != nil {
		return err
	}
	v.exec, v.execGen = exec, gen
	v.ran = nil
	v.noteRan(exec)
	return nil
}

// mapPieces maps o into the engine, in pieces of one exec permission.
func (v *vcpu) mapPieces(o *mapping, exec spans) error {
	for _, p := range pieces(o.gpa, o.gpa+uint64(len(o.mem)), exec) {
		// Readable and writable always (the page tables decide, so
		// faults look as on kvm); executable where the machine says.
		if err := v.c.mapMemory(p.start, o.mem[p.start-o.gpa:p.end-o.gpa], exec.contains(p.start)); err != nil {
			return fmt.Errorf("map %#x-%#x: %w", p.start, p.end, err)
		}
		v.mapped = append(v.mapped, p)
	}
	return nil
}

// fillGap maps a gap filler over [from, end), if it is not empty.
func (v *vcpu) fillGap(from, end uint64) error {
	if end <= from {
		return nil
	}
	if err := v.c.mapGap(from, end, v.m.lateTab); err != nil {
		return fmt.Errorf("fill gap %#x-%#x: %w", from, end, err)
	}
	return nil
}

// syncMaps gives the engine the mappings the machine gained since it was
// opened. Unicorn 2.0.1 unmaps a region by flushing its translations page
// by page, and the gap filler a new mapping lies in reaches the top of the
// address space, so the engine is not patched: it closes, the thread's
// state kept in Go as when the pool closes it, and a fresh one opens with
// the whole map. Memory reaches a new GiB of a space seldom (a few times
// in its life); until the engine's next run its gap filler serves it.
func (v *vcpu) syncMaps() error {
	if v.c == nil || v.m.lateGen.Load() == v.lateSeen {
		return nil
	}
	v.engMu.Lock()
	v.shelve()
	v.engMu.Unlock()
	return v.open()
}

// syncExec brings the engine's exec permissions up to date with the
// machine's and reports whether anything changed.
func (v *vcpu) syncExec() (bool, error) {
	v.m.mu.Lock()
	if v.m.execGen == v.execGen {
		v.m.mu.Unlock()
		return false, nil
	}
	want, gen := v.m.exec.clone(), v.m.execGen
	v.m.mu.Unlock()
	for _, d := range v.exec.diff(want) {
		// One call per region: Unicorn 2.0.1 aborts the process when a
		// uc_mem_protect that spans two regions has to split the second.
		for _, r := range clip(v.mapped, d.start, d.end) {
			if err := v.c.protect(r.start, r.end-r.start, d.exec); err != nil {
				return false, fmt.Errorf("protect %#x-%#x: %w", r.start, r.end, err)
			}
		}
	}
	v.exec, v.execGen = want, gen
	v.noteRan(want)
	return true, nil
}

// Run implements machine.VCPU.
func (v *vcpu) Run() (machine.Exit, error) {
	exit, err := v.run()
	if err != nil {
		v.failed = true
	}
	return exit, err
}

func (v *vcpu) run() (machine.Exit, error) {
	if v.closed {
		return machine.Exit{}, errors.New("run: vcpu closed")
	}
	enginePool.acquire(v)
	defer enginePool.release(v)
	if v.c == nil {
		// Not for a run that a Stop ends before it starts.
		v.mu.Lock()
		stop := v.stopReq.Swap(false)
		v.mu.Unlock()
		if stop {
			return machine.Exit{Kind: machine.ExitStopped}, nil
		}
		if err := v.open(); err != nil {
			return machine.Exit{}, fmt.Errorf("run: %w", err)
		}
	}
	for {
		if err := v.syncMaps(); err != nil {
			return machine.Exit{}, fmt.Errorf("run: %w", err)
		}
		if _, err := v.syncExec(); err != nil {
			return machine.Exit{}, fmt.Errorf("run: %w", err)
		}
		// A fresh engine: the first run's, or one opened after a call
		// the thread waited in (serveOutside).
		if !v.entered {
			if err := v.enter(); err != nil {
				return machine.Exit{}, err
			}
		}
		if err := v.load(); err != nil {
			return machine.Exit{}, err
		}
		v.mu.Lock()
		if v.stopReq.Swap(false) {
			v.c.setStop(false)
			v.mu.Unlock()
			return machine.Exit{Kind: machine.ExitStopped}, nil
		}
		v.mu.Unlock()

		code := v.c.run(v.regs.RIP)
		exit, next, err := v.finish(code)
		if err == nil && next == serveCall {
			next, err = v.serveOutside()
			exit = machine.Exit{Kind: machine.ExitStopped}
		}
		if err != nil || next == done {
			return exit, err
		}
	}
}

// What Run does after a run of the engine.
const (
	done      = iota // return the exit
	runAgain         // run the engine again
	serveCall        // serve the deferred operation, then see
)

// serveOutside serves an operation that may sleep (deferOps) with the
// engine stopped at the trap and lent to the pool meanwhile, then applies
// the result as the hypercall hook would have.
func (v *vcpu) serveOutside() (next int, err error) {
	var call machine.Call
	v.c.loadCall(&call)
	enginePool.release(v)
	action := v.hcall.Hypercall(&call)
	enginePool.acquire(v)
	if action != machine.CallRestart {
		v.regs.RAX, v.regs.RDX = call.Ret[0], call.Ret[1]
		v.regs.RIP = v.cfg.TrapAddr + v.cfg.TrapLen
	}
	v.regsDirty = true
	if action == machine.CallContinue && !v.stopReq.Load() {
		if v.c == nil {
			if err := v.open(); err != nil {
				return done, fmt.Errorf("run: %w", err)
			}
		}
		return runAgain, nil
	}
	// Completed (or to be re-issued), then stopped, as the hook does with
	// a Stop that arrives during a call; the thread may well be ending, so
	// an engine the pool closed is not opened again for it here.
	v.clearStop()
	return done, nil
}

// load writes the thread's state into the engine before a run.
func (v *vcpu) load() error {
	if v.needRestore {
		// Undo the emulator's memory of the last exception (see the
		// package comment), then put the thread's own state back. The
		// restore resets the x87/SSE registers too: keep what the thread
		// had in them (unless it was set since), or code that faults
		// between loading an SSE register and using it (a first store to
		// a page a keeper supplies) goes on with the primer's zeros.
		if !v.fpuDirty {
			if _, err := v.FPU(); err != nil {
				return fmt.Errorf("run: %w", err)
			}
		}
		if err := v.c.restoreContext(); err != nil {
			return fmt.Errorf("run: restore context: %w", err)
		}
		v.needRestore = false
		v.regsDirty, v.fpuDirty = true, true
	}
	if v.regsDirty {
		v.regs.RFLAGS = v.regs.RFLAGS&machine.RFlagsUserMask | machine.RFlagsUser
		if err := v.c.writeRegs(&v.regs); err != nil {
			return fmt.Errorf("run: write registers: %w", err)
		}
		v.regsDirty = false
	}
	if v.fpuDirty {
		if err := v.c.writeFPU(&v.fpu); err != nil {
			return fmt.Errorf("run: write fpu: %w", err)
		}
		v.fpuDirty = false
	}
	if v.codeChanged.Load() {
		if err := v.dropChanged(); err != nil {
			return fmt.Errorf("run: %w", err)
		}
	}
	if v.flushTLB {
		// Unicorn 2.0.1 drops its cached translations when its memory
		// map changes, not when CR3 is written through uc_reg_write (with
		// the same value or another), and a translation-block flush
		// leaves them too. Mapping and unmapping one page, the one at the
		// top of the address space that no gap filler covers, is the
		// cheapest change.
		if err := v.c.flushTLB(); err != nil {
			return fmt.Errorf("run: flush tlb: %w", err)
		}
		v.flushTLB = false
	}
	return nil
}

// dropChanged drops every block the engine translated, when code it may
// have translated changed (CodeChanged). Unicorn 2.0.1 removes blocks by
// range only through the CPU's address translation, which raises a fault
// outside a run where a page is not mapped; a full flush costs tens of
// milliseconds (it clears the whole code buffer), but the monitor changes
// code a guest ran seldom: memory mapped where code was, or written into
// by the monitor while mapped executable.
func (v *vcpu) dropChanged() error {
	v.codeChanged.Store(false)
	v.changedMu.Lock()
	changed := v.changed
	v.changed = nil
	v.changedMu.Unlock()
	for _, r := range changed {
		if v.ran.overlaps(r.start, r.end) {
			if err := v.c.flushCode(); err != nil {
				return fmt.Errorf("drop changed code: %w", err)
			}
			v.ran = nil
			v.noteRan(v.exec)
			return nil
		}
	}
	return nil
}

// saveRegs reads the engine's registers into v.regs.
func (v *vcpu) saveRegs() error {
	if err := v.c.readRegs(&v.regs); err != nil {
		return fmt.Errorf("read registers: %w", err)
	}
	return nil
}

// finish turns what stopped the engine into an Exit, and says what Run
// does next: runAgain when the exit was the engine's memory map lagging
// the machine's (it has been updated and the instruction should simply run
// again), serveCall for an operation the hook left to Run.
func (v *vcpu) finish(code UcError) (exit machine.Exit, next int, err error) {
	if err := v.saveRegs(); err != nil {
		return machine.Exit{}, done, fmt.Errorf("run: %w", err)
	}
	c := v.c.exit()
	switch c.kind {
	case exitDefer:
		// As for NV_EXIT_HCALL: the engine stopped at the trap.
		v.regs.RIP = v.cfg.TrapAddr
		v.regsDirty = true
		return machine.Exit{}, serveCall, nil
	case exitHcall:
		// Stopping inside the hook leaves RIP at the trap instruction.
		v.regs.RIP = v.cfg.TrapAddr
		if c.action != callRestart {
			v.regs.RIP += v.cfg.TrapLen
		}
		v.regsDirty = true
		if c.action == callResync {
			return machine.Exit{}, runAgain, nil // Run's loop takes the new regions, drops changed code
		}
		v.clearStop()
		return machine.Exit{Kind: machine.ExitStopped}, done, nil
	case exitIllegalIO:
		// The rest of the instruction's block ran after it (see
		// hooks.c), so the thread cannot be resumed where it was; report
		// where the I/O instruction is.
		v.needRestore = true
		rip := findIO(v.fetchBlock(c.rip), c.rip)
		if uint16(c.port) == v.cfg.SyscallPort && rip == v.cfg.SyscallEntry {
			// Only a thread a kvm save left at the syscall entry gets
			// here: on a PVM host a syscall instruction jumps there
			// (MSR_LSTAR) at CPL3, and a stop before its trap keeps
			// that RIP. Report the system call as kvm does: at the
			// instruction, RCX and R11 as syscall left them.
			v.regs.RIP, v.regs.RFLAGS = v.regs.RCX-2, v.regs.R11
			v.regs.R11 = v.regs.RFLAGS&machine.RFlagsUserMask | machine.RFlagsUser
			v.regsDirty = true
			return machine.Exit{Kind: machine.ExitFault, Fault: machine.Fault{Vector: machine.VecSyscall, RIP: v.regs.RIP}}, done, nil
		}
		v.regs.RIP = rip
		v.regsDirty = true
		return machine.Exit{Kind: machine.ExitIllegalIO, Port: uint16(c.port), RIP: rip}, done, nil
	case exitIntr:
		v.needRestore = true
		if c.rip != 0 {
			v.regs.RIP = c.rip // hooks that know the exact instruction
			v.regsDirty = true
		}
		return machine.Exit{Kind: machine.ExitFault, Fault: v.interruptFault(c.intno, c.cr2)}, done, nil
	case exitSyscall:
		// No exception was raised, so the engine needs no restore: the
		// thread resumes wherever its handler puts it. RCX and R11 get
		// what syscall leaves there, as on every backend.
		v.regs.RIP = c.rip
		v.regs.RCX, v.regs.R11 = v.regs.RIP+2, v.regs.RFLAGS
		v.regsDirty = true
		return machine.Exit{Kind: machine.ExitFault, Fault: machine.Fault{Vector: machine.VecSyscall, RIP: v.regs.RIP}}, done, nil
	case exitTrapRead:
		// As kvm reports it: the page may be written (by the ABI page's
		// stubs), never read. The rest of the block ran after the load,
		// so the thread is not resumed from here.
		v.needRestore = true
		f := machine.Fault{Vector: machine.VecPage, ErrorCode: machine.PFPresent | machine.PFUser, RIP: v.regs.RIP, Addr: v.cfg.TrapPage + c.addr}
		return machine.Exit{Kind: machine.ExitFault, Fault: f}, done, nil
	case exitGap:
		return machine.Exit{}, done, fmt.Errorf("run at rip %#x: guest reached unbacked memory at %#x: a page-table entry points outside the machine's memory (a monitor bug)", v.regs.RIP, c.addr)
	case exitMem:
		// A refused fetch stops at the start of a translation block before
		// any of it ran, so if the machine has since granted exec there it
		// is safe to simply run again.
		if (c.memtype == ucMemFetchProt || c.memtype == ucMemFetchUnmapped) && v.m.lateGen.Load() != v.lateSeen {
			// Code in memory that another thread's call gave the machine
			// while this engine ran: a gap filler cannot serve a fetch.
			if err := v.syncMaps(); err != nil {
				return machine.Exit{}, done, fmt.Errorf("run: %w", err)
			}
			return machine.Exit{}, runAgain, nil
		}
		if c.memtype == ucMemFetchProt {
			if changed, err := v.syncExec(); err != nil {
				return machine.Exit{}, done, fmt.Errorf("run: %w", err)
			} else if changed {
				return machine.Exit{}, runAgain, nil
			}
		}
		v.needRestore = true
		f := memFault(c.memtype, c.addr, v.regs.RIP)
		if pte, ok := walk(v.m.read, v.cfg.CR3, f.Addr); !ok || pte&1 == 0 {
			f.ErrorCode &^= machine.PFPresent // refused by the emulator, but not mapped either
		}
		return machine.Exit{Kind: machine.ExitFault, Fault: f}, done, nil
	}
	switch code {
	case ucOK:
		// Nothing recorded: the block hook took a Stop.
		v.clearStop()
		return machine.Exit{Kind: machine.ExitStopped}, done, nil
	case ucInsnInvalid:
		v.needRestore = true
		return machine.Exit{Kind: machine.ExitFault, Fault: machine.Fault{Vector: machine.VecInvalidOp, RIP: v.regs.RIP}}, done, nil
	}
	return machine.Exit{}, done, fmt.Errorf("run at rip %#x: %w", v.regs.RIP, code)
}

func (v *vcpu) clearStop() {
	v.stopReq.Store(false)
	if v.c != nil {
		v.c.setStop(false)
	}
}

// interruptFault describes an exception the interrupt hook reported.
func (v *vcpu) interruptFault(intno uint32, cr2 uint64) machine.Fault {
	f := machine.Fault{Vector: machine.Vector(intno), RIP: v.regs.RIP}
	switch {
	case intno >= 32:
		// "int $n" from ring 3 through a gate that is not present: the
		// CPU raises #GP at the instruction with the gate's selector-style
		// error code, and so do we, so both backends report the same
		// fault. The emulator reports it as a trap, past the 2-byte int.
		f.Vector = machine.VecGP
		f.ErrorCode = intno<<3 | 2
		f.RIP -= 2
		v.regs.RIP = f.RIP
		v.regsDirty = true
	case f.Vector == machine.VecPage:
		f.Addr = cr2
		f.ErrorCode = v.pageFaultCode(cr2)
	case f.Vector == machine.VecGP && stackFault(v.fetch(v.regs.RIP), &v.regs):
		// A CPU, and so kvm, raises #SS(0) here: report the same fault.
		f.Vector = machine.VecStack
	}
	return f
}

// pageFaultCode rebuilds the error code the emulator does not report: the
// present bit from the page tables, the access kind from the instruction.
func (v *vcpu) pageFaultCode(addr uint64) uint32 {
	code := uint32(machine.PFUser)
	if pte, ok := walk(v.m.read, v.cfg.CR3, addr); ok && pte&1 != 0 {
		code |= machine.PFPresent
	}
	insn := v.fetch(v.regs.RIP)
	if len(insn) == 0 {
		return code | machine.PFFetch // the instruction itself could not be fetched
	}
	switch classifyAccess(insn, v.regs.RIP, v.regs.RSP, v.regs.RDI, addr) {
	case machine.AccessExec:
		code |= machine.PFFetch
	case machine.AccessWrite:
		code |= machine.PFWrite
	}
	return code
}

// fetchBlock reads the code of a translation block starting at rip: up to
// 256 bytes, stopping at the first page the page tables do not map.
func (v *vcpu) fetchBlock(rip uint64) []byte {
	var out []byte
	for len(out) < 256 {
		b := v.fetch(rip + uint64(len(out)))
		if len(b) == 0 {
			break
		}
		out = append(out, b...)
	}
	return out
}

// fetch reads up to 15 instruction bytes at rip, stopping at the first page
// the page tables do not map.
func (v *vcpu) fetch(rip uint64) []byte {
	var insn [15]byte
	n := 0
	for n < len(insn) {
		a := rip + uint64(n)
		if pte, ok := walk(v.m.read, v.cfg.CR3, a); !ok || pte&1 == 0 {
			break
		}
		chunk := min(uint64(len(insn)-n), pageSize-a%pageSize)
		if !v.m.read(a, insn[n:n+int(chunk)]) {
			break
		}
		n += int(chunk)
	}
	return insn[:n]
}

// memFault turns an access Unicorn refused (no memory there, or a mapping
// without the permission) into the page fault a CPU would have raised.
func memFault(memtype int, addr, rip uint64) machine.Fault {
	f := machine.Fault{Vector: machine.VecPage, Addr: addr, RIP: rip, ErrorCode: machine.PFUser}
	switch memtype {
	case ucMemWriteUnmapped:
		f.ErrorCode |= machine.PFWrite
	case ucMemFetchUnmapped:
		f.ErrorCode |= machine.PFFetch
	case ucMemWriteProt:
		f.ErrorCode |= machine.PFWrite | machine.PFPresent
	case ucMemReadProt:
		f.ErrorCode |= machine.PFPresent
	case ucMemFetchProt:
		f.ErrorCode |= machine.PFFetch | machine.PFPresent
	}
	return f
}

// hypercall serves, inside the hypercall hook, the call the engine
// stopped at, and says what the hook does next (callContinue and the
// others).
func (v *vcpu) hypercall() int {
	var call machine.Call
	v.c.loadCall(&call)
	action := v.hcall.Hypercall(&call)
	v.c.setResult(call.Ret)
	if action == machine.CallContinue && (v.m.lateGen.Load() != v.lateSeen || v.codeChanged.Load()) {
		return callResync
	}
	return int(action)
}
