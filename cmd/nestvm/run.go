package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/control"
	"nestvm/machine"
	"nestvm/nester"
	linuxp "nestvm/personality/linux"
	"nestvm/vmm"

	// The layers register themselves with nester.
	_ "nestvm/services/checkpoint"
	_ "nestvm/services/null"
	_ "nestvm/services/pager"
	_ "nestvm/services/refmon"
	_ "nestvm/services/timewarp"
	_ "nestvm/services/trace"
)

// listFlag is a repeatable flag's values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value.
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// runHelp is what nestvm run -help prints; newFlagSet lists its flags after it.
const runHelp = `Usage: nestvm run [flags] PROGRAM [ARGS...]

Runs PROGRAM, a static x86-64 ELF executable, with ARGS as its arguments:
a program built against the nestvm SDK (its ELF carries the SDK's note) on
nestvm's own ABI, any other static Linux program under the Linux
personality (--abi forces either). A Linux program gets the monitor's
standard input and output, the monitor's environment (changed by --env,
--unset-env and --clear-env), and sees the --files directory as /, with
/ as its working directory. Its console output goes to standard output.
Its files handle serves the directory --files names (the current directory
by default), read-only unless --files-rw is given; no path it opens can
leave that directory. Each --layer stacks a layer between the monitor and
the program, from the outside in; the program is then loaded through the
layers' environment, so a layer that interposes on its space sees that too.
Unless --control none is given, the monitor serves a control socket while
the program runs (nestvm ps lists it; nestvm attach shows its tree, streams
its trace, checkpoints or kills it), and stacks a control layer nearest
the monitor for it: that layer forwards every call untouched while nobody
streams a trace.

The exit status is the program's own; a program that faults ends with 128
plus the number of the matching Unix signal (139 for a page fault or
protection fault, 132 for an invalid instruction, 136 for a divide error,
...), and the monitor's own failures use 124 (timeout), 125 (monitor
error, or a --files directory or --control socket it cannot serve), 126
(not a runnable program), 127 (no such file) and 130 (interrupted: Ctrl-C,
SIGTERM, or nestvm attach --kill).
`

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("nestvm run", stderr, runHelp)
	rf := addRunFlags(fl, runFlagDocs{
		backend: "`backend` guest code runs on: auto (kvm when /dev/kvm opens, else emu), kvm or emu",
		files:   "`directory` the program's files handle serves; it cannot reach outside it, links included",
		quota:   quotaUsage,
	})
	mem := sizeFlag{vmm.DefaultQuota.Memory}
	fl.Var(&mem, "mem", "`size` of the memory the program and the child spaces it creates may use; its heap gets half of what its segments and stack leave (e.g. 64M, 1G)")
	stack := sizeFlag{vmm.DefaultStack}
	fl.Var(&stack, "stack", "`size` of the program's stack (e.g. 1M)")
	abiName := fl.String("abi", "auto", "`abi` the program is written for: auto (nestvm when it carries the nestvm SDK's ELF note, else linux), nestvm or linux")
	var setEnv, unsetEnv listFlag
	fl.Var(&setEnv, "env", "set `NAME=VALUE` in a Linux program's environment (repeatable)")
	fl.Var(&unsetEnv, "unset-env", "remove `NAME` from a Linux program's environment (repeatable)")
	clearEnv := fl.Bool("clear-env", false, "start a Linux program with an empty environment (then --env adds to it)")
	if status, done := parseFlags(fl, args); done {
		return status
	}
	if fl.NArg() == 0 {
		return wrongArgs(fl, "no program given")
	}
	log, status := rf.check("nestvm run", stderr)
	if status != 0 {
		return status
	}
	q, err := rf.quota.quota(mem.n, flagGiven(fl, "mem"))
	if err != nil {
		fmt.Fprintf(stderr, "nestvm run: %v\n", err)
		return nester.StatusUsage
	}
	mem.n = q.Memory
	// The stack is one region of the program's memory, below the top of
	// its address range: one that cannot be is a bad flag, not a failed
	// launch.
	switch {
	case stack.n%abi.PageSize != 0:
		fmt.Fprintf(stderr, "nestvm run: --stack %s: not a multiple of the %d-byte page\n", formatSize(stack.n), abi.PageSize)
		return nester.StatusUsage
	case stack.n > mem.n:
		fmt.Fprintf(stderr, "nestvm run: --stack %s: more than the program's memory (--mem %s)\n", formatSize(stack.n), formatSize(mem.n))
		return nester.StatusUsage
	case stack.n > abi.UserTop-abi.UserBase:
		fmt.Fprintf(stderr, "nestvm run: --stack %s: more than the %s address range a program has\n", formatSize(stack.n), formatSize(abi.UserTop-abi.UserBase))
		return nester.StatusUsage
	}
	path := fl.Arg(0)
	files, err := rf.serveFiles(log)
	if err != nil {
		return failf(stderr, nester.StatusMonitor, "%v", err)
	}
	defer files.Close()

	f, size, status, err := openInput(path)
	if err != nil {
		return failf(stderr, status, "%v", err)
	}
	for _, kv := range setEnv {
		if n, _, ok := strings.Cut(kv, "="); !ok || n == "" {
			f.Close()
			return failf(stderr, nester.StatusUsage, "--env %q: want NAME=VALUE", kv)
		}
	}
	var linux bool
	switch *abiName {
	case "auto", "nestvm", "linux":
	default:
		f.Close()
		return failf(stderr, nester.StatusUsage, "--abi %q: want auto, nestvm or linux", *abiName)
	}
	img, err := vmm.ReadELFWith(f, size, mem.n, vmm.ELFOptions{TLS: *abiName != "nestvm"})
	f.Close()
	if err != nil {
		return failf(stderr, nester.StatusNotRunnable, "%s: %v", path, err)
	}
	switch *abiName {
	case "linux":
		linux = true
	case "auto":
		linux = !img.Nestvm
	}
	if !linux && img.TLS {
		return failf(stderr, nester.StatusNotRunnable, "%s: %v", path, fmt.Errorf("%w: thread-local storage (PT_TLS) in a program for nestvm's ABI", vmm.ErrBadELF))
	}
	if _, lo, hi := img.Runs(); hi-lo > mem.n || stack.n > mem.n-(hi-lo) {
		fmt.Fprintf(stderr, "nestvm run: --stack %s: with the program's %s of segments, more than its memory (--mem %s)\n",
			formatSize(stack.n), formatSize(hi-lo), formatSize(mem.n))
		return nester.StatusUsage
	}
	var pers nester.Personality
	if linux {
		var base []string
		if !*clearEnv {
			base = os.Environ()
		}
		pers = &linuxp.Personality{Environ: linuxp.Environ(base, setEnv, unsetEnv), Exe: linuxp.ExePath(path, rf.filesDir), Log: log}
	}

	st, status, err := rf.setUp(log, files, q, control.Config{Program: path, Args: fl.Args()[1:]}, stdout, stderr)
	if err != nil {
		return failf(stderr, status, "%v", err)
	}
	defer st.close()
	r, err := nester.Launch(st.mon, st.root, st.layers, nester.Program{Name: path, Image: img, Args: fl.Args(), StackSize: stack.n, Personality: pers})
	st.handedOver = true // Launch closes them when it fails
	if err != nil {
		return failf(stderr, nester.StatusMonitor, "%v", err)
	}
	st.running(r)
	return st.await(r, rf.timeout, path, stderr)
}

// quotaUsage documents --quota, for nestvm run and nestvm restore.
var quotaUsage = fmt.Sprintf("the program's `quotas`, as KEY=VALUE,...: children=N (spaces below it at once, its children's children included; default %d), "+
	"threads=N (threads it and the spaces below it have at once, at most %d in one space and %d in all; default %d), handles=N (its handle table; default %d), "+
	"memory=SIZE (as --mem, which is its short form; default %s); children, threads and memory count what the program and the spaces below it use together",
	vmm.DefaultQuota.Children, machine.MaxVCPUs, vmm.MaxThreadsQuota, vmm.DefaultQuota.Threads, vmm.DefaultQuota.Handles, formatSize(vmm.DefaultQuota.Memory))

// flagGiven reports whether flag name was set on fl's command line.
func flagGiven(fl *flag.FlagSet, name string) bool {
	given := false
	fl.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// checkTimeout refuses a --timeout that cannot be meant: a negative one.
func checkTimeout(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("--timeout %s: want a duration of 0 (no limit) or more", d)
	}
	return nil
}

// closeLayers closes layers, the innermost first.
func closeLayers(layers []nester.Layer) {
	for i := len(layers) - 1; i >= 0; i-- {
		layers[i].Close()
	}
}

// layerFlag collects the --layer values, in order.
type layerFlag []string

func (f *layerFlag) String() string { return strings.Join(*f, " ") }

func (f *layerFlag) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty layer")
	}
	*f = append(*f, v)
	return nil
}

// openInput opens the file a command was given (a program, a checkpoint)
// for its reader to take what its headers say it needs, and returns its
// size. It says, when it cannot, why and with which status to end: 127 for
// no such file, 126 for one that cannot be read or is not a regular file
// (a FIFO would block the reader, a device such as /dev/zero never ends).
func openInput(path string) (*os.File, int64, int, error) {
	// O_NONBLOCK: opening a FIFO with no writer would block; it is
	// refused below, and reading a regular file ignores the flag.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nester.StatusNotFound, fmt.Errorf("%s: no such file", path)
	} else if err != nil {
		return nil, 0, nester.StatusNotRunnable, fmt.Errorf("%s: %v", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nester.StatusNotRunnable, fmt.Errorf("%s: %v", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, nester.StatusNotRunnable, fmt.Errorf("%s: not a regular file (%s)", path, fileKind(st.Mode()))
	}
	return f, st.Size(), 0, nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return m.Type().String()
}

// cpuFlag defines --cpu on fl.
func cpuFlag(fl *flag.FlagSet) *string {
	return fl.String("cpu", machine.CPUPortable, "`model` of the CPU guests are offered (what CPUID says): portable (the features both backends run, so a checkpoint taken on kvm resumes on emu) or host (everything /dev/kvm offers; its checkpoints resume only where those features are); emu has one model, the portable one")
}

// pickBackend resolves the --backend and --cpu flags, logging what auto
// chose.
func pickBackend(name, cpu string, log hclog.Logger) (machine.Backend, error) {
	b, err := machine.Lookup(name)
	if err != nil {
		return nil, err
	}
	if b, err = machine.WithCPU(b, cpu); err != nil {
		return nil, fmt.Errorf("--cpu: %w", err)
	}
	if name == "auto" || name == "" {
		var why []any
		if b.Name() != "kvm" {
			if _, kerr := machine.Lookup("kvm"); kerr != nil {
				why = []any{"kvm", kerr.Error()}
			}
		}
		log.Info("using backend "+b.Name(), why...)
	}
	return b, nil
}

// report prints how the program ended when it did not simply exit, and
// returns the exit status for it.
func report(r vmm.Result, path string, stderr io.Writer) int {
	switch {
	case r.Err != nil:
		fmt.Fprintf(stderr, "nestvm: %s: %v\n", path, r.Err)
		return nester.StatusMonitor
	case r.Fault != nil:
		fmt.Fprintf(stderr, "nestvm: %s: thread %d: %s\n", path, r.Fault.Thread, r.Fault.Fault)
		return r.Fault.Fault.ExitStatus()
	case r.Signal != 0:
		// As a process that died of it: the status says so, and the
		// program's own output is all there is on stderr.
		return 128 + r.Signal
	case r.Killed != "":
		// A --timeout kill says so in its status; every other kill (a
		// signal, nestvm attach --kill, a layer) is an interruption.
		fmt.Fprintf(stderr, "nestvm: %s: %s\n", path, r.Killed)
		if r.KilledStatus == nester.StatusTimeout {
			return nester.StatusTimeout
		}
		return nester.StatusInterrupt
	}
	return r.Status
}
