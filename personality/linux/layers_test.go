package linux_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/services/trace"
)

// nestvmRun is how one `nestvm run` of a Linux program ended: its
// stdout, its stderr without the monitor's log lines, and its status.
type nestvmRun struct {
	stdout, stderr string
	status         int
}

// nestvmLinux runs `nestvm run --backend b ARGS...` in dir, with the corpus
// environment, and waits for it.
func nestvmLinux(t *testing.T, nestvm, b, dir string, args ...string) nestvmRun {
	t.Helper()
	all := []string{"run", "--backend", b, "--log-level", "warn", "--timeout", "60s", "--clear-env"}
	for _, kv := range corpusEnv {
		all = append(all, "--env", kv)
	}
	return nestvmCommand(t, nestvm, dir, append(all, args...)...)
}

// nestvmCommand runs `nestvm ARGS...` in dir and waits for it.
func nestvmCommand(t *testing.T, nestvm, dir string, args ...string) nestvmRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nestvm, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var r nestvmRun
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		r.status = ws.ExitStatus()
		if ws.Signaled() {
			r.status = 128 + int(ws.Signal())
		}
	case err != nil:
		t.Fatalf("nestvm %s: %v", strings.Join(args, " "), err)
	}
	r.stdout, r.stderr = stdout.String(), logLine.ReplaceAllString(stderr.String(), "")
	return r
}

// docPolicy returns the ```hcl block of docs/layers.md that holds want.
func docPolicy(t *testing.T, want string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(testutil.Root(t), "docs", "layers.md"))
	if err != nil {
		t.Fatal(err)
	}
	for rest := string(readme); ; {
		var ok bool
		if _, rest, ok = strings.Cut(rest, "```hcl\n"); !ok {
			t.Fatalf("docs/layers.md has no ```hcl block holding %q", want)
		}
		block, _, _ := strings.Cut(rest, "```")
		if strings.Contains(block, want) {
			return block
		}
	}
}

// TestLinuxUnderRefmon runs busybox under the policy of docs/layers.md that keeps
// a Linux program from /etc/shadow, on every backend: `cat /etc/shadow`
// is denied (busybox's own message, EACCES, status 1) and audited with
// the path, and so are a stat of it and a link leading to it, while `cat
// x.txt` reads as ever. A rule on files_rename judges the new name too,
// and a read-only rule lets ls open a directory but not sh create a file.
func TestLinuxUnderRefmon(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	busybox := filepath.Join(corpusDir(t), "busybox")
	if !exists(busybox) {
		t.Skipf("%s not built: scripts/linux-corpus says why", busybox)
	}
	nestvm := nestvmBinary(t)
	work := t.TempDir()
	noShadow := filepath.Join(work, "no-shadow.hcl")
	noRenameIntoEtc := filepath.Join(work, "no-rename-into-etc.hcl")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(noShadow, []byte(docPolicy(t, `path_not_under = ["etc/shadow"]`)), 0o644))
	must(os.WriteFile(noRenameIntoEtc, []byte(`rule "nothing moves into etc" {
  op             = ["files_rename"]
  path_not_under = ["etc"]
}
`), 0o644))
	readOnly := filepath.Join(work, "read-only.hcl")
	must(os.WriteFile(readOnly, []byte(`rule "read only" {
  op    = ["files_open"]
  flags = ["read", "dir"]
}
`), 0o644))
	data, err := os.ReadFile(busybox)
	must(err)
	for _, b := range backends() {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			root := filepath.Join(work, b)
			for _, d := range []string{"bin", "etc", "tmp"} {
				must(os.MkdirAll(filepath.Join(root, d), 0o755))
			}
			must(os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755))
			must(os.WriteFile(filepath.Join(root, "etc", "shadow"), []byte("root:secret:::::::\n"), 0o600))
			must(os.WriteFile(filepath.Join(root, "x.txt"), []byte("allowed\n"), 0o644))
			must(os.WriteFile(filepath.Join(root, "tmp", "a"), []byte("a\n"), 0o644))
			audit := filepath.Join(work, b+".audit")
			for _, c := range []struct {
				policy  string
				args    []string
				stdout  string
				stderr  string
				status  int
				op      string // the operation audited, "" for none
				path    string // the path in the audit record
				remains []string
			}{
				{noShadow, []string{"cat", "/etc/shadow"}, "", "cat: can't open '/etc/shadow': Permission denied\n", 1,
					"files_open", `path=\"etc/shadow\" flags=read`, nil},
				{noShadow, []string{"cat", "x.txt"}, "allowed\n", "", 0, "", "", nil},
				{noShadow, []string{"stat", "-c", "%n", "/etc/shadow"}, "", "stat: can't stat '/etc/shadow': Permission denied\n", 1,
					"files_stat", `path=\"etc/shadow\"`, nil},
				{noShadow, []string{"ln", "-s", "../etc/shadow", "/tmp/link"}, "", "ln: /tmp/link: Permission denied\n", 1,
					"files_symlink", `paths=\"../etc/shadow\\x00tmp/link\"`, nil},
				{noRenameIntoEtc, []string{"mv", "/tmp/a", "/etc/a"}, "", "mv: can't rename '/tmp/a': Permission denied\n", 1,
					"files_rename", `paths=\"tmp/a\\x00etc/a\"`, []string{"tmp/a"}},
				{noRenameIntoEtc, []string{"mv", "/tmp/a", "/tmp/b"}, "", "", 0, "", "", []string{"tmp/b"}},
				{readOnly, []string{"ls", "/etc"}, "shadow\n", "", 0, "", "", nil},
				{readOnly, []string{"sh", "-c", "echo x > /tmp/new"}, "", "sh: can't create /tmp/new: Permission denied\n", 1,
					"files_open", `path=\"tmp/new\" flags=write|create|truncate`, nil},
			} {
				os.Remove(audit)
				args := []string{"--files", root, "--files-rw", "--layer", "refmon=" + c.policy + ",audit=" + audit, "bin/busybox"}
				r := nestvmLinux(t, nestvm, b, root, append(args, c.args...)...)
				what := strings.Join(c.args, " ")
				if r.stdout != c.stdout || r.stderr != c.stderr || r.status != c.status {
					t.Errorf("%s: stdout %q, stderr %q, status %d; want %q, %q, %d", what, r.stdout, r.stderr, r.status, c.stdout, c.stderr, c.status)
				}
				log, _ := os.ReadFile(audit)
				lines := strings.Split(strings.TrimSuffix(string(log), "\n"), "\n")
				switch {
				case c.op == "" && len(log) > 0:
					t.Errorf("%s: audited %q, want no denial", what, log)
				case c.op != "" && (len(lines) != 1 || !strings.Contains(lines[0], " op="+c.op+" ") ||
					!strings.Contains(lines[0], ` args="`+c.path) || !strings.Contains(lines[0], " error=NV_EDENIED ")):
					t.Errorf("%s: audit log %q, want one denial of %s with %s", what, log, c.op, c.path)
				}
				for _, p := range c.remains {
					if !exists(filepath.Join(root, p)) {
						t.Errorf("%s: %s is gone", what, p)
					}
				}
			}
			if got, err := os.ReadFile(filepath.Join(root, "etc", "shadow")); err != nil || string(got) != "root:secret:::::::\n" {
				t.Errorf("etc/shadow now holds %q (%v)", got, err)
			}
		})
	}
}

// layerStack is a stack of layers the corpus runs under: args returns
// its --layer arguments for one run, files of its own under dir.
type layerStack struct {
	name string
	args func(dir string) []string
}

// corpusStacks are the stacks TestLinuxCorpusLayers runs the corpus
// under, with the policies they need written to work.
func corpusStacks(t *testing.T, work string) []layerStack {
	t.Helper()
	write := func(name, src string) string {
		p := filepath.Join(work, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	allowAll := write("allow-all.hcl", `default = "allow"`+"\n")
	// Only what the cases need: their space and what they create, the
	// standard streams, the clock, and reading (never writing) names
	// under the tree's bin/, data/ and dev/.
	confining := write("confining.hcl", `default = "deny"
rule "load and run" { cap = ["space", "space.*"] }
rule "standard streams" { cap = ["console", "stderr", "stdin"] }
rule "clock" { cap = ["clock"] }
rule "files" { cap = ["files", "files.*"] }
rule "names" {
  op = ["files_open", "files_list", "files_stat", "files_unlink", "files_mkdir", "files_rmdir",
        "files_rename", "files_symlink", "files_readlink", "files_chmod", "files_truncate", "files_utimes"]
  cap        = ["files"]
  path_under = ["bin", "data", "dev"]
}
rule "read only" {
  op    = ["files_open"]
  flags = ["read", "dir"]
}
`)
	pages := "1024"
	if n := os.Getenv("NESTVM_CORPUS_MAX_PAGES"); n != "" {
		pages = n
	}
	pager := func(dir string) string { return "pager=" + filepath.Join(dir, "swap") + ",max-pages=" + pages }
	return []layerStack{
		{"null", func(string) []string { return []string{"null"} }},
		{"trace", func(dir string) []string { return []string{"trace=file=" + filepath.Join(dir, "trace.jsonl")} }},
		{"refmon-allow", func(string) []string { return []string{"refmon=" + allowAll} }},
		{"refmon-confining", func(dir string) []string {
			return []string{"refmon=" + confining + ",audit=" + filepath.Join(dir, "audit")}
		}},
		{"pager", func(dir string) []string { return []string{pager(dir)} }},
		{"refmon+pager", func(dir string) []string {
			return []string{"refmon=" + confining + ",audit=" + filepath.Join(dir, "audit"), pager(dir)}
		}},
		{"pager+trace", func(dir string) []string {
			return []string{pager(dir), "trace=file=" + filepath.Join(dir, "trace.jsonl")}
		}},
	}
}

// layersCases are the corpus cases TestLinuxCorpusLayers runs: a shell
// pipeline, a directory walk, sorting and hashing in busybox, C threads
// and fork/exec, and the Go runtime's collector and scheduler.
var layersCases = []string{"sh-pipeline", "find", "sort", "sha256sum", "c-threads-musl", "c-forkexec-glibc", "go-gc", "go-goroutines"}

// TestLinuxCorpusLayers runs a part of the Linux corpus under each layer
// stack, on every backend, and compares each run with the native one as
// TestLinuxCorpus does: a layer changes nothing a Linux program sees.
// NESTVM_CORPUS_LAYERS_ALL=1 runs every case of the corpus,
// NESTVM_CORPUS_STACKS=NAME,... only the stacks named, and
// NESTVM_CORPUS_MAX_PAGES=N gives the pager N pages (1024 unless set:
// the Go collector then runs in seconds, with thousands of page-outs).
func TestLinuxCorpusLayers(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	if os.Geteuid() != 0 {
		t.Skip("the native oracle runs each program chrooted into its tree: needs root")
	}
	corpus := corpusDir(t)
	nestvm := nestvmBinary(t)
	all := os.Getenv("NESTVM_CORPUS_LAYERS_ALL") == "1"
	work := t.TempDir()
	ts := &trees{base: t.TempDir(), corpus: corpus, shared: map[string]*sharedTree{}}
	stacks := corpusStacks(t, work)
	if only := os.Getenv("NESTVM_CORPUS_STACKS"); only != "" {
		var picked []layerStack
		for _, s := range stacks {
			if strings.Contains(","+only+",", ","+s.name+",") {
				picked = append(picked, s)
			}
		}
		stacks = picked
	}
	want := map[string]bool{}
	for _, n := range layersCases {
		want[n] = true
	}
	for _, c := range corpusCases() {
		if !all && !want[c.name] {
			continue
		}
		delete(want, c.name)
		t.Run(c.name, func(t *testing.T) {
			if c.needs != "" {
				t.Skipf("needs %s from the personality", c.needs)
			}
			bin := filepath.Join(corpus, c.prog)
			if !exists(bin) {
				t.Skipf("%s not built: scripts/linux-corpus says why", bin)
			}
			t.Parallel()
			argv0 := bin
			if c.relative {
				argv0 = "bin/" + filepath.Base(bin)
			}
			native := runNative(ts, c, bin, argv0)
			if native.err != nil {
				t.Fatalf("native run: %v", native.err)
			}
			for _, s := range stacks {
				for _, b := range backends() {
					t.Run(s.name+"/"+b, func(t *testing.T) {
						if b == "kvm" {
							testutil.RequireKVM(t)
						}
						if b == "emu" && c.emuNeeds != "" {
							t.Skipf("needs %s", c.emuNeeds)
						}
						t.Parallel()
						dir := t.TempDir()
						cl := c
						cl.layers = s.args(dir)
						got := runNestvm(ts, nestvm, b, cl, bin, argv0)
						if got.err != nil {
							t.Fatalf("nestvm run: %v", got.err)
						}
						got.log += strings.Join(layerReport.FindAllString(got.stderr, -1), "")
						got.stderr = layerReport.ReplaceAllString(got.stderr, "")
						compare(t, native, got)
						if strings.Contains(s.name, "trace") {
							if tr, err := os.ReadFile(filepath.Join(dir, "trace.jsonl")); err != nil || !bytes.Contains(tr, []byte(`"exit_group"`)) {
								t.Errorf("the trace holds no exit_group (%v):\n%s", err, clip(string(tr)))
							}
						}
					})
				}
			}
		})
	}
	if len(want) > 0 {
		t.Errorf("no corpus case named %v", want)
	}
}

// layerReport is a layer's report line on the monitor's stderr (the
// pager's counts), not the program's output.
var layerReport = regexp.MustCompile(`(?m)^\[pager\] max-pages=.*\n`)

// TestTraceBusybox: trace above the personality shows a busybox shell's
// Linux system calls as strace does, on every backend: the name, the
// arguments decoded (paths, open flags, the bytes written, clone's flags,
// signals by name), the result or -1 with the errno's name, and the
// SIGCHLD handler a call returned into, with the result the handler's
// frame keeps; with abi=on, also the ABI operations they became.
func TestTraceBusybox(t *testing.T) {
	busybox := filepath.Join(corpusDir(t), "busybox")
	if !exists(busybox) {
		t.Skipf("%s not built: scripts/linux-corpus says why", busybox)
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir()
	for p, content := range map[string][]byte{"busybox": data, "bin/busybox": data, "x.txt": []byte("allowed\n")} {
		os.MkdirAll(filepath.Dir(filepath.Join(tree, p)), 0o755)
		if err := os.WriteFile(filepath.Join(tree, p), content, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for _, args := range []string{"", "abi=on"} {
			var rec testutil.Buffer
			tr, err := trace.New(args, &rec, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, errs, res := runLinux(t, b, filepath.Join(tree, "busybox"), runOpts{files: tree, layers: []nester.Layer{tr}},
				"sh", "-c", "trap 'echo child ended' CHLD; busybox cat /x.txt /missing; echo done")
			if out != "allowed\nchild ended\ndone\n" || errs != "cat: can't open '/missing': No such file or directory\n" || status(res) != 0 {
				t.Fatalf("under trace %q: stdout %q, stderr %q, %s", args, out, errs, res)
			}
			lines := rec.String()
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`pid 1:t0 rt_sigaction\(SIGCHLD, 0x[0-9a-f]+, 0x0, 8\) = 0 <`),
				regexp.MustCompile(`pid 1:t0 clone\(CLONE_CHILD_CLEARTID\|CLONE_CHILD_SETTID\|SIGCHLD, 0x0, 0x0, 0x[0-9a-f]+, 0x0\) = 2 <`),
				regexp.MustCompile(`pid 2:t0 execve\("busybox", 0x[0-9a-f]+, 0x[0-9a-f]+\) = 0 <`),
				regexp.MustCompile(`pid 2:t0 openat\(AT_FDCWD, "/x.txt", O_RDONLY\) = 3 <`),
				regexp.MustCompile(`pid 2:t0 write\(1, "allowed\\n", 8\) = 8 <`),
				regexp.MustCompile(`pid 2:t0 openat\(AT_FDCWD, "/missing", O_RDONLY\) = -1 ENOENT \(no such file or directory\) <`),
				regexp.MustCompile(`pid 2:t0 exit_group\(1\) = \? <`),
				regexp.MustCompile(`pid 1:t0 --- SIGCHLD \{si_signo=SIGCHLD, si_code=1, si_pid=2, si_status=1\} ---`),
				regexp.MustCompile(`pid 1:t0 write\(1, "done\\n", 5\) = 5 <`),
				regexp.MustCompile(`pid 1:t0 exit_group\(0\) = \? <`),
			} {
				if !want.MatchString(lines) {
					t.Errorf("under trace %q the trace has no line matching %s:\n%s", args, want, lines)
				}
			}
			if abi := strings.Contains(lines, `files_open(path="x.txt"/5, flags=1) = handle`); abi != (args == "abi=on") {
				t.Errorf("under trace %q: the files_open open(\"/x.txt\") became shown: %v:\n%s", args, abi, lines)
			}
		}
	})
}
