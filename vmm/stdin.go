package vmm

import (
	"errors"
	"io"
	"sync"
	"time"

	"nestvm/abi"
)

// stdinChunk is the most one read from the input takes at a time.
const stdinChunk = 64 << 10

// Stdin is an input console: it answers console_read with what a reader
// (the monitor's standard input) gives.
//
// A reader such as a terminal or a pipe blocks until input comes, and Go
// cannot interrupt a Read. So the reading is done by a goroutine, started
// only when a program asks and nothing is buffered (input nobody asked for
// stays with the host), and the calling thread sleeps on its own wake
// channel until the goroutine brings bytes or the input ends. A stop or a
// kill wakes the sleep as it wakes every other blocking operation: a
// stopped thread re-issues its read when resumed (the bytes wait in the
// buffer meanwhile), a killed one ends, and a Read still blocked then
// holds nothing the monitor waits for.
type Stdin struct {
	r io.Reader

	mu      sync.Mutex
	buf     []byte // read, and not yet given to a program
	err     error  // the reader's error, io.EOF at the end; final
	reading bool   // the goroutine is in a Read
	waiters map[*Thread]struct{}
}

// StdinServer returns an input console reading r.
func StdinServer(r io.Reader) *Stdin {
	return &Stdin{r: r, waiters: map[*Thread]struct{}{}}
}

// Serve implements Server.
func (s *Stdin) Serve(inv *Invocation) {
	if inv.Op != abi.OpConsoleRead {
		inv.Fail(abi.ErrInvalidOp)
		return
	}
	out := inv.Buffer(0)
	if out.Len() == 0 {
		inv.Return(0, 0)
		return
	}
	if inv.from == nil {
		inv.Fail(abi.ErrWouldBlock) // no thread to wait in
		return
	}
	// A forwarded read sleeps as the thread it is for, so that thread's
	// stop or kill reaches it (as Thread.call does).
	t := inv.from.who()
	s.mu.Lock()
	s.waiters[t] = struct{}{}
	s.mu.Unlock()
	// Each look finding nothing starts a Read if none is under way: the
	// bytes the last one brought may have gone to another thread.
	why := t.sleep(func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.buf) > 0 || s.err != nil {
			return true
		}
		s.fill()
		return false
	}, true, time.Time{}, nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiters, t)
	if r, done := after(why); done {
		inv.res.act = r.act
		return
	}
	if len(s.buf) > 0 {
		n := out.Write(s.buf)
		s.buf = s.buf[n:]
		inv.Return(uint64(n), 0)
		return
	}
	if errors.Is(s.err, io.EOF) {
		inv.Return(0, 0)
		return
	}
	inv.Fail(abi.ErrIO)
}

// fill starts a Read unless one is under way. Callers hold s.mu and have
// found nothing buffered.
func (s *Stdin) fill() {
	if s.reading {
		return
	}
	s.reading = true
	go func() {
		p := make([]byte, stdinChunk)
		var n int
		var err error
		// A Read may return nothing and no error; only bytes or an
		// error wake the waiters.
		for n == 0 && err == nil {
			n, err = s.r.Read(p)
		}
		s.mu.Lock()
		s.buf = append(s.buf, p[:n]...)
		if err != nil {
			s.err = err
		}
		s.reading = false
		woken := make([]*Thread, 0, len(s.waiters))
		for t := range s.waiters {
			woken = append(woken, t)
		}
		s.mu.Unlock()
		for _, t := range woken {
			t.kick()
		}
	}()
}
