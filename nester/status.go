package nester

// Exit statuses a run ends with for the monitor's own reasons, as nestvm
// run and restore exit with them (README's table lists them): otherwise
// a program's status is its own, or 128 plus the number of the Unix
// signal its fault stands for. Layers and harnesses that end a run (Kill,
// a space_kill status) use these, so that its status says why whoever
// reads it.
const (
	StatusUsage       = 2   // bad flags or arguments
	StatusTimeout     = 124 // the time allowed ran out, as timeout(1) says
	StatusMonitor     = 125 // the monitor could not run the program, or a save a trigger asked for was not written
	StatusNotRunnable = 126 // the file is not a program the monitor can run
	StatusNotFound    = 127 // the program's file does not exist
	StatusInterrupt   = 130 // interrupted (Ctrl-C, SIGTERM, a kill request), as a shell's Ctrl-C says
)
