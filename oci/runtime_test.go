package oci

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nestvm/internal/testutil"
	"nestvm/services/checkpoint"
)

// bundle writes a bundle whose config.json is cfg and whose rootfs holds
// the files given (name to host file to copy), and returns its directory.
func bundle(t *testing.T, cfg string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "rootfs", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBadInputRefused: what cannot become a nestvm container fails
// create (and restore) with a message naming the problem, before runc is
// run (it is not there to run), and leaves no state behind.
func TestBadInputRefused(t *testing.T) {
	hello := testutil.Guest(t, "hello")
	cfg := func(args, ann string) string {
		return `{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":` + args + `,"env":["PATH=/bin"]},"annotations":{` + ann + `},"x-unknown":{"kept":true}}`
	}
	files := map[string]string{"bin/hello": hello, "bin/dynamic": "/bin/true"}
	newer := filepath.Join(t.TempDir(), "img")
	os.MkdirAll(newer, 0o755)
	data := checkpoint.Encode(&checkpoint.Checkpoint{Spaces: []checkpoint.Space{{Parent: -1}}})
	binary.LittleEndian.PutUint32(data[8:], checkpoint.FormatVersion+1)
	os.WriteFile(filepath.Join(newer, ckptName), data, 0o600)
	criu := filepath.Join(t.TempDir(), "img")
	os.MkdirAll(criu, 0o755)
	os.WriteFile(filepath.Join(criu, "inventory.img"), nil, 0o600)
	for _, c := range []struct {
		name, cfg, cmd, image, msg string
	}{
		{"malformed", `{"process": [`, "create", "", "config.json: unexpected end of JSON input"},
		{"args not strings", cfg(`[1]`, ``), "create", "", "process.args[0] is not a string"},
		{"no args", cfg(`[]`, ``), "create", "", "process.args is empty"},
		{"no entrypoint", cfg(`["nothere"]`, ``), "create", "", `entrypoint "nothere": not found`},
		{"dynamic entrypoint", cfg(`["dynamic"]`, ``), "create", "", "dynamically linked"},
		{"unknown layer", cfg(`["hello"]`, `"io.nestvm.layers":"trace;nosuch=1"`), "create", "", `no layer named "nosuch"`},
		{"bad layer args", cfg(`["hello"]`, `"io.nestvm.layers":"pager"`), "create", "", "pager needs a swap file"},
		{"refmon policy missing", cfg(`["hello"]`, `"io.nestvm.layers":"refmon=/p.hcl"`), "create", "", "/p.hcl: not in the container's root filesystem"},
		{"checkpoint layer", cfg(`["hello"]`, `"io.nestvm.layers":"checkpoint=/x"`), "create", "", "the runtime stacks its own checkpoint layer"},
		{"bad backend", cfg(`["hello"]`, `"io.nestvm.backend":"fast"`), "create", "", "io.nestvm.backend=\"fast\": want auto, kvm or emu"},
		{"bad quota", cfg(`["hello"]`, `"io.nestvm.quota":"threads=0"`), "create", "", "io.nestvm.quota"},
		{"unknown annotation", cfg(`["hello"]`, `"io.nestvm.layer":"trace"`), "create", "", "io.nestvm.layer: unknown"},
		{"annotation not a string", cfg(`["hello"]`, `"io.nestvm.layers":1`), "create", "", "annotation io.nestvm.layers is not a string"},
		{"newer checkpoint", cfg(`["hello"]`, ``), "restore", newer, "newer than this nestvm reads"},
		{"criu checkpoint", cfg(`["hello"]`, ``), "restore", criu, "not a checkpoint nestvm-oci took"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bundle(t, c.cfg, files)
			state := t.TempDir()
			var stdout, stderr bytes.Buffer
			r := &Runtime{Runc: "/nonexistent/runc", Nestvm: "/nonexistent/nestvm-static", NestvmCgo: "/nonexistent/nestvm", StateTop: state, Stdout: &stdout, Stderr: &stderr}
			args := []string{"--root", "/run/test", "--log-format", "json", "--log", filepath.Join(state, "log.json"), c.cmd, "--bundle", b, "--pid-file", filepath.Join(b, "pid")}
			if c.image != "" {
				args = append(args, "--image-path", c.image, "--detach")
			}
			status := r.Main(append(args, "c1"))
			if status == 0 || !strings.Contains(stderr.String(), c.msg) {
				t.Fatalf("status %d, stderr %q; want a failure naming %q", status, stderr.String(), c.msg)
			}
			log, _ := os.ReadFile(filepath.Join(state, "log.json"))
			if !bytes.Contains(log, []byte(`"level":"error"`)) {
				t.Errorf("--log has %q, want the error as JSON", log)
			}
			if left, _ := filepath.Glob(filepath.Join(state, "*", "*")); len(left) != 0 {
				t.Errorf("state left behind: %q", left)
			}
		})
	}
}

// TestCheckpointHelp: podman decides whether a runtime can checkpoint by
// whether `checkpoint --help` succeeds.
func TestCheckpointHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	r := &Runtime{Runc: "/nonexistent/runc", StateTop: t.TempDir(), Stdout: &stdout, Stderr: &stderr}
	if status := r.Main([]string{"checkpoint", "--help"}); status != 0 || !strings.Contains(stdout.String(), "--leave-running") {
		t.Fatalf("status %d, stdout %q, stderr %q", status, stdout.String(), stderr.String())
	}
}

// TestParseArgs: flags before and after the command, with one dash or two
// and values after = or apart, leave the id as the one operand.
func TestParseArgs(t *testing.T) {
	a, err := parseArgs([]string{"--root", "/r", "--log=/l", "--debug", "restore", "-no-subreaper", "--image-path", "/i", "--bundle=/b", "-d", "id1"})
	if err != nil {
		t.Fatal(err)
	}
	if a.cmd != "restore" || a.flags["root"] != "/r" || a.flags["log"] != "/l" || len(a.pos) != 1 || a.pos[0] != "id1" {
		t.Fatalf("parsed %+v", a)
	}
	if v, _ := a.get("image-path"); v != "/i" || !a.has("no-subreaper") || !a.has("d") {
		t.Fatalf("parsed %+v", a)
	}
	got := strings.Join(a.render(map[string]bool{"bundle": true, "d": true}, map[string]string{"bundle": "/n"}), " ")
	if got != "--bundle=/n -d" {
		t.Fatalf("render: %q", got)
	}
}

// TestSandboxPassesThrough: a CRI pod's sandbox (pause) container, and
// one marked io.nestvm.passthrough, go to runc as they are: no rewriting,
// no state, and an entrypoint nestvm could not run is no reason to refuse.
func TestSandboxPassesThrough(t *testing.T) {
	for _, ann := range []string{`"io.kubernetes.cri.container-type":"sandbox"`, `"io.kubernetes.cri-o.ContainerType":"sandbox"`, `"io.nestvm.passthrough":"true"`} {
		b := bundle(t, `{"root":{"path":"rootfs"},"process":{"args":["/pause"]},"annotations":{`+ann+`}}`, nil)
		state := t.TempDir()
		var stdout, stderr bytes.Buffer
		// A runc that prints its arguments shows what it was given.
		runc := filepath.Join(t.TempDir(), "runc")
		if err := os.WriteFile(runc, []byte("#!/bin/sh\necho \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		r := &Runtime{Runc: runc, StateTop: state, Stdout: &stdout, Stderr: &stderr}
		status := r.Main([]string{"--root", "/run/test", "create", "--bundle", b, "--pid-file", "/p", "c1"})
		want := "--root /run/test create --bundle=" + b + " --pid-file=/p c1\n"
		if status != 0 || stdout.String() != want {
			t.Fatalf("%s: status %d, runc got %q (want %q), stderr %q", ann, status, stdout.String(), want, stderr.String())
		}
		if left, _ := filepath.Glob(filepath.Join(state, "*", "*")); len(left) != 0 {
			t.Errorf("%s: state made: %q", ann, left)
		}
	}
}
