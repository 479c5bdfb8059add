//go:build cgo && linux && amd64

package emu

import (
	"slices"
	"sync"
	"time"

	"nestvm/abi"
	"nestvm/machine"
)

// An engine (a Unicorn instance, about 800 KiB once it has run: 512 KiB of
// it the translated-block hash table Unicorn 2.0.1 allocates whole) is
// held only while its thread runs guest code. A thread leaving Run, or
// stopping the engine to serve an operation that may sleep, lends its
// engine to the pool; coming back it takes the same engine again if the
// pool still has it (no state to reload, no translations lost), else it
// opens a fresh one and loads its state, which Go holds meanwhile
// (registers always; the FPU is read out before an engine closes). So a
// thread blocked in a call, stopped, or in a fault being served holds no
// engine once the pool has closed what it lent.
//
// A live thread's engine is never handed to another thread: its saved
// ring-3 context is its thread's, and it may be needed back. Only when a
// vCPU closes does its engine go on, parked, to the next vCPU of the same
// machine with the same setup (park.go), cleaned of its code first. An
// engine never moves to another machine: its memory map is its machine's
// (the GiBs of the window its space's memory reached, a region each;
// Unicorn 2.0.1 unmaps a region page by page, measured at 35-45 ms a GiB
// on a loaded host), and a fresh engine costs less than remapping one.
//
// The pool closes an engine lent for longer than ttl (by up to ttl more:
// the pool looks every ttl, with no clock read when engines come and go),
// and at once the oldest beyond maxIdle, so what idle engines hold is
// bounded for the whole monitor, not per space. Opening and later closing
// an engine costs about 0.4 ms of CPU for a space whose memory lies in one
// GiB (a region each GiB reached, a few more for the system memory and
// the gaps), which ttl bounds to well under 1% for a thread that wakes
// just too late to find its engine; a thread that waits less than ttl
// keeps its engine and its translations.
type pool struct {
	mu         sync.Mutex
	head, tail *vcpu  // the idle list, least recently lent first
	idle       int    // its length
	epoch      uint64 // rounds of the reaper
	timer      *time.Timer
	armed      bool
	maxIdle    int
	ttl        time.Duration

	inUse    int // vCPUs in Run, holding their engine
	open     int // engines open, lent or in use
	reopened int // engines opened for vCPUs whose earlier one was closed

	// parked are the engines closed vCPUs left for the next vCPU of their
	// machine (see park in emu.go), least recently parked first; reused
	// counts those taken (for tests).
	parked []*parkedEngine
	reused int

	// untrimmed: engines closed since malloc's heaps were last trimmed.
	untrimmed bool

	// closeAtRelease closes an engine as soon as it is lent (for tests,
	// which so resume every thread on a fresh engine).
	closeAtRelease bool

	// changed is closed and replaced when open changes (for tests).
	changed chan struct{}
}

// Where a vCPU's engine is, as the pool sees it.
const (
	engineNone    = iota // no engine, or not yet opened
	engineBusy           // held by its vCPU
	engineIdle           // lent to the pool, and on its idle list
	engineReaping        // taken off the idle list to be closed
	engineGone           // the vCPU is closed
)

// maxParked bounds the engines parked for the whole monitor; the reaper
// closes one parked for longer than ttl, as it closes a lent one.
const maxParked = 8

// enginePool is the process's one pool: idle engines are bounded for the
// whole monitor, not per space.
var enginePool = &pool{maxIdle: 16, ttl: 250 * time.Millisecond, changed: make(chan struct{})}

// deferOps are the operations that may sleep in the monitor: a guest's
// call of one stops the engine and is served outside it (see acquire and
// release), which costs a run of the engine more (about 2 µs) than one
// served inside, where the engine would wait with the thread. Any other
// operation on a port a guest serves may sleep too; it is served inside,
// and its thread holds its engine until the reply.
var deferOps = [...]abi.Op{abi.OpPortReceive, abi.OpPortCall, abi.OpFutexWait, abi.OpClockWait, abi.OpConsoleRead, abi.OpSpaceKill, abi.OpFutexWaitClock}

// deferMask is deferOps as the bitmap the hypercall hook reads.
var deferMask = func() (m [2]uint64) {
	for _, op := range deferOps {
		m[op>>6] |= 1 << (op & 63)
	}
	return m
}()

// acquire makes v's engine its own for a run: the one it lent, if the
// pool has not closed it, else none (v.c nil), and the caller opens one.
// A close under way finishes first.
func (p *pool) acquire(v *vcpu) {
	p.mu.Lock()
	prev := v.where
	if prev == engineIdle {
		p.unlink(v)
	}
	v.where = engineBusy
	p.inUse++
	p.mu.Unlock()
	if prev == engineReaping || prev == engineNone {
		// The reaper may hold v's engine (engineReaping: it took v off the
		// list and may not have looked again; engineNone: it is closing it).
		v.engMu.Lock()
		v.engMu.Unlock() //nolint:staticcheck // an empty critical section: waits for the reaper
	}
}

// release lends v's engine to the pool until v's next acquire.
func (p *pool) release(v *vcpu) {
	p.mu.Lock()
	p.inUse--
	if v.c == nil || p.closeAtRelease {
		v.where = engineNone
		p.mu.Unlock()
		if v.c != nil {
			v.engMu.Lock()
			v.shelve()
			v.engMu.Unlock()
		}
		return
	}
	v.where = engineIdle
	v.idleEpoch = p.epoch
	p.push(v)
	// Beyond maxIdle the oldest closes at once, on this thread: the count
	// of engines stays bounded however fast threads come to wait.
	over := p.claim(false)
	if !p.armed {
		p.arm()
	}
	p.mu.Unlock()
	p.close(over)
}

// arm makes the reaper look after ttl. Callers hold p.mu.
func (p *pool) arm() {
	if p.timer == nil {
		p.timer = time.AfterFunc(p.ttl, p.reap)
	} else {
		p.timer.Reset(p.ttl)
	}
	p.armed = true
}

// push appends v to the idle list. Callers hold p.mu.
func (p *pool) push(v *vcpu) {
	v.prev, v.next = p.tail, nil
	if p.tail != nil {
		p.tail.next = v
	} else {
		p.head = v
	}
	p.tail = v
	p.idle++
}

// unlink takes v off the idle list. Callers hold p.mu.
func (p *pool) unlink(v *vcpu) {
	if v.prev != nil {
		v.prev.next = v.next
	} else {
		p.head = v.next
	}
	if v.next != nil {
		v.next.prev = v.prev
	} else {
		p.tail = v.prev
	}
	v.prev, v.next = nil, nil
	p.idle--
}

// claim takes off the idle list, to be closed, the oldest engines beyond
// maxIdle and, when aged, those lent before the reaper last looked.
// Callers hold p.mu.
func (p *pool) claim(aged bool) []*vcpu {
	var victims []*vcpu
	for v := p.head; v != nil; v = p.head {
		if p.idle <= p.maxIdle && (!aged || v.idleEpoch+1 >= p.epoch) {
			break
		}
		p.unlink(v)
		v.where = engineReaping
		victims = append(victims, v)
	}
	return victims
}

// close closes the engines of victims that are still claimed: a vCPU may
// have taken its engine back meanwhile.
func (p *pool) close(victims []*vcpu) {
	for _, v := range victims {
		v.engMu.Lock()
		p.mu.Lock()
		mine := v.where == engineReaping
		if mine {
			v.where = engineNone
			p.untrimmed = true
		}
		p.mu.Unlock()
		if mine {
			v.shelve()
		}
		v.engMu.Unlock()
	}
}

// reap closes the engines idle for longer than the pool keeps them, and
// gives the memory of what was closed since it last ran back to the host.
func (p *pool) reap() {
	p.mu.Lock()
	p.epoch++
	victims := p.claim(true)
	var aged []*parkedEngine
	kept := p.parked[:0]
	for _, pe := range p.parked {
		if pe.epoch+1 < p.epoch {
			aged = append(aged, pe)
		} else {
			kept = append(kept, pe)
		}
	}
	clear(p.parked[len(kept):])
	p.parked = kept
	p.armed = false
	if p.idle > 0 || len(p.parked) > 0 {
		p.arm()
	}
	p.mu.Unlock()
	p.close(victims)
	p.closeParked(aged)
	p.mu.Lock()
	trim := p.untrimmed
	p.untrimmed = false
	p.mu.Unlock()
	if trim {
		trimHeap()
	}
}

// drop takes v out of the pool for good and closes its engine, unless
// park keeps it for another vCPU.
func (p *pool) drop(v *vcpu, park func() bool) {
	p.mu.Lock()
	if v.where == engineIdle {
		p.unlink(v)
	}
	v.where = engineGone
	p.mu.Unlock()
	v.engMu.Lock()
	if !park() {
		v.shelve()
	}
	v.engMu.Unlock()
}

// park keeps pe until a vCPU of its machine takes it (unpark), its
// machine closes (evict) or the reaper finds it unused for ttl; beyond
// maxParked the oldest closes at once.
func (p *pool) park(pe *parkedEngine) {
	p.mu.Lock()
	pe.epoch = p.epoch
	p.parked = append(p.parked, pe)
	var over []*parkedEngine
	if n := len(p.parked) - maxParked; n > 0 {
		over = append(over, p.parked[:n]...)
		p.parked = slices.Delete(p.parked, 0, n)
	}
	if !p.armed {
		p.arm()
	}
	p.mu.Unlock()
	p.closeParked(over)
}

// unpark takes an engine parked in m by a vCPU whose setup was cfg, the
// most recently parked first; nil when there is none.
func (p *pool) unpark(m *emuMachine, cfg *machine.CPUSetup) *parkedEngine {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.parked) - 1; i >= 0; i-- {
		if pe := p.parked[i]; pe.m == m && pe.cfg == *cfg {
			p.parked = slices.Delete(p.parked, i, i+1)
			p.reused++
			return pe
		}
	}
	return nil
}

// evict closes the engines parked in m, which is closing.
func (p *pool) evict(m *emuMachine) {
	p.mu.Lock()
	var gone []*parkedEngine
	kept := p.parked[:0]
	for _, pe := range p.parked {
		if pe.m == m {
			gone = append(gone, pe)
		} else {
			kept = append(kept, pe)
		}
	}
	clear(p.parked[len(kept):])
	p.parked = kept
	p.mu.Unlock()
	p.closeParked(gone)
}

// closeParked closes engines taken out of the parked list.
func (p *pool) closeParked(gone []*parkedEngine) {
	if len(gone) == 0 {
		return
	}
	for _, pe := range gone {
		pe.c.close()
		p.closing()
	}
	p.mu.Lock()
	p.untrimmed = true
	p.mu.Unlock()
}

// reusedTotal reports how many parked engines vCPUs have taken.
func (p *pool) reusedTotal() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reused
}

// opening and closing count engines; again is an engine opened to resume
// a thread whose engine the pool closed.
func (p *pool) opening(again bool) {
	p.count(+1)
	if again {
		p.mu.Lock()
		p.reopened++
		p.mu.Unlock()
	}
}

func (p *pool) closing() { p.count(-1) }

func (p *pool) count(d int) {
	p.mu.Lock()
	p.open += d
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// counts reports how many vCPUs hold their engine, how many engines are
// open, and a channel closed when the count of open ones next changes.
func (p *pool) counts() (inUse, open int, changed <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse, p.open, p.changed
}

// reopenedTotal reports how many engines have been opened to resume a
// thread on.
func (p *pool) reopenedTotal() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reopened
}
