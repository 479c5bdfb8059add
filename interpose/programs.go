package interpose

import (
	"fmt"
	"sync"

	"nestvm/abi"
	"nestvm/vmm"
)

// ProgramsCap is the name of the environment capability programs are made
// through (space_create on it makes a program's space): nester.CapSpace.
const ProgramsCap = "space"

// Programs is a layer's record of the program spaces it made, as handles
// in its seat's table, so that a layer that can no longer do its job ends
// the subtree below it (End). Handles to programs that ended are closed as
// the record grows, so that a program that makes many (a shell under a
// personality) does not fill the layer's table with spaces long gone.
type Programs struct {
	host  *vmm.Host
	layer string

	mu      sync.Mutex
	handles []uint64
	pruneAt int
	ended   []byte // End's reason, once called
}

// NewPrograms returns an empty record for host, the layer's seat; layer
// names the layer in logs.
func NewPrograms(host *vmm.Host, layer string) *Programs {
	return &Programs{host: host, layer: layer, pruneAt: 16}
}

// Keep records h, a handle in the seat's table to a program space the
// layer made; the record owns h from then on. A program made after End
// ends at once, with End's reason.
func (p *Programs) Keep(h uint64) {
	p.mu.Lock()
	if p.ended != nil {
		reason := p.ended
		p.mu.Unlock()
		p.abort([]uint64{h}, reason)
		return
	}
	p.handles = append(p.handles, h)
	if len(p.handles) >= p.pruneAt {
		p.pruneLocked()
	}
	p.mu.Unlock()
}

// kept returns how many program spaces the record holds handles to.
func (p *Programs) kept() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.handles)
}

// pruneLocked closes the handles of programs that ended; p.mu is held.
func (p *Programs) pruneLocked() {
	c := p.host.NewCaller()
	live := p.handles[:0]
	for _, h := range p.handles {
		if st, _, err := c.SpaceStatus(h); err == nil && st != abi.SpaceRunning {
			c.HandleClose(h)
			continue
		}
		live = append(live, h)
	}
	clear(p.handles[len(live):])
	p.handles = live
	p.pruneAt = max(16, 2*len(live))
}

// End ends, as killed with reason (space_abort), every program recorded,
// with the spaces below them: the subtree below the layer. A program
// recorded later ends at once too. Only the first reason is kept.
func (p *Programs) End(reason string) {
	p.mu.Lock()
	if p.ended == nil {
		p.ended = []byte(reason)
	}
	handles := p.handles
	p.handles = nil
	p.mu.Unlock()
	p.abort(handles, []byte(reason))
}

// abort ends the spaces handles name and closes the handles.
func (p *Programs) abort(handles []uint64, reason []byte) {
	c := p.host.NewCaller()
	for _, h := range handles {
		if _, _, err := c.SpaceAbort(h, reason); err != nil {
			p.host.Logger().Error("cannot end a program space", "layer", p.layer, "error", fmt.Errorf("space_abort: %w", err))
		}
		c.HandleClose(h)
	}
}

// keepProgram records h, the Wrapper's own handle, when c made a space
// through its ProgramsCap stand-in: the subtree below the layer, which
// EndPrograms ends. It reports whether it took h.
func (w *Wrapper) keepProgram(c *Call, h uint64) bool {
	if c.Inv.Op != abi.OpSpaceCreate || c.Name != ProgramsCap {
		return false
	}
	w.programs().Keep(h)
	return true
}

// programs is the Wrapper's record of its programs, made on first use.
func (w *Wrapper) programs() *Programs {
	w.progOnce.Do(func() { w.progs = NewPrograms(w.Host, w.Layer) })
	return w.progs
}

// EndPrograms ends, as killed with reason (space_abort), every program made
// through the Wrapper's stand-in for the environment's space capability,
// with the spaces below them: the subtree below the layer. It is what a
// layer that can no longer do its job does (a trace that cannot write, a
// handler that panicked); a program made after it ends at once too. Only
// the first reason is kept.
func (w *Wrapper) EndPrograms(reason string) { w.programs().End(reason) }
