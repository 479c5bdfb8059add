package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nestvm/internal/testutil"
	"nestvm/nester"
)

// TestRunTraceStderr: --layer trace writes one line per operation and a
// summary on stderr, and the program's output is its own.
func TestRunTraceStderr(t *testing.T) {
	hello := testutil.Guest(t, "hello")
	status, direct, _ := run(t, "run", "--log-level", "warn", hello, "world")
	status2, out, errs := run(t, "run", "--log-level", "warn", "--layer", "trace", hello, "world")
	if status != 0 || status2 != 0 || out != direct || out != "Hello, world!\n" {
		t.Fatalf("hello: status %d, %q; under trace: status %d, %q; stderr %q", status, direct, status2, out, errs)
	}
	for _, want := range []string{
		`[trace] `,
		`:t0 console(port) console_write(data="world"/5) = 5 <`,
		"space(space) space_create(",
		"[trace] summary: ",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}

// TestRunTraceFile: --layer trace=FILE writes JSON Lines there and
// nothing on stderr; a file it cannot write stops nestvm before the
// program runs, naming the layer and the file.
func TestRunTraceFile(t *testing.T) {
	hello := testutil.Guest(t, "hello")
	path := filepath.Join(t.TempDir(), "out.jsonl")
	status, out, errs := run(t, "run", "--log-level", "warn", "--layer", "trace="+path+",ops=console_write", hello, "world")
	if status != 0 || out != "Hello, world!\n" || errs != "" {
		t.Fatalf("status %d, stdout %q, stderr %q", status, out, errs)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var data strings.Builder
	kinds := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("not JSON: %s: %v", sc.Bytes(), err)
		}
		kinds[rec["kind"].(string)]++
		if rec["kind"] == "call" {
			for _, field := range []string{"time", "space", "thread", "cap", "cap_id", "type", "op", "args", "ok", "r0", "dur_ns"} {
				if _, ok := rec[field]; !ok {
					t.Errorf("record without %s: %s", field, sc.Bytes())
				}
			}
			if rec["op"] != "console_write" {
				t.Errorf("ops=console_write let through %s", sc.Bytes())
			}
			data.WriteString(rec["args"].([]any)[0].(map[string]any)["data"].(string))
		}
	}
	if kinds["call"] != 4 || kinds["summary"] != 1 || data.String() != out {
		t.Errorf("records %v, data written %q", kinds, data.String())
	}

	bad := filepath.Join(t.TempDir(), "missing", "out.jsonl")
	status, out, errs = run(t, "run", "--layer", "trace="+bad, hello, "world")
	if status != nester.StatusUsage || out != "" || !strings.Contains(errs, "--layer trace="+bad) || !strings.Contains(errs, "no such file or directory") {
		t.Errorf("an unwritable trace file: status %d, stdout %q, stderr %q", status, out, errs)
	}
	// A trace that cannot write while the program runs ends it, and
	// nestvm reports why.
	if _, err := os.Stat("/dev/full"); err == nil {
		status, _, errs = run(t, "run", "--log-level", "warn", "--layer", "trace=/dev/full", testutil.Guest(t, "counter"), "100000")
		if status != nester.StatusMonitor || !strings.Contains(errs, "layer trace: writing /dev/full:") || !strings.Contains(errs, "no space left on device") {
			t.Errorf("a trace file that fills up: status %d, stderr %q", status, errs)
		}
	}
	status, _, errs = run(t, "run", "--layer", "trace=colour=red", hello)
	if status != nester.StatusUsage || !strings.Contains(errs, `unknown option "colour"`) {
		t.Errorf("an unknown option: status %d, stderr %q", status, errs)
	}
}

// TestRunTraceOverNest traces a guest nester and the program it runs: the
// nester's own calls (opening the program through its files handle) and
// the grandchild's console writes, which pass through the handles the
// trace gave the nester, are both recorded; the output is unchanged.
func TestRunTraceOverNest(t *testing.T) {
	root := nestRoot(t)
	requireNestKernel(t, root)
	_, direct, _ := runNest(t, root, "hello.elf", "world")
	status, out, errs := run(t, "run", "--log-level", "warn", "--files", root, "--layer", "trace", "--layer", "null", "--layer", "trace=label=inner",
		testutil.Guest(t, "nest"), "hello.elf", "world")
	if status != 0 || out != direct || out != "Hello, world!\n" {
		t.Fatalf("nest hello under two traces: status %d, stdout %q (without %q), stderr %s", status, out, direct, errs)
	}
	for _, want := range []string{
		`[trace] `, `[inner] `,
		`files(port) files_open(path="hello.elf"/9`,
		`/child/child:t0 console(port) console_write(data="world"/5) = 5`,
		"[trace] summary: ", "[inner] summary: ",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if a, b := strings.Count(errs, "[trace] "), strings.Count(errs, "[inner] "); a < 10 || b < 10 {
		t.Errorf("%d outer and %d inner records", a, b)
	}
}
