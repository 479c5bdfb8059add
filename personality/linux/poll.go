package linux

import (
	"encoding/binary"
	"maps"
	"slices"
	"sync"
	"time"
)

// Poll events (include/uapi/linux/eventpoll.h, asm-generic/poll.h).
const (
	pollIn   = 0x1
	pollOut  = 0x4
	pollErr  = 0x8
	pollHup  = 0x10
	pollNval = 0x20
	epollET  = 1 << 31
	epollOne = 1 << 30
)

// readiness reports the poll events f has now, and the queue notified
// when they change (nil for descriptions always ready).
func (f *file) readiness() (uint32, *waitq) {
	switch f.kind {
	case kindPipe:
		pp := f.pipe
		pp.mu.Lock()
		defer pp.mu.Unlock()
		if f.fl()&oAccMode == oRdOnly {
			var ev uint32
			if len(pp.buf) > 0 {
				ev |= pollIn
			}
			if pp.writers == 0 {
				ev |= pollIn | pollHup
			}
			return ev, &pp.q
		}
		if pp.readers == 0 {
			return pollOut | pollErr, &pp.q
		}
		if len(pp.buf) < pipeSize {
			return pollOut, &pp.q
		}
		return 0, &pp.q
	case kindEventfd:
		ef := f.event
		ef.mu.Lock()
		defer ef.mu.Unlock()
		ev := uint32(pollOut)
		if ef.count > 0 {
			ev |= pollIn
		}
		return ev, &ef.q
	case kindEpoll:
		if f.epoll.anyReady() {
			return pollIn, &f.epoll.q
		}
		return 0, &f.epoll.q
	case kindConsole:
		return pollOut, nil
	}
	return pollIn | pollOut, nil
}

// eventfd is a Linux eventfd: a counter.
type eventfd struct {
	mu        sync.Mutex
	count     uint64
	semaphore bool
	q         waitq
}

func sysEventfd2(tc *task, a [6]uint64) (uint64, errno) {
	const efdSemaphore = 1
	flags := int(a[1])
	if flags&^(oCloexec|oNonblock|efdSemaphore) != 0 {
		return 0, eINVAL
	}
	f := &file{kind: kindEventfd, path: "anon_inode:[eventfd]", flags: oRdWr | flags&oNonblock, refs: 1,
		event: &eventfd{count: uint64(uint32(a[0])), semaphore: flags&efdSemaphore != 0}}
	fd, e := tc.p.files().add(f, 0, flags&oCloexec != 0)
	return uint64(fd), e
}

func sysEventfd(tc *task, a [6]uint64) (uint64, errno) { return sysEventfd2(tc, [6]uint64{a[0], 0}) }

func (tc *task) readEventfd(f *file, b []byte) (int, errno) {
	if len(b) < 8 {
		return 0, eINVAL
	}
	ef := f.event
	for {
		ef.mu.Lock()
		if ef.count > 0 {
			v := ef.count
			if ef.semaphore {
				v = 1
			}
			ef.count -= v
			ef.mu.Unlock()
			binary.LittleEndian.PutUint64(b, v)
			ef.q.notify()
			return 8, 0
		}
		ef.mu.Unlock()
		if f.fl()&oNonblock != 0 {
			return 0, eAGAIN
		}
		ready := func() bool { ev, _ := f.readiness(); return ev&pollIn != 0 }
		switch tc.block(ready, noDeadline, &ef.q) {
		case blockHeld:
			return 0, 0
		case blockInterrupted:
			return 0, eINTR
		}
	}
}

func (tc *task) writeEventfd(f *file, b []byte) (int, errno) {
	if len(b) < 8 {
		return 0, eINVAL
	}
	v := binary.LittleEndian.Uint64(b)
	if v == ^uint64(0) {
		return 0, eINVAL
	}
	ef := f.event
	ef.mu.Lock()
	if ef.count+v < ef.count || ef.count+v == ^uint64(0) {
		ef.mu.Unlock()
		return 0, eAGAIN
	}
	ef.count += v
	ef.mu.Unlock()
	ef.q.notify()
	return 8, 0
}

// epoll is an epoll instance: its interest list.
type epoll struct {
	mu    sync.Mutex
	items map[int]*epitem // by descriptor
	q     waitq
}

type epitem struct {
	fd     int
	f      *file
	events uint32
	data   uint64
	seen   uint64 // for edge-triggered items: the queue generation last reported
}

func (ep *epoll) anyReady() bool {
	ep.mu.Lock()
	items := slices.Collect(maps.Values(ep.items))
	ep.mu.Unlock()
	for _, it := range items {
		if ev, _ := it.f.readiness(); ev&(it.events|pollErr|pollHup) != 0 {
			return true
		}
	}
	return false
}

func sysEpollCreate1(tc *task, a [6]uint64) (uint64, errno) {
	if a[0]&^oCloexec != 0 {
		return 0, eINVAL
	}
	f := &file{kind: kindEpoll, path: "anon_inode:[eventpoll]", refs: 1, epoll: &epoll{items: map[int]*epitem{}}}
	fd, e := tc.p.files().add(f, 0, a[0]&oCloexec != 0)
	return uint64(fd), e
}

func sysEpollCreate(tc *task, a [6]uint64) (uint64, errno) {
	if int32(a[0]) <= 0 {
		return 0, eINVAL
	}
	return sysEpollCreate1(tc, [6]uint64{})
}

func sysEpollCtl(tc *task, a [6]uint64) (uint64, errno) {
	const (
		ctlAdd = 1
		ctlDel = 2
		ctlMod = 3
	)
	ef, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	if ef.kind != kindEpoll {
		return 0, eINVAL
	}
	f, e := tc.p.files().get(a[2])
	if e != 0 {
		return 0, e
	}
	if f == ef {
		return 0, eINVAL
	}
	if f.kind == kindFile || f.kind == kindDir {
		return 0, ePERM // regular files are always ready: Linux refuses them
	}
	var ev [12]byte
	if a[1] != ctlDel {
		if e := tc.readMem(a[3], ev[:]); e != 0 {
			return 0, e
		}
	}
	ep := ef.epoll
	ep.mu.Lock()
	defer ep.mu.Unlock()
	fd := int(a[2])
	_, have := ep.items[fd]
	switch a[1] {
	case ctlAdd:
		if have {
			return 0, eEXIST
		}
		ep.items[fd] = &epitem{fd: fd, f: f, events: binary.LittleEndian.Uint32(ev[:]), data: binary.LittleEndian.Uint64(ev[4:]), seen: ^uint64(0)}
	case ctlMod:
		if !have {
			return 0, eNOENT
		}
		ep.items[fd] = &epitem{fd: fd, f: f, events: binary.LittleEndian.Uint32(ev[:]), data: binary.LittleEndian.Uint64(ev[4:]), seen: ^uint64(0)}
	case ctlDel:
		if !have {
			return 0, eNOENT
		}
		delete(ep.items, fd)
	default:
		return 0, eINVAL
	}
	ep.q.notify()
	return 0, 0
}

// collect returns the ready items, at most max, and the queues to wait
// on when there are none.
func (ep *epoll) collect(max int) ([][12]byte, []*waitq) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	var out [][12]byte
	qs := []*waitq{&ep.q}
	for _, it := range ep.items {
		ev, q := it.f.readiness()
		if q != nil {
			qs = append(qs, q)
		}
		got := ev & (it.events | pollErr | pollHup)
		if got == 0 || len(out) >= max {
			continue
		}
		if it.events&epollET != 0 && q != nil {
			q.mu.Lock()
			gen := q.gen
			q.mu.Unlock()
			if gen == it.seen {
				continue
			}
			it.seen = gen
		}
		var rec [12]byte
		binary.LittleEndian.PutUint32(rec[:], got)
		binary.LittleEndian.PutUint64(rec[4:], it.data)
		out = append(out, rec)
		if it.events&epollOne != 0 {
			it.events = 0
		}
	}
	return out, qs
}

func sysEpollWait(tc *task, a [6]uint64) (uint64, errno) {
	ef, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	if ef.kind != kindEpoll {
		return 0, eINVAL
	}
	max := int(int32(a[2]))
	if max <= 0 || max > 1<<16 {
		return 0, eINVAL
	}
	deadline := tc.msDeadline(int32(a[3]))
	for {
		out, qs := ef.epoll.collect(max)
		if len(out) > 0 {
			b := make([]byte, 0, len(out)*12)
			for _, r := range out {
				b = append(b, r[:]...)
			}
			return uint64(len(out)), tc.writeMem(a[1], b)
		}
		if int32(a[3]) == 0 {
			return 0, 0
		}
		ready := func() bool { return ef.epoll.anyReady() }
		switch tc.block(ready, deadline, qs...) {
		case blockTimeout, blockHeld:
			return 0, 0
		case blockInterrupted:
			return 0, eINTR
		}
	}
}

// msDeadline turns a millisecond timeout (negative: none) into a
// deadline.
func (tc *task) msDeadline(ms int32) deadline {
	if ms < 0 {
		return noDeadline
	}
	return tc.after(time.Duration(ms) * time.Millisecond)
}

func sysPoll(tc *task, a [6]uint64) (uint64, errno) {
	return tc.poll(a[0], a[1], tc.msDeadline(int32(a[2])), int32(a[2]) == 0)
}

func sysPpoll(tc *task, a [6]uint64) (uint64, errno) {
	deadline, now := noDeadline, false
	if a[2] != 0 {
		d, e := readTimespec(tc, a[2])
		if e != 0 {
			return 0, e
		}
		deadline, now = tc.after(d), d == 0
	}
	return tc.poll(a[0], a[1], deadline, now)
}

// poll waits until one of nfds pollfd records at addr is ready.
func (tc *task) poll(addr, nfds uint64, deadline deadline, now bool) (uint64, errno) {
	if nfds > maxFDs {
		return 0, eINVAL
	}
	raw := make([]byte, nfds*8)
	if e := tc.readMem(addr, raw); e != 0 {
		return 0, e
	}
	check := func() (int, []*waitq) {
		n := 0
		var qs []*waitq
		for i := uint64(0); i < nfds; i++ {
			rec := raw[i*8:]
			fd := int32(binary.LittleEndian.Uint32(rec))
			want := uint32(binary.LittleEndian.Uint16(rec[4:]))
			var got uint32
			if fd >= 0 {
				f, e := tc.p.files().get(uint64(fd))
				if e != 0 {
					got = pollNval
				} else {
					ev, q := f.readiness()
					got = ev & (want | pollErr | pollHup)
					if q != nil {
						qs = append(qs, q)
					}
				}
			}
			binary.LittleEndian.PutUint16(rec[6:], uint16(got))
			if got != 0 {
				n++
			}
		}
		return n, qs
	}
	for {
		n, qs := check()
		if n > 0 || now {
			return uint64(n), tc.writeMem(addr, raw)
		}
		ready := func() bool { n, _ := check(); return n > 0 }
		switch tc.block(ready, deadline, qs...) {
		case blockTimeout:
			return 0, tc.writeMem(addr, raw)
		case blockHeld:
			return 0, 0
		case blockInterrupted:
			return 0, eINTR
		}
	}
}
