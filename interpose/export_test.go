package interpose

// ProgramsKept returns how many program spaces w keeps handles to.
func ProgramsKept(w *Wrapper) int {
	return w.programs().kept()
}
