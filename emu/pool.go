//go:build cgo && linux && amd64

package emu

import (
	"sync"
	"time"

	"nestvm/abi"
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
// Engines are never handed from one thread to another: an engine's memory
// map is its machine's (the GiBs of the window its space's memory reached,
// a region each; Unicorn 2.0.1 unmaps a region page by page, measured at
// 35-45 ms a GiB on a loaded host), its saved ring-3 context is its
// thread's, and its translations
// belong to its space; opening a fresh engine costs less than cleaning one.
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
	p.armed = false
	if p.idle > 0 {
		p.arm()
	}
	p.mu.Unlock()
	p.close(victims)
	p.mu.Lock()
	trim := p.untrimmed
	p.untrimmed = false
	p.mu.Unlock()
	if trim {
		trimHeap()
	}
}

// drop takes v out of the pool for good and closes its engine.
func (p *pool) drop(v *vcpu) {
	p.mu.Lock()
	if v.where == engineIdle {
		p.unlink(v)
	}
	v.where = engineGone
	p.mu.Unlock()
	v.engMu.Lock()
	v.shelve()
	v.engMu.Unlock()
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
