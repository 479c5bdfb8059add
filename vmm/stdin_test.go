package vmm

import (
	"bytes"
	"io"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/machine"
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

// FuzzStdin reads an input through console_read as a guest does, with
// buffers of any address and length: every result is a byte count or an
// error code, the bytes come back in order and whole, nothing is written
// past a buffer, and the end reads as 0.
func FuzzStdin(f *testing.F) {
	f.Add([]byte("a\nb\n"), uint64(0), uint64(2), uint64(64))
	f.Add([]byte(""), uint64(0), uint64(0), uint64(1))
	f.Add(bytes.Repeat([]byte("xyz"), 5000), uint64(0x100), uint64(7), uint64(0x700))
	f.Add([]byte("hostile"), uint64(0xfff), uint64(1<<40), uint64(16))
	f.Fuzz(func(t *testing.T, input []byte, at, n1, n2 uint64) {
		fs := newFuzzSpace(t, "stdin")
		h, err := fs.s.insertHandle(NewHostPort("stdin", StdinServer(bytes.NewReader(input))), abi.RightRead, 0)
		if err != nil {
			t.Fatal(err)
		}
		page := fs.data.Bytes()[:pageSize]
		if n1 == 0 && n2 == 0 {
			n2 = 1 // something must read the input
		}
		var got []byte
		for i := 0; ; i++ {
			n := n1
			if i%2 == 1 {
				n = n2
			}
			// Within the writable page the buffer is checked against
			// a copy; elsewhere it is whatever the fuzzer made it.
			addr := fuzzData + at
			before := bytes.Clone(page)
			c := machine.Call{Args: [6]uint64{h, uint64(abi.OpConsoleRead), addr, n}, RSP: fuzzData + 0xf00}
			fs.t.Hypercall(&c)
			r0 := c.Ret[0]
			if e := abi.ResultError(r0); e != abi.OK {
				if err := checkResult(uint64(abi.OpConsoleRead), r0); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(page, before) {
					t.Fatal("a failed read wrote guest memory")
				}
				// A buffer that cannot be written ends the test: the
				// same call fails the same way each time.
				return
			}
			if r0 > n {
				t.Fatalf("read %d bytes into a buffer of %d", r0, n)
			}
			if r0 == 0 {
				if n != 0 && len(got) != len(input) {
					t.Fatalf("end after %d of %d bytes", len(got), len(input))
				}
				if n == 0 {
					continue // an empty buffer reads nothing; the next has the other length
				}
				break
			}
			off := at
			got = append(got, page[off:off+r0]...)
			if !bytes.Equal(page[:off], before[:off]) || !bytes.Equal(page[off+r0:], before[off+r0:]) {
				t.Fatal("a read wrote outside its buffer's bytes")
			}
			if !bytes.HasPrefix(input, got) {
				t.Fatalf("read %q, not a prefix of the input", got)
			}
		}
		if !bytes.Equal(got, input) {
			t.Fatalf("read %d bytes of %d", len(got), len(input))
		}
	})
}
