package linux_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nestvm/internal/testutil"
)

// The corpus test runs unmodified static Linux programs (Debian's busybox,
// C programs built with musl and with glibc, Go programs) natively,
// chrooted into a file tree made for the case, and under `nestvm run` with
// the same tree as its --files root on every backend. Native Linux is the
// oracle: stdout, stderr and the exit status must be the same bytes, and
// for a case that writes, so must the tree it leaves. Nothing is
// normalised but what a case's sortStdout says, and what the monitor
// itself writes to stderr, which is not the program's output: its log
// lines, and the line reporting a death by signal (natively the status
// alone tells it; a shell would print its own line).
//
// The programs are built by scripts/linux-corpus (`make linux-corpus`),
// never committed; the test skips what was not built, saying why.
//
// A case the personality cannot run yet names what it lacks in needs and is
// skipped; NESTVM_CORPUS_ALL=1 runs those too, to show which start passing.

// corpusEnv is every case's environment, natively and under nestvm
// (--clear-env), before the case's own.
var corpusEnv = []string{"PATH=/bin", "HOME=/", "LC_ALL=C", "TZ=UTC", "CORPUS=corpus"}

// corpusTime is the modification time of everything in a case's tree, so
// that listings and archives that show times are the same in every run.
var corpusTime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// corpusCase is one run of one program.
type corpusCase struct {
	name string
	// prog is "busybox", "c/NAME.musl", "c/NAME.glibc" or "go/NAME",
	// relative to the corpus directory.
	prog  string
	args  []string
	env   []string // added to corpusEnv
	stdin string
	// rw runs with a writable tree (--files-rw), and compares the trees
	// the native and the nestvm run leave.
	rw bool
	// sortStdout sorts stdout's lines before comparing, for output in
	// directory order, which differs between the host's file system and
	// the files root's.
	sortStdout bool
	// relative names the program to nestvm as bin/NAME, relative to the
	// tree as working directory, as a user in that directory would.
	relative bool
	// needs names what the personality lacks for this case; the case is
	// skipped unless NESTVM_CORPUS_ALL=1.
	needs string
	// emuNeeds is the same for the emu backend alone.
	emuNeeds string
	// layers are --layer arguments the nestvm runs stack, from the
	// outside in (TestLinuxCorpusLayers).
	layers []string
}

// emuAtomics is what threads that share memory need from emu: each thread
// is an engine of its own, and a lock-prefixed read-modify-write in one is
// not atomic against the others (c/atomics loses increments), so locks
// built on them fail now and then.
const emuAtomics = "emu: atomic instructions across threads"

func bb(name string, args ...string) corpusCase {
	return corpusCase{name: name, prog: "busybox", args: args}
}

func (c corpusCase) in(stdin string) corpusCase { c.stdin = stdin; return c }
func (c corpusCase) need(n string) corpusCase   { c.needs = n; return c }
func (c corpusCase) sorted() corpusCase         { c.sortStdout = true; return c }
func (c corpusCase) writable() corpusCase       { c.rw = true; return c }
func (c corpusCase) with(env string) corpusCase { c.env = append(c.env, env); return c }
func (c corpusCase) rel() corpusCase            { c.relative = true; return c }

// corpusCases is the table. Busybox applets read files of the tree (see
// corpusTree) or their stdin; the C and Go programs are in testdata.
func corpusCases() []corpusCase {
	cs := []corpusCase{
		bb("echo", "echo", "hello", "world"),
		bb("echo-e", "echo", "-e", `a\tb\nc`),
		bb("echo-n", "echo", "-n", "no newline"),
		bb("cat", "cat", "/data/words.txt", "/data/sub/x.txt"),
		bb("cat-missing", "cat", "/data/words.txt", "/nonexistent"),
		bb("cat-stdin", "cat").in("from stdin\n"),
		bb("wc", "wc", "/data/words.txt", "/data/nums.txt"),
		bb("wc-stdin", "wc", "-lwc").in("one two\nthree\n"),
		bb("sort", "sort", "/data/words.txt"),
		bb("sort-nr", "sort", "-n", "-r", "/data/nums.txt"),
		bb("sort-k", "sort", "-t", ",", "-k", "2", "-n", "/data/csv.txt"),
		bb("sort-stdin", "sort", "-u").in("b\na\nb\nc\n"),
		bb("uniq", "uniq", "-c", "/data/sorted.txt"),
		bb("head", "head", "-n", "3", "/data/words.txt"),
		bb("head-c", "head", "-c", "10", "/data/words.txt"),
		bb("tail", "tail", "-n", "2", "/data/words.txt"),
		bb("cut", "cut", "-d", ",", "-f", "1,3", "/data/csv.txt"),
		bb("tr", "tr", "a-z", "A-Z").in("shout this\n"),
		bb("sed", "sed", "-e", "s/the/THE/g", "-e", "/apple/d", "/data/words.txt"),
		bb("sed-n", "sed", "-n", "2,4p", "/data/words.txt"),
		bb("awk", "awk", `{ s += $1 } END { print NR, s }`, "/data/nums.txt"),
		bb("awk-fields", "awk", "-F,", `NR > 1 { printf "%s is %d\n", $1, $2 }`, "/data/csv.txt"),
		bb("grep", "grep", "-n", "the", "/data/words.txt"),
		bb("grep-cv", "grep", "-c", "-v", "a", "/data/words.txt"),
		bb("grep-none", "grep", "zebra", "/data/words.txt"),
		bb("grep-r", "grep", "-r", "^[xy]$", "/data").sorted(),
		bb("sha256sum", "sha256sum", "/data/words.txt", "/data/bin.dat"),
		bb("md5sum", "md5sum", "/data/words.txt", "/data/bin.dat"),
		bb("sha1sum", "sha1sum", "/data/words.txt"),
		bb("base64", "base64", "/data/bin.dat"),
		bb("base64-d", "base64", "-d", "/data/b64.txt"),
		bb("od", "od", "-A", "x", "-t", "x1z", "/data/bin.dat"),
		bb("hexdump", "hexdump", "-C", "/data/words.txt"),
		bb("expr", "expr", "6", "*", "7"),
		bb("expr-false", "expr", "length", "hello", "=", "4"),
		bb("seq", "seq", "1", "12"),
		bb("seq-down", "seq", "10", "-3", "1"),
		bb("printf", "printf", `%05d|%-4s|%x\n`, "42", "ab", "255"),
		bb("basename", "basename", "/a/b/c.txt", ".txt"),
		bb("dirname", "dirname", "/a/b/c.txt"),
		bb("true", "true"),
		bb("false", "false"),
		bb("test-f", "test", "-f", "/data/words.txt"),
		bb("test-d", "test", "-d", "/data/words.txt"),
		bb("ls", "ls", "/data"),
		bb("ls-a", "ls", "-a", "/data/sub"),
		bb("ls-R", "ls", "-R", "/data"),
		bb("ls-l", "ls", "-l", "/data"),
		bb("find", "find", "/data").sorted(),
		bb("find-type", "find", "/data", "-type", "f", "-name", "*.txt").sorted(),
		bb("stat", "stat", "-c", "%n %s %F", "/data/words.txt", "/data/sub"),
		bb("stat-mode", "stat", "-c", "%n %a %u %g %Y", "/data/words.txt", "/data/sub"),
		bb("du", "du", "-a", "/data/sub").sorted(),
		// Files named one by one: a directory's entries come in the
		// order the host file system keeps them natively, sorted by name
		// through the files root, so tar's recursion would differ.
		bb("tar-c", "tar", "-c", "-f", "-", "-C", "/data", "words.txt", "sub/x.txt", "sub/deeper/y.txt"),
		bb("tar-t", "tar", "-t", "-v", "-f", "/data/archive.tar"),
		bb("tar-x", "tar", "-x", "-O", "-f", "/data/archive.tar", "greeting.txt"),
		bb("gzip", "gzip", "-c", "/data/words.txt"),
		bb("gunzip", "gunzip", "-c", "/data/words.txt.gz"),
		bb("zcat-stdin", "zcat").in(gzipped("piped through zcat\n")),
		bb("cmp-same", "cmp", "/data/words.txt", "/data/words.txt"),
		bb("cmp-differ", "cmp", "/data/c1.txt", "/data/c2.txt"),
		bb("diff", "diff", "/data/c1.txt", "/data/c2.txt"),
		bb("diff-u", "diff", "-u", "/data/c1.txt", "/data/c2.txt"),
		bb("fold", "fold", "-w", "7", "/data/words.txt"),
		bb("nl", "nl", "/data/words.txt"),
		bb("rev", "rev", "/data/words.txt"),
		bb("tac", "tac", "/data/words.txt"),
		bb("paste", "paste", "/data/a.txt", "/data/b.txt"),
		bb("join", "join", "/data/a.txt", "/data/b.txt"),
		bb("comm", "comm", "/data/c1.txt", "/data/c2.txt"),
		bb("xargs", "xargs", "echo", "got").in("a b\nc\n"),
		bb("env", "env").with("EXTRA=set by the case"),
		bb("pwd", "pwd"),
		bb("uname", "uname", "-s", "-m"),
		bb("id", "id"),
		bb("date", "date", "-d", "@86400"),
		bb("sleep", "sleep", "0.05"),
		bb("sh-builtins", "sh", "-c", `x=3; for i in 1 2 $x; do echo "i=$i"; done; echo $((6*7)); exit 5`),
		bb("sh-script", "sh", "/data/script.sh", "arg"),
		bb("sh-subst", "sh", "-c", `echo "words: $(wc -l < /data/words.txt)"`),
		bb("sh-pipeline", "sh", "-c", `cat /data/words.txt | sort | uniq -c | sort -rn | head -n 2`),
		bb("sh-gzip-pipe", "sh", "-c", `gzip -c /data/words.txt | gunzip | sha256sum`),
		bb("sh-redirect", "sh", "-c", `echo one > /tmp/f && echo two >> /tmp/f && cat /tmp/f && rm /tmp/f`).writable(),
		bb("mkdir-cp-mv", "sh", "-c", `mkdir -p /tmp/d/e && cp /data/words.txt /tmp/d/e/w && mv /tmp/d/e/w /tmp/d/w2 && ls -R /tmp`).writable(),
		bb("relative-exe", "echo", "run by a relative path").rel(),
		bb("timeout", "timeout", "1", "sleep", "5"),
	}
	for _, name := range []string{"hello", "tls", "threads", "atomics", "sigraise", "sigsegv", "crash", "forkpipe", "forkexec", "mmap", "fileio", "getdents", "clock", "timers", "sigspin"} {
		for _, libc := range []string{"musl", "glibc"} {
			c := corpusCase{name: "c-" + name + "-" + libc, prog: "c/" + name + "." + libc}
			switch name {
			case "hello":
				c.args = []string{"one", "two"}
			case "threads", "tls":
				// tls's threads share no variable of their own, but
				// pthread_create, pthread_exit and pthread_join take the
				// C library's locks (musl's thread-list lock): under load
				// an emu run lost one and hung until its timeout.
				c.emuNeeds = emuAtomics
			case "atomics":
				c.emuNeeds = emuAtomics
			case "fileio":
				c.rw = true
			case "clock":
				c.args = []string{"fork=/bin/prog"}
			}
			cs = append(cs, c)
		}
	}
	cs = append(cs,
		corpusCase{name: "go-hello", prog: "go/hello", args: []string{"3"}},
		corpusCase{name: "go-goroutines", prog: "go/goroutines", emuNeeds: emuAtomics},
		corpusCase{name: "go-timers", prog: "go/timers", emuNeeds: emuAtomics},
		corpusCase{name: "go-gc", prog: "go/gc", emuNeeds: emuAtomics},
		corpusCase{name: "go-fileio", prog: "go/fileio", rw: true, emuNeeds: emuAtomics},
		corpusCase{name: "go-exec", prog: "go/exec", emuNeeds: emuAtomics},
	)
	return cs
}

// corpusTree is the tree every case runs in, as path: content (a path
// ending in / is a directory). The program runs from /bin/prog in it, and
// busybox is /bin/busybox.
func corpusTree() map[string]string {
	words := "the quick brown fox\njumps over\nthe lazy dog\napple\nbanana\napple\ncherry\nthe end\n"
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	return map[string]string{
		"data/words.txt":        words,
		"data/nums.txt":         "10\n2\n33\n4\n-5\n100\n",
		"data/sorted.txt":       "a\na\nb\nc\nc\nc\nd\n",
		"data/a.txt":            "1 one\n2 two\n3 three\n",
		"data/b.txt":            "1 uno\n3 tres\n4 cuatro\n",
		"data/c1.txt":           "apple\nbanana\ncherry\n",
		"data/c2.txt":           "banana\ncherry\ndate\n",
		"data/csv.txt":          "ann,30,oslo\nbob,25,rome\ncid,41,lima\n",
		"data/b64.txt":          base64.StdEncoding.EncodeToString([]byte("hello base64\n")) + "\n",
		"data/bin.dat":          string(bin),
		"data/words.txt.gz":     gzipped(words),
		"data/archive.tar":      tarred(map[string]string{"greeting.txt": "hello from tar\n", "dir/inner.txt": "inner\n"}),
		"data/script.sh":        "echo \"script $1\"\nfor i in 1 2 3; do echo \"i=$i\"; done\nexit 4\n",
		"data/sub/x.txt":        "x\n",
		"data/sub/deeper/y.txt": "y\n",
		"data/sub/empty/":       "",
		"tmp/":                  "",
	}
}

func gzipped(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.ModTime = corpusTime
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func tarred(files map[string]string) string {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: corpusTime,
			Uname: "user", Gname: "group", Uid: 1000, Gid: 1000, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
		w.Write([]byte(files[n]))
	}
	w.Close()
	return b.String()
}

// makeTree fills dir with the corpus tree, prog as /bin/prog (busybox as
// /bin/busybox, its applets linked to it) and a /dev/null device: the
// personality serves /dev/null itself, natively the tree needs the device
// (os/exec opens it for a command without stdin).
func makeTree(dir, corpus, prog string) error {
	for p, content := range corpusTree() {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, d := range []string{"bin", "dev"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := syscall.Mknod(filepath.Join(dir, "dev", "null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		return fmt.Errorf("mknod /dev/null: %w", err)
	}
	link := func(src, name string) error {
		dst := filepath.Join(dir, "bin", name)
		if os.Link(src, dst) == nil {
			return nil
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o755)
	}
	if bb := filepath.Join(corpus, "busybox"); exists(bb) {
		if err := link(bb, "busybox"); err != nil {
			return err
		}
		// The shell and os/exec find applets on PATH, as on a system
		// with busybox installed.
		names, err := applets(bb)
		if err != nil {
			return err
		}
		for _, a := range names {
			if a == "busybox" {
				continue
			}
			if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
				return err
			}
		}
	}
	if filepath.Base(prog) != "busybox" {
		if err := link(prog, "prog"); err != nil {
			return err
		}
	}
	// Times last, deepest first, since writing into a directory changes
	// its time; bin/ keeps the programs' own.
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != filepath.Join(dir, "bin") && !strings.HasPrefix(p, filepath.Join(dir, "bin")+"/") {
			paths = append(paths, p)
		}
		return nil
	})
	for i := len(paths) - 1; i >= 0; i-- {
		if err := os.Chtimes(paths[i], corpusTime, corpusTime); err != nil {
			return err
		}
	}
	return nil
}

// trees hands out the trees runs use. A case that does not write shares
// one tree per program with every other such case and run (nestvm gets it
// read-only, and the programs of those cases write nothing natively);
// a case that writes gets a fresh tree for each run.
type trees struct {
	base, corpus string
	mu           sync.Mutex
	shared       map[string]*sharedTree
}

type sharedTree struct {
	once sync.Once
	dir  string
	err  error
}

func (ts *trees) get(c corpusCase, prog string) (string, error) {
	if c.rw {
		dir, err := os.MkdirTemp(ts.base, "rw")
		if err != nil {
			return "", err
		}
		return dir, makeTree(dir, ts.corpus, prog)
	}
	ts.mu.Lock()
	st := ts.shared[prog]
	if st == nil {
		st = &sharedTree{}
		ts.shared[prog] = st
	}
	ts.mu.Unlock()
	st.once.Do(func() {
		if st.dir, st.err = os.MkdirTemp(ts.base, "ro"); st.err == nil {
			st.err = makeTree(st.dir, ts.corpus, prog)
		}
	})
	return st.dir, st.err
}

var (
	appletsOnce sync.Once
	appletList  []string
	appletsErr  error
)

// applets returns the names busybox answers to (busybox --list).
func applets(busybox string) ([]string, error) {
	appletsOnce.Do(func() {
		out, err := exec.Command(busybox, "--list").Output()
		if err != nil {
			appletsErr = fmt.Errorf("%s --list: %w", busybox, err)
			return
		}
		appletList = strings.Fields(string(out))
	})
	return appletList, appletsErr
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// corpusResult is how one run ended.
type corpusResult struct {
	stdout, stderr string
	status         int
	tree           map[string]string // after an rw run
	log            string            // the monitor's log lines, for the report
	err            error             // the run could not be made
}

// runNative runs prog, as /bin/prog or /bin/busybox, chrooted into its
// tree, with argv0 as argv[0].
func runNative(ts *trees, c corpusCase, prog, argv0 string) corpusResult {
	tree, err := ts.get(c, prog)
	if err != nil {
		return corpusResult{err: err}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := "/bin/prog"
	if c.prog == "busybox" {
		path = "/bin/busybox"
	}
	cmd := exec.CommandContext(ctx, path)
	cmd.Path = path // inside the chroot, not looked up on the host
	cmd.Args = append([]string{argv0}, c.args...)
	cmd.Env = append(append([]string{}, corpusEnv...), c.env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: tree}
	return finish(cmd, c, tree)
}

// runNestvm runs prog under nestvm on backend b with its tree as the files
// root and the working directory; argv0 names the program to nestvm, which
// loads it from the host and gives the name as argv[0].
func runNestvm(ts *trees, nestvm, b string, c corpusCase, prog, argv0 string) corpusResult {
	tree, err := ts.get(c, prog)
	if err != nil {
		return corpusResult{err: err}
	}
	args := []string{"run", "--backend", b, "--log-level", "warn", "--timeout", "60s", "--clear-env"}
	for _, kv := range append(append([]string{}, corpusEnv...), c.env...) {
		args = append(args, "--env", kv)
	}
	for _, l := range c.layers {
		args = append(args, "--layer", l)
	}
	args = append(args, "--files", tree)
	if c.rw {
		args = append(args, "--files-rw")
	}
	args = append(append(args, argv0), c.args...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nestvm, args...)
	cmd.Dir = tree
	r := finish(cmd, c, tree)
	r.log = strings.Join(logLine.FindAllString(r.stderr, -1), "")
	r.stderr = logLine.ReplaceAllString(r.stderr, "")
	if r.status > 128 {
		death := fmt.Sprintf("nestvm: %s: ", argv0)
		tail := fmt.Sprintf(" (signal %d)\n", r.status-128)
		i := strings.LastIndex(r.stderr, death)
		if i >= 0 && (i == 0 || r.stderr[i-1] == '\n') && strings.HasSuffix(r.stderr, tail) && !strings.Contains(r.stderr[i:len(r.stderr)-1], "\n") {
			r.log += r.stderr[i:]
			r.stderr = r.stderr[:i]
		}
	}
	return r
}

// logLine is one line of the monitor's log (hclog, no time), which is
// not the program's output.
var logLine = regexp.MustCompile(`(?m)^\[(TRACE|DEBUG|INFO|WARN|ERROR)\] +nestvm[.:].*\n`)

// finish runs cmd with c's stdin and collects how it ended; a tree that
// is c's own is read and removed.
func finish(cmd *exec.Cmd, c corpusCase, tree string) corpusResult {
	var stdout, stderr bytes.Buffer
	cmd.Stdin = strings.NewReader(c.stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var r corpusResult
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			r.status = 128 + int(ws.Signal())
		} else {
			r.status = ws.ExitStatus()
		}
	case err != nil:
		return corpusResult{err: err}
	}
	if cmd.Err != nil {
		return corpusResult{err: cmd.Err}
	}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	if c.sortStdout {
		lines := strings.SplitAfter(r.stdout, "\n")
		sort.Strings(lines)
		r.stdout = strings.Join(lines, "")
	}
	if c.rw {
		r.tree, r.err = snapshot(tree)
		os.RemoveAll(tree)
	}
	return r
}

// snapshot is a tree's files and directories, without bin/ (the programs)
// and dev/.
func snapshot(dir string) (map[string]string, error) {
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == "bin" || rel == "dev":
			return fs.SkipDir
		case d.IsDir():
			m[rel+"/"] = ""
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = string(b)
		default:
			m[rel] = d.Type().String()
		}
		return nil
	})
	return m, err
}

// firstDiff describes where got first differs from want, a line each.
func firstDiff(want, got string) string {
	wl, gl := strings.SplitAfter(want, "\n"), strings.SplitAfter(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d: want %s, got %s", i+1, clip(w), clip(g))
		}
	}
	return "same"
}

func clip(s string) string {
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func compare(t *testing.T, want, got corpusResult) {
	t.Helper()
	var diffs []string
	if want.status != got.status {
		diffs = append(diffs, fmt.Sprintf("exit status: want %d, got %d", want.status, got.status))
	}
	if want.stdout != got.stdout {
		diffs = append(diffs, "stdout "+firstDiff(want.stdout, got.stdout))
	}
	if want.stderr != got.stderr {
		diffs = append(diffs, "stderr "+firstDiff(want.stderr, got.stderr))
	}
	var paths []string
	for p := range want.tree {
		paths = append(paths, p)
	}
	for p := range got.tree {
		if _, ok := want.tree[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		w, wok := want.tree[p]
		g, gok := got.tree[p]
		switch {
		case !gok:
			diffs = append(diffs, "tree: "+p+" missing")
		case !wok:
			diffs = append(diffs, "tree: "+p+" not left natively")
		case w != g:
			diffs = append(diffs, "tree: "+p+" "+firstDiff(w, g))
		}
	}
	if len(diffs) > 0 {
		if got.log != "" {
			diffs = append(diffs, "monitor log:\n"+got.log)
		}
		t.Errorf("differs from native Linux:\n%s", strings.Join(diffs, "\n"))
	}
}

var (
	nestvmOnce sync.Once
	nestvmPath string
	nestvmErr  error
	nestvmDir  string
)

// nestvmBinary returns a nestvm command built from this tree ($NESTVM_BIN
// when set, for a machine without Go), so the test never runs a stale one.
func nestvmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NESTVM_BIN"); p != "" {
		return p
	}
	nestvmOnce.Do(func() {
		nestvmDir, nestvmErr = os.MkdirTemp("", "nestvm-corpus")
		if nestvmErr != nil {
			return
		}
		nestvmPath = filepath.Join(nestvmDir, "nestvm")
		out, err := exec.Command("go", "build", "-o", nestvmPath, "nestvm/cmd/nestvm").CombinedOutput()
		if err != nil {
			nestvmErr = fmt.Errorf("go build nestvm/cmd/nestvm: %w\n%s", err, out)
		}
	})
	if nestvmErr != nil {
		t.Fatal(nestvmErr)
	}
	return nestvmPath
}

// corpusDir returns where scripts/linux-corpus put the programs
// ($NESTVM_LINUX_CORPUS, else build/linux), skipping t when it is absent.
func corpusDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("NESTVM_LINUX_CORPUS")
	if d == "" {
		d = filepath.Join(testutil.Root(t), "build", "linux")
	}
	if !exists(d) {
		t.Skipf("no Linux corpus at %s: run `make linux-corpus` (scripts/linux-corpus)", d)
	}
	return d
}

// backends are the backends the tests run on here: emu, and kvm where
// /dev/kvm opens (testutil.RequireKVM's test, without a testing.TB).
func backends() []string {
	if kvmOpens() {
		return []string{"emu", "kvm"}
	}
	return []string{"emu"}
}

func kvmOpens() bool {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	v, err := unix.IoctlRetInt(fd, 0xae00) // KVM_GET_API_VERSION
	return err == nil && v == 12
}

// TestLinuxCorpus runs every case natively and under nestvm on emu and
// kvm, and compares.
func TestLinuxCorpus(t *testing.T) {
	testutil.RequireLinuxAMD64(t)
	if os.Geteuid() != 0 {
		t.Skip("the native oracle runs each program chrooted into its tree: needs root")
	}
	corpus := corpusDir(t)
	nestvm := nestvmBinary(t)
	all := os.Getenv("NESTVM_CORPUS_ALL") == "1"
	ts := &trees{base: t.TempDir(), corpus: corpus, shared: map[string]*sharedTree{}}
	for _, c := range corpusCases() {
		t.Run(c.name, func(t *testing.T) {
			if c.needs != "" && !all {
				t.Skipf("needs %s from the personality (NESTVM_CORPUS_ALL=1 runs it)", c.needs)
			}
			bin := filepath.Join(corpus, c.prog)
			if !exists(bin) {
				t.Skipf("%s not built: scripts/linux-corpus says why", bin)
			}
			t.Parallel()
			// nestvm loads a program from a host path and passes that
			// path as argv[0]: the native run gets the same argv[0].
			argv0 := bin
			if c.relative {
				argv0 = "bin/" + filepath.Base(bin)
			}
			// The three runs of a case go at once: most of their time
			// is waiting for a child, not work in this process.
			var wg sync.WaitGroup
			var want corpusResult
			got := map[string]*corpusResult{}
			wg.Go(func() { want = runNative(ts, c, bin, argv0) })
			for _, b := range backends() {
				if b == "emu" && c.emuNeeds != "" && !all {
					continue
				}
				r := new(corpusResult)
				got[b] = r
				wg.Go(func() { *r = runNestvm(ts, nestvm, b, c, bin, argv0) })
			}
			wg.Wait()
			if want.err != nil {
				t.Fatalf("native run: %v", want.err)
			}
			for _, b := range []string{"emu", "kvm"} {
				t.Run(b, func(t *testing.T) {
					if b == "kvm" {
						testutil.RequireKVM(t)
					}
					if b == "emu" && c.emuNeeds != "" && !all {
						t.Skipf("needs %s (NESTVM_CORPUS_ALL=1 runs it)", c.emuNeeds)
					}
					if got[b].err != nil {
						t.Fatalf("nestvm run: %v", got[b].err)
					}
					compare(t, want, *got[b])
				})
			}
		})
	}
}
