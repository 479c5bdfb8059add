package vmm

import (
	"io"
	"testing"
	"time"

	"nestvm/abi"
)

// stdinCaller is a host space holding an input console over r, and a
// Caller acting in it.
func stdinCaller(t *testing.T, r io.Reader) (*Space, uint64) {
	t.Helper()
	s := NewMonitor(stubBackend{}, nil).NewHostSpace("stdin-test", DefaultQuota)
	t.Cleanup(func() { s.Kill("test over") })
	h, err := s.NewCaller().Insert(NewHostPort("stdin", StdinServer(r)), abi.RightRead|abi.RightGrant, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

type readResult struct {
	data string
	err  error
}

// readAsync calls console_read on h with a buffer of n bytes from a new
// Caller, and delivers the result on the channel.
func readAsync(s *Space, h uint64, n int) (*Caller, <-chan readResult) {
	c := s.NewCaller()
	done := make(chan readResult, 1)
	go func() {
		buf := make([]byte, n)
		r0, _, err := c.ConsoleRead(h, buf)
		if err != nil {
			r0 = 0
		}
		done <- readResult{string(buf[:r0]), err}
	}()
	return c, done
}

func wantRead(t *testing.T, done <-chan readResult, want string, wantErr error) {
	t.Helper()
	select {
	case got := <-done:
		if got.data != want || got.err != wantErr {
			t.Errorf("console_read: %q, %v; want %q, %v", got.data, got.err, want, wantErr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("console_read did not return in 60s (want %q)", want)
	}
}

// console_read waits for input, returns what is there (at most the
// buffer), keeps the rest for the next read, and reads 0 at the end.
func TestStdinReads(t *testing.T) {
	pr, pw := io.Pipe()
	s, h := stdinCaller(t, pr)
	c := s.NewCaller()
	if r0, _, err := c.ConsoleRead(h, nil); r0 != 0 || err != nil {
		t.Errorf("a read into nothing: %d, %v", r0, err)
	}
	if _, _, err := c.ConsoleWrite(h, []byte("x")); err != abi.ErrRights {
		t.Errorf("console_write on the input: %v", err)
	}
	_, done := readAsync(s, h, 4)
	// The read is under way once the pipe takes a write: nothing else
	// reads it.
	if _, err := pw.Write([]byte("abcdef")); err != nil {
		t.Fatal(err)
	}
	wantRead(t, done, "abcd", nil)
	_, done = readAsync(s, h, 100)
	wantRead(t, done, "ef", nil)
	// Two readers wait together: each gets its own line, none is lost
	// and none waits forever though the first Read fed only one.
	_, d1 := readAsync(s, h, 100)
	_, d2 := readAsync(s, h, 100)
	pw.Write([]byte("one"))
	pw.Write([]byte("two"))
	var got []string
	for _, d := range []<-chan readResult{d1, d2} {
		select {
		case r := <-d:
			got = append(got, r.data)
		case <-time.After(60 * time.Second):
			t.Fatalf("a reader still waits; got %q", got)
		}
	}
	if !(got[0] == "one" && got[1] == "two") && !(got[0] == "two" && got[1] == "one") {
		t.Errorf("two readers got %q", got)
	}
	pw.Close()
	for range 2 {
		_, done = readAsync(s, h, 100)
		wantRead(t, done, "", nil)
	}
}

// A read blocked on input that never comes ends when its caller is
// killed: the monitor is never held by it.
func TestStdinKillEndsRead(t *testing.T) {
	pr, _ := io.Pipe()
	s, h := stdinCaller(t, pr)
	c, done := readAsync(s, h, 16)
	c.Kill()
	wantRead(t, done, "", abi.ErrPeerGone)
	// A read after it waits on the Read still under way, and is ended
	// the same way.
	c, done = readAsync(s, h, 16)
	c.Kill()
	wantRead(t, done, "", abi.ErrPeerGone)
}
