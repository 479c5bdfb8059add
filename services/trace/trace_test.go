package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/layertest"
	"nestvm/internal/testutil"
	"nestvm/interpose"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/null"
)

// syncBuffer is a writer a test reads while guests write it.
type syncBuffer = testutil.Buffer

// run runs guest name with args under layers on b (see layertest.Run).
var run = layertest.Run

// newTrace makes a trace layer writing text to w (unless args name a file).
func newTrace(t *testing.T, args string, w *syncBuffer) *Layer {
	t.Helper()
	l, err := New(args, w, nil)
	if err != nil {
		t.Fatalf("trace=%s: %v", args, err)
	}
	return l
}

// readJSONL parses a JSON Lines trace: the call records, then the summary.
func readJSONL(t *testing.T, path string) ([]Record, Summary) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []Record
	var sum Summary
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		n++
		var kind struct{ Kind string }
		if err := json.Unmarshal(sc.Bytes(), &kind); err != nil {
			t.Fatalf("line %d of %s is not JSON: %v: %s", n, path, err, sc.Bytes())
		}
		switch kind.Kind {
		case "call":
			var r Record
			dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("line %d: %v", n, err)
			}
			recs = append(recs, r)
		case "summary":
			if err := json.Unmarshal(sc.Bytes(), &sum); err != nil {
				t.Fatalf("line %d: %v", n, err)
			}
		default:
			t.Fatalf("line %d: kind %q", n, kind.Kind)
		}
	}
	if sum.Kind != "summary" {
		t.Fatalf("%s has no summary record last:\n%s", path, data)
	}
	return recs, sum
}

func find(recs []Record, cp, op string) []Record {
	var out []Record
	for _, r := range recs {
		if r.Cap == cp && r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

// TestHelloText traces hello to a text writer: the output is hello's own,
// and each console_write is a line with its data and result.
func TestHelloText(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		plain, r0 := run(t, b, nil, "", "hello", "world")
		var w syncBuffer
		l := newTrace(t, "label=t1", &w)
		out, r := run(t, b, []nester.Layer{l}, "", "hello", "world")
		if out != plain || out != "Hello, world!\n" || !r.Exited || r.Status != r0.Status {
			t.Fatalf("hello under trace: %q, %s; without: %q, %s", out, r, plain, r0)
		}
		text := w.String()
		for _, want := range []string{
			`console(port) console_write(data="Hello, "/7) = 7 <`,
			`console(port) console_write(data="world"/5) = 5 <`,
			`console(port) console_write(data="\n"/1) = 1 <`,
			"space(space) space_create(",
			"space.space_create(space) region_create(",
			"space.space_create.thread_create(thread) thread_start() = 0",
			"[t1] summary: ",
			"console_write\n",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the trace lacks %q:\n%s", want, text)
			}
		}
		// The program's own calls name its space and thread.
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, " console_write(") {
				if !strings.HasPrefix(line, "[t1] ") || !strings.Contains(line, "/child:t0 console(port)") {
					t.Errorf("console_write line without its thread: %q", line)
				}
			}
		}
	})
}

// TestCatJSONL traces cat into a JSON Lines file: files_open and the
// file_read on the handle it returned are recorded with their data, and
// every record has the documented fields.
func TestCatJSONL(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "note.txt"), []byte("traced text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		l := newTrace(t, path, nil)
		out, r := run(t, b, []nester.Layer{l}, dir, "cat", "note.txt", "missing.txt")
		if out != "traced text\n" {
			t.Fatalf("cat under trace: %q, %s", out, r)
		}
		recs, sum := readJSONL(t, path)
		opens := find(recs, "files", "files_open")
		if len(opens) != 2 {
			t.Fatalf("%d files_open records, want 2: %+v", len(opens), opens)
		}
		o := opens[0]
		if !o.OK || !o.Handle || o.Type != "port" || o.Thread == nil || o.Space == "host" || o.CapID == 0 || o.Layer != l.Label() {
			t.Errorf("files_open record: %+v", o)
		}
		if len(o.Args) != 2 || o.Args[0].Name != "path" || o.Args[0].Kind != "in" || o.Args[0].Data == nil || *o.Args[0].Data != "note.txt" || *o.Args[0].Len != 8 ||
			o.Args[1].Name != "flags" || o.Args[1].Kind != "value" || o.Args[1].Value == nil {
			t.Errorf("files_open arguments: %+v", o.Args)
		}
		if e := opens[1]; e.OK || e.Error != "NV_ENOTFOUND" || *e.Args[0].Data != "missing.txt" {
			t.Errorf("the failed files_open: %+v", e)
		}
		reads := find(recs, "files.files_open", "file_read")
		if len(reads) == 0 {
			t.Fatalf("no file_read on files.files_open")
		}
		rd := reads[0]
		if !rd.OK || rd.R0 != 12 || rd.Args[1].Kind != "out" || rd.Args[1].Data == nil || *rd.Args[1].Data != "traced text\n" {
			t.Errorf("file_read record: %+v %+v", rd, rd.Args)
		}
		if sum.Ops["files_open"].Calls != 2 || sum.Ops["files_open"].Errors != 1 || sum.Calls != len(recs) || sum.Errors < 1 {
			t.Errorf("summary %+v for %d records", sum, len(recs))
		}
	})
}

// TestFilters records only what ops= and types= let through.
func TestFilters(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ops.jsonl")
		l := newTrace(t, "file="+path+",ops=console_write+thread_start", nil)
		if out, _ := run(t, b, []nester.Layer{l}, "", "hello", "world"); out != "Hello, world!\n" {
			t.Fatalf("output %q", out)
		}
		recs, sum := readJSONL(t, path)
		for _, r := range recs {
			if r.Op != "console_write" && r.Op != "thread_start" {
				t.Errorf("ops= let %s through", r.Op)
			}
		}
		if sum.Ops["console_write"].Calls != 4 || sum.Ops["thread_start"].Calls != 1 || len(sum.Ops) != 2 {
			t.Errorf("summary %+v", sum.Ops)
		}

		var w syncBuffer
		l = newTrace(t, "types=console+region,summary=off", &w)
		if out, _ := run(t, b, []nester.Layer{l}, "", "hello", "world"); out != "Hello, world!\n" {
			t.Fatalf("output %q", out)
		}
		lines := strings.Split(strings.TrimSpace(w.String()), "\n")
		sawRegion := false
		for _, line := range lines {
			switch {
			case strings.Contains(line, " console_write("):
			case strings.Contains(line, "(region) region_"):
				sawRegion = true
			default:
				t.Errorf("types=console+region let through %q", line)
			}
		}
		if !sawRegion || len(lines) < 5 {
			t.Errorf("types=console+region:\n%s", w.String())
		}
	})
}

// TestTraceUnderTrace stacks two traces: the inner one records the
// program's calls, the outer one the calls the inner forwards; both see
// the console writes, with the program's thread.
func TestTraceUnderTrace(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "note.txt"), []byte("deep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		var wOuter syncBuffer
		outer := newTrace(t, "label=outer", &wOuter)
		inner := newTrace(t, "label=inner,format=jsonl,file="+filepath.Join(t.TempDir(), "inner.jsonl"), nil)
		out, r := run(t, b, []nester.Layer{outer, null.Layer{}, inner}, dir, "cat", "note.txt")
		if out != "deep\n" || !r.Exited || r.Status != 0 {
			t.Fatalf("cat under two traces: %q, %s", out, r)
		}
		recs, sum := readJSONL(t, inner.opts.File)
		if len(find(recs, "files.files_open", "file_read")) == 0 || len(find(recs, "console", "console_write")) == 0 {
			t.Errorf("the inner trace missed the program's calls: %+v", sum)
		}
		text := wOuter.String()
		for _, want := range []string{
			`console(port) console_write(data="deep\n"/5) = 5`,
			`files(port) files_open(path="note.txt"/8, flags=`,
			`files.files_open(port) file_read(offset=0, buf="deep\n"/`,
			"[outer] summary: ",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the outer trace lacks %q:\n%s", want, text)
			}
		}
		// Both saw each console write once.
		if n, m := strings.Count(text, " console_write("), len(find(recs, "console", "console_write")); n != m || n == 0 {
			t.Errorf("outer saw %d console writes, inner %d", n, m)
		}
	})
}

// TestKernelUnderTrace: the kernel's own test program passes every area
// under two trace layers around a null one, as it does alone: copies made
// through stand-ins stay under the program's revoke, handles given in a
// reply or a one-way message through a layer arrive, badges reach the
// server behind a stand-in.
func TestKernelUnderTrace(t *testing.T) {
	areas := []string{"derive", "threads", "ipc", "interpose", "restart", "fault", "keeper", "dirty", "quota", "mem", "batch"}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for _, area := range areas {
			outer := newTrace(t, "format=jsonl,file="+filepath.Join(t.TempDir(), "outer.jsonl"), nil)
			inner := newTrace(t, "format=jsonl,file="+filepath.Join(t.TempDir(), "inner.jsonl"), nil)
			out, r := run(t, b, []nester.Layer{outer, null.Layer{}, inner}, "", "kerneltest", area)
			if !r.Exited || r.Status != 0 || !strings.Contains(out, "PASS "+area) {
				t.Errorf("kerneltest %s under trace, null, trace: %s\n%s", area, r, out)
			}
		}
	})
}

// TestBatchUnderTrace: every entry of a call_batch on a handle the layer
// wrapped reaches the layer as its own call. bench's spawn makes each
// child with one batch (space_create to thread_start) and closes with
// another; under trace each of those operations is a record, as it is
// when called one by one.
func TestBatchUnderTrace(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		path := filepath.Join(t.TempDir(), "out.jsonl")
		l := newTrace(t, "format=jsonl,file="+path, nil)
		out, r := run(t, b, []nester.Layer{l}, "", "bench", "spawn", "2")
		if !r.Exited || r.Status != 0 || !strings.Contains(out, "bench spawn 2 ") {
			t.Fatalf("bench spawn under trace: %s\n%s", r, out)
		}
		recs, _ := readJSONL(t, path)
		count := map[string]int{}
		for _, rec := range recs {
			if rec.Thread == nil {
				continue // the loader's, launching bench
			}
			if !rec.OK {
				t.Errorf("failed call through the layer: %+v", rec)
			}
			count[rec.Op]++
		}
		// One child before the timed ones, then two.
		for op, want := range map[string]int{
			"space_create": 3, "space_set_exception_port": 3, "region_create": 3, "space_map": 3,
			"thread_create": 3, "space_insert": 3, "region_write": 6, "thread_start": 3, "port_receive": 3,
		} {
			if count[op] != want {
				t.Errorf("%d %s records, want %d (all: %v)", count[op], op, want, count)
			}
		}
		if count["call_batch"] != 0 {
			t.Errorf("call_batch reached the layer: %v", count)
		}
	})
}

// TestUnwritableFile fails when the layer is made, naming the file.
func TestUnwritableFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "no", "such", "dir", "out.jsonl")
	_, err := New(bad, nil, nil)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("trace=%s: %v, want an error naming the file", bad, err)
	}
	_, err = nester.New("trace="+bad, nester.Host{})
	if err == nil || !strings.Contains(err.Error(), "--layer trace=") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("nester.New: %v", err)
	}
}

// TestParse refuses what it does not know, naming it.
func TestParse(t *testing.T) {
	for args, want := range map[string]string{
		"bogus=1":                `unknown option "bogus"`,
		"ops=console_write+nope": `"nope"`,
		"types=console+disk":     `"disk"`,
		"format=xml":             "format=xml",
		"a.jsonl,b.jsonl":        "file given twice",
		"summary=maybe":          "summary=maybe",
		"ops=console_write,":     "empty option",
		"label=two words":        "label=",
		"file=":                  "file=",
	} {
		if _, err := ParseOptions(args); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", args, err, want)
		}
	}
	o, err := ParseOptions("out.jsonl,ops=console_write+files_open,types=console+file")
	if err != nil || o.File != "out.jsonl" || o.Format != JSONL || len(o.Ops) != 2 || len(o.Types) != 2 || !o.Summary {
		t.Errorf("%+v, %v", o, err)
	}
	if o, err := ParseOptions(""); err != nil || o.Format != Text || o.File != "" {
		t.Errorf("empty: %+v, %v", o, err)
	}
	if o, err := ParseOptions("ops=console_write"); err != nil || o.Format != Text || o.File != "" {
		t.Errorf("ops only: %+v, %v", o, err)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

// TestFailureEndsTheProgram: a trace that cannot write, or panics, ends
// the program it traces with a report, and the monitor goes on.
func TestFailureEndsTheProgram(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l, err := New("ops=console_write", failWriter{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, r := run(t, b, []nester.Layer{l}, "", "counter", "1000000")
		if r.Err == nil || !strings.Contains(r.Err.Error(), "disk on fire") || r.Exited {
			t.Errorf("a trace that cannot write: %s, err %v", r, r.Err)
		}

		var w syncBuffer
		l = newTrace(t, "ops=console_write", &w)
		l.testHook = func(c *interpose.Call) { panic("boom") }
		out, r := run(t, b, []nester.Layer{l}, "", "counter", "1000000")
		if r.Err == nil || !strings.Contains(r.Err.Error(), "panic in console console_write: boom") || r.Exited || out != "" {
			t.Errorf("a trace that panics: %s, err %v, output %q", r, r.Err, out)
		}

		// A panic after the call was forwarded: it happened, and the
		// program ends.
		l = newTrace(t, "ops=console_write", &w)
		l.testAfter = func(c *interpose.Call) { panic("late boom") }
		out, r = run(t, b, []nester.Layer{l}, "", "counter", "1000000")
		if r.Err == nil || !strings.Contains(r.Err.Error(), "late boom") || r.Exited || out != "1\n" {
			t.Errorf("a trace that panics after forwarding: %s, err %v, output %q", r, r.Err, out)
		}

		// The monitor still runs programs.
		if out, r := run(t, b, nil, "", "hello", "world"); out != "Hello, world!\n" || !r.Exited {
			t.Errorf("after: %q, %s", out, r)
		}
	})
}

// TestAppendJSON: the hand-written encoding decodes to what
// encoding/json's does.
func TestAppendJSON(t *testing.T) {
	v, n, id := uint64(1<<63+5), uint64(14), 3
	data := "a\"\\\n\x00\x7f\xff\xc3\xa9<&>\t"
	recs := []Record{
		{Kind: "call", Layer: "t", Time: 1.5e-7, Space: "root/child", Thread: &id, Cap: "files.files_open", CapID: 9, Type: "port", Op: "file_read",
			Args: []Arg{{Name: "offset", Kind: "value", Value: &v}, {Name: "buf", Kind: "out", Len: &n, Data: &data, Truncated: true}, {Name: "h", Kind: "handle", Value: &n, Type: "region"}},
			OK:   true, R0: 14, R1: 2, DurNS: 1234},
		{Kind: "call", Layer: "t", Time: 123.25, Space: "host", Cap: "space", Op: "space_create", Args: []Arg{}, Handle: true, OK: true},
		{Kind: "call", Layer: "t", Space: "host", Op: "files_open", Args: []Arg{}, Error: "NV_ENOTFOUND", R0: 1 << 63},
	}
	for i, r := range recs {
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		got := r.appendJSON(nil)
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("record %d: %v: %s", i, err, got)
		}
		json.Unmarshal(want, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("record %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestDefaultLabels: the traces of one run are trace, trace2, ... from
// the outside in, whatever ran before in the process.
func TestDefaultLabels(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for range 2 {
			var w1, w2 syncBuffer
			l1, l2 := newTrace(t, "ops=console_write", &w1), newTrace(t, "ops=console_write", &w2)
			if out, _ := run(t, b, []nester.Layer{l1, l2}, "", "hello", "world"); out != "Hello, world!\n" {
				t.Fatalf("output %q", out)
			}
			if l1.Label() != "trace" || l2.Label() != "trace2" ||
				!strings.HasPrefix(w1.String(), "[trace] ") || !strings.HasPrefix(w2.String(), "[trace2] ") ||
				strings.Count(w1.String(), "console_write(") != 4 || strings.Count(w2.String(), "console_write(") != 4 {
				t.Errorf("labels %s, %s:\n%s\n%s", l1.Label(), l2.Label(), w1.String(), w2.String())
			}
		}
	})
}

// stallWriter holds its first Write until the layer's queue is full, so
// that the program waits for the writer, then keeps everything.
type stallWriter struct {
	l       *Layer
	buf     syncBuffer
	stalled bool
	full    bool // the queue was full while the first Write waited
}

func (w *stallWriter) Write(p []byte) (int, error) {
	if !w.stalled {
		w.stalled = true
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
			w.l.q.mu.Lock()
			n := w.l.q.count
			w.l.q.mu.Unlock()
			if n >= maxPending {
				w.full = true
				break
			}
		}
	}
	return w.buf.Write(p)
}

// TestRecordsInOrder: records are written off the calling thread, in
// batches, yet every call is recorded once and in the order the calls
// ended, also when the program calls faster than the records are written
// and waits for the writer.
func TestRecordsInOrder(t *testing.T) {
	const n = maxPending + 4000
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		if b.Name() == "kvm" {
			t.Skip("tens of thousands of exits: emu shows the same")
		}
		w := &stallWriter{}
		l := newTrace(t, "format=jsonl,ops=console_write", nil)
		l.out, w.l = w, l
		out, r := run(t, b, []nester.Layer{l}, "", "bench", "write", strconv.Itoa(n))
		if !r.Exited || r.Status != 0 || !w.full || !strings.HasPrefix(out, strings.Repeat("x", n)+"bench write ") {
			t.Fatalf("bench write %d under a stalled trace: %s, queue filled: %v", n, r, w.full)
		}
		var recs []Record
		var sum Summary
		for i, line := range strings.Split(strings.TrimSpace(w.buf.String()), "\n") {
			var rec Record
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("line %d: %v: %s", i+1, err, line)
			}
			if rec.Kind == "summary" {
				json.Unmarshal([]byte(line), &sum)
				continue
			}
			recs = append(recs, rec)
		}
		// One thread: the calls ended in the order they began.
		xs := 0
		for i, rec := range recs {
			if i > 0 && rec.Time < recs[i-1].Time {
				t.Fatalf("record %d began at %v, before record %d (%v)", i+1, rec.Time, i, recs[i-1].Time)
			}
			if *rec.Args[0].Data == "x" {
				xs++
			}
		}
		if xs != n || sum.Calls != len(recs) {
			t.Errorf("%d records of the %d writes of x; %d records, the summary counts %d", xs, n, len(recs), sum.Calls)
		}
	})
}

// TestAppendEvent: the writer's JSON of an event is, byte for byte, its
// Record's, for every operation, result and kind of argument.
func TestAppendEvent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := []byte("a\"\\\n\x00\x7f\xff\xc3\xa9<&>\tthirty-two bytes and more")
	var jc jsonCache
	var sc scratch
	l := &Layer{label: "t\"1"}
	for op := abi.Op(1); op < abi.OpCount; op++ {
		for k := range 8 {
			ev := event{op: op, cap: "files.files_open", capID: uint64(k % 3), capType: abi.ObjectType(1 + k%3),
				at: time.Duration(rng.Int64N(1e12)), dur: time.Duration(rng.Int64N(1e6)), r0: rng.Uint64() >> (k * 8), r1: uint64(k)}
			for i := range ev.vals {
				ev.vals[i] = rng.Uint64() >> rng.UintN(64)
				ev.htype[i] = abi.ObjectType(rng.UintN(uint(abi.ObjectCount)))
			}
			ev.hasType = uint8(rng.UintN(64))
			for i := range ev.bufs {
				p := &ev.bufs[i]
				p.set, p.trunc, p.n = rng.UintN(4) != 0, rng.UintN(2) == 0, uint8(rng.UintN(previewLen+1))
				copy(p.data[:], data[rng.UintN(8):])
			}
			if k%2 == 1 {
				ev.failed, ev.err = true, abi.Error(rng.UintN(uint(len(abi.ErrorSymbols)+2)))
			}
			want := l.record(&ev, &sc).appendJSON(nil)
			if got := jc.appendEvent(nil, l.label, &ev); !bytes.Equal(got, want) {
				t.Fatalf("%s:\n got %s\nwant %s", op, got, want)
			}
		}
	}
	// A guest thread's part, as a Record with its space and number says it.
	id := 7
	rec := Record{Space: "root/child\t", Thread: &id}
	if want, got := string(rec.appendJSON(nil)), string(appendThreadPart(nil, "root/child\t", 7, false)); !strings.Contains(want, got+",") {
		t.Errorf("thread part %s, not in %s", got, want)
	}
}

// TestAppendSeconds: the fast path writes what strconv does.
func TestAppendSeconds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(d time.Duration) {
		if got, want := string(appendSeconds(nil, d)), strconv.FormatFloat(d.Seconds(), 'f', -1, 64); got != want {
			t.Fatalf("%d ns: %s, want %s", int64(d), got, want)
		}
	}
	for _, d := range []time.Duration{0, 1, 9, 10, 100, 999999999, 1e9, 1e9 + 1, 123456789012, 1e15 - 1, 1e15, 1e15 + 1, 1<<53 + 1, -1, -1e9} {
		check(d)
	}
	for range 1000000 {
		check(time.Duration(rng.Int64N(1 << rng.UintN(58))))
	}
}

// TestMaxBufs: every operation's buffers fit an event.
func TestMaxBufs(t *testing.T) {
	for op := abi.Op(1); op < abi.OpCount; op++ {
		n := 0
		for _, a := range abi.Ops[op].Args {
			if a.Kind == abi.ArgIn || a.Kind == abi.ArgOut {
				n++
			}
		}
		if n > maxBufs {
			t.Errorf("%s has %d buffers; an event holds %d (maxBufs)", op, n, maxBufs)
		}
	}
}
