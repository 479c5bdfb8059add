package main

import (
	"fmt"
	"io"
	"time"

	"nestvm/abi"
	"nestvm/nester"
	"nestvm/services/checkpoint"
)

// inspectHelp is what nestvm inspect -help prints; newFlagSet lists its flags after it.
const inspectHelp = `Usage: nestvm inspect FILE

Prints what a checkpoint file holds: its spaces (quotas, exception port,
mappings, handle tables with rights, badge, the object each names and the
handle it was derived from), its threads (run state, where they are), its
regions (size, keeper, the pages saved), its ports (queued messages), its
port sets (the ports they hold) and the capabilities of the
environment it reconnects by name, with their sizes. A file that is not a
valid checkpoint is refused (status 126), saying why.
`

// cmdInspect prints what a checkpoint file holds.
func cmdInspect(args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("nestvm inspect", stderr, inspectHelp)
	if status, done := parseFlags(fl, args); done {
		return status
	}
	if fl.NArg() != 1 {
		fmt.Fprintln(stderr, "nestvm inspect: want one checkpoint file")
		return nester.StatusUsage
	}
	path := fl.Arg(0)
	f, size, status, err := openInput(path)
	if err != nil {
		fmt.Fprintf(stderr, "nestvm: %v\n", err)
		return status
	}
	// The pages' contents are not shown: a summary keeps none of them.
	ck, err := checkpoint.ReadSummary(f, size)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "nestvm: %s: %v\n", path, err)
		return nester.StatusNotRunnable
	}
	w := stdout
	fmt.Fprintf(w, "%s: nestvm checkpoint, format %d, %d bytes (CRC-32C checked)\n", path, checkpoint.FormatVersion, size)
	if ck.Program != "" {
		fmt.Fprintf(w, "program:   %s\n", ck.Program)
	}
	fmt.Fprintf(w, "saved:     %s on %s, after %d bytes of console output\n", time.Unix(0, ck.Saved).UTC().Format(time.RFC3339Nano), ck.Backend, ck.ConsoleBytes)
	if c := ck.Clock; c.Monotonic != 0 || c.Realtime != 0 {
		fmt.Fprintf(w, "its clock: %s realtime, %v monotonic (a layer owning time, timewarp, goes on from them on restore)\n",
			time.Unix(0, int64(c.Realtime)).UTC().Format(time.RFC3339Nano), time.Duration(c.Monotonic))
	}
	fmt.Fprintf(w, "contents:  %d spaces, %d threads, %d regions (%d pages saved, %s), %d ports, %d port sets\n",
		len(ck.Spaces), len(ck.Threads), len(ck.Regions), ck.PageCount(), formatSize(uint64(ck.PageCount())*abi.PageSize), len(ck.Ports), len(ck.PortSets))
	fmt.Fprintf(w, "reconnects: %v\n", ck.Externals)
	if ck.Runner != nil {
		fmt.Fprintf(w, "runner:    %s, a record of %d bytes (restore rebuilds it, and it serves the spaces below)\n", ck.Runner.Name, len(ck.Runner.Record))
	}
	name := func(r checkpoint.Ref) string {
		if r.Kind == checkpoint.RefExternal {
			return "external " + ck.Externals[r.Index]
		}
		if r.Kind == checkpoint.RefParent && ck.Runner != nil {
			return "the runner (" + ck.Runner.Name + ")"
		}
		if r.Kind == checkpoint.RefParent {
			return "the monitor (restore)"
		}
		return r.String()
	}
	for i, s := range ck.Spaces {
		parent := "top"
		if s.Parent >= 0 {
			parent = fmt.Sprintf("child of space %d", s.Parent)
		}
		exc := name(s.Exception)
		if s.ExceptionBadge != 0 {
			exc += fmt.Sprintf(" badge %d", s.ExceptionBadge)
		}
		fmt.Fprintf(w, "\nspace %d (%s): quota %d pages, %d threads, %d handles, %d children; exception port %s\n",
			i, parent, s.Pages, s.Threads, s.Handles, s.Children, exc)
		for _, m := range s.Maps {
			fmt.Fprintf(w, "  map    %#010x-%#010x %s region %d +%#x (limit %s)\n", m.Addr, m.Addr+m.Size, perm(m.Perm), m.Region, m.Offset, perm(m.Limit))
		}
		for _, h := range s.Table {
			badge := ""
			if h.Badge != 0 {
				badge = fmt.Sprintf(" badge %#x", h.Badge)
			}
			from := ""
			if h.Parent != nil {
				from = fmt.Sprintf(" from space %d handle %d", h.Parent.Space, h.Parent.Number)
			}
			fmt.Fprintf(w, "  handle %-4d %-10s %s%s%s\n", h.Number, name(h.Object), abi.Rights(h.Rights), badge, from)
		}
	}
	fmt.Fprintln(w)
	for i, t := range ck.Threads {
		regs := t.Regs()
		status := map[uint64]string{abi.ThreadNew: "new", abi.ThreadRunning: "running (resumed on restore)", abi.ThreadStopped: "stopped"}[t.Status]
		fmt.Fprintf(w, "thread %d: space %d, %s, rip %#x rsp %#x\n", i, t.Space, status, regs.RIP, regs.RSP)
	}
	for i, r := range ck.Regions {
		keeper := ""
		if r.Keeper.Kind != checkpoint.RefNone {
			keeper = fmt.Sprintf(", kept by %s (badge %#x)", name(r.Keeper), r.KeeperBadge)
		}
		fmt.Fprintf(w, "region %d: space %d, %s, %d pages saved%s\n", i, r.Owner, formatSize(r.Size), len(r.Pages), keeper)
	}
	for i, p := range ck.Ports {
		fmt.Fprintf(w, "port %d: space %d, %d queued messages\n", i, p.Owner, len(p.Msgs))
		for _, m := range p.Msgs {
			fmt.Fprintf(w, "  tag %#x badge %#x, %d bytes, handle %s\n", m.Tag, m.Badge, len(m.Data), name(m.Handle))
		}
	}
	for i, ps := range ck.PortSets {
		fmt.Fprintf(w, "port set %d: space %d, ports %v\n", i, ps.Owner, ps.Ports)
	}
	return 0
}

func perm(p uint64) string {
	b := []byte("---")
	if p&abi.PermRead != 0 {
		b[0] = 'r'
	}
	if p&abi.PermWrite != 0 {
		b[1] = 'w'
	}
	if p&abi.PermExec != 0 {
		b[2] = 'x'
	}
	return string(b)
}
