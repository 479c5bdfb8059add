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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"nestvm/nester"

	// The backends register themselves; each builds only where it can run.
	_ "nestvm/emu"
	_ "nestvm/kvm"
)

// command is one of nestvm's commands: the usage line and the help come
// from here, so a command cannot be run without being listed, or listed
// without help.
type command struct {
	name     string
	synopsis string // what follows "nestvm" on its usage line
	summary  string // one line
	// run runs the command with its arguments; given -help, it prints its
	// help on stderr and returns 0.
	run func(args []string, stdout, stderr io.Writer) int
	// checkpointSignals: the command may stack a checkpoint layer, whose
	// signals it must catch before anything slow (see signals.go).
	checkpointSignals bool
}

// commands are nestvm's commands, in the order the usage lists them.
var commands = []command{
	{name: "run", synopsis: "run [flags] PROGRAM [ARGS...]", summary: "run a static x86-64 ELF program", run: cmdRun, checkpointSignals: true},
	{name: "info", synopsis: "info", summary: "show the backends this host offers", run: cmdInfo},
	{name: "layers", synopsis: "layers", summary: "list the layers run --layer can stack", run: cmdLayers},
	{name: "bench", synopsis: "bench [flags]", summary: "time workloads under stacks of layers", run: cmdBench},
	{name: "restore", synopsis: "restore [flags] FILE", summary: "resume a checkpoint (run --layer checkpoint=FILE)", run: cmdRestore, checkpointSignals: true},
	{name: "inspect", synopsis: "inspect FILE", summary: "show what a checkpoint file holds", run: cmdInspect},
	{name: "ps", synopsis: "ps [--json] [--tree]", summary: "list the running monitors and their trees", run: cmdPs},
	{name: "attach", synopsis: "attach ID|PATH --state|--trace|--checkpoint [--stop]|--kill REASON", summary: "talk to a running monitor's control socket", run: cmdAttach},
}

// lookupCommand returns the command called name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// usage is what nestvm says of itself: what it is and its commands.
var usage = func() string {
	var b strings.Builder
	b.WriteString(`nestvm runs x86-64 guest programs in nested, capability-based virtual
machines, on KVM or on a CPU emulator.

Usage:
`)
	line := func(synopsis, summary string) {
		const width = 31 // of the synopsis column
		if len(synopsis) > width {
			fmt.Fprintf(&b, "  nestvm %s\n%*s%s\n", synopsis, len("  nestvm ")+width+1, "", summary)
			return
		}
		fmt.Fprintf(&b, "  nestvm %-*s %s\n", width, synopsis, summary)
	}
	for _, c := range commands {
		line(c.synopsis, c.summary)
	}
	line("help [COMMAND]", "show help")
	b.WriteString(`
Run "nestvm help run" for the flags of run, "nestvm help bench" for bench.
`)
	return b.String()
}()

func main() {
	os.Exit(mainStatus(os.Args[1:], os.Stdout, os.Stderr))
}

// mainStatus runs the command line args and returns the exit status.
func mainStatus(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return nester.StatusUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		// Asked-for help goes to stdout.
		if len(args) > 1 {
			if c, ok := lookupCommand(args[1]); ok {
				return c.run([]string{"-help"}, stdout, stdout)
			}
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	c, ok := lookupCommand(args[0])
	if !ok {
		fmt.Fprintf(stderr, "nestvm: unknown command %q\n\n%s", args[0], usage)
		return nester.StatusUsage
	}
	if c.checkpointSignals {
		// Before anything slow: a checkpoint asked for in the monitor's
		// first instant must neither kill it nor be lost.
		catchCheckpointSignals()
	}
	return c.run(args[1:], stdout, stderr)
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

// parseFlags parses a command's args on fl; done says the command is
// over, with status: 0 when -help printed its help, nester.StatusUsage
// for a bad flag, which fl has named on its output.
func parseFlags(fl *flag.FlagSet, args []string) (status int, done bool) {
	err := fl.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	}
	return nester.StatusUsage, true
}

// parseNoArgs is parseFlags for a command that takes flags only: an
// argument after them is refused, named on fl's output.
func parseNoArgs(fl *flag.FlagSet, args []string) (status int, done bool) {
	if status, done := parseFlags(fl, args); done {
		return status, done
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(fl.Output(), "%s: unexpected argument %q\n", fl.Name(), fl.Arg(0))
		return nester.StatusUsage, true
	}
	return 0, false
}

// newFlagSet is the flag set of the command called name ("nestvm run"):
// it says what is wrong with a flag, and its help, on stderr, and leaves
// the command to return its status. Its help is help (the usage line
// first), then the flags the command defines, when it defines any.
func newFlagSet(name string, stderr io.Writer, help string) *flag.FlagSet {
	fl := flag.NewFlagSet(name, flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprint(fl.Output(), help)
		flags := false
		fl.VisitAll(func(*flag.Flag) { flags = true })
		if flags {
			fmt.Fprint(fl.Output(), "\nFlags:\n")
			printFlags(fl)
		}
	}
	return fl
}

// wrongArgs says on fl's output what its command wants instead of the
// arguments it was given, then its usage, and returns the status for it.
func wrongArgs(fl *flag.FlagSet, want string) int {
	fmt.Fprintf(fl.Output(), "%s: %s\n", fl.Name(), want)
	fl.Usage()
	return nester.StatusUsage
}

// failf says on stderr why a command could not do its work, and returns
// status, the status to end with.
func failf(stderr io.Writer, status int, format string, a ...any) int {
	fmt.Fprintf(stderr, "nestvm: "+format+"\n", a...)
	return status
}

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
