package oci_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nestvm/control"
	"nestvm/internal/testutil"
)

// engine runs one container engine's command line in the test's private
// configuration and storage.
type engine struct {
	t    *testing.T
	name string
	args []string // before the command's own
	env  []string
}

// run runs the engine with args and returns its stdout, stderr and exit
// status; one that does not end in two minutes fails the test.
func (e *engine) run(args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.name, append(append([]string{}, e.args...), args...)...)
	cmd.Env = append(os.Environ(), e.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		e.t.Fatalf("%s %s: timed out; stderr %q", e.name, strings.Join(args, " "), errb.String())
	}
	status := 0
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("%s %s: %v", e.name, strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), status
}

// must runs the engine and fails the test unless it succeeds.
func (e *engine) must(args ...string) string {
	e.t.Helper()
	out, errs, status := e.run(args...)
	if status != 0 {
		e.t.Fatalf("%s %s: status %d, stdout %q, stderr %q", e.name, strings.Join(args, " "), status, out, errs)
	}
	return out
}

// requireEngines skips the test, saying why, unless it runs as root on a
// host with podman, conmon, runc and criu (podman checks for it, though
// nestvm-oci never runs it).
func requireEngines(t *testing.T, tools ...string) {
	t.Helper()
	testutil.RequireLinuxAMD64(t)
	if os.Getuid() != 0 {
		t.Skip("the OCI runtime's end-to-end test needs root (podman and containerd as root)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (as root, scripts/ensure-deps installs podman, runc, conmon, containerd and criu): %v", tool, err)
		}
	}
}

// buildRuntime builds nestvm-oci and the two monitors it finds beside
// itself into dir.
func buildRuntime(t *testing.T, dir string) string {
	t.Helper()
	root := testutil.Root(t)
	for _, b := range []struct {
		out, pkg string
		cgo      bool
	}{{"nestvm-oci", "./cmd/nestvm-oci", true}, {"nestvm", "./cmd/nestvm", true}, {"nestvm-static", "./cmd/nestvm", false}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+map[bool]string{true: "1", false: "0"}[b.cgo])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return filepath.Join(dir, "nestvm-oci")
}

// imageTree lays out the test image's files: busybox with the applets the
// cases use, a static Go program, and the musl counter when musl-gcc is
// there. It returns whether the counter was built.
func imageTree(t *testing.T, dir string) bool {
	t.Helper()
	root := testutil.Root(t)
	busybox := filepath.Join(root, "build", "linux", "busybox")
	hello := filepath.Join(root, "build", "linux", "go", "hello")
	for _, p := range []string{busybox, hello} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s: run make linux-corpus first (%v)", p, err)
		}
	}
	for _, d := range []string{"bin", "etc", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyTo := func(src, dst string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyTo(busybox, "bin/busybox")
	copyTo(hello, "bin/hello-go")
	for _, applet := range []string{"sh", "ls", "echo", "cat", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("musl-gcc"); err != nil {
		return false
	}
	cmd := exec.Command("musl-gcc", "-static", "-O2", "-o", filepath.Join(dir, "bin", "count"), filepath.Join(root, "oci", "testdata", "count.c"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("musl-gcc: %v\n%s", err, out)
	}
	return true
}

// countsFrom1 checks that out is "1\n2\n...n\n" for some n of at least
// min, and returns n.
func countsFrom1(t *testing.T, what, out string, min int) int {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i, l := range lines {
		if l != strconv.Itoa(i+1) {
			t.Fatalf("%s: line %d is %q, not %d (a gap or a repeat): %q", what, i+1, l, i+1, out)
		}
	}
	if len(lines) < min {
		t.Fatalf("%s: %d lines, want at least %d: %q", what, len(lines), min, out)
	}
	return len(lines)
}

// waitLines waits for the container's log to hold n lines of output.
func waitLines(t *testing.T, pm *engine, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, _, _ := pm.run("logs", name)
		if strings.Count(out, "\n") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d lines of output after a minute, want %d: %q", name, strings.Count(out, "\n"), n, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPodman runs containers under podman with nestvm-oci as the runtime:
// output and exit status as runc gives them, the layers annotation, bad
// input refused with nothing left behind, and checkpoint, export, import
// and restore continuing the output exactly, on the backend the host
// offers (kvm when /dev/kvm opens, else emu), with a kvm checkpoint
// resumed on emu.
func TestPodman(t *testing.T) {
	requireEngines(t, "podman", "conmon", "runc", "criu")
	// Short: conmon's sockets live below it.
	dir, err := os.MkdirTemp("", "nvoci")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	runtime := buildRuntime(t, filepath.Join(dir, "bin"))
	hasCount := imageTree(t, filepath.Join(dir, "img"))
	conf := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
[engine.runtimes]
nestvm = [%q]
`, runtime)), 0o644); err != nil {
		t.Fatal(err)
	}
	pm := &engine{t: t, name: "podman", env: []string{"CONTAINERS_CONF=" + conf},
		args: []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"), "--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs"}}
	t.Cleanup(func() {
		pm.run("rm", "-af", "-t", "0")
		pm.run("rmi", "-af")
	})
	tar := exec.Command("tar", "-C", filepath.Join(dir, "img"), "-cf", filepath.Join(dir, "img.tar"), ".")
	if out, err := tar.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	pm.must("import", filepath.Join(dir, "img.tar"), "localhost/nvoci-test:1")
	const image = "localhost/nvoci-test:1"
	run := []string{"run", "--rm", "--network", "none"}

	t.Run("output and status as runc's", func(t *testing.T) {
		for _, c := range []struct {
			backend string
			args    []string
		}{
			{"auto", []string{"busybox", "sh", "-c", "echo hello; ls /; cat /etc/passwd; exit 3"}},
			{"emu", []string{"busybox", "sh", "-c", "echo hello; ls /; cat /etc/passwd; exit 3"}},
			// The Go runtime's threads share atomics, which emu's Unicorn
			// does not make atomic (docs/linux.md): auto only.
			{"auto", []string{"hello-go", "a", "b"}},
			{"auto", []string{"/bin/sh", "-c", `echo $((6*7)) >&2; sh -c 'kill -TERM $$'; echo child $?; exit 9`}},
			{"emu", []string{"/bin/sh", "-c", `echo $((6*7)) >&2; sh -c 'kill -TERM $$'; echo child $?; exit 9`}},
		} {
			want, _, wantStatus := pm.run(append(append(append([]string{}, run...), image), c.args...)...)
			got, errs, status := pm.run(append(append(append([]string{}, run...), "--runtime", "nestvm", "--annotation", "io.nestvm.backend="+c.backend, image), c.args...)...)
			if got != want || status != wantStatus {
				t.Errorf("%s %q: nestvm-oci gave status %d, stdout %q (stderr %q); runc gave %d, %q", c.backend, c.args, status, got, errs, wantStatus, want)
			}
		}
	})

	t.Run("layers annotation", func(t *testing.T) {
		out, errs, status := pm.run(append(append([]string{}, run...), "--runtime", "nestvm", "--annotation", "io.nestvm.layers=trace", image, "busybox", "echo", "traced")...)
		if status != 0 || out != "traced\n" || !strings.Contains(errs, "[trace]") || !strings.Contains(errs, `write(1, "traced\n"`) {
			t.Errorf("status %d, stdout %q, stderr %q: want the trace layer's lines", status, out, errs)
		}
	})

	t.Run("exec runs under nestvm", func(t *testing.T) {
		pm.must("run", "-d", "--network", "none", "--name", "e1", "--runtime", "nestvm", "--annotation", "io.nestvm.layers=trace", image, "busybox", "sleep", "100")
		out, errs, status := pm.run("exec", "e1", "busybox", "echo", "from-exec")
		// The container's layers apply to what exec starts: it is traced.
		if status != 0 || out != "from-exec\n" || !strings.Contains(errs, `write(1, "from-exec\n"`) {
			t.Errorf("exec: status %d, stdout %q, stderr %q; want the traced echo", status, out, errs)
		}
		if _, _, status := pm.run("exec", "e1", "sh", "-c", "exit 6"); status != 6 {
			t.Errorf("exec sh -c 'exit 6': status %d", status)
		}
		if _, errs, status := pm.run("exec", "e1", "nothere"); status == 0 || !strings.Contains(errs, `entrypoint "nothere": not found`) {
			t.Errorf("exec nothere: status %d, stderr %q", status, errs)
		}
		pm.must("rm", "-f", "-t", "0", "e1")
	})

	t.Run("control socket", func(t *testing.T) {
		id := strings.TrimSpace(pm.must("run", "-d", "--network", "none", "--name", "s1", "--runtime", "nestvm", image, "busybox", "sleep", "100"))
		t.Cleanup(func() { pm.run("rm", "-f", "-t", "0", "s1") })
		// podman run -d returns once the container's process started;
		// the monitor in it opens its socket a moment later (much later
		// on a loaded host): wait for it to be there.
		var socks []string
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
			socks, _ = filepath.Glob(filepath.Join("/run/nestvm-oci", "*", id, "ctl", "control.sock"))
			if len(socks) > 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(socks) != 1 {
			t.Fatalf("container %s: control sockets %q after a minute, want one in its state directory", id, socks)
		}
		// The path, with podman's 64-character id, is longer than a
		// socket address holds: through its directory's descriptor, as
		// the runtime does.
		d, err := os.Open(filepath.Dir(socks[0]))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		c, err := control.Dial(fmt.Sprintf("/proc/self/fd/%d/control.sock", d.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.State(context.Background())
		if err != nil || st.Checkpoint != "/.nestvm/ckpt/ckpt.nvck" || !strings.HasSuffix(st.Program, "busybox") {
			t.Fatalf("state %+v, %v: want the program and the runtime's checkpoint file", st, err)
		}
		// podman stop's SIGTERM goes through the socket.
		pm.must("stop", "-t", "30", "s1")
		logs, errs, _ := pm.run("logs", "s1")
		if !strings.Contains(logs+errs, "killed through the control socket: SIGTERM from the container engine") {
			t.Errorf("podman stop: the monitor's log %q, want its program killed through the socket", logs+errs)
		}
		pm.must("rm", "-f", "-t", "0", "s1")
	})

	t.Run("bad input", func(t *testing.T) {
		before, _ := os.ReadDir("/run/nestvm-oci/run_runc")
		for _, c := range []struct {
			ann, arg0, msg string
		}{
			{"io.nestvm.layers=nosuch", "busybox", `no layer named "nosuch"`},
			{"io.nestvm.layers=trace=format=xml", "busybox", "format=xml"},
			{"io.nestvm.backend=fast", "busybox", "want auto, kvm or emu"},
			{"io.nestvm.quota=memory=lots", "busybox", "io.nestvm.quota"},
			{"io.nestvm.layer=trace", "busybox", "io.nestvm.layer: unknown"},
			{"io.nestvm.layers=trace", "nothere", `entrypoint "nothere": not found`},
		} {
			_, errs, status := pm.run(append(append([]string{}, run...), "--runtime", "nestvm", "--annotation", c.ann, image, c.arg0, "echo", "x")...)
			if status == 0 || !strings.Contains(errs, c.msg) {
				t.Errorf("%s %s: status %d, stderr %q, want a failure naming %q", c.ann, c.arg0, status, errs, c.msg)
			}
		}
		if out := pm.must("ps", "-aq"); out != "" {
			t.Errorf("containers left behind: %q", out)
		}
		if after, _ := os.ReadDir("/run/nestvm-oci/run_runc"); len(after) > len(before) {
			t.Errorf("state left behind: %d entries in /run/nestvm-oci/run_runc, %d before", len(after), len(before))
		}
	})

	for _, backend := range []string{"kvm", "emu"} {
		t.Run("checkpoint export import restore "+backend, func(t *testing.T) {
			if backend == "kvm" {
				testutil.RequireKVM(t)
			}
			checkpointRestore(t, pm, dir, image, backend)
		})
	}

	t.Run("kvm checkpoint resumes on emu", func(t *testing.T) {
		testutil.RequireKVM(t)
		if _, err := exec.LookPath("zstd"); err != nil {
			t.Skipf("needs zstd to read podman's export: %v", err)
		}
		if !hasCount {
			t.Skip("needs musl-gcc for the counter (glibc's string functions picked on kvm do not run on emu: docs/linux.md)")
		}
		pm.must("run", "-d", "--network", "none", "--name", "k1", "--runtime", "nestvm", "--annotation", "io.nestvm.backend=kvm", image, "count", "40")
		waitLines(t, pm, "k1", 3)
		export := filepath.Join(dir, "k1.tar.gz")
		pm.must("container", "checkpoint", "--export", export, "k1")
		saved, _, _ := pm.run("logs", "k1")
		pm.must("rm", "-f", "k1")
		x := filepath.Join(dir, "k1")
		os.MkdirAll(x, 0o755)
		if out, err := exec.Command("tar", "-C", x, "-xf", export).CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
		// A musl counter picks no code by CPUID, so it runs on emu
		// whatever kvm offered it; where CPUID passes through to the
		// host's (PVM) the file records the host's features, which
		// restore refuses on emu unless told the program picked nothing.
		cmd := exec.Command(filepath.Join(dir, "bin", "nestvm"), "restore", "--backend", "emu", "--ignore-cpu", "--log-level", "warn",
			"--files", filepath.Join(dir, "img"), filepath.Join(x, "checkpoint", "ckpt.nvck"))
		var out, errs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errs
		if err := cmd.Run(); err != nil {
			t.Fatalf("nestvm restore --backend emu: %v; stderr %q", err, errs.String())
		}
		if got := countsFrom1(t, "saved plus restored on emu", saved+out.String(), 40); got != 40 {
			t.Fatalf("%d lines, want 40", got)
		}
	})
}

// TestContainerd runs containers with containerd's stock runc shim and
// nestvm-oci as its runc binary: output and exit status, and a task
// checkpointed with ctr (which pauses it first and wants it running after)
// and restored from the checkpoint image.
func TestContainerd(t *testing.T) {
	requireEngines(t, "containerd", "ctr", "podman", "runc")
	dir, err := os.MkdirTemp("", "nvoci")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	runtime := buildRuntime(t, filepath.Join(dir, "bin"))
	imageTree(t, filepath.Join(dir, "img"))
	sock := startContainerd(t, dir, "")
	const ns = "nvoci-test"
	ctr := &engine{t: t, name: "ctr", args: []string{"-a", sock, "-n", ns}}
	t.Cleanup(func() {
		for _, id := range []string{"h1", "n1"} {
			ctr.run("task", "kill", "-s", "KILL", id)
			ctr.run("task", "rm", "-f", id)
			ctr.run("container", "rm", id)
		}
		ctr.run("images", "rm", "localhost/nvoci-test:1", "localhost/nvoci-ckpt:1")
	})
	// The image: podman imports the tree and writes it as an OCI archive.
	pm := &engine{t: t, name: "podman", args: []string{"--root", filepath.Join(dir, "pmroot"), "--runroot", filepath.Join(dir, "pmrun"), "--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs"}}
	if out, err := exec.Command("tar", "-C", filepath.Join(dir, "img"), "-cf", filepath.Join(dir, "img.tar"), ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	pm.must("import", filepath.Join(dir, "img.tar"), "localhost/nvoci-test:1")
	pm.must("save", "--format", "oci-archive", "-o", filepath.Join(dir, "img.oci.tar"), "localhost/nvoci-test:1")
	pm.run("rmi", "-af")
	ctr.must("images", "import", "--base-name", "localhost/nvoci-test", filepath.Join(dir, "img.oci.tar"))

	out, errs, status := ctr.run("run", "--rm", "--runc-binary", runtime, "localhost/nvoci-test:1", "h1", "busybox", "sh", "-c", "echo from-containerd; exit 5")
	if out != "from-containerd\n" || status != 5 {
		t.Errorf("ctr run: status %d, stdout %q, stderr %q; want 5 and from-containerd", status, out, errs)
	}

	// Its output tells that the program runs, so that the checkpoint
	// below saves a program that has started.
	tick := filepath.Join(dir, "n1.log")
	ctr.must("run", "-d", "--log-uri", "file://"+tick, "--runc-binary", runtime, "localhost/nvoci-test:1", "n1", "busybox", "sh", "-c", "while :; do echo tick; sleep 0.1; done")
	deadline := time.Now().Add(time.Minute)
	for {
		if data, _ := os.ReadFile(tick); bytes.Contains(data, []byte("tick")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("n1 printed nothing in a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctr.must("container", "checkpoint", "--task", "n1", "localhost/nvoci-ckpt:1")
	if out := ctr.must("task", "ls"); !strings.Contains(out, "RUNNING") {
		t.Fatalf("n1 after ctr checkpoint --task: %q, want it running", out)
	}
	ctr.must("task", "kill", "-s", "KILL", "n1")
	// The task's exit is what ctr task rm waits for.
	deadline = time.Now().Add(time.Minute)
	for {
		if _, _, st := ctr.run("task", "rm", "n1"); st == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("n1 did not end after SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctr.must("container", "rm", "n1")
	ctr.must("container", "restore", "--live", "n1", "localhost/nvoci-ckpt:1")
	out = ctr.must("task", "ls")
	fields := strings.Fields(out[strings.Index(out, "n1"):])
	if len(fields) < 3 || fields[2] != "RUNNING" {
		t.Fatalf("n1 after ctr restore: %q, want it running", out)
	}
	// runc's start returns once it has told runc init to exec the
	// container's process, which it may not have done yet: the task is
	// RUNNING while its process is still runc init, as with runc alone.
	deadline = time.Now().Add(time.Minute)
	for {
		cmdline, err := os.ReadFile("/proc/" + fields[1] + "/cmdline")
		if err == nil && bytes.Contains(cmdline, []byte("\x00restore\x00")) {
			break
		}
		if err != nil || !bytes.Contains(cmdline, []byte("init")) || time.Now().After(deadline) {
			t.Fatalf("n1's process after ctr restore runs %q (%v), want nestvm restore", cmdline, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startContainerd starts a containerd of the test's own under dir, its
// CRI plugin configured with cri (lines of TOML added to that plugin's
// table), and returns its socket once it answers. It is stopped when the
// test ends, after what the test cleans up itself (registered later).
func startContainerd(t *testing.T, dir, cri string) string {
	t.Helper()
	sock := filepath.Join(dir, "c.sock")
	conf := filepath.Join(dir, "containerd.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  restrict_oom_score_adj = true
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock)+cri), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	daemon := exec.Command("containerd", "--config", conf)
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		logf.Close()
	})
	ctr := &engine{t: t, name: "ctr", args: []string{"-a", sock}}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, _, st := ctr.run("version"); st == 0 {
			return sock
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(logf.Name())
			t.Fatalf("containerd did not answer in a minute: %s", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkpointRestore runs a counting loop on backend, checkpoints it with
// --export, removes it, restores the export under a new name, and checks
// that its output goes on with no gap and no repeat; then checkpoints that
// with --leave-running and checks that it goes on running.
func checkpointRestore(t *testing.T, pm *engine, dir, image, backend string) {
	t.Helper()
	c1, c2 := "c1-"+backend, "c2-"+backend
	loop := []string{"busybox", "sh", "-c", "i=0; while [ $i -lt 1000 ]; do i=$((i+1)); echo $i; sleep 0.1; done"}
	pm.must(append([]string{"run", "-d", "--network", "none", "--name", c1, "--runtime", "nestvm", "--annotation", "io.nestvm.backend=" + backend, image}, loop...)...)
	waitLines(t, pm, c1, 3)
	export := filepath.Join(dir, c1+".tar.gz")
	pm.must("container", "checkpoint", "--export", export, c1)
	if st := strings.TrimSpace(pm.must("inspect", "-f", "{{.State.Status}}", c1)); st != "exited" {
		t.Fatalf("%s is %s after its checkpoint, want exited", c1, st)
	}
	saved, _, _ := pm.run("logs", c1)
	n := countsFrom1(t, c1+" up to its checkpoint", saved, 3)
	pm.must("rm", "-f", c1)
	pm.must("container", "restore", "--import", export, "--name", c2)
	waitLines(t, pm, c2, n+3)
	// --leave-running saves and goes on.
	pm.must("container", "checkpoint", "--leave-running", "--export", filepath.Join(dir, c2+".tar.gz"), c2)
	if st := strings.TrimSpace(pm.must("inspect", "-f", "{{.State.Status}}", c2)); st != "running" {
		t.Fatalf("%s is %s after checkpoint --leave-running, want running", c2, st)
	}
	out, _, _ := pm.run("logs", c2)
	waitLines(t, pm, c2, strings.Count(out, "\n")+3)
	out, _, _ = pm.run("logs", c2)
	countsFrom1(t, c2+", restored from "+c1, out, n+3)
	pm.must("rm", "-f", "-t", "0", c2)
}

// TestCRI runs a pod through containerd's CRI, as Kubernetes does with a
// RuntimeClass whose handler is the nestvm runtime: crictl runp --runtime
// nestvm, then create and start a container in it. The pod's sandbox
// (pause) goes to runc as it is; the container runs under nestvm, its
// output in the CRI log.
func TestCRI(t *testing.T) {
	requireEngines(t, "containerd", "ctr", "podman", "runc", "crictl")
	dir, err := os.MkdirTemp("", "nvcri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	runtime := buildRuntime(t, filepath.Join(dir, "bin"))
	imageTree(t, filepath.Join(dir, "img"))
	sock := startContainerd(t, dir, fmt.Sprintf(`  sandbox_image = "localhost/nvoci-pause:1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nestvm]
    runtime_type = "io.containerd.runc.v2"
    container_annotations = ["io.nestvm.*"]
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nestvm.options]
    BinaryName = %q
`, runtime))
	ctr := &engine{t: t, name: "ctr", args: []string{"-a", sock, "-n", "k8s.io"}}
	crictl := &engine{t: t, name: "crictl", args: []string{"--runtime-endpoint", "unix://" + sock, "--image-endpoint", "unix://" + sock, "--timeout", "60s"}}
	var pod string
	t.Cleanup(func() {
		if pod != "" {
			crictl.run("stopp", pod)
			crictl.run("rmp", "-f", pod)
		}
		ctr.run("images", "rm", "localhost/nvoci-test:1", "localhost/nvoci-pause:1")
	})
	pm := &engine{t: t, name: "podman", args: []string{"--root", filepath.Join(dir, "pmroot"), "--runroot", filepath.Join(dir, "pmrun"), "--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs"}}
	t.Cleanup(func() { pm.run("rmi", "-af") })
	if out, err := exec.Command("tar", "-C", filepath.Join(dir, "img"), "-cf", filepath.Join(dir, "img.tar"), ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	pm.must("import", filepath.Join(dir, "img.tar"), "localhost/nvoci-test:1")
	// The pause image: the same files, sleeping natively under runc.
	pm.must("import", "--change", `CMD ["/bin/busybox", "sleep", "100000"]`, filepath.Join(dir, "img.tar"), "localhost/nvoci-pause:1")
	for _, img := range []string{"nvoci-test", "nvoci-pause"} {
		archive := filepath.Join(dir, img+".oci.tar")
		pm.must("save", "--format", "oci-archive", "-o", archive, "localhost/"+img+":1")
		ctr.must("images", "import", "--base-name", "localhost/"+img, archive)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The host's network namespace: no CNI is configured.
	podConf := write("pod.json", fmt.Sprintf(`{"metadata": {"name": "nv", "namespace": "default", "uid": "nv-1"},
 "log_directory": %q, "linux": {"security_context": {"namespace_options": {"network": 2}}}}`, filepath.Join(dir, "logs")))
	ctrConf := write("ctr.json", `{"metadata": {"name": "hello"}, "image": {"image": "localhost/nvoci-test:1"},
 "command": ["busybox", "sh", "-c", "echo hello-cri; echo $((6*7))"], "log_path": "hello.log",
 "annotations": {"io.nestvm.layers": "trace"}}`)
	pod = strings.TrimSpace(crictl.must("runp", "--runtime", "nestvm", podConf))
	id := strings.TrimSpace(crictl.must("create", pod, ctrConf, podConf))
	crictl.must("start", id)
	deadline := time.Now().Add(time.Minute)
	for {
		out, _, _ := crictl.run("inspect", "-o", "go-template", "--template", "{{.status.state}}", id)
		if strings.TrimSpace(out) == "CONTAINER_EXITED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s not exited after a minute: %q", id, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, errs, _ := crictl.run("logs", id); out != "hello-cri\n42\n" || !strings.Contains(errs, "[trace]") {
		t.Fatalf("crictl logs: %q (stderr %q), want hello-cri and 42", out, errs)
	}
	// The container ran under nestvm, traced as its annotation asks; the
	// sandbox under runc alone.
	data, err := os.ReadFile(filepath.Join(dir, "logs", "hello.log"))
	if err != nil || !bytes.Contains(data, []byte("stdout F hello-cri")) || !bytes.Contains(data, []byte("stderr F [trace]")) {
		t.Fatalf("CRI log: %q, %v; want the output and the trace layer's lines", data, err)
	}
	if entries, _ := filepath.Glob("/run/nestvm-oci/run_containerd_runc_k8s.io/" + pod + "*"); len(entries) != 0 {
		t.Fatalf("the sandbox went through nestvm: %q", entries)
	}
}
