package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"nestvm/machine"
	"nestvm/vmm"
)

func TestReportStatus(t *testing.T) {
	for _, tc := range []struct {
		r      vmm.Result
		status int
		line   string
	}{
		{r: vmm.Result{Exited: true, Status: 3}, status: 3},
		{r: vmm.Result{Fault: &vmm.FaultReport{Thread: 0, Fault: machine.Fault{Vector: machine.VecPage, Addr: 0, RIP: 0x401a2c}}},
			status: 139, line: "thread 0: page fault: read of 0x0 (not present) at rip 0x401a2c"},
		{r: vmm.Result{Fault: &vmm.FaultReport{Fault: machine.Fault{Vector: machine.VecInvalidOp}}}, status: 132, line: "invalid opcode"},
		{r: vmm.Result{Fault: &vmm.FaultReport{Fault: machine.Fault{Vector: machine.VecDivide}}}, status: 136, line: "divide error"},
		{r: vmm.Result{Fault: &vmm.FaultReport{Fault: machine.Fault{Vector: machine.VecGP}}}, status: 139, line: "general protection"},
		{r: vmm.Result{Fault: &vmm.FaultReport{Fault: machine.Fault{Vector: machine.VecBreakpoint}}}, status: 133, line: "breakpoint"},
		{r: vmm.Result{Killed: "timeout after 1s"}, status: 124, line: "timeout after 1s"},
		{r: vmm.Result{Killed: "interrupted by interrupt"}, status: 130, line: "interrupted"},
		{r: vmm.Result{Err: errors.New("boom")}, status: 125, line: "boom"},
	} {
		var stderr bytes.Buffer
		got := report(tc.r, "prog.elf", &stderr)
		if got != tc.status {
			t.Errorf("%s: status %d, want %d", tc.r, got, tc.status)
		}
		out := stderr.String()
		if tc.line == "" {
			if out != "" {
				t.Errorf("%s: printed %q, want nothing", tc.r, out)
			}
			continue
		}
		if !strings.HasPrefix(out, "nestvm: prog.elf: ") || !strings.Contains(out, tc.line) || strings.Count(out, "\n") != 1 {
			t.Errorf("%s: printed %q, want one line naming the program and %q", tc.r, out, tc.line)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"run"},
		{"run", "--backend"},
		{"run", "--no-such-flag", "x.elf"},
		{"run", "--log-level", "loud", "x.elf"},
		{"run", "--mem", "lots", "x.elf"},
		{"info", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if got := mainStatus(args, &stdout, &stderr); got != exitUsage {
			t.Errorf("nestvm %q: status %d, want %d (stderr %q)", args, got, exitUsage, stderr.String())
		}
		if stderr.Len() == 0 {
			t.Errorf("nestvm %q: no message on stderr", args)
		}
	}
}

func TestHelpTellsTheTruth(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if got := mainStatus([]string{"help", "run"}, &stdout, &stderr); got != 0 {
		t.Fatalf("help run: status %d", got)
	}
	help := stdout.String() + stderr.String()
	for _, want := range []string{"--backend", "auto", "kvm", "emu", "--timeout", "--log-level", "--mem", "139", "124", "125", "126", "127", "130", "--control", "none", "--control-trace"} {
		if !strings.Contains(help, want) {
			t.Errorf("help for run does not mention %q", want)
		}
	}
	for cmd, wants := range map[string][]string{
		"ps":     {"--json", "--tree", "NESTVM_RUNTIME_DIR"},
		"attach": {"--state", "--trace", "--checkpoint", "--stop", "--kill", "ID|PATH"},
		"":       {"nestvm ps", "nestvm attach"},
	} {
		stdout.Reset()
		args := []string{"help"}
		if cmd != "" {
			args = append(args, cmd)
		}
		if got := mainStatus(args, &stdout, &stderr); got != 0 {
			t.Fatalf("help %s: status %d", cmd, got)
		}
		for _, want := range wants {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("help %s does not mention %q", cmd, want)
			}
		}
	}
}

// TestAttachRefuses: attach wants one monitor and one thing to do (status
// 2 otherwise), and says in one line, with status 1, that there is no
// such monitor.
func TestAttachRefuses(t *testing.T) {
	t.Setenv("NESTVM_RUNTIME_DIR", t.TempDir())
	for _, c := range []struct {
		args   []string
		status int
		want   string
	}{
		{[]string{"attach"}, exitUsage, "want one monitor"},
		{[]string{"attach", "1", "2", "--state"}, exitUsage, "want one monitor"},
		{[]string{"attach", "1"}, exitUsage, "want one of"},
		{[]string{"attach", "1", "--state", "--kill", "x"}, exitUsage, "want one of"},
		{[]string{"attach", "1", "--state", "--stop"}, exitUsage, "--stop is for --checkpoint"},
		{[]string{"attach", "1", "--trace", "--json"}, exitUsage, "--json is for --state"},
		{[]string{"attach", "2147483646", "--state"}, 1, "no monitor 2147483646"},
		{[]string{"attach", "/nonexistent/m.sock", "--state"}, 1, "no monitor answers"},
		{[]string{"ps", "extra"}, exitUsage, "unexpected argument"},
	} {
		var stdout, stderr bytes.Buffer
		got := mainStatus(c.args, &stdout, &stderr)
		if got != c.status || !strings.Contains(stderr.String(), c.want) || (got == 1 && strings.Count(stderr.String(), "\n") != 1) {
			t.Errorf("%q: status %d, stderr %q; want %d, %q", c.args, got, stderr.String(), c.status, c.want)
		}
	}
}

// TestEveryCommandHasHelp: each command in the table is on the usage page,
// has help of its own, and says the same whether asked with "help X" (on
// stdout) or "X --help" (on stderr, as flag errors are), with status 0.
func TestEveryCommandHasHelp(t *testing.T) {
	var top, stderr bytes.Buffer
	if got := mainStatus([]string{"help"}, &top, &stderr); got != 0 {
		t.Fatalf("help: status %d", got)
	}
	for _, c := range commands {
		if !strings.Contains(top.String(), "\n  nestvm "+c.synopsis+" ") && !strings.Contains(top.String(), "\n  nestvm "+c.synopsis+"\n") {
			t.Errorf("help does not list %q", c.synopsis)
		}
		var helpOut, helpErr bytes.Buffer
		if got := mainStatus([]string{"help", c.name}, &helpOut, &helpErr); got != 0 || helpErr.Len() != 0 {
			t.Errorf("help %s: status %d, stderr %q", c.name, got, helpErr.String())
		}
		if !strings.HasPrefix(helpOut.String(), "Usage: nestvm "+c.name) {
			t.Errorf("help %s: %q does not open with its usage line", c.name, helpOut.String())
		}
		var flagOut, flagErr bytes.Buffer
		if got := mainStatus([]string{c.name, "--help"}, &flagOut, &flagErr); got != 0 || flagOut.Len() != 0 {
			t.Errorf("%s --help: status %d, stdout %q", c.name, got, flagOut.String())
		}
		if helpOut.String() != flagErr.String() {
			t.Errorf("help %s and %s --help disagree:\n%s\n---\n%s", c.name, c.name, helpOut.String(), flagErr.String())
		}
	}
}
