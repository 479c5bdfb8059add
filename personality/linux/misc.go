package linux

import (
	"encoding/binary"
	"time"
)

func sysGetrusage(tc *task, a [6]uint64) (uint64, errno) {
	// Nothing is accounted per process: all zeros, as for one that has
	// not run yet.
	return 0, tc.writeMem(a[1], make([]byte, 144))
}

func sysTimes(tc *task, a [6]uint64) (uint64, errno) {
	ns, e := tc.clock(1 /* CLOCK_MONOTONIC */)
	if e != 0 {
		return 0, e
	}
	if a[0] != 0 {
		if e := tc.writeMem(a[0], make([]byte, 32)); e != 0 {
			return 0, e
		}
	}
	return ns / 1e7, 0 // clock ticks at 100 Hz (AT_CLKTCK)
}

func sysFsync(tc *task, a [6]uint64) (uint64, errno) {
	if _, e := tc.p.files().get(a[0]); e != 0 {
		return 0, e
	}
	return 0, 0 // the files root's writes reach the host's files at once
}

// sysSelect is select and pselect6, as poll over the descriptors the sets
// name.
func sysSelect(tc *task, a [6]uint64, pselect bool) (uint64, errno) {
	n := a[0]
	if int64(n) < 0 || n > maxFDs {
		return 0, eINVAL
	}
	words := (n + 63) / 64
	sets := [3][]uint64{}
	for i, addr := range []uint64{a[1], a[2], a[3]} {
		sets[i] = make([]uint64, words)
		if addr == 0 || words == 0 {
			continue
		}
		raw := make([]byte, words*8)
		if e := tc.readMem(addr, raw); e != 0 {
			return 0, e
		}
		for w := range sets[i] {
			sets[i][w] = binary.LittleEndian.Uint64(raw[w*8:])
		}
	}
	deadline, now := noDeadline, false
	if a[4] != 0 {
		var b [16]byte
		if e := tc.readMem(a[4], b[:]); e != 0 {
			return 0, e
		}
		sec, frac := int64(binary.LittleEndian.Uint64(b[:])), int64(binary.LittleEndian.Uint64(b[8:]))
		unit := time.Microsecond
		if pselect {
			unit = time.Nanosecond
		}
		if sec < 0 || frac < 0 {
			return 0, eINVAL
		}
		d := time.Duration(min(sec, 1<<32))*time.Second + time.Duration(frac)*unit
		deadline, now = tc.after(d), d == 0
	}
	var out [3][]uint64
	check := func() (int, []*waitq, errno) {
		count := 0
		var qs []*waitq
		for i := range out {
			out[i] = make([]uint64, words)
		}
		for fd := uint64(0); fd < n; fd++ {
			bit := uint64(1) << (fd % 64)
			want := [3]bool{sets[0][fd/64]&bit != 0, sets[1][fd/64]&bit != 0, sets[2][fd/64]&bit != 0}
			if !want[0] && !want[1] && !want[2] {
				continue
			}
			f, e := tc.p.files().get(fd)
			if e != 0 {
				return 0, nil, eBADF
			}
			ev, q := f.readiness()
			if q != nil {
				qs = append(qs, q)
			}
			for i, on := range [3]bool{want[0] && ev&(pollIn|pollHup) != 0, want[1] && ev&(pollOut|pollErr) != 0, false} {
				if on {
					out[i][fd/64] |= bit
					count++
				}
			}
		}
		return count, qs, 0
	}
	write := func() errno {
		for i, addr := range []uint64{a[1], a[2], a[3]} {
			if addr == 0 || words == 0 {
				continue
			}
			raw := make([]byte, words*8)
			for w, v := range out[i] {
				binary.LittleEndian.PutUint64(raw[w*8:], v)
			}
			if e := tc.writeMem(addr, raw); e != 0 {
				return e
			}
		}
		return 0
	}
	for {
		count, qs, e := check()
		if e != 0 {
			return 0, e
		}
		if count > 0 || now {
			return uint64(count), write()
		}
		ready := func() bool { c, _, e := check(); return c > 0 || e != 0 }
		switch tc.block(ready, deadline, qs...) {
		case blockTimeout:
			for i := range out {
				clear(out[i])
			}
			return 0, write()
		case blockHeld:
			return 0, 0
		case blockInterrupted:
			return 0, eINTR
		}
	}
}

func sysSelectCall(tc *task, a [6]uint64) (uint64, errno)   { return sysSelect(tc, a, false) }
func sysPselect6Call(tc *task, a [6]uint64) (uint64, errno) { return sysSelect(tc, a, true) }

// sysGetgroups reports no supplementary groups: the program runs as root
// with its own group only, as a process in a fresh namespace would.
func sysGetgroups(tc *task, a [6]uint64) (uint64, errno) {
	if int32(a[0]) < 0 {
		return 0, eINVAL
	}
	return 0, 0
}
