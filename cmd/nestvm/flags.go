package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/control"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// runFlags are the flags nestvm run and nestvm restore share: where the
// program runs, how much is logged, how long it may take, what files it
// reaches, its quotas, the layers above it and the control socket.
type runFlags struct {
	backend      string
	cpu          *string
	logLevel     string
	timeout      time.Duration
	filesDir     string
	filesRW      bool
	quota        quotaFlag
	layers       layerFlag
	control      string
	controlTrace bool
}

// runFlagDocs are the usages of the shared flags whose truth differs
// between the commands.
type runFlagDocs struct {
	backend, files, quota string
}

// addRunFlags defines the shared flags on fl.
func addRunFlags(fl *flag.FlagSet, doc runFlagDocs) *runFlags {
	f := &runFlags{}
	fl.StringVar(&f.backend, "backend", "auto", doc.backend)
	f.cpu = cpuFlag(fl)
	fl.StringVar(&f.logLevel, "log-level", "info", "`level` of log detail on stderr: "+logLevels)
	fl.DurationVar(&f.timeout, "timeout", 0, "stop the program after this `duration` (e.g. 10s, 2m); 0 means no limit")
	fl.StringVar(&f.filesDir, "files", ".", doc.files)
	fl.BoolVar(&f.filesRW, "files-rw", false, "let the program create and write files under --files; without it they are read-only")
	fl.Var(&f.quota, "quota", doc.quota)
	fl.Var(&f.layers, "layer", "stack a `layer` between the monitor and the program (name or name=args; repeatable, the first is nearest the monitor; nestvm layers lists them)")
	fl.StringVar(&f.control, "control", "", controlUsage)
	fl.BoolVar(&f.controlTrace, "control-trace", false, controlTraceUsage)
	return f
}

// check refuses shared flags that cannot be meant, saying why on stderr
// after cmd (the command's name), and otherwise returns the monitor's
// logger; status is nester.StatusUsage when it refuses, else 0.
func (f *runFlags) check(cmd string, stderr io.Writer) (log hclog.Logger, status int) {
	if err := checkTimeout(f.timeout); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return nil, nester.StatusUsage
	}
	if f.controlTrace && f.control == "none" {
		fmt.Fprintf(stderr, "%s: --control-trace needs a control socket, and --control is none\n", cmd)
		return nil, nester.StatusUsage
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --log-level: %v\n", cmd, err)
		return nil, nester.StatusUsage
	}
	logFileLimit(log)
	return log, 0
}

// serveFiles serves the --files directory. The command calls it before
// anything runs: a files root that cannot be served is the user's to fix,
// not something the program should discover.
func (f *runFlags) serveFiles(log hclog.Logger) (*vmm.Files, error) {
	files, err := vmm.FilesServer(f.filesDir, f.filesRW)
	if err != nil {
		return nil, fmt.Errorf("--files: %w", err)
	}
	log.Debug("files root", "dir", f.filesDir, "writable", f.filesRW)
	return files, nil
}

// stage is what run and restore set up around their program, in the same
// order: the layers, the backend, the control socket, the handlers of
// Ctrl-C and of the checkpoint signals, the monitor and its root
// environment.
type stage struct {
	// layers are the stack from the monitor down: the control socket's
	// layer first, when there is one, then --layer's.
	layers  []nester.Layer
	backend machine.Backend
	ctl     *controlSocket
	// sigs receives Ctrl-C and SIGTERM, which end the program, not the
	// monitor, so that whatever it and the monitor wrote is kept and how
	// it ended is reported.
	sigs chan os.Signal
	mon  *vmm.Monitor
	root nester.Env
	// handedOver is set once a Run (or nester.Wrap on failure) closes
	// the layers.
	handedOver bool
	undo       []func() // what close undoes, the last first
}

// setUp makes the stage for a program that serves files, with quota q;
// cfg describes it to the control socket. On an error, what it made is
// undone, and status is the exit status to end with.
func (f *runFlags) setUp(log hclog.Logger, files vmm.Server, q vmm.Quota, cfg control.Config, stdout, stderr io.Writer) (st *stage, status int, err error) {
	st = &stage{}
	// Layers are made before anything runs: a bad name or argument, or a
	// file a layer cannot write, is the user's to fix first.
	triggers := &nester.Triggers{}
	layers, err := makeLayers(f.layers, log, stderr, triggers)
	if err != nil {
		return nil, nester.StatusUsage, err
	}
	st.layers = layers
	st.undo = append(st.undo, forwardCheckpointSignals(triggers, log))
	fail := func(status int, err error) (*stage, int, error) {
		st.close()
		return nil, status, err
	}
	if st.backend, err = pickBackend(f.backend, *f.cpu, log); err != nil {
		return fail(nester.StatusMonitor, err)
	}
	cfg.Backend, cfg.Layers = st.backend.Name(), f.layers
	if st.ctl, err = openControl(f.control, f.controlTrace, cfg, layers, log); err != nil {
		return fail(nester.StatusMonitor, fmt.Errorf("--control: %w", err))
	}
	st.undo = append(st.undo, st.ctl.close)
	st.layers = st.ctl.stack(layers)
	// The handler goes in before the guest starts: a signal right after
	// its first output must not kill the monitor.
	st.sigs = make(chan os.Signal, 2)
	signal.Notify(st.sigs, os.Interrupt, syscall.SIGTERM)
	st.undo = append(st.undo, func() { signal.Stop(st.sigs) })
	st.mon = vmm.NewMonitor(st.backend, log)
	root, rootSpace := nester.Root(st.mon, nester.RootConfig{Console: stdout, Stderr: stderr, Stdin: os.Stdin, Files: files,
		FilesWritable: f.filesRW, Memory: q.Memory, Threads: q.Threads, Handles: q.Handles, Children: q.Children, Log: log})
	st.root = root
	st.undo = append(st.undo, func() { rootSpace.Kill("run over") })
	return st, 0, nil
}

// running records that r, which has the layers, runs the program, and
// lets the control socket's kill requests end it.
func (st *stage) running(r *nester.Run) {
	st.handedOver = true
	st.ctl.running(r)
}

// close undoes what setUp did, closing the layers unless a run has them.
func (st *stage) close() {
	for i := len(st.undo) - 1; i >= 0; i-- {
		st.undo[i]()
	}
	st.undo = nil
	if !st.handedOver {
		closeLayers(st.layers)
		st.handedOver = true
	}
}

// await waits for r to end, as --timeout and Ctrl-C allow, then reports
// how it ended on stderr and returns the exit status for it.
func (st *stage) await(r *nester.Run, timeout time.Duration, path string, stderr io.Writer) int {
	res, ok := r.Await(timeout, st.sigs)
	if !ok {
		fmt.Fprintf(stderr, "nestvm: %s: interrupted again; exiting without waiting for the guest\n", path)
		return nester.StatusInterrupt
	}
	if status, stopped := stoppedBySaver(st.layers, path, stderr); stopped {
		return status
	}
	return report(res, path, stderr)
}
