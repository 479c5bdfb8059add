// Command nestvm is the nestvm monitor: it runs x86-64 guest programs on
// KVM or on an emulator and offers them a capability ABI.
//
//	nestvm run [flags] PROGRAM [ARGS...]
//	nestvm info
//	nestvm layers
//	nestvm bench [flags]
//	nestvm restore [flags] FILE
//	nestvm inspect FILE
//	nestvm ps [flags]
//	nestvm attach [flags] ID|PATH
//
// Run "nestvm help" for the details.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"

	// The backends register themselves; each builds only where it can run.
	_ "nestvm/emu"
	_ "nestvm/kvm"
)

// Exit statuses of the monitor itself (the guest's own status otherwise).
const (
	exitUsage      = 2   // bad flags or arguments
	exitTimeout    = 124 // --timeout expired
	exitMonitor    = 125 // the monitor could not run the program (backend missing, internal error)
	exitNotRunable = 126 // the program file is not something nestvm can run
	exitNotFound   = 127 // the program file does not exist
	exitInterrupt  = 130 // interrupted (Ctrl-C, SIGTERM)
)

const usage = `nestvm runs x86-64 guest programs in nested, capability-based virtual
machines, on KVM or on a CPU emulator.

Usage:
  nestvm run [flags] PROGRAM [ARGS...]   run a static x86-64 ELF program
  nestvm info                            show the backends this host offers
  nestvm layers                          list the layers run --layer can stack
  nestvm bench [flags]                   time workloads under stacks of layers
  nestvm restore [flags] FILE            resume a checkpoint (run --layer checkpoint=FILE)
  nestvm inspect FILE                    show what a checkpoint file holds
  nestvm ps [--json] [--tree]            list the running monitors and their trees
  nestvm attach ID|PATH --state|--trace|--checkpoint [--stop]|--kill REASON
                                         talk to a running monitor's control socket
  nestvm help [COMMAND]                  show help

Run "nestvm help run" for the flags of run, "nestvm help bench" for bench.
`

func main() {
	os.Exit(mainStatus(os.Args[1:], os.Stdout, os.Stderr))
}

// mainStatus runs the command line args and returns the exit status.
func mainStatus(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if args[0] == "run" || args[0] == "restore" {
		// Before anything slow: a checkpoint asked for in the monitor's
		// first instant must neither kill it nor be lost.
		catchCheckpointSignals()
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "info":
		return cmdInfo(args[1:], stdout, stderr)
	case "layers":
		return cmdLayers(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(args[1:], stdout, stderr)
	case "restore":
		return cmdRestore(args[1:], stdout, stderr)
	case "inspect":
		return cmdInspect(args[1:], stdout, stderr)
	case "ps":
		return cmdPs(args[1:], stdout, stderr)
	case "attach":
		return cmdAttach(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		// Asked-for help goes to stdout.
		if len(args) > 1 && args[1] == "run" {
			return cmdRun([]string{"-help"}, stdout, stdout)
		}
		if len(args) > 1 && args[1] == "info" {
			return cmdInfo([]string{"-help"}, stdout, stdout)
		}
		if len(args) > 1 && args[1] == "layers" {
			return cmdLayers([]string{"-help"}, stdout, stdout)
		}
		if len(args) > 1 && args[1] == "bench" {
			return cmdBench([]string{"-help"}, stdout, stdout)
		}
		if len(args) > 1 && args[1] == "restore" {
			return cmdRestore([]string{"-help"}, stdout, stdout)
		}
		if len(args) > 1 && args[1] == "inspect" {
			return cmdInspect([]string{"-help"}, stdout, stdout)
		}
		if len(args) > 1 && args[1] == "ps" {
			return cmdPs([]string{"-help"}, stdout, stdout)
		}
		if len(args) > 1 && args[1] == "attach" {
			return cmdAttach([]string{"-help"}, stdout, stdout)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "nestvm: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// newLogger returns the monitor's logger on w at the named level.
func newLogger(level string, w io.Writer) (hclog.Logger, error) {
	l := hclog.LevelFromString(level)
	if l == hclog.NoLevel {
		return nil, fmt.Errorf("unknown log level %q (choose trace, debug, info, warn, error or off)", level)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name: "nestvm", Level: l, Output: w, DisableTime: true,
	}), nil
}

// logFileLimit logs the open-file limit the monitor runs under: each
// space's memory and each KVM VM and vCPU is a descriptor, so it bounds how
// many live spaces the host can hold. The syscall package has already
// raised the soft limit at start, to one below the hard one (so that it
// can tell a later prlimit from its own change; it restores the original
// for the processes it starts), so the soft limit logged is what there is.
func logFileLimit(log hclog.Logger) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Debug("open files limit unknown", "error", err)
		return
	}
	log.Debug("open files limit", "soft", rl.Cur, "hard", rl.Max)
}

var logLevels = strings.Join([]string{"trace", "debug", "info", "warn", "error", "off"}, ", ")

// printFlags lists fl's flags the way users write them (--name; Go's flag
// package accepts one dash or two), with their defaults.
func printFlags(fl *flag.FlagSet) {
	fl.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(fl.Output(), "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
			fmt.Fprintf(fl.Output(), " (default %s)", f.DefValue)
		}
		fmt.Fprintln(fl.Output())
	})
}
