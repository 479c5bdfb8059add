package interpose

// ProgramsKept returns how many program spaces w keeps handles to.
func ProgramsKept(w *Wrapper) int {
	w.pmu.Lock()
	defer w.pmu.Unlock()
	return len(w.programs)
}
