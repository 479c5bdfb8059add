package machine

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
)

// Shell is what a space runs in before it holds any object of its own: a
// Machine with the space's system memory (its stub pages built) and its
// user window, whose chunks the machine is given as memory reaches them.
// Building one is the bulk of NewSpace; a shell whose space has ended can
// be reset and serve the next space (shellPool).
type Shell struct {
	// Machine runs the space's vCPUs.
	Machine Machine
	// Sys is the system memory: stub pages, vCPU areas, page-table pool.
	Sys *Memory
	// Win is the user window, the host view of the user range.
	Win *Window
	// NoNX is set where the machine's page tables cannot say no-exec.
	NoNX bool
}

// NewShell builds a shell on b.
func NewShell(b Backend, log hclog.Logger, name string) (sh *Shell, err error) {
	machine, err := b.NewMachine(MachineConfig{Log: log})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			machine.Close()
		}
	}()
	sys, err := NewMemory(name+"-system", SysSize)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			sys.Unref()
		}
	}()
	copy(sys.Bytes(), stubPages())
	for _, r := range sysRanges {
		b := sys.Bytes()[r.addr-SysBase : r.addr-SysBase+r.size]
		if err := machine.MapMemory(r.addr, b, PermRead|PermWrite|PermExec); err != nil {
			return nil, fmt.Errorf("map system memory: %w", err)
		}
	}
	return &Shell{Machine: machine, Sys: sys, Win: newWindow(machine), NoNX: machine.Features().NoPageTableNX}, nil
}

// sysRanges are the two mappings of the system memory, around the trap
// page, which nothing backs.
var sysRanges = [2]struct{ addr, size uint64 }{
	{SysBase, TrapPageAddr - SysBase},
	{TrapPageAddr + abi.PageSize, abi.ReservedTop - TrapPageAddr - abi.PageSize},
}

// close releases everything the shell holds.
func (sh *Shell) close(log hclog.Logger) {
	for _, r := range sysRanges {
		if err := sh.Machine.UnmapMemory(r.addr); err != nil {
			log.Warn("unmap at exit", "addr", fmt.Sprintf("%#x", r.addr), "error", err)
		}
	}
	if err := sh.Win.detach(); err != nil {
		log.Warn("unmap at exit", "error", err)
	}
	if err := sh.Machine.Close(); err != nil {
		log.Warn("close machine", "error", err)
	}
	if err := sh.Win.close(); err != nil {
		log.Warn("release window", "error", err)
	}
	sh.Sys.Unref()
}

// reset makes the shell of an ended space as a new one is: its window
// empty, its system memory holding the stub pages alone (everything else
// reads as zeros: page tables, GDTs, TSSs and ring-0 stacks with the old
// threads' fault frames), its machine recycled.
func (sh *Shell) reset() error {
	if !sh.Machine.Features().Recycle {
		return fmt.Errorf("reset shell: the %T machine cannot be recycled", sh.Machine)
	}
	win, err := sh.Win.reset()
	if err != nil {
		return fmt.Errorf("reset shell: %w", err)
	}
	sh.Win = win
	// The stub pages stay unless changed (nothing writes them: ring 3
	// sees the ABI page read-only and the rest not at all, and the
	// ring-0 stub only pushes onto its stack), which spares each reset
	// three page faults and rebuilding them.
	if err := sh.Sys.Discard(stubSize, SysSize-stubSize); err != nil {
		return fmt.Errorf("reset shell: %w", err)
	}
	if stubs := sh.Sys.Bytes()[:stubSize]; !bytes.Equal(stubs, stubPages()) {
		copy(stubs, stubPages())
	}
	// Last, with every page behind the mappings replaced: translations
	// the machine cached from the old pages go now, and no vCPU runs
	// until the next space starts one.
	if err := sh.Machine.Recycle(); err != nil {
		return fmt.Errorf("reset shell: %w", err)
	}
	return nil
}

// Bounds of a monitor's shell pool.
const (
	// maxIdleShells is the most shells a monitor keeps for new spaces.
	maxIdleShells = 4
	// shellIdleTimeout is how long an idle shell is kept: past it, the
	// pool closes its shells, so that a monitor whose spaces have all
	// ended soon holds nothing for them.
	shellIdleTimeout = 500 * time.Millisecond
)

// ShellPool keeps the shells of ended spaces, reset, for new spaces of the
// same monitor: NewSpace then costs page tables and bookkeeping, where a
// new shell costs a machine (on kvm: a VM, its memory slots and, at its
// first thread, a vCPU).
//
// Bounds: at most maxIdleShells idle shells, all closed once none has
// been taken for shellIdleTimeout. Each holds its machine (on kvm a VM
// descriptor; a vCPU descriptor and its mapped run area, a few pages, per
// thread number its spaces used, at most kvm's recycling limit; and
// memory slots for the system memory and for the chunks of the
// user window its spaces reached, whose bookkeeping is kernel memory in
// proportion: 16 KiB for an 8 MiB chunk with shadow paging), its system memory (a
// memfd of SysSize bytes of which only the three stub pages are
// resident) and its window (a reservation of address space, no memory),
// and they count against the monitor's host budgets (hostbudget.go) as
// a live space's do. Only machines whose Features say Recycle are kept, so
// on other backends the pool stays empty.
type ShellPool struct {
	// Log receives what the pool says about the shells it closes.
	Log   hclog.Logger
	mu    sync.Mutex
	idle  []*Shell
	timer *time.Timer
	// lastTake is when a shell was last taken: the timer closes the
	// idle shells only when none was taken for a whole timeout.
	lastTake time.Time
}

// Take returns an idle shell, or nil when there is none.
func (p *ShellPool) Take() *Shell {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	sh := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	p.lastTake = time.Now()
	return sh
}

// Put resets the shell of an ended space and keeps it, or closes it when
// it cannot be reset or the pool is full.
func (p *ShellPool) Put(sh *Shell) {
	if !sh.Machine.Features().Recycle || p.full() {
		sh.close(p.Log)
		return
	}
	if err := sh.reset(); err != nil {
		p.Log.Debug("shell not kept", "error", err)
		sh.close(p.Log)
		return
	}
	p.mu.Lock()
	if len(p.idle) >= maxIdleShells {
		p.mu.Unlock()
		sh.close(p.Log)
		return
	}
	p.idle = append(p.idle, sh)
	if p.timer == nil {
		p.timer = time.AfterFunc(shellIdleTimeout, p.expire)
	}
	p.mu.Unlock()
}

// IdleCount is how many shells the pool keeps.
func (p *ShellPool) IdleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

func (p *ShellPool) full() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle) >= maxIdleShells
}

// expire closes the idle shells when none was taken for a timeout, and
// otherwise looks again a timeout after the last take.
func (p *ShellPool) expire() {
	p.mu.Lock()
	if wait := shellIdleTimeout - time.Since(p.lastTake); wait > 0 && len(p.idle) > 0 {
		p.timer.Reset(wait)
		p.mu.Unlock()
		return
	}
	idle := p.idle
	p.idle, p.timer = nil, nil
	p.mu.Unlock()
	for _, sh := range idle {
		sh.close(p.Log)
	}
}

// Drain closes every idle shell now.
func (p *ShellPool) Drain() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	for _, sh := range idle {
		sh.close(p.Log)
	}
}
