package refmon_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/refmon"
	"nestvm/vmm"
)

// syncBuffer is a console or audit log a test reads while guests write it.
type syncBuffer = testutil.Buffer

// outcome is how a program under refmon went.
type outcome struct {
	out, errs, audit string
	res              vmm.Result
}

// setup is what a run needs beside the program.
type setup struct {
	files    string // the files root; none when ""
	writable bool
	extra    []nester.Layer // layers between refmon and the program
}

// run runs guest name with args under a refmon enforcing policy on b.
func run(t *testing.T, b machine.Backend, policy string, s setup, name string, args ...string) outcome {
	t.Helper()
	pol, err := refmon.ParsePolicy([]byte(policy), "policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	var audit syncBuffer
	l := refmon.New(pol, refmon.Options{Audit: &audit})
	o := launch(t, b, append([]nester.Layer{l}, s.extra...), s, name, args...)
	o.audit = audit.String()
	return o
}

func launch(t *testing.T, b machine.Backend, layers []nester.Layer, s setup, name string, args ...string) outcome {
	t.Helper()
	data, err := os.ReadFile(testutil.Guest(t, name))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vmm.ParseELF(data, 256<<20)
	if err != nil {
		t.Fatal(err)
	}
	mon := vmm.NewMonitor(b, nil)
	var out, errs syncBuffer
	cfg := nester.RootConfig{Console: &out, Stderr: &errs, Memory: 256 << 20}
	if s.files != "" {
		fs, err := vmm.FilesServer(s.files, s.writable)
		if err != nil {
			t.Fatal(err)
		}
		defer fs.Close()
		cfg.Files, cfg.FilesWritable = fs, s.writable
	}
	root, rootSpace := nester.Root(mon, cfg)
	defer rootSpace.Kill("test over")
	r, err := nester.Launch(mon, root, layers, nester.Program{Name: name, Image: img, Args: append([]string{name}, args...)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	case <-time.After(60 * time.Second):
		r.Kill(124, "test timeout")
		t.Fatalf("%s did not end; output %q, stderr %q", name, out.String(), errs.String())
	}
	return outcome{out: out.String(), errs: errs.String(), res: r.Wait()}
}

// wantLines checks that text holds each line of want, whole.
func wantLines(t *testing.T, what, text string, want ...string) {
	t.Helper()
	lines := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		lines[l] = true
	}
	for _, w := range want {
		if !lines[w] {
			t.Errorf("%s lacks the line %q; it is:\n%s", what, w, text)
		}
	}
}

// auditField matches one key=value of an audit line; a value with
// spaces or quotes is a Go-quoted string.
var auditField = regexp.MustCompile(`^ (\w+)=("(?:[^"\\]|\\.)*"|[^ "]+)`)

// auditKeys are the fields of an audit record, in order.
var auditKeys = []string{"time", "who", "cap", "type", "op", "args", "error", "rule", "why"}

// parseRecord splits an audit line into its fields, or returns nil.
func parseRecord(line string) map[string]string {
	rest, ok := strings.CutPrefix(line, "refmon: deny")
	if !ok {
		return nil
	}
	f := map[string]string{}
	for _, k := range auditKeys {
		m := auditField.FindStringSubmatch(rest)
		if m == nil || m[1] != k {
			return nil
		}
		v := m[2]
		if strings.HasPrefix(v, `"`) {
			var err error
			if v, err = strconv.Unquote(v); err != nil {
				return nil
			}
		}
		f[k] = v
		rest = rest[len(m[0]):]
	}
	if rest != "" {
		return nil
	}
	return f
}

// denials returns the audit log's records as "who|cap|op|args|rule", and
// fails t on a line that is not a record.
func denials(t *testing.T, audit string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimRight(audit, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := parseRecord(line)
		if f == nil {
			t.Errorf("not an audit record: %q", line)
			continue
		}
		out = append(out, strings.Join([]string{f["who"], f["cap"], f["op"], f["args"], f["rule"]}, "|"))
	}
	return out
}

const consolePolicy = `
# Output is limited; diagnostics are not.
rule "short writes" {
  op        = ["console_write"]
  cap       = ["console"]
  max_bytes = 8
}
rule "little output" {
  op          = ["console_write"]
  cap         = ["console"]
  total_bytes = 20
}
`

// TestConsoleLimit: a write longer than max_bytes is denied (through a
// derived copy of the handle too), and total_bytes caps what all of them
// write together; every denial is audited.
func TestConsoleLimit(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		o := run(t, b, consolePolicy, setup{}, "refprobe", "write:4", "write:9", "derive-write:9", "write:8", "derive-write:8", "write:1")
		if o.out != strings.Repeat("x", 20) {
			t.Errorf("console: %q, want 20 x's", o.out)
		}
		if !o.res.Exited || o.res.Status != 3 {
			t.Errorf("refprobe: %s, want exit status 3 (denied)", o.res)
		}
		wantLines(t, "stderr", o.errs, "refprobe: write:4: ok", "refprobe: write:9: denied", "refprobe: derive-write:9: denied",
			"refprobe: write:8: ok", "refprobe: derive-write:8: ok", "refprobe: write:1: denied")
		got := denials(t, o.audit)
		want := []string{
			"thread 0 of space root/child|console|console_write|data=9 bytes|short writes",
			"thread 0 of space root/child|console|console_write|data=9 bytes|short writes",
			"thread 0 of space root/child|console|console_write|data=1 bytes|little output",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit records:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), o.audit)
		}
		if !strings.Contains(o.audit, `why="rule \"short writes\" (line 3): 9 bytes in one call, more than max_bytes = 8"`) ||
			!strings.Contains(o.audit, `why="rule \"little output\" (line 8): 1 bytes more would make 21, more than total_bytes = 20"`) {
			t.Errorf("the audit log does not say why:\n%s", o.audit)
		}
	})
}

const filesPolicy = `
rule "read-only under pub" {
  op         = ["files_open", "files_list"]
  cap        = ["files"]
  path_under = ["pub", "refprobe.elf"]
}
rule "no writes" {
  op    = ["files_open"]
  flags = ["read"]
}
`

// TestFilesReadOnlyUnderOneDirectory: on a writable root, the policy lets
// the program read under pub/ only: cat reads pub/note.txt, and is denied
// secret.txt however the path is spelt; opening to write or create is
// denied, and nothing is written.
func TestFilesReadOnlyUnderOneDirectory(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(dir, "pub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "pub", "note.txt"), []byte("public\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("secret\n"), 0o644))
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		s := setup{files: dir, writable: true}
		o := run(t, b, filesPolicy, s, "cat", "pub/note.txt", "secret.txt", "pub/../secret.txt", "./pub/note.txt", "/secret.txt")
		if o.out != "public\npublic\n" {
			t.Errorf("cat printed %q", o.out)
		}
		wantLines(t, "cat's stderr", o.errs, "cat: secret.txt: denied", "cat: pub/../secret.txt: denied", "cat: /secret.txt: invalid argument")
		got := denials(t, o.audit)
		if len(got) != 3 || got[0] != `thread 0 of space root/child|files|files_open|path="secret.txt" flags=read|read-only under pub` {
			t.Errorf("audit records:\n%s", strings.Join(got, "\n"))
		}
		if !strings.Contains(o.audit, `why="rule \"read-only under pub\" (line 2): path \"secret.txt\" is not under pub, refprobe.elf"`) {
			t.Errorf("the audit log does not say why:\n%s", o.audit)
		}

		o = run(t, b, filesPolicy, s, "refprobe", "open:pub/note.txt:r", "open:pub/note.txt:rw", "open:pub/new.txt:wc", "open:pub/note.txt:rt")
		wantLines(t, "refprobe's stderr", o.errs, "refprobe: open:pub/note.txt:r: ok", "refprobe: open:pub/note.txt:rw: denied",
			"refprobe: open:pub/new.txt:wc: denied", "refprobe: open:pub/note.txt:rt: denied")
		if _, err := os.Stat(filepath.Join(dir, "pub", "new.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a denied create made the file: %v", err)
		}
		if data, _ := os.ReadFile(filepath.Join(dir, "pub", "note.txt")); string(data) != "public\n" {
			t.Errorf("a denied truncate changed the file: %q", data)
		}
	})
}

// TestFilesTransparent: where the policy allows, the program sees exactly
// what the files root answers: fileio's and fsops's whole check lists,
// escapes included, pass under a rule that checks every path and flag,
// and a handle's rights keep their meaning.
func TestFilesTransparent(t *testing.T) {
	const policy = `
rule "inside the root" {
  op = ["files_open", "files_list", "files_stat", "files_unlink", "files_mkdir", "files_rmdir",
        "files_rename", "files_symlink", "files_readlink", "files_chmod", "files_truncate", "files_utimes"]
  path_under = ["."]
}
rule "any flags" {
  op    = ["files_open"]
  flags = ["read", "write", "create", "truncate", "dir", "exclusive"]
}
`
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		ft := testutil.NewFilesTree(t)
		o := run(t, b, policy, setup{files: ft.Root, writable: true}, "fileio", "rw")
		if o.out != "PASS\n" || !o.res.Exited || o.res.Status != 0 {
			t.Errorf("fileio rw under refmon: %q, %s", o.out, o.res)
		}
		ft.CheckOutside(t)
		// The operations on names, performed by the layer on the paths
		// it judged, answer as the files root does.
		o = run(t, b, policy, setup{files: ft.Root, writable: true}, "fsops")
		if o.out != "PASS\n" || !o.res.Exited || o.res.Status != 0 {
			t.Errorf("fsops under refmon: %q, %s", o.out, o.res)
		}
		ft.CheckOutside(t)

		// A read-only copy of the files handle opens read-only under the
		// layer too, as it does without: the files root refuses the
		// write, and refmon has nothing to audit.
		o = run(t, b, policy, setup{files: ft.Root, writable: true}, "refprobe", "ro-open:hello.txt:r", "ro-open:hello.txt:w", "open:hello.txt:w")
		wantLines(t, "refprobe's stderr", o.errs, "refprobe: ro-open:hello.txt:r: ok", "refprobe: ro-open:hello.txt:w: denied", "refprobe: open:hello.txt:w: ok")
		if o.audit != "" {
			t.Errorf("audit: %q", o.audit)
		}
	})
}

// TestNoChildSpaces: space_create on the program's own space handle
// ("space.space_create") and anything below is denied, while the nester's
// own creation of the program's space, through "space", is not: hello
// runs, and nest cannot make the space for its child.
func TestNoChildSpaces(t *testing.T) {
	const policy = `
default = "allow"
rule "no child spaces" {
  op     = ["space_create"]
  cap    = ["space.*"]
  action = "deny"
}
`
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		o := run(t, b, policy, setup{}, "hello", "world")
		if o.out != "Hello, world!\n" || !o.res.Exited || o.res.Status != 0 || o.audit != "" {
			t.Errorf("hello under no child spaces: %q, %s, audit %q", o.out, o.res, o.audit)
		}
		o = run(t, b, policy, setup{files: testutil.GuestDir(t)}, "nest", "hello.elf")
		if o.out != "" || !o.res.Exited || o.res.Status != 125 {
			t.Errorf("nest hello under no child spaces: %q, %s", o.out, o.res)
		}
		wantLines(t, "nest's stderr", o.errs, "nest: space_create: denied")
		got := denials(t, o.audit)
		if len(got) != 1 || got[0] != "thread 0 of space root/child|space.space_create|space_create|pages=0 threads=0 handles=0 children=0|no child spaces" {
			t.Errorf("audit records:\n%s", strings.Join(got, "\n"))
		}

		// A space_create in a call_batch meets the policy as a direct
		// one does: the entry is denied, and the batch stops there.
		o = run(t, b, policy, setup{}, "bench", "spawn", "1")
		if !o.res.Exited || o.res.Status == 0 {
			t.Errorf("bench spawn under no child spaces: %s, want a failure", o.res)
		}
		want := fmt.Sprintf("entry 0 (op %d) failed: error %d", abi.OpSpaceCreate, abi.ErrDenied)
		if !strings.Contains(o.errs+o.out, want) {
			t.Errorf("bench spawn under no child spaces: stderr %q, want %q", o.errs, want)
		}
		got = denials(t, o.audit)
		if len(got) != 1 || got[0] != "thread 0 of space root/child|space.space_create|space_create|pages=0 threads=0 handles=0 children=0|no child spaces" {
			t.Errorf("audit records of bench spawn:\n%s", strings.Join(got, "\n"))
		}
		o = run(t, b, policy, setup{}, "refprobe", "spawn", "derive-spawn", "send-spawn")
		wantLines(t, "refprobe's stderr", o.errs, "refprobe: spawn: denied", "refprobe: derive-spawn: denied")
		if strings.Contains(o.errs, "send-spawn: ok") {
			t.Errorf("a space handle sent through a port escaped the policy: %s", o.errs)
		}
	})
}

const bypassPolicy = `
# The program (a nester) may make children; they may not.
rule "no grandchildren" {
  op     = ["space_create"]
  cap    = ["space.space_create.*"]
  action = "deny"
}
rule "short writes" {
  op        = ["console_write"]
  cap       = ["console"]
  max_bytes = 8
}
rule "pub only" {
  op         = ["files_open"]
  cap        = ["files"]
  path_under = ["pub", "refprobe.elf"]
}
# Everything the program's child and grandchildren get: nest's regions
# for its child (about 16,700 pages) and the grandchild's own.
rule "memory" {
  op        = ["region_create"]
  cap       = ["space.space_create.*"]
  max_pages = 20000
}
`

// TestNoBypass: a guest nester (nest) runs refprobe as its child, handing
// it its console and files handles and a space it made; everything the
// grandchild tries against the policy, on those handles or on copies it
// derives, is denied, and the audit log names the grandchild's space.
// The memory budget counts the whole subtree: nest's regions for its
// child and the grandchild's own.
func TestNoBypass(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(testutil.Guest(t, "refprobe"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "refprobe.elf"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		o := run(t, b, bypassPolicy, setup{files: dir}, "nest", "refprobe.elf",
			"write:4", "write:9", "derive-write:9", "spawn", "derive-spawn", "send-spawn",
			"open:secret.txt:r", "region:100", "region:4000")
		if o.out != "xxxx" {
			t.Errorf("console: %q", o.out)
		}
		if !o.res.Exited || o.res.Status == 0 {
			t.Errorf("nest refprobe: %s, want refprobe's failure status", o.res)
		}
		wantLines(t, "stderr", o.errs, "refprobe: write:4: ok", "refprobe: write:9: denied", "refprobe: derive-write:9: denied",
			"refprobe: spawn: denied", "refprobe: derive-spawn: denied", "refprobe: open:secret.txt:r: denied",
			"refprobe: region:100: ok", "refprobe: region:4000: denied")
		if strings.Contains(o.errs, "send-spawn: ok") {
			t.Errorf("a space handle sent through a port escaped the policy: %s", o.errs)
		}
		grandchild := "thread 0 of space root/child/child"
		want := []string{
			grandchild + "|console|console_write|data=9 bytes|short writes",
			grandchild + "|console|console_write|data=9 bytes|short writes",
			grandchild + "|space.space_create.space_create|space_create|pages=0 threads=0 handles=0 children=0|no grandchildren",
			grandchild + "|space.space_create.space_create|space_create|pages=0 threads=0 handles=0 children=0|no grandchildren",
		}
		got := denials(t, o.audit)
		for _, w := range want {
			found := false
			for i, g := range got {
				if g == w {
					got = append(got[:i], got[i+1:]...)
					found = true
					break
				}
			}
			if !found {
				t.Errorf("no audit record %q in:\n%s", w, o.audit)
			}
		}
		if !strings.Contains(o.audit, `who="`+grandchild+`" cap=files type=port op=files_open args="path=\"secret.txt\" flags=read"`) ||
			!strings.Contains(o.audit, `op=region_create args="size=16384000" error=NV_EDENIED rule=memory`) {
			t.Errorf("audit log:\n%s", o.audit)
		}
	})
}

// TestDefaultDeny: under default = "deny" only what a rule covers runs:
// the program loads and writes, and its files handle is refused.
func TestDefaultDeny(t *testing.T) {
	const policy = `
default = "deny"
rule "load and run" { cap = ["space", "space.*"] }
rule "output"       { cap = ["console", "stderr"] }
`
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		o := run(t, b, policy, setup{files: testutil.GuestDir(t)}, "refprobe", "write:3", "open:hello.elf:r")
		if o.out != "xxx" || !o.res.Exited || o.res.Status != 3 {
			t.Errorf("refprobe under default deny: %q, %s, stderr %q", o.out, o.res, o.errs)
		}
		got := denials(t, o.audit)
		if len(got) != 1 || got[0] != `thread 0 of space root/child|files|files_open|path="hello.elf" flags=read|default` {
			t.Errorf("audit records:\n%s", strings.Join(got, "\n"))
		}
	})
}

// failingWriter is an audit log that cannot be written.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestAuditFailure: an audit log refmon cannot write ends in a clear
// error from the run, and from then on the layer denies everything.
func TestAuditFailure(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		pol, err := refmon.ParsePolicy([]byte(consolePolicy), "policy.hcl")
		if err != nil {
			t.Fatal(err)
		}
		l := refmon.New(pol, refmon.Options{Audit: failingWriter{}})
		o := launch(t, b, []nester.Layer{l}, setup{}, "refprobe", "write:9", "write:1")
		if o.res.Err == nil || !strings.Contains(o.res.Err.Error(), "layer refmon: audit log: disk full") {
			t.Errorf("the run ended with %s, want the audit log's failure", o.res)
		}
		if o.out != "" {
			t.Errorf("a write got through a layer that cannot audit: %q", o.out)
		}
	})
}

// TestKind: --layer refmon=POLICY,audit=FILE reads the policy and opens
// the audit file before anything runs; bad arguments and policies are
// refused with what is wrong.
func TestKind(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.hcl")
	if err := os.WriteFile(good, []byte(consolePolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(bad, []byte("rule \"x\" {\n  op = [\"console_wrte\"]\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := hclog.NewNullLogger()
	for _, c := range []struct{ spec, want string }{
		{"refmon", "refmon needs a policy file"},
		{"refmon=" + filepath.Join(dir, "missing.hcl"), "missing.hcl: no such file"},
		{"refmon=" + bad, bad + `:2,8-24: Unknown operation; "console_wrte" is not an operation`},
		{"refmon=" + good + ",audit=" + filepath.Join(dir, "no", "such", "dir.log"), "audit log: open"},
		{"refmon=" + good + ",colour=red", `unknown argument "colour=red"`},
	} {
		l, err := nester.New(c.spec, nester.Host{Log: log})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--layer %s: %v, want an error saying %q", c.spec, err, c.want)
		}
		if l != nil {
			l.Close()
		}
	}
	auditFile := filepath.Join(dir, "audit.log")
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		l, err := nester.New("refmon=policy="+good+",audit="+auditFile, nester.Host{Log: log})
		if err != nil {
			t.Fatal(err)
		}
		o := launch(t, b, []nester.Layer{l}, setup{}, "refprobe", "write:9")
		if o.out != "" || o.res.Status != 3 {
			t.Errorf("refprobe: %q, %s", o.out, o.res)
		}
		data, err := os.ReadFile(auditFile)
		if err != nil {
			t.Fatal(err)
		}
		if got := denials(t, string(data)); len(got) == 0 || got[len(got)-1] != "thread 0 of space root/child|console|console_write|data=9 bytes|short writes" {
			t.Errorf("audit file:\n%s", data)
		}
	})
}

// TestMalformedPolicy: every problem is reported with its file, line and
// reason.
func TestMalformedPolicy(t *testing.T) {
	for _, c := range []struct {
		name, src string
		want      []string
	}{
		{"syntax", "rule \"a\" {\n  op = [\"console_write\"\n}\n", []string{"policy.hcl:3,1-2: Missing item separator"}},
		{"unknown attribute", "rule \"a\" {\n  ops = [\"x\"]\n}\n", []string{"policy.hcl:2,3-6: Unsupported argument"}},
		{"unknown block", "allow \"a\" {}\n", []string{"policy.hcl:1,1-6: Unsupported block type"}},
		{"bad default", "default = \"maybe\"\n", []string{`policy.hcl:1,11-18: Invalid action; "maybe" is not an action`}},
		{"unknown op", "rule \"a\" {\n  op = [\"space_creat\"]\n}\n", []string{`policy.hcl:2,8-23: Unknown operation; "space_creat"`}},
		{"unknown type", "rule \"a\" {\n  type = [\"file\"]\n}\n", []string{`policy.hcl:2,10-18: Unknown object type; "file"`}},
		{"unknown flag", "rule \"a\" {\n  op = [\"files_open\"]\n  flags = [\"exec\"]\n}\n", []string{`policy.hcl:3,11-19: Unknown open flag; "exec"`}},
		{"wrong type", "rule \"a\" {\n  op = [\"console_write\"]\n  max_bytes = \"ten\"\n}\n", []string{"policy.hcl:3,16-19: Unsuitable value type"}},
		{"negative", "rule \"a\" {\n  op = [\"console_write\"]\n  max_bytes = -1\n}\n", []string{"policy.hcl:3,15-16: Unsuitable value type; Unsuitable value: value must be a whole number, between 0"}},
		{"condition without op", "rule \"a\" {\n  max_bytes = 10\n}\n", []string{"policy.hcl:2,15-17: Condition without operations"}},
		{"condition on the wrong op", "rule \"a\" {\n  op = [\"space_create\"]\n  path_under = [\"pub\"]\n}\n", []string{"policy.hcl:3,16-23: Condition does not fit the operation; path_under does not apply to space_create"}},
		{"condition on a deny rule", "rule \"a\" {\n  op = [\"console_write\"]\n  action = \"deny\"\n  max_bytes = 3\n}\n", []string{"policy.hcl:4,15-16: Condition on a deny rule"}},
		{"escaping path", "rule \"a\" {\n  op = [\"files_open\"]\n  path_under = [\"../up\"]\n}\n", []string{`policy.hcl:3,16-25: Invalid path; "../up"`}},
		{"outside on the wrong op", "rule \"a\" {\n  op = [\"console_write\"]\n  path_not_under = [\"pub\"]\n}\n", []string{"policy.hcl:3,20-27: Condition does not fit the operation; path_not_under does not apply to console_write"}},
		{"outside the whole root", "rule \"a\" {\n  op = [\"files_stat\"]\n  path_not_under = [\".\"]\n}\n", []string{`policy.hcl:3,20-25: Invalid path; "."`}},
		{"duplicate", "rule \"a\" {}\nrule \"a\" {}\n", []string{`policy.hcl:2,6-9: Duplicate rule; A rule named "a" is already defined at line 1`}},
		{"two problems", "default = \"no\"\nrule \"a\" {\n  op = [\"nope\"]\n}\n", []string{"policy.hcl:1,11-15: Invalid action", "policy.hcl:3,8-16: Unknown operation"}},
	} {
		_, err := refmon.ParsePolicy([]byte(c.src), "policy.hcl")
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v\nwant it to say %q", c.name, err, w)
			}
		}
	}
	if _, err := refmon.ParsePolicy([]byte(consolePolicy+filesPolicy+bypassPolicy[strings.Index(bypassPolicy, "rule \"no grandchildren\""):strings.Index(bypassPolicy, "rule \"short")]), "policy.hcl"); err != nil {
		t.Errorf("a good policy: %v", err)
	}
}

// TestDocPolicy: the example policy in docs/layers.md parses, and does what
// it says on the program's children.
func TestDocPolicy(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testutil.Root(t), "docs", "layers.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```hcl\n")
	src, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/layers.md has no ```hcl example")
	}
	if _, err := refmon.ParsePolicy([]byte(src), "docs/layers.md example"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data, err := os.ReadFile(testutil.Guest(t, "refprobe"))
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(dir, "data"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "data", "refprobe.elf"), data, 0o644))
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		o := run(t, b, src, setup{files: dir, writable: true}, "nest", "data/refprobe.elf",
			"spawn", "open:data/refprobe.elf:r", "open:data/x:wc", "open:other:r", "write:100", "region:100", "region:20000")
		wantLines(t, "stderr", o.errs, "refprobe: spawn: denied", "refprobe: open:data/refprobe.elf:r: ok",
			"refprobe: open:data/x:wc: denied", "refprobe: open:other:r: denied", "refprobe: write:100: ok", "refprobe: region:100: ok", "refprobe: region:20000: denied")
	})
}

// TestStacked: two reference monitors, one above the other, each enforce
// their own policy, and a denial is audited by the one that denied it.
func TestStacked(t *testing.T) {
	const inner = `
rule "no spawning" {
  op     = ["space_create"]
  cap    = ["space.*"]
  action = "deny"
}
`
	pol, err := refmon.ParsePolicy([]byte(inner), "inner.hcl")
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		var innerAudit syncBuffer
		below := refmon.New(pol, refmon.Options{Audit: &innerAudit})
		o := run(t, b, consolePolicy, setup{extra: []nester.Layer{below}}, "refprobe", "write:4", "write:9", "spawn")
		if o.out != "xxxx" {
			t.Errorf("console: %q", o.out)
		}
		wantLines(t, "stderr", o.errs, "refprobe: write:4: ok", "refprobe: write:9: denied", "refprobe: spawn: denied")
		if got := denials(t, o.audit); len(got) != 1 || !strings.HasSuffix(got[0], "|short writes") {
			t.Errorf("outer audit:\n%s", o.audit)
		}
		if got := denials(t, innerAudit.String()); len(got) != 1 || !strings.HasSuffix(got[0], "|no spawning") {
			t.Errorf("inner audit:\n%s", innerAudit.String())
		}
	})
}
