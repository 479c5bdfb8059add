package linux

import (
	"golang.org/x/sys/unix"

	"nestvm/nester"
)

// The namespace and metadata calls: each is one operation of the files
// handle on the path as the files root names it.

// filesOp performs op on the files handle for the path argument at addr
// (resolved against dirfd), mapping the ABI's refusals to Linux's.
func (tc *task) filesOp(dirfd, addr uint64, op func(files uint64, rel []byte) error) (uint64, errno) {
	abs, e := tc.pathAt(dirfd, addr)
	if e != 0 {
		return 0, e
	}
	files, ok := tc.k.caps[nester.CapFiles]
	if !ok {
		return 0, eROFS
	}
	if err := op(files, []byte(rootRelative(abs))); err != nil {
		return 0, tc.writeErrno(err)
	}
	return 0, 0
}

// writeErrno maps a refused change: a read-only root is EROFS, as a
// read-only mount says.
func (tc *task) writeErrno(err error) errno {
	e := errnoOf(err, eIO)
	if e == eACCES && tc.k.readOnly() {
		return eROFS
	}
	return e
}

func discard(_, _ uint64, err error) error { return err }

func sysUnlinkat(tc *task, a [6]uint64) (uint64, errno) {
	if a[2]&^unix.AT_REMOVEDIR != 0 {
		return 0, eINVAL
	}
	return tc.filesOp(a[0], a[1], func(files uint64, rel []byte) error {
		if a[2]&unix.AT_REMOVEDIR != 0 {
			return discard(tc.c.FilesRmdir(files, rel))
		}
		return discard(tc.c.FilesUnlink(files, rel))
	})
}

func sysUnlink(tc *task, a [6]uint64) (uint64, errno) {
	return sysUnlinkat(tc, [6]uint64{atFDCWD, a[0], 0})
}

func sysRmdir(tc *task, a [6]uint64) (uint64, errno) {
	return sysUnlinkat(tc, [6]uint64{atFDCWD, a[0], unix.AT_REMOVEDIR})
}

func sysMkdirat(tc *task, a [6]uint64) (uint64, errno) {
	tc.p.mu.Lock()
	mode := a[2] & 0o7777 &^ uint64(tc.p.umask)
	tc.p.mu.Unlock()
	return tc.filesOp(a[0], a[1], func(files uint64, rel []byte) error {
		return discard(tc.c.FilesMkdir(files, rel, mode))
	})
}

func sysMkdir(tc *task, a [6]uint64) (uint64, errno) {
	return sysMkdirat(tc, [6]uint64{atFDCWD, a[0], a[1]})
}

func sysFchmodat(tc *task, a [6]uint64) (uint64, errno) {
	return tc.filesOp(a[0], a[1], func(files uint64, rel []byte) error {
		return discard(tc.c.FilesChmod(files, rel, a[2]&0o7777))
	})
}

func sysChmod(tc *task, a [6]uint64) (uint64, errno) {
	return sysFchmodat(tc, [6]uint64{atFDCWD, a[0], a[1]})
}

// pathOf is the path an open file or directory was opened by, for the
// calls on a descriptor that the files root performs by name.
func (tc *task) pathOf(fd uint64) (string, errno) {
	f, e := tc.p.files().get(fd)
	if e != 0 {
		return "", e
	}
	if f.kind != kindFile && f.kind != kindDir {
		return "", eINVAL
	}
	return f.path, 0
}

func sysFchmod(tc *task, a [6]uint64) (uint64, errno) {
	abs, e := tc.pathOf(a[0])
	if e != 0 {
		return 0, e
	}
	if err := discard(tc.c.FilesChmod(tc.k.caps[nester.CapFiles], []byte(rootRelative(abs)), a[1]&0o7777)); err != nil {
		return 0, tc.writeErrno(err)
	}
	return 0, 0
}

func sysTruncate(tc *task, a [6]uint64) (uint64, errno) {
	if int64(a[1]) < 0 {
		return 0, eINVAL
	}
	return tc.filesOp(atFDCWD, a[0], func(files uint64, rel []byte) error {
		return discard(tc.c.FilesTruncate(files, rel, a[1]))
	})
}

func sysFtruncate(tc *task, a [6]uint64) (uint64, errno) {
	if int64(a[1]) < 0 {
		return 0, eINVAL
	}
	abs, e := tc.pathOf(a[0])
	if e != 0 {
		return 0, e
	}
	if err := discard(tc.c.FilesTruncate(tc.k.caps[nester.CapFiles], []byte(rootRelative(abs)), a[1])); err != nil {
		return 0, tc.writeErrno(err)
	}
	return 0, 0
}

// renameat2 flags.
const renameNoReplace = 1

func sysRenameat2(tc *task, a [6]uint64) (uint64, errno) {
	if a[4]&^renameNoReplace != 0 {
		return 0, eINVAL
	}
	from, e := tc.pathAt(a[0], a[1])
	if e != 0 {
		return 0, e
	}
	to, e := tc.pathAt(a[2], a[3])
	if e != 0 {
		return 0, e
	}
	if a[4]&renameNoReplace != 0 {
		if _, e := tc.statPath(to, true); e == 0 {
			return 0, eEXIST
		}
	}
	files := tc.k.caps[nester.CapFiles]
	paths := append(append([]byte(rootRelative(from)), 0), rootRelative(to)...)
	if err := discard(tc.c.FilesRename(files, paths)); err != nil {
		return 0, tc.writeErrno(err)
	}
	return 0, 0
}

func sysRename(tc *task, a [6]uint64) (uint64, errno) {
	return sysRenameat2(tc, [6]uint64{atFDCWD, a[0], atFDCWD, a[1], 0})
}

func sysRenameat(tc *task, a [6]uint64) (uint64, errno) {
	return sysRenameat2(tc, [6]uint64{a[0], a[1], a[2], a[3], 0})
}

func sysSymlinkat(tc *task, a [6]uint64) (uint64, errno) {
	target, e := tc.path(a[0])
	if e != 0 {
		return 0, e
	}
	link, e := tc.pathAt(a[1], a[2])
	if e != 0 {
		return 0, e
	}
	paths := append(append([]byte(target), 0), rootRelative(link)...)
	if err := discard(tc.c.FilesSymlink(tc.k.caps[nester.CapFiles], paths)); err != nil {
		return 0, tc.writeErrno(err)
	}
	return 0, 0
}

func sysSymlink(tc *task, a [6]uint64) (uint64, errno) {
	return sysSymlinkat(tc, [6]uint64{a[0], atFDCWD, a[1]})
}

// utimeOmit and utimeNow are utimensat's special nanosecond values.
const (
	utimeNow  = (1 << 30) - 1
	utimeOmit = (1 << 30) - 2
)

func sysUtimensat(tc *task, a [6]uint64) (uint64, errno) {
	var abs string
	var e errno
	if a[1] == 0 {
		// futimens: the descriptor itself.
		abs, e = tc.pathOf(a[0])
	} else {
		abs, e = tc.pathAt(a[0], a[1])
	}
	if e != 0 {
		return 0, e
	}
	now, e := tc.clock(unix.CLOCK_REALTIME)
	if e != 0 {
		return 0, e
	}
	times := [2]uint64{now, now}
	st, e := tc.statPath(abs, false)
	if e != 0 {
		return 0, e
	}
	if a[2] != 0 {
		var b [32]byte
		if e := tc.readMem(a[2], b[:]); e != 0 {
			return 0, e
		}
		old := [2]unix.Timespec{st.Atim, st.Mtim}
		for i := range times {
			sec, nsec := int64(le64(b[i*16:])), int64(le64(b[i*16+8:]))
			switch {
			case nsec == utimeNow:
			case nsec == utimeOmit:
				times[i] = uint64(old[i].Sec)*1e9 + uint64(old[i].Nsec)
			case nsec < 0 || nsec >= 1e9 || sec < 0:
				return 0, eINVAL
			default:
				times[i] = uint64(sec)*1e9 + uint64(nsec)
			}
		}
	}
	if err := discard(tc.c.FilesUtimes(tc.k.caps[nester.CapFiles], []byte(rootRelative(abs)), times[0], times[1])); err != nil {
		return 0, tc.writeErrno(err)
	}
	return 0, 0
}

func le64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func sysLink(tc *task, _ [6]uint64) (uint64, errno) {
	return 0, ePERM // the files root makes no hard links
}
