package vmm

import "nestvm/abi"

// IdleShells reports how many shells m keeps for new spaces, for tests.
func IdleShells(m *Monitor) int {
	return m.shells.IdleCount()
}

// ChildWindowChunks reports, for each child of s, how many chunks of its
// user window hold host address space, for tests.
func ChildWindowChunks(s *Space) []int {
	s.mu.Lock()
	kids := make([]*Space, 0, len(s.children))
	for c := range s.children {
		kids = append(kids, c)
	}
	s.mu.Unlock()
	out := make([]int, len(kids))
	for i, c := range kids {
		out[i] = c.win.ReservedChunks()
	}
	return out
}

// SetFaultHandler lets the external tests give a space a Go fault
// handler, which no host API offers (it skips rights).
func SetFaultHandler(s *Space, h FaultHandler) { s.setFaultHandler(h) }

// SetExceptionPort lets the external tests name a space's exception port
// without a handle to it.
func SetExceptionPort(s *Space, p *Port, badge uint64) { s.setExceptionPort(p, badge, abi.RightsAll) }

// NewHostSpace lets the kernel's tests hold a host space itself, past the
// Host that is all the host API offers, to look at what a host may not
// (its Wait result, its insides).
func (m *Monitor) NewHostSpace(name string, q Quota) *Space { return m.newHostSpace(name, q) }
