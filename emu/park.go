//go:build cgo && linux && amd64

package emu

import (
	"nestvm/abi"
	"nestvm/machine"
)

// An engine costs about 0.5 ms of CPU to open, fill with the machine's map
// and close again, most of it in Unicorn rebuilding its whole memory
// dispatch tree at each region mapped (a dozen regions, with the gap
// fillers) and allocating then freeing its translation tables: half of
// what a short-lived space costs (a child that starts and exits). So a
// vCPU that closes parks its engine in the pool for the next vCPU of the
// same machine with the same setup (the next thread of the same number,
// in the same space or, once the shell is recycled, in the next space),
// which takes it with its map as it is.
//
// What must not pass from one to the other, and how it does not:
//   - translated code: the engine may hold blocks translated from user
//     memory wherever it let code run (ran). Parking drops them
//     (forgetCode), so the next vCPU translates from the memory as it is
//     then; blocks of the system memory's code are kept, its pages being
//     the same stub pages in every space (machine.buildSystem);
//   - cached address translations: flushed before the next vCPU's first
//     run (flushTLB in load);
//   - CPU state: the engine's context saved on entering ring 3 under the
//     same setup is restored before the first run (needRestore), as after
//     any fault, and the thread's registers and FPU state written over it,
//     as when a fresh engine starts;
//   - the vCPU its hooks serve: rebound to the new one.
//
// An engine that cannot take the machine's map as it is now without Unicorn
// splitting a region (which unmaps it page by page) is closed rather than
// reused, and so is one whose run failed.

// parkedEngine is an engine a closed vCPU left, with what the vCPU knew
// of its map.
type parkedEngine struct {
	c        *engine
	m        *emuMachine
	cfg      machine.CPUSetup
	mapped   []span
	exec     spans
	lateSeen int64
	epoch    uint64 // the pool's epoch when parked
}

// Bounds of the user code a parked engine may have translated: removal
// (see forgetCode) costs a lookup per page, and works with paging off,
// where a guest address is physical only below 4 GiB.
const (
	maxParkedCode = 4 << 20
	parkedCodeTop = 4 << 30
)

// noteRan adds the user part of exec to ran.
func (v *vcpu) noteRan(exec spans) {
	for _, r := range exec {
		if r.end > abi.UserBase {
			v.ran.set(max(r.start, abi.UserBase), r.end, true)
		}
	}
}

// park keeps v's engine for another vCPU (see the comment at the top of
// this file) and reports whether it did; when not, the caller closes it.
// v is closed, and the caller holds engMu.
func (v *vcpu) park() bool {
	c := v.c
	if c == nil || !v.entered || v.failed {
		return false
	}
	size := uint64(0)
	for _, r := range v.ran {
		if r.end > parkedCodeTop {
			return false
		}
		size += r.end - r.start
	}
	if size > maxParkedCode {
		return false
	}
	if err := v.forgetCode(); err != nil {
		v.log.Debug("emu: engine not parked", "err", err)
		return false
	}
	v.mu.Lock()
	v.c = nil // Stop no longer reaches it
	v.mu.Unlock()
	enginePool.park(&parkedEngine{c: c, m: v.m, cfg: v.cfg, mapped: v.mapped, exec: v.exec, lateSeen: v.lateSeen})
	v.mapped, v.exec, v.execGen, v.lateSeen, v.ran = nil, nil, 0, 0, nil
	return true
}

// forgetCode drops the blocks the engine translated from user memory.
// Unicorn finds a block's physical page through the CPU's own address
// translation, which must not depend on page tables that another thread
// may be changing or that the space's end is about to clear: with paging
// off, an address below 4 GiB is its physical self (parkedCodeTop). The
// engine's CPU state does not matter any more; the context restored
// before its next run replaces it.
func (v *vcpu) forgetCode() error {
	if len(v.ran) == 0 {
		return nil
	}
	if err := v.c.writeReg(regCR0, machine.CR0Value&^(1<<31)); err != nil {
		return err
	}
	for _, r := range v.ran {
		// One region at a time: a removal takes the range as lying in
		// the region of its start.
		for _, p := range clip(v.mapped, r.start, r.end) {
			if err := v.c.forgetCode(p.start, p.end); err != nil {
				return err
			}
		}
	}
	return nil
}

// reuse gives v an engine parked in its machine by a vCPU with the same
// setup, if there is one that can take the machine's map as it is now,
// and reports whether it did.
func (v *vcpu) reuse() bool {
	pe := enginePool.unpark(v.m, &v.cfg)
	if pe == nil {
		return false
	}
	v.m.mu.Lock()
	want, lateSeen := v.m.exec.clone(), int64(len(v.m.late))
	v.m.mu.Unlock()
	if lateSeen != pe.lateSeen || !wholePieces(pe.exec.diff(want), pe.mapped) {
		// Memory the engine lacks, or code permissions it could only
		// take by splitting a region: a fresh engine costs less.
		pe.c.close()
		enginePool.closing()
		return false
	}
	c := pe.c
	c.rebind(v)
	v.mu.Lock()
	v.c = c
	c.setStop(v.stopReq.Load())
	v.mu.Unlock()
	// execGen 0 is behind the machine's (which counts its MapMemory
	// calls), so the next run applies the machine's exec permissions
	// and notes them in ran.
	v.mapped, v.exec, v.execGen, v.lateSeen, v.ran = pe.mapped, pe.exec, 0, pe.lateSeen, nil
	v.entered, v.needRestore, v.flushTLB = true, true, true
	v.regsDirty, v.fpuDirty = true, true
	return true
}

// wholePieces reports whether every change covers whole regions of
// mapped, so that uc_mem_protect applies it without splitting one.
func wholePieces(changes []change, mapped []span) bool {
	for _, d := range changes {
		for _, r := range clip(mapped, d.start, d.end) {
			whole := false
			for _, p := range mapped {
				if p == r {
					whole = true
					break
				}
			}
			if !whole {
				return false
			}
		}
	}
	return true
}
