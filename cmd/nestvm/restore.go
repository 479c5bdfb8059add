package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"time"

	"nestvm/abi"
	"nestvm/control"
	"nestvm/nester"
	"nestvm/services/checkpoint"
)

// restoreHelp is what nestvm restore -help prints; newFlagSet lists its flags after it.
const restoreHelp = `Usage: nestvm restore [flags] FILE

Rebuilds the program a checkpoint FILE holds (nestvm run --layer
checkpoint=FILE) in a fresh monitor, on any backend whichever saved it,
and resumes it: it prints what was left of its output. Its console,
stderr, clock and files handles are reconnected to this run's; --layer
stacks layers between the monitor and the restored program, as for nestvm
run, and a control socket is served as for nestvm run (--control). A
file that is truncated, corrupted, of another format version (an
older nestvm's, or a newer one's) or naming what does not exist is
refused (status 126) before anything runs, and so is one saved where
the CPU offered features this backend lacks (see --ignore-cpu). The exit status is the
program's, as for nestvm run.
`

// cmdRestore rebuilds a checkpoint (nestvm run --layer checkpoint=FILE)
// in a fresh monitor and runs it to its end.
func cmdRestore(args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("nestvm restore", stderr, restoreHelp)
	rf := addRunFlags(fl, runFlagDocs{
		backend: "`backend` to resume on: auto, kvm or emu (any, whichever saved it)",
		files:   "`directory` the program's files handle is reconnected to; it cannot reach outside it, links included",
		quota:   "the restored program's `quotas` (as nestvm run --quota); by default those it was saved with, and none may be below them",
	})
	ignoreCPU := fl.Bool("ignore-cpu", false, "resume even on a backend that lacks CPU features the program was saved with (the default refuses, status 126): for a program known to pick no code by CPUID, such as a nestvm SDK guest or a musl program")
	if status, done := parseFlags(fl, args); done {
		return status
	}
	if fl.NArg() != 1 {
		return wrongArgs(fl, "want one checkpoint file")
	}
	log, status := rf.check("nestvm restore", stderr)
	if status != 0 {
		return status
	}
	path := fl.Arg(0)
	f, size, status, err := openInput(path)
	if err != nil {
		return failf(stderr, status, "%v", err)
	}
	// A save killed in the middle left its temporary file beside path:
	// this is the first look at that directory since.
	if err := checkpoint.RemoveStale(path); err != nil {
		log.Warn("stale checkpoint files not removed", "error", err)
	}
	ck, err := checkpoint.Read(f, size)
	f.Close()
	if err != nil {
		return failf(stderr, nester.StatusNotRunnable, "%s: %v", path, err)
	}
	q, err := ck.RestoreQuota(rf.quota.q)
	if err != nil {
		fmt.Fprintf(stderr, "nestvm restore: %v\n", quotaError(err))
		return nester.StatusUsage
	}
	files, err := rf.serveFiles(log)
	if err != nil {
		return failf(stderr, nester.StatusMonitor, "%v", err)
	}
	defer files.Close()
	st, status, err := rf.setUp(log, files, q, control.Config{Program: cmp.Or(ck.Program, path)}, stdout, stderr)
	if err != nil {
		return failf(stderr, status, "%v", err)
	}
	defer st.close()
	if err := checkpoint.CheckCPU(ck, st.backend); err != nil && !*ignoreCPU {
		return failf(stderr, nester.StatusNotRunnable, "%s: %v", path, err)
	}
	env, err := nester.Wrap(st.mon, st.root, st.layers)
	if err != nil {
		st.handedOver = true // Wrap closed them
		return failf(stderr, nester.StatusMonitor, "%v", err)
	}
	checkpoint.ContinueLayers(st.layers, ck)
	t0 := time.Now()
	r, err := checkpoint.Restore(st.mon, env, ck)
	var rerr *checkpoint.RightsError
	if errors.As(err, &rerr) && rerr.Name == nester.CapFiles && rerr.Held&^rerr.Offer&abi.RightWrite != 0 && !rf.filesRW {
		return failf(stderr, nester.StatusUsage, "%s: the program was saved with writable files: restore it with --files-rw", path)
	}
	if err != nil {
		return failf(stderr, nester.StatusMonitor, "%s: restore: %v", path, err)
	}
	log.Debug("restored", "file", path, "saved on", ck.Backend, "took", time.Since(t0))
	// The run closes the layers when the program ends, as for nestvm run:
	// a layer that fails to close is the run's error.
	r.Own(st.layers)
	st.running(r)
	return st.await(r, rf.timeout, path, stderr)
}

// quotaError says what a --quota checkpoint.RestoreQuota refused is
// below, in the flag's own words.
func quotaError(err error) error {
	var qe *checkpoint.QuotaError
	if !errors.As(err, &qe) {
		return err
	}
	if qe.Key == "memory" {
		return fmt.Errorf("--quota memory=%s: below the %s the checkpoint's program was saved with", formatSize(qe.Given), formatSize(qe.Saved))
	}
	return fmt.Errorf("--quota %s=%d: below the %d the checkpoint's program was saved with", qe.Key, qe.Given, qe.Saved)
}

// stoppedBySaver says, when a layer that saves the program (checkpoint)
// failed to write a checkpoint a trigger asked for or ended the run after
// saving, why on stderr, and the status to end with: 125 or 0.
func stoppedBySaver(layers []nester.Layer, path string, stderr io.Writer) (status int, stopped bool) {
	savers := saversIn(layers)
	for _, c := range savers {
		if c.Err() != nil {
			fmt.Fprintf(stderr, "nestvm: %s: %v\n", path, c.Err())
			return nester.StatusMonitor, true
		}
	}
	for _, c := range savers {
		if c.Stopped() {
			fmt.Fprintf(stderr, "nestvm: %s: stopped after saving checkpoint %s\n", path, c.File())
			return 0, true
		}
	}
	return 0, false
}
