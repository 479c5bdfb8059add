package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/nester"
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
		{r: vmm.Result{Killed: "timeout after 1s", KilledStatus: nester.StatusTimeout}, status: 124, line: "timeout after 1s"},
		{r: vmm.Result{Killed: "interrupted by interrupt", KilledStatus: nester.StatusInterrupt}, status: 130, line: "interrupted"},
		// The status says which kill it was, never the words: a kill
		// whose reason reads like a timeout is still an interruption.
		{r: vmm.Result{Killed: "timeout reached, said the operator", KilledStatus: nester.StatusInterrupt}, status: 130, line: "timeout reached"},
		{r: vmm.Result{Killed: "killed", KilledStatus: nester.StatusTimeout}, status: 124, line: "killed"},
		{r: vmm.Result{Killed: "killed", KilledStatus: 1}, status: 130, line: "killed"},
		{r: vmm.Result{Signal: 9}, status: 137},
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
		if got := mainStatus(args, &stdout, &stderr); got != nester.StatusUsage {
			t.Errorf("nestvm %q: status %d, want %d (stderr %q)", args, got, nester.StatusUsage, stderr.String())
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
		{[]string{"attach"}, nester.StatusUsage, "want one monitor"},
		{[]string{"attach", "1", "2", "--state"}, nester.StatusUsage, "want one monitor"},
		{[]string{"attach", "1"}, nester.StatusUsage, "want one of"},
		{[]string{"attach", "1", "--state", "--kill", "x"}, nester.StatusUsage, "want one of"},
		{[]string{"attach", "1", "--state", "--stop"}, nester.StatusUsage, "--stop is for --checkpoint"},
		{[]string{"attach", "1", "--trace", "--json"}, nester.StatusUsage, "--json is for --state"},
		{[]string{"attach", "2147483646", "--state"}, 1, "no monitor 2147483646"},
		{[]string{"attach", "/nonexistent/m.sock", "--state"}, 1, "no monitor answers"},
		{[]string{"ps", "extra"}, nester.StatusUsage, "unexpected argument"},
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

// TestExitStatusesAsDocumented: every status README's table of run's exit
// statuses lists is what the typed result it names maps to, and the table
// lists every such status.
func TestExitStatusesAsDocumented(t *testing.T) {
	fault := func(v machine.Vector) vmm.Result {
		return vmm.Result{Fault: &vmm.FaultReport{Fault: machine.Fault{Vector: v}}}
	}
	dir := t.TempDir()
	input := func(path string) func() int {
		return func() int {
			f, _, status, err := openInput(path)
			if err == nil {
				f.Close()
			}
			return status
		}
	}
	report := func(r vmm.Result) func() int {
		return func() int { return report(r, "prog.elf", io.Discard) }
	}
	// Each documented status, with the results that map to it.
	cases := map[int][]func() int{
		132: {report(fault(machine.VecInvalidOp))},
		133: {report(fault(machine.VecBreakpoint)), report(fault(machine.VecDebug))},
		134: {report(fault(machine.VecMachine))},
		135: {report(fault(machine.VecAlign)), report(fault(machine.VecNoSegment)), report(fault(machine.VecStack))},
		136: {report(fault(machine.VecDivide)), report(fault(machine.VecX87)), report(fault(machine.VecSIMD))},
		139: {report(fault(machine.VecPage)), report(fault(machine.VecGP))},
		124: {report(vmm.Result{Killed: "timeout after 1s", KilledStatus: nester.StatusTimeout})},
		125: {report(vmm.Result{Err: errors.New("boom")})},
		126: {input(dir)},
		127: {input(filepath.Join(dir, "missing"))},
		130: {report(vmm.Result{Killed: "interrupted by interrupt", KilledStatus: nester.StatusInterrupt}),
			report(vmm.Result{Killed: "killed through the control socket", KilledStatus: nester.StatusInterrupt})},
	}
	readme, err := os.ReadFile(filepath.Join(testutil.Root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "### Exit status of `nestvm run`")
	if !ok {
		t.Fatal("README has no section on run's exit statuses")
	}
	documented := map[int]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+) \|`).FindAllStringSubmatch(table, -1) {
		n, _ := strconv.Atoi(m[1])
		documented[n] = true
		if len(cases[n]) == 0 {
			t.Errorf("README documents status %d, and no typed result here maps to it", n)
		}
		for i, f := range cases[n] {
			if got := f(); got != n {
				t.Errorf("status %d, case %d: got %d", n, i, got)
			}
		}
	}
	for n := range cases {
		if !documented[n] {
			t.Errorf("status %d is not in README's table", n)
		}
	}
}
