package vmm

// IdleShells reports how many shells m keeps for new spaces, for tests.
func IdleShells(m *Monitor) int {
	m.shells.mu.Lock()
	defer m.shells.mu.Unlock()
	return len(m.shells.idle)
}
