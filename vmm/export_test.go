package vmm

// IdleShells reports how many shells m keeps for new spaces, for tests.
func IdleShells(m *Monitor) int {
	return m.shells.IdleCount()
}
