package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"nestvm/benchmarks"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/null"
)

// benchTestKind is a layer kind with arguments, for splitting --layers.
const benchTestKind = "benchtest-args"

func init() {
	nester.Register(nester.Kind{Name: benchTestKind, Summary: "a null layer that takes arguments (tests only)",
		New: func(string, nester.Host) (nester.Layer, error) { return null.Layer{}, nil }})
}

func TestBenchFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--depth", "x"}, "--depth"},
		{[]string{"--depth", "3-1"}, "--depth"},
		{[]string{"--depth", "-2"}, "--depth"},
		{[]string{"--workload", "compute,nope"}, `no workload named "nope"`},
		{[]string{"--layers", "null,no-such-layer"}, `no layer named "no-such-layer"`},
		{[]string{"--layers", "null;;null"}, "empty layer"},
		{[]string{"--layers", "null=x"}, "null takes no arguments"},
		{[]string{"--reps", "0"}, "--reps"},
		{[]string{"--workload", "fanout", "--fanout", "0"}, "--fanout: 0"},
		{[]string{"--workload", "fanout", "--fanout", "4097"}, "--fanout: 4097"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--no-such-flag"}, "not defined"},
	} {
		var out, errs bytes.Buffer
		status := mainStatus(append([]string{"bench"}, tc.args...), &out, &errs)
		if status != nester.StatusUsage || !strings.Contains(errs.String(), tc.want) || out.Len() != 0 {
			t.Errorf("bench %q: status %d, stdout %q, stderr %q; want status %d and %q on stderr",
				tc.args, status, out.String(), errs.String(), nester.StatusUsage, tc.want)
		}
	}
}

func TestBenchHelp(t *testing.T) {
	var out, errs bytes.Buffer
	if status := mainStatus([]string{"help", "bench"}, &out, &errs); status != 0 {
		t.Fatalf("status %d, stderr %q", status, errs.String())
	}
	for _, want := range []string{"Usage: nestvm bench", "--layers", "--depth", "--workload", "--json", "--csv", "--plot", "{tmp}", "ipc", "--fanout", "KiB/space", "host KiB/space", "MemAvailable"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help bench lacks %q", want)
		}
	}
}

func TestSplitLayerSpecs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{[]string{"null"}, []string{"null"}},
		{[]string{"null,null"}, []string{"null", "null"}},
		{[]string{"null", " null "}, []string{"null", "null"}},
		{[]string{benchTestKind + "=out.jsonl,format=json,null"}, []string{benchTestKind + "=out.jsonl,format=json", "null"}},
		{[]string{"null;" + benchTestKind + "=a,b"}, []string{"null", benchTestKind + "=a,b"}},
	} {
		got, err := splitLayerSpecs(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("splitLayerSpecs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseDepth(t *testing.T) {
	for in, want := range map[string][2]int{"0": {0, 0}, "4": {0, 4}, "0-4": {0, 4}, "2-3": {2, 3}, " 1-1 ": {1, 1}} {
		lo, hi, err := parseDepth(in)
		if err != nil || lo != want[0] || hi != want[1] {
			t.Errorf("parseDepth(%q) = %d, %d, %v; want %v", in, lo, hi, err, want)
		}
	}
}

// TestBenchRun runs the smallest real bench on emu and checks what each
// output file holds.
func TestBenchRun(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	if _, err := machine.Lookup("emu"); err != nil {
		t.Skipf("no emu backend: %v", err)
	}
	testutil.Guest(t, "hello")
	dir := t.TempDir()
	jsonPath, csvPath, svgPath := filepath.Join(dir, "b.json"), filepath.Join(dir, "b.csv"), filepath.Join(dir, "b.svg")
	var out, errs bytes.Buffer
	status := mainStatus([]string{"bench", "--backend", "emu", "--guests", testutil.GuestDir(t),
		"--layers", "null", "--depth", "0-1", "--reps", "1", "--workload", "hello",
		"--json", jsonPath, "--csv", csvPath, "--plot", svgPath}, &out, &errs)
	if status != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", status, out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "backend emu") || !strings.Contains(out.String(), "host ") {
		t.Errorf("the table does not state the backend and host:\n%s", out.String())
	}
	if !strings.Contains(errs.String(), "hello, null x1, rep 1/1") {
		t.Errorf("no progress on stderr: %q", errs.String())
	}

	// JSON: the host, the backend, a row per depth.
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Host    map[string]any   `json:"host"`
		Backend string           `json:"backend"`
		Rows    []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, data)
	}
	if rep.Backend != "emu" || rep.Host["cpu"] == "" || rep.Host["kernel"] == nil {
		t.Errorf("--json: backend %q, host %v", rep.Backend, rep.Host)
	}
	if len(rep.Rows) != 2 {
		t.Fatalf("--json: %d rows, want 2:\n%s", len(rep.Rows), data)
	}
	for i, row := range rep.Rows {
		for _, k := range []string{"workload", "layer", "depth", "median_ns", "slowdown"} {
			if _, ok := row[k]; !ok {
				t.Errorf("row %d lacks %s: %v", i, k, row)
			}
		}
		if row["workload"] != "hello" || row["layer"] != "null" || row["depth"] != float64(i) || row["median_ns"].(float64) <= 0 {
			t.Errorf("row %d: %v", i, row)
		}
	}
	if rep.Rows[0]["slowdown"] != 1.0 {
		t.Errorf("slowdown at depth 0 is %v, want 1", rep.Rows[0]["slowdown"])
	}

	// CSV: the same rows under a header.
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("--csv: %v", err)
	}
	if len(recs) != 3 || !slices.Equal(recs[0][:5], []string{"workload", "layer", "depth", "reps", "median_ns"}) ||
		recs[1][0] != "hello" || recs[1][2] != "0" || recs[1][7] != "1" || recs[2][2] != "1" {
		t.Errorf("--csv:\n%q", recs)
	}

	// SVG: well-formed XML with a line for the series and its legend.
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	checkSVG(t, svg, 1)
	if !bytes.Contains(svg, []byte("backend emu")) || !bytes.Contains(svg, []byte("hello, null")) {
		t.Errorf("--plot lacks the title or the legend:\n%s", svg)
	}
}

// checkSVG fails t unless svg is well-formed XML whose root is <svg> and
// which holds lines polylines.
func checkSVG(t *testing.T, svg []byte, lines int) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	root, polylines := "", 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("--plot is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "polyline" {
				polylines++
			}
		}
	}
	if root != "svg" || polylines != lines {
		t.Errorf("--plot: root <%s>, %d polylines; want <svg> and %d", root, polylines, lines)
	}
}

// TestBenchSVGShapes draws made-up rows: several layers and workloads, a
// large slowdown, and one depth only.
func TestBenchSVGShapes(t *testing.T) {
	rows := func(layers, works []string, depths int, slow float64) []benchmarks.Row {
		var rs []benchmarks.Row
		for _, w := range works {
			for _, l := range layers {
				for d := 0; d < depths; d++ {
					rs = append(rs, benchmarks.Row{Workload: w, Layer: l, Depth: d, Slowdown: 1 + slow*float64(d)})
				}
			}
		}
		return rs
	}
	for _, tc := range []struct {
		rows  []benchmarks.Row
		lines int
	}{
		{rows([]string{"null", "trace=<&>"}, []string{"compute", "ipc", "hello"}, 5, 0.5), 6},
		{rows([]string{"null"}, []string{"compute"}, 5, 0.0001), 1},
		{rows([]string{"null", "trace"}, []string{"compute", "ipc"}, 5, 4), 4},
		{rows([]string{"null"}, []string{"compute"}, 1, 0), 1},
		{nil, 0},
	} {
		var b bytes.Buffer
		rep := benchmarks.Report{Host: benchmarks.DescribeHost(), Backend: "kvm", Reps: 3, Rows: tc.rows}
		if err := writeBenchSVG(&b, rep); err != nil {
			t.Fatal(err)
		}
		checkSVG(t, b.Bytes(), tc.lines)
		if strings.Contains(b.String(), "NaN") || strings.Contains(b.String(), "Inf") {
			t.Errorf("the plot holds NaN or Inf:\n%s", b.String())
		}
	}
}

// TestBenchSpaces runs the spawn and fanout workloads, on emu and kvm
// (where /dev/kvm opens), and checks that their rows carry the time per
// child and the rate of live spaces created, in the table, JSON and CSV.
func TestBenchSpaces(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	testutil.Guest(t, "fanout")
	for _, b := range []string{"emu", "kvm"} {
		t.Run(b, func(t *testing.T) {
			if b == "kvm" {
				testutil.RequireKVM(t)
			}
			// In a process of its own: a hundred live spaces (on emu, a
			// Unicorn each) would grow this one, and the nestvm processes
			// later tests start report this one's peak as theirs
			// (ru_maxrss carries over exec).
			out, _, rows, recs := benchFiles(t, "bench", "--backend", b, "--guests", testutil.GuestDir(t),
				"--layers", "null", "--depth", "0-1", "--reps", "1", "--workload", "spawn,fanout")
			if !strings.Contains(out, "spaces/s") || !strings.Contains(out, "KiB/space") || !strings.Contains(out, "host KiB/space") {
				t.Errorf("the table has no spaces/s, KiB/space or host KiB/space column:\n%s", out)
			}
			if len(rows) != 4 {
				t.Fatalf("--json: %d rows, want 4: %+v", len(rows), rows)
			}
			for _, r := range rows {
				switch r.Workload {
				case "spawn":
					if r.CallNS <= 0 || r.SpacesPerSec != 0 {
						t.Errorf("spawn row: call_ns %v, spaces_per_s %v; want a time per child and no rate", r.CallNS, r.SpacesPerSec)
					}
				case "fanout":
					// A hundred live spaces, each with its page, its
					// thread and its VM or emulator, grow the monitor.
					if r.SpacesPerSec <= 0 || r.KiBPerSpace <= 0 || r.CallNS != 0 {
						t.Errorf("fanout row: spaces_per_s %v, kib_per_space %v, call_ns %v; want a rate, a size and no call time",
							r.SpacesPerSec, r.KiBPerSpace, r.CallNS)
					}
					checkHostKiB(t, r, out)
				default:
					if r.HostKiBPerSpace != nil {
						t.Errorf("%s row: host_kib_per_space %v; want none", r.Workload, *r.HostKiBPerSpace)
					}
					t.Errorf("row of workload %q", r.Workload)
				}
			}
			col, kcol, hcol := slices.Index(recs[0], "spaces_per_s"), slices.Index(recs[0], "kib_per_space"), slices.Index(recs[0], "host_kib_per_space")
			if len(recs) != 5 || col < 0 || kcol < 0 || hcol < 0 || recs[3][0] != "fanout" || recs[3][col] == "" || recs[3][kcol] == "" || recs[3][hcol] == "" ||
				recs[1][col] != "" || recs[1][hcol] != "" {
				t.Errorf("--csv:\n%q", recs)
			}
		})
	}
}

// TestBenchFanoutCount runs the fanout workload with --fanout's count of
// live spaces, on emu and kvm (where /dev/kvm opens), and checks that its
// row says how many it held, a creation rate, and a size per space that a
// settled monitor holds: positive, and far below what a space cost when
// each held an emulator engine (about 3 MiB).
func TestBenchFanoutCount(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	testutil.Guest(t, "fanout")
	const n = 24
	for _, b := range []string{"emu", "kvm"} {
		t.Run(b, func(t *testing.T) {
			if b == "kvm" {
				testutil.RequireKVM(t)
			}
			// In a process of its own, as TestBenchSpaces says why.
			out, _, rows, recs := benchFiles(t, "bench", "--backend", b, "--guests", testutil.GuestDir(t),
				"--depth", "0", "--reps", "1", "--workload", "fanout", "--fanout", "24")
			if !strings.Contains(out, "fanout holds 24 live spaces") {
				t.Errorf("the table does not say how many spaces fanout held:\n%s", out)
			}
			if len(rows) != 1 {
				t.Fatalf("--json: %d rows, want 1: %+v", len(rows), rows)
			}
			r := rows[0]
			t.Logf("%d spaces: %.0f spaces/s, %.0f KiB/space", r.Spaces, r.SpacesPerSec, r.KiBPerSpace)
			checkHostKiB(t, r, out)
			if r.Workload != "fanout" || r.Spaces != n || r.SpacesPerSec <= 0 || r.KiBPerSpace <= 0 || r.KiBPerSpace > 2048 {
				t.Errorf("fanout row: workload %q, spaces %d, spaces_per_s %v, kib_per_space %v; want fanout, %d, a rate, and 0 < KiB/space <= 2048",
					r.Workload, r.Spaces, r.SpacesPerSec, r.KiBPerSpace, n)
			}
			if col := slices.Index(recs[0], "spaces"); len(recs) != 2 || col < 0 || recs[1][col] != "24" {
				t.Errorf("--csv has no spaces column holding 24:\n%q", recs)
			}
		})
	}
}

// checkHostKiB fails t unless the fanout row r says how much the host's
// used memory grew per live space, and that is above 0 and above the
// monitor's own growth (which it includes), or else the table out says
// why not: the host's memory moves with everything else the host runs, so
// a busy host may show less.
func checkHostKiB(t *testing.T, r benchmarks.Row, out string) {
	t.Helper()
	h := r.HostKiBPerSpace
	if h == nil {
		t.Errorf("fanout row has no host_kib_per_space")
		return
	}
	t.Logf("host: %.0f KiB/space", *h)
	if *h > 0 && *h >= r.KiBPerSpace {
		return
	}
	if want := fmt.Sprintf("host KiB/space (%.0f) is below 0 or below KiB/space", *h); !strings.Contains(out, want) {
		t.Errorf("fanout row: host_kib_per_space %v, kib_per_space %v, and the table does not say why (%q):\n%s", *h, r.KiBPerSpace, want, out)
	}
}

// TestBenchClockNative runs the clock workload (clock_gettime through the
// vDSO) on emu and kvm (where /dev/kvm opens): its row carries the time
// of one call under nestvm and natively, from the same repetitions, in
// the table, JSON and CSV.
func TestBenchClockNative(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	testutil.Guest(t, "lxbench")
	for _, b := range []string{"emu", "kvm"} {
		t.Run(b, func(t *testing.T) {
			if b == "kvm" {
				testutil.RequireKVM(t)
			}
			out, errs, rows, recs := benchFiles(t, "bench", "--backend", b, "--guests", testutil.GuestDir(t),
				"--depth", "0", "--reps", "2", "--workload", "clock")
			if !strings.Contains(out, "native call") || !strings.Contains(errs, "clock, native, rep 2/2") {
				t.Errorf("no native call column, or no native runs in the progress:\n%s\n%s", out, errs)
			}
			if len(rows) != 1 {
				t.Fatalf("--json: %d rows, want 1: %+v", len(rows), rows)
			}
			r := rows[0]
			if r.Workload != "clock" || r.CallNS <= 0 || r.NativeCallNS <= 0 || r.CallVsNative != r.CallNS/r.NativeCallNS {
				t.Errorf("clock row: %+v; want call times under nestvm and natively, and their ratio", r)
			}
			if len(recs) != 2 || recs[0][len(recs[0])-2] != "native_call_ns" || recs[1][len(recs[1])-2] == "" {
				t.Errorf("--csv:\n%q", recs)
			}
		})
	}
}

// benchFiles runs nestvm bench with args and --json and --csv files, and
// returns its output and what the two files hold; a status other than 0
// fails the test.
func benchFiles(t *testing.T, args ...string) (out, errs string, rows []benchmarks.Row, recs [][]string) {
	t.Helper()
	dir := t.TempDir()
	jsonPath, csvPath := filepath.Join(dir, "b.json"), filepath.Join(dir, "b.csv")
	status, out, errs := run(t, append(args, "--json", jsonPath, "--csv", csvPath)...)
	if status != 0 {
		t.Fatalf("status %d\nstdout:\n%s\nstderr:\n%s", status, out, errs)
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct{ Rows []benchmarks.Row }
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, data)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if recs, err = csv.NewReader(f).ReadAll(); err != nil {
		t.Fatalf("--csv: %v", err)
	}
	return out, errs, rep.Rows, recs
}
