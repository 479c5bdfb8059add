package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestDecodeRequest(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		want string // in the error
	}{
		{`{"v":1,"op":"state"}`, true, ""},
		{`{"v":1,"op":"checkpoint","stop":true}`, true, ""},
		{`{"v":1,"op":"kill","reason":"done"}`, true, ""},
		{`{"v":1,"op":"trace"}`, true, ""},
		{`{"v":2,"op":"state"}`, false, "version 2"},
		{`{"op":"state"}`, false, "version 0"},
		{`{"v":1}`, false, "no op"},
		{`{"v":1,"op":"reboot"}`, false, `unknown op "reboot"`},
		{`{"v":1,"op":"state","stop":true}`, false, "stop is for checkpoint"},
		{`{"v":1,"op":"state","reason":"x"}`, false, "reason is for kill"},
		{`{"v":1,"op":"state","extra":1}`, false, "unknown field"},
		{`{"v":1,"op":"state"} {"v":1,"op":"kill"}`, false, "more than one"},
		{`garbage`, false, "bad request"},
		{``, false, "bad request"},
		{`{"v":1,"op":"kill","reason":"` + strings.Repeat("x", maxReason+1) + `"}`, false, "reason longer"},
		{strings.Repeat(" ", MaxRequest), false, "longer than"},
	} {
		_, err := DecodeRequest([]byte(c.line))
		if (err == nil) != c.ok || (err != nil && (!strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrRequest))) {
			t.Errorf("%.60q: error %v, want ok=%v containing %q", c.line, err, c.ok, c.want)
		}
	}
}

// FuzzRequest: no input makes the decoder panic, and what it accepts is
// a request of this version for a known operation, which encodes back to
// a line it accepts again.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{`{"v":1,"op":"state"}`, `{"v":1,"op":"kill","reason":"x"}`, `{"v":1,"op":"checkpoint","stop":true}`, `garbage`, `{"v":1,"op":"`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := DecodeRequest(line)
		if err != nil {
			return
		}
		if r.V != Version {
			t.Fatalf("accepted version %d", r.V)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if r2, err := DecodeRequest(b); err != nil || r2 != r {
			t.Fatalf("%q decoded as %+v, encoded as %s: %+v, %v", line, r, b, r2, err)
		}
	})
}

// testServer serves a socket in a fresh directory with a control layer
// that wraps nothing (no program: an empty tree).
func testServer(t *testing.T, ck Checkpointer) (*Server, *killed) {
	t.Helper()
	k := &killed{}
	s, err := Listen(Config{Path: filepath.Join(t.TempDir(), "m.sock"), Program: "prog", Backend: "emu", Layer: NewLayer(nil, true),
		Checkpoint: ck, Kill: k.kill, Log: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, k
}

type killed struct {
	mu      sync.Mutex
	reasons []string
}

func (k *killed) kill(reason string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reasons = append(k.reasons, reason)
	return nil
}

// rawRequest sends line as it is and returns the reply line.
func rawRequest(t *testing.T, path string, line []byte) Reply {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go conn.Write(line) // a server that answers before reading it all must not block the test
	b, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		t.Fatalf("no reply to %.40q: %v", line, err)
	}
	var r Reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	return r
}

// TestServerAnswersGarbage: what the server cannot parse (not JSON, of
// another version, longer than MaxRequest, no newline and then a hang-up)
// gets an error reply, and the server goes on answering.
func TestServerAnswersGarbage(t *testing.T) {
	s, _ := testServer(t, nil)
	for _, line := range [][]byte{
		[]byte("garbage\n"),
		[]byte("{\"v\":99,\"op\":\"state\"}\n"),
		[]byte(strings.Repeat("x", 3*MaxRequest)),
		{0, 1, 2, 0xff, '\n'},
	} {
		if r := rawRequest(t, s.Path(), line); r.OK || r.Error == "" || r.V != Version {
			t.Errorf("%.40q: reply %+v, want an error", line, r)
		}
	}
	c, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State(context.Background())
	if err != nil || st.Program != "prog" || st.PID != os.Getpid() || st.Socket != s.Path() {
		t.Fatalf("state after garbage: %+v, %v", st, err)
	}
}

// TestServerRequests: kill reaches the Kill function with the reason,
// checkpoint without a checkpoint layer says so, and Close removes the
// socket and ends a trace stream.
func TestServerRequests(t *testing.T) {
	s, k := testServer(t, nil)
	c, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Kill(ctx, "enough"); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	if len(k.reasons) != 1 || !strings.HasSuffix(k.reasons[0], ": enough") {
		t.Errorf("kill reasons %q", k.reasons)
	}
	k.mu.Unlock()
	if _, err := c.Checkpoint(ctx, false); err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no checkpoint layer") {
		t.Errorf("checkpoint without a layer: %v", err)
	}
	traced := make(chan error, 1)
	var sb strings.Builder
	go func() { traced <- c.Trace(ctx, &sb) }()
	// The stream is attached once the tap counts it.
	for s.cfg.Layer.Tap().Attached() == 0 {
		select {
		case err := <-traced:
			t.Fatalf("trace ended before it was attached: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	s.Close()
	if err := <-traced; err != nil {
		t.Errorf("trace at the server's close: %v", err)
	}
	if _, err := os.Lstat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	if _, err := Dial(s.Path()); err == nil {
		t.Error("Dial of a closed monitor's socket succeeded")
	}
}

// TestListenRefusesBusyPath: a path another server serves, or a file that
// is not a socket, is refused; a socket nobody serves is replaced.
func TestListenRefusesBusyPath(t *testing.T) {
	s, _ := testServer(t, nil)
	cfg := Config{Path: s.Path(), Layer: NewLayer(nil, true), Kill: func(string) error { return nil }}
	if _, err := Listen(cfg); err == nil || !strings.Contains(err.Error(), "another monitor") {
		t.Errorf("busy path: %v", err)
	}
	cfg.Path = filepath.Join(t.TempDir(), "file")
	os.WriteFile(cfg.Path, nil, 0o600)
	if _, err := Listen(cfg); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a regular file: %v", err)
	}
	// A socket left behind: bound, then its listener gone without
	// removing it.
	cfg.Path = filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s2, err := Listen(cfg)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	s2.Close()
}

// TestListAndPIDOf: List finds the sockets of live processes by the pid
// their names carry, and removes those of processes that are gone and
// those nothing listens on.
func TestListAndPIDOf(t *testing.T) {
	for name, want := range map[string]int{"12.sock": 12, "12-3.sock": 12, "x.sock": 0, "12": 0, "-1.sock": 0} {
		if pid, ok := PIDOf(name); pid != want || ok != (want != 0) {
			t.Errorf("PIDOf(%q) = %d, %v", name, pid, ok)
		}
	}
	dir := t.TempDir()
	mine := filepath.Join(dir, strconv.Itoa(os.Getpid())+".sock")
	gone := filepath.Join(dir, "2147483646.sock") // above pid_max: no such process
	for _, p := range []string{mine, gone} {
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		defer ln.Close()
	}
	// A socket of a live process (this one) that nothing listens on.
	deaf := filepath.Join(dir, strconv.Itoa(os.Getpid())+"-2.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: deaf, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	socks, err := List(dir)
	if err != nil || len(socks) != 1 || socks[0].Path != mine || socks[0].PID != os.Getpid() {
		t.Fatalf("List: %+v, %v", socks, err)
	}
	for _, p := range []string{gone, deaf} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s, that nothing serves, was kept: %v", p, err)
		}
	}
}
