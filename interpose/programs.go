package interpose

import (
	"fmt"

	"nestvm/abi"
	"nestvm/vmm"
)

// ProgramsCap is the name of the environment capability programs are made
// through (space_create on it makes a program's space): nester.CapSpace.
const ProgramsCap = "space"

// keepProgram keeps, as the Wrapper's own handle h, each space made
// through its ProgramsCap stand-in: the subtree below the layer, which
// EndPrograms ends. It reports whether it kept h (or ended it, the layer
// having ended its programs already).
func (w *Wrapper) keepProgram(c *Call, h uint64) bool {
	if c.Inv.Op != abi.OpSpaceCreate || c.Name != ProgramsCap {
		return false
	}
	w.pmu.Lock()
	if w.ended != nil {
		// The programs were ended while this one was made: it ends too.
		reason := w.ended
		w.pmu.Unlock()
		w.abort([]uint64{h}, reason)
		return true
	}
	w.programs = append(w.programs, h)
	if len(w.programs) >= w.pruneAt {
		w.pruneProgramsLocked()
	}
	w.pmu.Unlock()
	return true
}

// pruneProgramsLocked drops the handles of programs that ended, so that a
// program that makes many (a shell under a personality) does not fill the
// layer's table with spaces long gone; w.pmu is held.
func (w *Wrapper) pruneProgramsLocked() {
	w.programs = PruneEnded(w.Host.NewCaller(), w.programs)
	w.pruneAt = max(16, 2*len(w.programs))
}

// PruneEnded closes the handles among hs (spaces, in c's table) of the
// spaces that have ended, and returns the others, in hs's own array: how
// a layer that keeps the spaces made below it (a Wrapper, the control
// layer) lets go of those long gone. A space whose status cannot be read
// is kept.
func PruneEnded(c *vmm.Caller, hs []uint64) []uint64 {
	live := hs[:0]
	for _, h := range hs {
		if st, _, err := c.SpaceStatus(h); err == nil && st != abi.SpaceRunning {
			c.HandleClose(h)
			continue
		}
		live = append(live, h)
	}
	clear(hs[len(live):])
	return live
}

// EndPrograms ends, as killed with reason (space_abort), every program made
// through the Wrapper's stand-in for the environment's space capability,
// with the spaces below them: the subtree below the layer. It is what a
// layer that can no longer do its job does (a trace that cannot write, a
// handler that panicked); a program made after it ends at once too. Only
// the first reason is kept.
func (w *Wrapper) EndPrograms(reason string) {
	w.pmu.Lock()
	if w.ended == nil {
		w.ended = []byte(reason)
	}
	programs := w.programs
	w.programs = nil
	w.pmu.Unlock()
	w.abort(programs, []byte(reason))
}

// abort ends the spaces programs (handles in the Wrapper's table) and
// closes the handles.
func (w *Wrapper) abort(programs []uint64, reason []byte) {
	c := w.Host.NewCaller()
	for _, h := range programs {
		if _, _, err := c.SpaceAbort(h, reason); err != nil {
			w.Host.Logger().Error("cannot end a program space", "layer", w.Layer, "error", fmt.Errorf("space_abort: %w", err))
		}
		c.HandleClose(h)
	}
}
