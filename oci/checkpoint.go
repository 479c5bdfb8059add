package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"nestvm/services/checkpoint"
)

// saveTimeout bounds how long a checkpoint waits for the monitor's save.
const saveTimeout = 2 * time.Minute

// checkpoint saves the container's program into --image-path, through
// the monitor's control socket: save and go on (--leave-running), or save
// and end. A monitor whose socket cannot be reached (a container made by
// an older runtime) is signalled instead: SIGUSR1 saves and goes on,
// SIGUSR2 saves and ends. A container the engine paused first
// (containerd does) is resumed for the save and paused again after.
func (r *Runtime) checkpoint() error {
	id, err := r.id()
	if err != nil {
		return err
	}
	m, err := r.readMeta(id)
	if err != nil {
		return err
	}
	if m == nil {
		return r.runcCmd(append([]string{"checkpoint"}, append(r.args.render(allOpts(r.args), nil), id)...)...)
	}
	image, ok := r.args.get("image-path")
	if !ok || image == "" {
		image = "checkpoint"
	}
	if image, err = filepath.Abs(image); err != nil {
		return err
	}
	if err := os.MkdirAll(image, 0o700); err != nil {
		return fmt.Errorf("checkpoint: --image-path: %w", err)
	}
	leave := r.args.has("leave-running")
	status, pid, err := r.runcState(id)
	if err != nil {
		return err
	}
	paused := status == "paused"
	switch {
	case paused:
		if err := r.runcCmd("resume", id); err != nil {
			return fmt.Errorf("checkpoint: resuming the paused container for its save: %w", err)
		}
	case status != "running":
		return fmt.Errorf("checkpoint: container %s is %s, not running", id, status)
	}
	file := filepath.Join(r.stateDir(id), "ckpt", ckptName)
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := r.save(id, m, pid, leave); err != nil {
		return err
	}
	deadline := time.Now().Add(saveTimeout)
	for {
		_, ferr := os.Stat(file)
		saved := ferr == nil
		gone := processGone(pid)
		if saved && (leave || gone) {
			break
		}
		if gone {
			return fmt.Errorf("checkpoint: the monitor ended without saving (the container's log says why)")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("checkpoint: no checkpoint after %s (the save failed or hangs; the container runs on)", saveTimeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if paused && leave {
		if err := r.runcCmd("pause", id); err != nil {
			return fmt.Errorf("checkpoint: pausing the container again: %w", err)
		}
	}
	if err := copyFile(file, filepath.Join(image, ckptName)); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	// podman and CRI-O look for CRIU's inventory before they restore, and
	// podman's export takes CRIU's statistics from the work directory.
	if err := os.WriteFile(filepath.Join(image, "inventory.img"), nil, 0o600); err != nil {
		return err
	}
	if work, ok := r.args.get("work-path"); ok && work != "" {
		// containerd leaves making it to CRIU.
		if err := os.MkdirAll(work, 0o700); err != nil {
			return fmt.Errorf("checkpoint: --work-path: %w", err)
		}
		if err := os.WriteFile(filepath.Join(work, "stats-dump"), nil, 0o600); err != nil {
			return fmt.Errorf("checkpoint: --work-path: %w", err)
		}
	}
	return nil
}

// restore runs a container from the nestvm checkpoint in --image-path:
// runc runs a bundle whose process is nestvm restore.
func (r *Runtime) restore() error {
	id, err := r.id()
	if err != nil {
		return err
	}
	bundle, err := r.bundleOf()
	if err != nil {
		return err
	}
	image, ok := r.args.get("image-path")
	if !ok || image == "" {
		image = "checkpoint"
	}
	if image, err = filepath.Abs(image); err != nil {
		return err
	}
	src := filepath.Join(image, ckptName)
	if _, err := os.Stat(src); err != nil {
		if _, ierr := os.Stat(filepath.Join(image, "inventory.img")); ierr == nil {
			return fmt.Errorf("restore: %s holds no %s: not a checkpoint nestvm-oci took", image, ckptName)
		}
		return fmt.Errorf("restore: %w", err)
	}
	if err := checkFile(src); err != nil {
		return fmt.Errorf("restore: %s: %w", src, err)
	}
	nb, err := r.rewrite(id, bundle, func(dir string) error {
		// The engine may remove the image directory once restored.
		return copyFile(src, filepath.Join(dir, restoreName))
	})
	if err != nil {
		return err
	}
	keep := map[string]bool{"console-socket": true, "pid-file": true, "detach": true, "d": true, "no-subreaper": true, "no-pivot": true, "no-new-keyring": true, "bundle": true, "b": true}
	err = r.runcCmd(append([]string{"run"}, append(r.args.render(keep, map[string]string{"bundle": nb, "b": nb}), id)...)...)
	if err != nil && !r.runcKnows(id) {
		os.RemoveAll(r.stateDir(id))
	}
	return err
}

// save asks container id's monitor, process pid, to save its program to
// the state directory's ckpt (and, unless leave, to end it after),
// through its control socket where it answers, else with a signal. Over
// the socket a save that fails says why; the caller waits for the file
// (and, unless leave, for the monitor's end) either way.
func (r *Runtime) save(id string, m *meta, pid int, leave bool) error {
	c, done, err := r.monitor(id, m, pid)
	if err == nil {
		defer done()
		ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
		defer cancel()
		if _, err := c.Checkpoint(ctx, !leave); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		return nil
	}
	if processGone(pid) {
		return fmt.Errorf("checkpoint: the monitor ended before it could save (the container's log says why)")
	}
	r.warn(fmt.Sprintf("checkpoint %s: no control socket (%v): signalling the monitor instead", id, err))
	sig := syscall.SIGUSR2
	if leave {
		sig = syscall.SIGUSR1
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("checkpoint: signalling the monitor (pid %d): %w", pid, err)
	}
	return nil
}

// checkFile reads a checkpoint file whole, so that one that is damaged or
// of a format this nestvm does not read is refused before anything runs.
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = checkpoint.Read(f, st.Size())
	return err
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}
