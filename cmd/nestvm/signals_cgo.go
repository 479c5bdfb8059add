//go:build cgo

package main

/*
#include <signal.h>
#include <string.h>

// Before the Go runtime starts, nestvm run and nestvm restore block the
// checkpoint signals, so that one sent in the monitor's first instant
// waits, pending, until catchCheckpointSignals takes it: the runtime keeps
// the mask it starts with on its threads (and C threads inherit it), and
// os/signal unblocks what it is asked to catch on its own thread. Without
// this, SIGUSR1 before that point is dropped by the runtime, or ends the
// process where it lands on a C thread. glibc passes argc and argv to
// constructors.
__attribute__((constructor)) static void nestvm_block_checkpoint_signals(int argc, char **argv) {
	if (argc < 2 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "restore") != 0)) {
		return;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, 0);
}
*/
import "C"
