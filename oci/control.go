package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"nestvm/control"
)

// dialTimeout bounds how long the runtime waits for a monitor that runs to
// answer on its control socket: from its start until it serves the socket
// is the monitor's setup, milliseconds; past that the socket is taken to
// be unreachable, and the runtime falls back to signals.
const dialTimeout = 10 * time.Second

// maxSunPath is the room a Unix socket's path has (sun_path, its NUL
// included).
const maxSunPath = 108

// ctlSock returns the host's path of container id's control socket.
func (r *Runtime) ctlSock(id string) string {
	return filepath.Join(r.stateDir(id), "ctl", ctlName)
}

// monitor returns a client of the control socket of container id's
// monitor, process pid, once it answers; an error when the container
// was made without a socket (by an older runtime), or when the socket
// does not answer while the monitor lives. The state directory's path,
// with a 64-character engine id in it, can be longer than a socket
// address holds: then the client reaches the socket through a
// descriptor of its directory, which the returned close keeps open.
func (r *Runtime) monitor(id string, m *meta, pid int) (c *control.Client, closeFn func(), err error) {
	if !m.Control {
		return nil, nil, errors.New("the container was made without a control socket")
	}
	path := r.ctlSock(id)
	closeFn = func() {}
	if len(path) >= maxSunPath {
		d, err := os.Open(filepath.Dir(path))
		if err != nil {
			return nil, nil, fmt.Errorf("control socket: %w", err)
		}
		path = fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), ctlName)
		closeFn = func() { d.Close() }
	}
	deadline := time.Now().Add(dialTimeout)
	for {
		c, err := control.Dial(path)
		if err == nil {
			return c, closeFn, nil
		}
		if processGone(pid) || time.Now().After(deadline) {
			closeFn()
			return nil, nil, err
		}
		// The monitor is setting up: its socket appears listening.
		time.Sleep(2 * time.Millisecond)
	}
}

// warn logs a warning as runc would: to the --log file when there is
// one, else to stderr.
func (r *Runtime) warn(msg string) {
	msg = "nestvm-oci: " + msg
	if r.logFile == "" {
		fmt.Fprintln(r.Stderr, msg)
		return
	}
	f, err := os.OpenFile(r.logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(r.Stderr, msg)
		return
	}
	defer f.Close()
	if r.logJSON {
		fmt.Fprintf(f, "{\"level\":\"warning\",\"msg\":%q,\"time\":%q}\n", msg, time.Now().UTC().Format(time.RFC3339Nano))
	} else {
		fmt.Fprintf(f, "%s level=warning msg=%q\n", time.Now().UTC().Format(time.RFC3339), msg)
	}
}

// terminating reports whether a kill's signal argument (runc's default
// is SIGTERM) is one that ends a nestvm program as an interruption:
// those go through the control socket.
func terminating(sig string) bool {
	switch strings.TrimPrefix(strings.ToUpper(sig), "SIG") {
	case "", "TERM", "15", "INT", "2":
		return true
	}
	return false
}

// kill ends a nestvm container's program through its monitor's control
// socket when the signal is SIGTERM or SIGINT (as those signals would:
// status 130); every other kill, and one the socket cannot take, goes to
// runc, which signals the monitor.
func (r *Runtime) kill(orig []string) error {
	if len(r.args.pos) < 1 || len(r.args.pos) > 2 || r.args.has("all") || r.args.has("a") {
		return exitStatusOf(r.runc(orig))
	}
	id := r.args.pos[0]
	sig := ""
	if len(r.args.pos) == 2 {
		sig = r.args.pos[1]
	}
	if !validID.MatchString(id) || !terminating(sig) {
		return exitStatusOf(r.runc(orig))
	}
	m, err := r.readMeta(id)
	if err != nil || m == nil || !m.Control {
		return exitStatusOf(r.runc(orig))
	}
	status, pid, err := r.runcState(id)
	if err != nil || status != "running" {
		return exitStatusOf(r.runc(orig))
	}
	c, done, err := r.monitor(id, m, pid)
	if err == nil {
		defer done()
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		defer cancel()
		name := "SIGTERM"
		if sig != "" && strings.Contains("INT2", strings.TrimPrefix(strings.ToUpper(sig), "SIG")) {
			name = "SIGINT"
		}
		if err = c.Kill(ctx, name+" from the container engine"); err == nil {
			return nil
		}
	}
	r.warn(fmt.Sprintf("kill %s: the control socket did not take it (%v): signalling the monitor instead", id, err))
	return exitStatusOf(r.runc(orig))
}
