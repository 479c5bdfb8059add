package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"nestvm/control"
	"nestvm/nester"
)

// psTimeout bounds how long ps waits for one monitor's answer.
const psTimeout = 5 * time.Second

// psHelp is what nestvm ps -help prints; newFlagSet lists its flags after it.
const psHelp = `Usage: nestvm ps [--json] [--tree]

Lists the nestvm monitors running on this host whose control sockets are
in %s (set NESTVM_RUNTIME_DIR to look elsewhere): for each, its pid,
socket, program, backend, uptime, and its program's spaces, threads and
memory. A socket left by a monitor that is gone is removed. The exit
status is 0, or 1 when the directory cannot be read.
`

// cmdPs lists the running monitors of this user (all, for root) and
// their trees, through their control sockets.
func cmdPs(args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("nestvm ps", stderr, fmt.Sprintf(psHelp, control.Dir()))
	jsonOut := fl.Bool("json", false, "print each monitor's state as one JSON object a line")
	tree := fl.Bool("tree", false, "print each monitor's tree of spaces and threads below its line")
	if status, done := parseNoArgs(fl, args); done {
		return status
	}
	socks, err := control.List(control.Dir())
	if err != nil {
		fmt.Fprintf(stderr, "nestvm ps: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !*jsonOut {
		fmt.Fprintln(tw, "PID\tSOCKET\tPROGRAM\tBACKEND\tUPTIME\tSPACES\tTHREADS\tMEMORY")
	}
	for _, s := range socks {
		ctx, cancel := context.WithTimeout(context.Background(), psTimeout)
		st, err := state(ctx, s.Path)
		cancel()
		if err != nil {
			if *jsonOut {
				b, _ := json.Marshal(map[string]any{"pid": s.PID, "socket": s.Path, "error": err.Error()})
				fmt.Fprintln(stdout, string(b))
			} else {
				fmt.Fprintf(tw, "%d\t%s\t(%v)\t\t\t\t\t\n", s.PID, s.Path, err)
			}
			continue
		}
		if *jsonOut {
			b, _ := json.Marshal(st)
			fmt.Fprintln(stdout, string(b))
			continue
		}
		spaces, threads, mem := st.Count()
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", st.PID, st.Socket, st.Program, st.Backend,
			time.Since(st.Started).Round(time.Second), spaces, threads, formatSize(mem))
		if *tree {
			tw.Flush()
			printTree(stdout, st, "    ")
		}
	}
	tw.Flush()
	return 0
}

// state asks the monitor at path for its state.
func state(ctx context.Context, path string) (*control.State, error) {
	c, err := control.Dial(path)
	if err != nil {
		return nil, err
	}
	return c.State(ctx)
}

// printTree prints st's layers and tree of spaces, one line each, indented.
func printTree(w io.Writer, st *control.State, indent string) {
	if len(st.Layers) > 0 {
		fmt.Fprintf(w, "%slayers: %s\n", indent, strings.Join(st.Layers, " | "))
	}
	var walk func(ss []control.Space, depth int)
	walk = func(ss []control.Space, depth int) {
		for _, s := range ss {
			pad := indent + strings.Repeat("  ", depth)
			line := fmt.Sprintf("%sspace %d", pad, s.ID)
			if s.Name != "" {
				line += " " + strconv.Quote(s.Name)
			}
			if s.PID != 0 {
				line += fmt.Sprintf(" pid %d", s.PID)
			}
			line += " " + s.State
			if s.State != "running" {
				line += fmt.Sprintf(" (status %d)", s.Status)
			}
			line += fmt.Sprintf(", memory %s of %s, %d handles", formatSize(s.Memory), formatSize(s.Quota), s.Handles)
			fmt.Fprintln(w, line)
			for _, t := range s.Threads {
				tl := fmt.Sprintf("%s  thread %d %s", pad, t.Number, t.State)
				if t.Blocked != "" {
					tl += " in " + t.Blocked
				}
				if t.State == "exited" {
					tl += fmt.Sprintf(" (status %d)", t.Status)
				}
				fmt.Fprintln(w, tl)
			}
			walk(s.Children, depth+1)
		}
	}
	walk(st.Spaces, 0)
}

// attachHelp is what nestvm attach -help prints; newFlagSet lists its flags after it.
const attachHelp = `Usage: nestvm attach [flags] ID|PATH --state|--trace|--checkpoint [--stop]|--kill REASON

Talks to the running monitor whose process id is ID (its control socket
in %s, as nestvm ps lists it), or whose control socket is PATH.
Exactly one of --state, --trace, --checkpoint and --kill is done; see
docs/control.md. The exit status
is 0 when it was done, 1 when there is no such monitor or it refused
(each with one line saying why), 2 for bad flags.
`

// cmdAttach talks to one running monitor through its control socket.
func cmdAttach(args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("nestvm attach", stderr, fmt.Sprintf(attachHelp, control.Dir()))
	showState := fl.Bool("state", false, "print the monitor's program, layers and tree of spaces and threads")
	jsonOut := fl.Bool("json", false, "with --state, print the state as JSON")
	doTrace := fl.Bool("trace", false, "stream the program's trace (a line per call on its environment's capabilities) until it ends or Ctrl-C")
	doCheckpoint := fl.Bool("checkpoint", false, "save the program now through the checkpoint layer of its stack, and print the file")
	stop := fl.Bool("stop", false, "with --checkpoint, end the program once it is saved")
	kill := fl.String("kill", "", "end the program, saying `REASON` (the monitor's log line gives it)")
	// Flags may follow the ID.
	var rest []string
	for len(args) > 0 {
		if status, done := parseFlags(fl, args); done {
			return status
		}
		if fl.NArg() == 0 {
			break
		}
		rest = append(rest, fl.Arg(0))
		args = fl.Args()[1:]
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, "nestvm attach: want one monitor: its pid or its control socket's path")
		return nester.StatusUsage
	}
	n := 0
	for _, b := range []bool{*showState, *doTrace, *doCheckpoint, *kill != ""} {
		if b {
			n++
		}
	}
	if n != 1 {
		fmt.Fprintln(stderr, "nestvm attach: want one of --state, --trace, --checkpoint and --kill REASON")
		return nester.StatusUsage
	}
	if *stop && !*doCheckpoint {
		fmt.Fprintln(stderr, "nestvm attach: --stop is for --checkpoint")
		return nester.StatusUsage
	}
	if *jsonOut && !*showState {
		fmt.Fprintln(stderr, "nestvm attach: --json is for --state")
		return nester.StatusUsage
	}
	path := rest[0]
	if pid, err := strconv.Atoi(path); err == nil && !strings.ContainsRune(path, '/') {
		path = control.PathOf(pid)
		if _, err := os.Lstat(path); err != nil {
			fmt.Fprintf(stderr, "nestvm attach: no monitor %d: no control socket %s\n", pid, path)
			return 1
		}
	}
	c, err := control.Dial(path)
	if err != nil {
		fmt.Fprintf(stderr, "nestvm attach: no monitor answers: %v\n", err)
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	switch {
	case *showState:
		st, err := c.State(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "nestvm attach: %v\n", err)
			return 1
		}
		if *jsonOut {
			b, _ := json.MarshalIndent(st, "", "  ")
			fmt.Fprintln(stdout, string(b))
			return 0
		}
		spaces, threads, mem := st.Count()
		fmt.Fprintf(stdout, "pid %d, %s on %s, up %s: %d spaces, %d threads, %s\n", st.PID, st.Program, st.Backend,
			time.Since(st.Started).Round(time.Second), spaces, threads, formatSize(mem))
		printTree(stdout, st, "  ")
	case *doTrace:
		if err := c.Trace(ctx, stdout); err != nil {
			fmt.Fprintf(stderr, "nestvm attach: %v\n", err)
			return 1
		}
	case *doCheckpoint:
		file, err := c.Checkpoint(ctx, *stop)
		if err != nil {
			fmt.Fprintf(stderr, "nestvm attach: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, file)
	default:
		if err := c.Kill(ctx, *kill); err != nil {
			fmt.Fprintf(stderr, "nestvm attach: %v\n", err)
			return 1
		}
	}
	return 0
}
