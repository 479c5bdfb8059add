package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dir is the directory monitors put their sockets in: $NESTVM_RUNTIME_DIR,
// else /run/nestvm for root, else $XDG_RUNTIME_DIR/nestvm, else
// nestvm-UID under os.TempDir().
func Dir() string {
	if d := os.Getenv("NESTVM_RUNTIME_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/run/nestvm"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "nestvm")
	}
	return filepath.Join(os.TempDir(), "nestvm-"+strconv.Itoa(os.Geteuid()))
}

// makeDir creates dir (mode 0700) where it is missing, and refuses one
// where others could put a socket of their own in a monitor's place: not
// a directory, not the user's own, or writable by its group or others.
func makeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("control socket directory %s: not a directory", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("control socket directory %s: owned by uid %d, not by this user", dir, sys.Uid)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("control socket directory %s: mode %#o lets others replace its sockets", dir, st.Mode().Perm())
	}
	return nil
}

// DefaultPath returns the socket path of a monitor of this process in
// Dir, creating the directory: <pid>.sock, or <pid>-N.sock when this
// process runs more than one monitor (tests do).
func DefaultPath() (string, error) {
	dir := Dir()
	if err := makeDir(dir); err != nil {
		return "", err
	}
	pid := os.Getpid()
	for n := 1; ; n++ {
		name := strconv.Itoa(pid) + ".sock"
		if n > 1 {
			name = fmt.Sprintf("%d-%d.sock", pid, n)
		}
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if !live(p) {
			// A socket of this pid that nobody serves: a process of the
			// same number that died before.
			os.Remove(p)
			return p, nil
		}
	}
}

// live reports whether a monitor answers on the socket at path.
func live(path string) bool {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// PathOf returns the socket path of the (first) monitor of process pid
// in Dir, where a monitor started with the default --control serves.
func PathOf(pid int) string { return filepath.Join(Dir(), strconv.Itoa(pid)+".sock") }

// refused reports whether connecting to the socket at path is refused:
// nothing listens on it.
func refused(path string) bool {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	conn.Close()
	return false
}

// Socket is a control socket found in a directory.
type Socket struct {
	PID  int
	Path string
}

// PIDOf returns the monitor process id a socket's file name carries
// (<pid>.sock, <pid>-N.sock).
func PIDOf(path string) (int, bool) {
	name, ok := strings.CutSuffix(filepath.Base(path), ".sock")
	if !ok {
		return 0, false
	}
	name, _, _ = strings.Cut(name, "-")
	pid, err := strconv.Atoi(name)
	return pid, err == nil && pid > 0
}

// List returns the sockets of running monitors in dir, by pid. A socket
// whose process is gone, or that nothing listens on (its process killed
// and not yet reaped, or its pid taken by another process since), is
// removed: a monitor killed before it could remove it left it. One that
// is listened on is listed, whether or not it answers.
func List(dir string) ([]Socket, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list control sockets: %w", err)
	}
	var out []Socket
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		pid, ok := PIDOf(p)
		if !ok || e.Type()&fs.ModeSocket == 0 {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH || refused(p) {
			os.Remove(p)
			continue
		}
		out = append(out, Socket{PID: pid, Path: p})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PID != out[j].PID {
			return out[i].PID < out[j].PID
		}
		return out[i].Path < out[j].Path
	})
	return out, nil
}
