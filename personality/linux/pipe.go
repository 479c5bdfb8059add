package linux

import (
	"encoding/binary"
	"sync"
)

// pipeSize is a pipe's capacity, as Linux's default.
const pipeSize = 64 << 10

// pipe is a Linux pipe: a byte queue between the descriptions of its two
// ends, kept by the personality (processes share it through fork).
type pipe struct {
	mu      sync.Mutex
	buf     []byte
	readers int // open read ends
	writers int // open write ends
	q       waitq
}

func sysPipe(tc *task, a [6]uint64) (uint64, errno) { return sysPipe2(tc, [6]uint64{a[0], 0}) }

func sysPipe2(tc *task, a [6]uint64) (uint64, errno) {
	flags := int(a[1])
	if flags&^(oCloexec|oNonblock) != 0 {
		return 0, eINVAL
	}
	pp := &pipe{readers: 1, writers: 1}
	r := &file{kind: kindPipe, pipe: pp, path: "pipe:", flags: oRdOnly | flags&oNonblock, refs: 1}
	w := &file{kind: kindPipe, pipe: pp, path: "pipe:", flags: oWrOnly | flags&oNonblock, refs: 1}
	t := tc.p.files()
	rfd, e := t.add(r, 0, flags&oCloexec != 0)
	if e != 0 {
		r.unref(tc.c)
		w.unref(tc.c)
		return 0, e
	}
	wfd, e := t.add(w, 0, flags&oCloexec != 0)
	if e != 0 {
		t.close(tc.c, uint64(rfd))
		w.unref(tc.c)
		return 0, e
	}
	var b [8]byte
	binary.LittleEndian.PutUint32(b[:], uint32(rfd))
	binary.LittleEndian.PutUint32(b[4:], uint32(wfd))
	if e := tc.writeMem(a[0], b[:]); e != 0 {
		t.close(tc.c, uint64(rfd))
		t.close(tc.c, uint64(wfd))
		return 0, e
	}
	return 0, 0
}

// closeEnd drops one open end of the pipe.
func (pp *pipe) closeEnd(write bool) {
	pp.mu.Lock()
	if write {
		pp.writers--
	} else {
		pp.readers--
	}
	pp.mu.Unlock()
	pp.q.notify()
}

// readable reports whether a read would not block: data, or no writer.
func (pp *pipe) readable() bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return len(pp.buf) > 0 || pp.writers == 0
}

// writable reports whether a write would not block: room, or no reader.
func (pp *pipe) writable() bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return len(pp.buf) < pipeSize || pp.readers == 0
}

// read reads from the pipe, waiting for data unless nonblocking.
func (tc *task) readPipe(f *file, b []byte) (int, errno) {
	pp := f.pipe
	if f.fl()&oAccMode != oRdOnly {
		return 0, eBADF
	}
	if len(b) == 0 {
		return 0, 0
	}
	for {
		pp.mu.Lock()
		if len(pp.buf) > 0 {
			n := copy(b, pp.buf)
			pp.buf = pp.buf[n:]
			if len(pp.buf) == 0 {
				pp.buf = nil
			}
			pp.mu.Unlock()
			pp.q.notify()
			return n, 0
		}
		eof := pp.writers == 0
		pp.mu.Unlock()
		if eof {
			return 0, 0
		}
		if f.fl()&oNonblock != 0 {
			return 0, eAGAIN
		}
		switch tc.block(pp.readable, noDeadline, &pp.q) {
		case blockHeld:
			return 0, 0
		case blockInterrupted:
			return 0, eINTR
		}
	}
}

// writePipe writes all of b, waiting for room unless nonblocking. A write
// with no reader left is EPIPE, and SIGPIPE for the writer.
func (tc *task) writePipe(f *file, b []byte) (int, errno) {
	pp := f.pipe
	if f.fl()&oAccMode != oWrOnly {
		return 0, eBADF
	}
	done := 0
	for done < len(b) {
		pp.mu.Lock()
		if pp.readers == 0 {
			pp.mu.Unlock()
			tc.sendSelf(sigPIPE)
			if done > 0 {
				return done, 0
			}
			return 0, ePIPE
		}
		if room := pipeSize - len(pp.buf); room > 0 {
			n := min(room, len(b)-done)
			pp.buf = append(pp.buf, b[done:done+n]...)
			done += n
			pp.mu.Unlock()
			pp.q.notify()
			continue
		}
		pp.mu.Unlock()
		if f.fl()&oNonblock != 0 {
			if done > 0 {
				return done, 0
			}
			return 0, eAGAIN
		}
		switch tc.block(pp.writable, noDeadline, &pp.q) {
		case blockHeld:
			// Stopped mid-write: what went in stays; the call is re-issued
			// for the rest only if nothing went (a partial write returns).
			if done > 0 {
				tc.held = false
				return done, 0
			}
			return 0, 0
		case blockInterrupted:
			if done > 0 {
				return done, 0
			}
			return 0, eINTR
		}
	}
	return done, 0
}
