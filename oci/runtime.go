// Package oci is nestvm-oci, an OCI runtime that podman, containerd (its
// stock runc shim) and Kubernetes (a RuntimeClass on that shim) can run
// containers with. It speaks runc's command line and lets runc do the
// Linux work (namespaces, cgroups, mounts, console, pid file); what it
// changes is the container's process: a nestvm monitor, bind-mounted into
// the container, that runs the image's entrypoint under the Linux
// personality with the container's / as its files root. Checkpoints are
// nestvm's own files, written where the engine asks for CRIU's images.
// docs/oci.md is the user's guide.
package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Runtime is one invocation of nestvm-oci.
type Runtime struct {
	// Runc is the runc binary everything is delegated to.
	Runc string
	// Nestvm is the statically linked nestvm (CGO_ENABLED=0, kvm only)
	// containers run when the host has KVM; empty when there is none.
	Nestvm string
	// NestvmCgo is the cgo-built nestvm, which also offers the emu
	// backend; it runs in the container through the host's dynamic loader
	// and libraries, bind-mounted beside it.
	NestvmCgo string
	// StateTop is where the runtime keeps each container's rewritten
	// bundle and checkpoint directory, below a directory per runc --root.
	StateTop string
	Stdout   io.Writer
	Stderr   io.Writer

	args    *argv
	logFile string
	logJSON bool
}

// meta is what the runtime records about a container it rewrote.
type meta struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"` // the caller's bundle
	Rootfs string `json:"rootfs"`
	// Exec is the command line, up to the program, of a monitor that
	// runs a program exec adds to the container: the container's own
	// monitor's, less its checkpoint layer.
	Exec []string `json:"exec"`
	// Control says the monitor serves a control socket in the state
	// directory's ctl (the container's /.nestvm/ctl).
	Control bool `json:"control,omitempty"`
}

var validID = regexp.MustCompile(`^[A-Za-z0-9_+.-]+$`)

// Main runs the command line args (without the program name) and returns
// the exit status.
func (r *Runtime) Main(args []string) int {
	a, err := parseArgs(args)
	if err != nil {
		return r.fail(err)
	}
	r.args = a
	r.logFile = a.flags["log"]
	r.logJSON = a.flags["log-format"] == "json"
	_, help := a.flags["help"]
	_, h := a.flags["h"]
	_, version := a.flags["version"]
	_, v := a.flags["v"]
	switch {
	case a.cmd == "" && (version || v):
		fmt.Fprintln(r.Stdout, "nestvm-oci: runs containers under nestvm, with runc ("+r.Runc+") doing the Linux work")
		return r.runc(args)
	case a.cmd == "help" || help || h:
		fmt.Fprint(r.Stdout, Usage)
		return 0
	case a.cmd == "":
		fmt.Fprint(r.Stderr, Usage)
		return 2
	}
	switch a.cmd {
	case "create", "run":
		err = r.create(a.cmd)
	case "checkpoint":
		if a.has("help") || a.has("h") {
			fmt.Fprint(r.Stdout, checkpointHelp)
			return 0
		}
		err = r.checkpoint()
	case "restore":
		err = r.restore()
	case "state":
		err = r.state()
	case "delete":
		err = r.delete()
	case "exec":
		err = r.exec(args)
	case "pause":
		err = r.pause(args)
	case "kill":
		err = r.kill(args)
	default:
		return r.runc(args)
	}
	if err != nil {
		var st exitStatus
		if errors.As(err, &st) {
			return int(st)
		}
		return r.fail(err)
	}
	return 0
}

// Usage is nestvm-oci's help.
const Usage = `nestvm-oci is an OCI runtime with runc's command line: podman, containerd
(its runc shim, BinaryName or ctr --runc-binary) and Kubernetes (a
RuntimeClass on that shim) run containers with it. runc does the Linux work;
the container's process is a nestvm monitor running the image's entrypoint
under the Linux personality, with the container's / as its files.

Usage: nestvm-oci [global flags] COMMAND [flags] ID

Commands it implements: create, run, state, delete, exec (under a monitor
of its own, with the container's layers), checkpoint (nestvm's own
checkpoint into --image-path, asked of the monitor through its control
socket; --leave-running), restore, kill (SIGTERM and SIGINT through the
control socket; others to runc), pause (runc's, tried again). Every other
command (start, resume, ps, events, features, list, ...) goes to runc
unchanged. Global flags (--root, --log, --log-format, --debug,
--systemd-cgroup, --criu, --rootless) are runc's and go to it.

Annotations in config.json:
  io.nestvm.layers=SPEC;SPEC...  --layer specs, as nestvm run takes them
  io.nestvm.backend=auto|kvm|emu  auto: kvm when /dev/kvm opens, else emu
  io.nestvm.quota=KEY=VALUE,...   as nestvm run --quota
  io.nestvm.passthrough=true      leave the container to runc
CRI sandbox (pause) containers go to runc as they are.

Environment: NESTVM_OCI_RUNC (the runc to use; default runc on PATH),
NESTVM_OCI_STATE (its state directory; default /run/nestvm-oci).
It runs nestvm-static (CGO_ENABLED=0) and nestvm from its own directory.
docs/oci.md says more.
`

// exitStatus is a runc run's status, passed on as ours; runc has said why.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("runc: exit status %d", int(e)) }

const checkpointHelp = `Usage: nestvm-oci checkpoint [flags] ID

Saves the container's program with nestvm's checkpoint (a .nvck file and
an empty inventory.img, for the engines' CRIU checks) into --image-path,
then stops the container, or leaves it running with --leave-running.
CRIU is never run. Flags:
   --image-path value    directory for the checkpoint (default: ./checkpoint)
   --work-path value     accepted, unused
   --leave-running       leave the container running after the checkpoint
   --file-locks, --tcp-established, --ext-unix-sk, --shell-job, --manage-cgroups-mode value
                         accepted, unused
`

// fail reports err as runc would (stderr, and the --log file in the
// --log-format the caller asked for) and returns runc's failure status.
func (r *Runtime) fail(err error) int {
	msg := "nestvm-oci: " + err.Error()
	fmt.Fprintln(r.Stderr, msg)
	if r.logFile != "" {
		if f, ferr := os.OpenFile(r.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); ferr == nil {
			if r.logJSON {
				line, _ := json.Marshal(map[string]string{"level": "error", "msg": msg, "time": time.Now().UTC().Format(time.RFC3339Nano)})
				f.Write(append(line, '\n'))
			} else {
				fmt.Fprintf(f, "%s level=error msg=%q\n", time.Now().UTC().Format(time.RFC3339), msg)
			}
			f.Close()
		}
	}
	return 1
}

// runc runs runc with args, sharing our standard streams, and returns its
// exit status.
func (r *Runtime) runc(args []string) int {
	cmd := exec.Command(r.Runc, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, r.Stdout, r.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return r.fail(fmt.Errorf("running %s: %w", r.Runc, err))
	}
	return 0
}

// runcCmd runs runc with the caller's global flags and args; a failure is
// returned as its exit status.
func (r *Runtime) runcCmd(args ...string) error {
	if st := r.runc(append(append([]string{}, r.args.global...), args...)); st != 0 {
		return exitStatus(st)
	}
	return nil
}

// runcOutput runs runc with the caller's global flags and args, and
// returns its standard output.
func (r *Runtime) runcOutput(args ...string) ([]byte, error) {
	cmd := exec.Command(r.Runc, append(append([]string{}, r.args.global...), args...)...)
	cmd.Stderr = r.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("runc %s: %w", args[0], err)
	}
	return out, nil
}

// id returns the command's one operand, the container id.
func (r *Runtime) id() (string, error) {
	if len(r.args.pos) != 1 {
		return "", fmt.Errorf("%s: want one container id, got %d arguments", r.args.cmd, len(r.args.pos))
	}
	id := r.args.pos[0]
	if !validID.MatchString(id) || id == "." || id == ".." {
		return "", fmt.Errorf("%s: invalid container id %q", r.args.cmd, id)
	}
	return id, nil
}

// stateDir is where the runtime keeps container id's files: one directory
// per runc --root, so that engines sharing a host keep their own.
func (r *Runtime) stateDir(id string) string {
	root := r.args.flags["root"]
	if root == "" {
		root = "/run/runc"
	}
	return filepath.Join(r.StateTop, strings.ReplaceAll(strings.Trim(filepath.Clean(root), "/"), "/", "_"), id)
}

func (r *Runtime) readMeta(id string) (*meta, error) {
	data, err := os.ReadFile(filepath.Join(r.stateDir(id), "nestvm.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m meta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("state of %s: %w", id, err)
	}
	return &m, nil
}

// bundleOf returns the --bundle flag's directory (default the current one)
// as an absolute path.
func (r *Runtime) bundleOf() (string, error) {
	b, ok := r.args.get("bundle", "b")
	if !ok || b == "" {
		b = "."
	}
	return filepath.Abs(b)
}

// rewrite makes container id's state directory with a copy of bundle's
// config.json whose process is nestvm running the original one; restore
// names the checkpoint file (in the state directory) to resume instead.
// It returns the new bundle, or "" when the bundle is not nestvm's to run
// (a CRI sandbox) and goes to runc as it is. On an error nothing is left.
func (r *Runtime) rewrite(id, bundle string, restore func(ckptDir string) error) (newBundle string, err error) {
	s, err := readSpec(bundle)
	if err != nil {
		return "", err
	}
	ann, err := s.annotations()
	if err != nil {
		return "", err
	}
	if passthrough(ann) {
		if restore != nil {
			return "", errors.New("restore: the bundle is a sandbox (or io.nestvm.passthrough), not a nestvm container")
		}
		return "", nil
	}
	root, err := obj(s, "root", false)
	if err != nil || root == nil {
		return "", errors.New("config.json: no root")
	}
	rootfs, _ := root["path"].(string)
	if rootfs == "" {
		return "", errors.New("config.json: root.path is empty")
	}
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
		root["path"] = rootfs
	}
	readonly, _ := root["readonly"].(bool)
	ch, err := parseChoices(ann, rootfs)
	if err != nil {
		return "", err
	}
	proc, err := obj(s, "process", false)
	if err != nil || proc == nil {
		return "", errors.New("config.json: no process")
	}
	args, err := stringList(proc["args"], "process.args")
	if err != nil {
		return "", err
	}
	env, err := stringList(proc["env"], "process.env")
	if err != nil {
		return "", err
	}
	if len(args) == 0 && restore == nil {
		return "", errors.New("config.json: process.args is empty")
	}
	if restore == nil {
		if args[0], err = entrypoint(rootfs, args[0], env); err != nil {
			return "", err
		}
	}

	// What runs the monitor: the static nestvm with /dev/kvm, or the cgo
	// one (which has emu too) through the host's loader and libraries.
	major, minor, kvm := kvmDevice()
	if ch.backend == "kvm" && !kvm {
		return "", fmt.Errorf("annotation %s=kvm: this host has no /dev/kvm", annBackend)
	}
	useCgo := ch.backend == "emu" || !kvm || r.Nestvm == ""
	var mounts []any
	if ms, ok := s["mounts"]; ok && ms != nil {
		if mounts, ok = ms.([]any); !ok {
			return "", errors.New("config.json: mounts is not an array")
		}
	}
	mounts = append(mounts, map[string]any{"destination": ctrDir, "type": "tmpfs", "source": "tmpfs",
		"options": toAny([]string{"nosuid", "nodev", "mode=755", "size=1m"})})
	var argv0 []string
	if useCgo {
		if r.NestvmCgo == "" {
			return "", errors.New("no nestvm with the emu backend beside nestvm-oci (build it with make build)")
		}
		interp, libs, err := loaderLibs(r.NestvmCgo)
		if err != nil {
			return "", fmt.Errorf("%s: %w", r.NestvmCgo, err)
		}
		mounts = append(mounts, bind(r.NestvmCgo, ctrNestvm, false))
		if interp == "" {
			argv0 = []string{ctrNestvm}
		} else {
			ld := ctrLib + "/" + filepath.Base(interp)
			mounts = append(mounts, bind(interp, ld, false))
			for _, l := range libs {
				mounts = append(mounts, bind(l, ctrLib+"/"+filepath.Base(l), false))
			}
			argv0 = []string{ld, "--library-path", ctrLib, ctrNestvm}
		}
	} else {
		mounts = append(mounts, bind(r.Nestvm, ctrNestvm, false))
		argv0 = []string{ctrNestvm}
	}
	if !kvm {
		ch.backend = "emu"
	}
	if kvm && ch.backend != "emu" {
		linux, err := obj(s, "linux", true)
		if err != nil {
			return "", err
		}
		devs, _ := linux["devices"].([]any)
		linux["devices"] = append(devs, map[string]any{"path": "/dev/kvm", "type": "c", "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0})
		res, err := obj(linux, "resources", true)
		if err != nil {
			return "", err
		}
		rules, _ := res["devices"].([]any)
		res["devices"] = append(rules, map[string]any{"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"})
	}

	dir := r.stateDir(id)
	if _, err := os.Stat(dir); err == nil {
		return "", fmt.Errorf("container %s exists already (%s)", id, dir)
	}
	for _, d := range []string{"ckpt", "ctl"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return "", err
		}
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	// The monitor writes its checkpoints and serves its control socket
	// there as the container's user.
	if user, _ := proc["user"].(map[string]any); user != nil {
		uid, _ := user["uid"].(float64)
		gid, _ := user["gid"].(float64)
		for _, d := range []string{"ckpt", "ctl"} {
			if err := os.Chown(filepath.Join(dir, d), int(uid), int(gid)); err != nil {
				return "", err
			}
		}
	}
	mounts = append(mounts, bind(filepath.Join(dir, "ckpt"), ctrCkpt, true), bind(filepath.Join(dir, "ctl"), ctrCtl, true))
	s["mounts"] = mounts

	common := []string{"--files", "/", "--log-level", "warn", "--backend", ch.backend}
	if !readonly {
		common = append(common, "--files-rw")
	}
	if ch.quota != "" {
		common = append(common, "--quota", ch.quota)
	}
	for _, l := range ch.layers {
		common = append(common, "--layer", l)
	}
	nv := append([]string{}, argv0...)
	if restore != nil {
		nv = append(nv, "restore")
	} else {
		nv = append(nv, "run")
	}
	// The checkpoint layer is innermost, so that it saves the program and
	// not a layer's wrapping.
	nv = append(append(nv, common...), "--layer", "checkpoint="+ctrCkptFile, "--control", ctrCtlSock)
	if restore != nil {
		if err := restore(filepath.Join(dir, "ckpt")); err != nil {
			return "", err
		}
		nv = append(nv, ctrRestore)
	} else {
		nv = append(append(nv, "--"), args...)
	}
	proc["args"] = toAny(nv)

	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		return "", err
	}
	// An exec's monitor serves no socket: the container's /run is the
	// image's, not the monitor's to write in.
	execArgs := append(append(append([]string{}, argv0...), "run"), common...)
	m, _ := json.Marshal(meta{ID: id, Bundle: bundle, Rootfs: rootfs, Exec: append(execArgs, "--control", "none"), Control: true})
	if err := os.WriteFile(filepath.Join(dir, "nestvm.json"), m, 0o600); err != nil {
		return "", err
	}
	return dir, nil
}

// create is create and run: runc runs the rewritten bundle.
func (r *Runtime) create(cmd string) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	bundle, err := r.bundleOf()
	if err != nil {
		return err
	}
	nb, err := r.rewrite(id, bundle, nil)
	if err != nil {
		return err
	}
	if nb == "" {
		return r.runcCmd(append([]string{cmd}, append(r.args.render(allOpts(r.args), nil), id)...)...)
	}
	err = r.runcCmd(append([]string{cmd}, append(r.args.render(allOpts(r.args), map[string]string{"bundle": nb, "b": nb}), id)...)...)
	// runc failed and left no container, or ran one in the foreground and
	// deleted it: neither do we keep one.
	if (err != nil || (cmd == "run" && !r.args.has("detach") && !r.args.has("d"))) && !r.runcKnows(id) {
		os.RemoveAll(r.stateDir(id))
	}
	return err
}

// allOpts keeps every flag of the command.
func allOpts(a *argv) map[string]bool {
	m := map[string]bool{}
	for _, o := range a.opts {
		m[o.name] = true
	}
	return m
}

// state is runc's, with the caller's bundle in place of the rewritten one.
func (r *Runtime) state() error {
	id, err := r.id()
	if err != nil {
		return err
	}
	m, err := r.readMeta(id)
	if err != nil || m == nil {
		if err != nil {
			return err
		}
		return r.runcCmd("state", id)
	}
	out, err := r.runcOutput("state", id)
	if err != nil {
		return exitStatus(1)
	}
	var st map[string]any
	if err := json.Unmarshal(out, &st); err != nil {
		return fmt.Errorf("runc state %s: %w", id, err)
	}
	st["bundle"] = m.Bundle
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(r.Stdout, string(data))
	return err
}

// delete is runc's, then the state directory goes too.
func (r *Runtime) delete() error {
	id, err := r.id()
	if err != nil {
		return err
	}
	err = r.runcCmd(append([]string{"delete"}, append(r.args.render(allOpts(r.args), nil), id)...)...)
	if err == nil || !r.runcKnows(id) {
		if rerr := os.RemoveAll(r.stateDir(id)); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// exec runs a program in a nestvm container under a monitor of its own,
// with the container's layers, so that nothing the engine execs escapes
// nestvm; it is not part of the container's checkpoints. The command
// comes in a process.json (--process, as podman and containerd pass it)
// or after the id.
func (r *Runtime) exec(orig []string) error {
	if len(r.args.pos) == 0 {
		return errors.New("exec: no container id")
	}
	id := r.args.pos[0]
	if !validID.MatchString(id) || id == "." || id == ".." {
		return fmt.Errorf("exec: invalid container id %q", id)
	}
	m, err := r.readMeta(id)
	if err != nil {
		return err
	}
	if m == nil || len(m.Exec) == 0 {
		return exitStatusOf(r.runc(orig))
	}
	if file, ok := r.args.get("process", "p"); ok {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		var proc map[string]any
		if err := json.Unmarshal(data, &proc); err != nil || proc == nil {
			return fmt.Errorf("exec: %s: not a JSON object: %v", file, err)
		}
		args, err := stringList(proc["args"], "process.args")
		if err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		env, err := stringList(proc["env"], "process.env")
		if err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		if len(args) == 0 {
			return errors.New("exec: process.args is empty")
		}
		if args[0], err = entrypoint(m.Rootfs, args[0], env); err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		proc["args"] = toAny(append(append(append([]string{}, m.Exec...), "--"), args...))
		out, err := json.Marshal(proc)
		if err != nil {
			return err
		}
		f, err := os.CreateTemp(r.stateDir(id), "exec-*.json")
		if err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		defer os.Remove(f.Name())
		_, werr := f.Write(out)
		if cerr := f.Close(); werr != nil || cerr != nil {
			return fmt.Errorf("exec: writing %s: %v %v", f.Name(), werr, cerr)
		}
		return r.runcCmd(append(append([]string{"exec"}, r.args.render(allOpts(r.args), map[string]string{"process": f.Name(), "p": f.Name()})...), id)...)
	}
	if len(r.args.pos) < 2 {
		return errors.New("exec: no command given")
	}
	cmd := append([]string{}, r.args.pos[1:]...)
	var env []string
	for _, o := range r.args.opts {
		if o.name == "env" || o.name == "e" {
			env = append(env, o.val)
		}
	}
	if cmd[0], err = entrypoint(m.Rootfs, cmd[0], env); err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	args := append(append([]string{"exec"}, r.args.render(allOpts(r.args), nil)...), id)
	args = append(append(append(args, m.Exec...), "--"), cmd...)
	return r.runcCmd(args...)
}

// pauseTries bounds how often pause asks runc to freeze a nestvm
// container.
const pauseTries = 5

// pause is runc's, tried again when its freezer gives up: a monitor's
// vCPU threads leave the hypervisor to be frozen, which on a loaded host
// can take longer than runc waits. runc thaws what it froze before it
// fails, so another try starts afresh.
func (r *Runtime) pause(orig []string) error {
	if len(r.args.pos) != 1 {
		return exitStatusOf(r.runc(orig))
	}
	id := r.args.pos[0]
	if !validID.MatchString(id) {
		return fmt.Errorf("pause: invalid container id %q", id)
	}
	if m, err := r.readMeta(id); err != nil || m == nil {
		return exitStatusOf(r.runc(orig))
	}
	var last []byte
	for try := 0; try < pauseTries; try++ {
		cmd := exec.Command(r.Runc, orig...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			r.Stdout.Write(out)
			return nil
		}
		last = out
		if st, _, serr := r.runcState(id); serr != nil || st != "running" {
			break // not a freezer that gave up
		}
	}
	r.Stderr.Write(last)
	return exitStatus(1)
}

// exitStatusOf is a runc status as runcCmd returns it.
func exitStatusOf(status int) error {
	if status != 0 {
		return exitStatus(status)
	}
	return nil
}

// runcKnows reports whether runc has a container id.
func (r *Runtime) runcKnows(id string) bool {
	cmd := exec.Command(r.Runc, append(append([]string{}, r.args.global...), "state", id)...)
	return cmd.Run() == nil
}

// runcState returns container id's status and init process.
func (r *Runtime) runcState(id string) (status string, pid int, err error) {
	out, err := r.runcOutput("state", id)
	if err != nil {
		return "", 0, err
	}
	var st struct {
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", 0, fmt.Errorf("runc state %s: %w", id, err)
	}
	return st.Status, st.Pid, nil
}

// processGone reports whether pid has ended (gone, or a zombie not yet
// reaped by the engine).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	if i := strings.LastIndexByte(string(data), ')'); i >= 0 && i+2 < len(data) {
		return data[i+2] == 'Z' || data[i+2] == 'X'
	}
	return false
}
