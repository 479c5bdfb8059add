package linux

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"path"
	"time"

	"golang.org/x/sys/unix"

	"nestvm/abi"
	"nestvm/machine"
	"nestvm/nester"
	"nestvm/vmm"
)

// task is one system call (or fault) being served: the process and thread
// it came from, the fault, and a Caller acting for that thread.
type task struct {
	k    *kernel
	p    *process
	t    *thread
	fc   *vmm.FaultCall
	c    *vmm.Caller
	regs machine.Regs
	// held is set by a call that must not complete: the thread was asked
	// to stop or end while it waited, and resumes at its syscall.
	held bool
	// raw is set by a call that set the thread's whole state itself
	// (rt_sigreturn): no result goes in RAX.
	raw bool
}

// Support says how fully the personality implements a system call.
type Support int

// Support levels, as gVisor's syscall table states them.
const (
	// Full: as Linux does it, for what nestvm can express.
	Full Support = iota
	// Partial: the common uses work; the rest get an error (the note says
	// which).
	Partial
	// Stub: answered without effect (a success or a fixed error), because
	// programs call it but need nothing from it here.
	Stub
)

// sysFn performs a system call with its six arguments and returns the
// result or an error number.
type sysFn func(tc *task, a [6]uint64) (uint64, errno)

// sysEntry is one row of the system call table.
type sysEntry struct {
	name    string
	fn      sysFn
	support Support
	note    string
}

// syscallName names a system call number.
func syscallName(nr uint64) string {
	if nr < uint64(len(table)) && table[nr].name != "" {
		return table[nr].name
	}
	if n, ok := unnamed[nr]; ok {
		return n
	}
	return fmt.Sprintf("syscall_%d", nr)
}

// Syscall describes one row of the table, for documentation and tools.
type Syscall struct {
	Nr      uint64
	Name    string
	Support Support
	Note    string
}

// Table returns the system calls the personality serves, by number.
func Table() []Syscall {
	var out []Syscall
	for nr, e := range table {
		if e.fn != nil {
			out = append(out, Syscall{Nr: uint64(nr), Name: e.name, Support: e.support, Note: e.note})
		}
	}
	return out
}

// syscall serves the system call the thread made.
func (tc *task) syscall() {
	regs, err := tc.fc.Regs()
	if err != nil {
		tc.fc.Kill(128+sigKILL, fmt.Sprintf("system call: %v", err))
		return
	}
	tc.regs = regs
	nr := regs.RAX
	a := [6]uint64{regs.RDI, regs.RSI, regs.RDX, regs.R10, regs.R8, regs.R9}
	var ret uint64
	if nr == kickSyscall && tc.kicked() {
		return
	}
	if nr < uint64(len(table)) && table[nr].fn != nil {
		r, e := table[nr].fn(tc, a)
		if tc.held {
			return
		}
		ret = r
		if e != 0 {
			ret = errResult(e)
		}
	} else {
		tc.k.unsupported(nr)
		ret = errResult(eNOSYS)
	}
	if tc.raw {
		tc.deliverPending()
		return
	}
	tc.complete(ret)
}

// atFDCWD is AT_FDCWD as a system call argument register holds it.
const atFDCWD = uint64(1<<64 + unix.AT_FDCWD)

// errResult is what RAX holds for a call that failed with e: -e.
func errResult(e errno) uint64 { return -uint64(e) }

// complete resumes the thread past its syscall with ret in RAX.
func (tc *task) complete(ret uint64) {
	r := tc.regs
	r.RAX = ret
	r.RIP += 2
	r.RCX, r.R11 = r.RIP, r.RFLAGS // what sysret leaves, on every backend
	if err := tc.fc.SetRegs(r); err != nil {
		tc.fc.Kill(128+sigSEGV, err.Error())
		return
	}
	tc.deliverPending()
}

// deliverPending runs the handler of a pending signal the thread does not
// block, as the thread leaves the personality.
func (tc *task) deliverPending() {
	info, ok := tc.nextSignal()
	if !ok {
		return
	}
	regs, err := tc.fc.Regs()
	if err == nil && tc.deliver(info, regs) {
		return
	}
	tc.dieOfSignal(sigSEGV, fmt.Sprintf("cannot deliver signal %d", info.signo))
}

// fault turns a CPU fault into the signal Linux sends for it: its
// handler runs, or the process dies of it (also when the thread blocks
// it, as Linux forces a fault's signal).
func (tc *task) fault() {
	f := tc.fc.Fault
	if f.Vector == machine.VecPage && f.ErrorCode&machine.PFPresent == 0 {
		// A first touch of a lazy area: commit it and go on.
		ok, e := tc.p.mem().commit(tc.c, f.Addr, f.ErrorCode&machine.PFWrite != 0)
		if ok {
			return
		}
		if e != 0 {
			// Out of memory quota: Linux's OOM killer would end it.
			tc.k.log.Warn("out of memory: the process touched more than the memory quota allows", "pid", tc.p.pid, "addr", fmt.Sprintf("%#x", f.Addr), "error", e)
			tc.dieOfSignal(sigKILL, "out of memory")
			return
		}
	}
	sig := f.Signal()
	p := tc.p
	p.mu.Lock()
	act := p.sig.actions[sig]
	p.mu.Unlock()
	blocked := tc.t.sigmask&(1<<(sig-1)) != 0
	if act.handler == sigDefault || act.handler == sigIgnore || blocked {
		tc.k.log.Debug("fatal signal", "pid", p.pid, "signal", sig, "fault", f.String())
		tc.dieOfSignal(sig, f.String())
		return
	}
	regs, err := tc.fc.Regs()
	if err != nil {
		tc.dieOfSignal(sig, f.String())
		return
	}
	info := sigInfo{signo: int32(sig), fault: &faultInfo{trapno: uint64(f.Vector), err: uint64(f.ErrorCode), cr2: f.Addr}}
	if f.Vector == machine.VecPage {
		info.addr = f.Addr
		info.code = segvMaperr
		if f.ErrorCode&machine.PFPresent != 0 {
			info.code = segvAccerr
		}
	} else {
		info.addr = f.RIP
		info.code = 0x80 // SI_KERNEL
	}
	if !tc.deliver(info, regs) {
		tc.dieOfSignal(sig, f.String())
	}
}

// dieOfSignal ends the process as a fatal signal does: status 128+sig.
func (tc *task) dieOfSignal(sig int, why string) {
	tc.held = true
	tc.fc.Kill(128+sig, why)
	tc.k.log.Debug("process died of a signal", "pid", tc.p.pid, "signal", sig, "why", why)
	tc.k.exit(tc.p, sig, "")
}

// Signal numbers (asm/signal.h).
const (
	sigABRT = 6
	sigKILL = 9
	sigSEGV = 11
	sigPIPE = 13
	sigCHLD = 17
)

// mem helpers for system call arguments.

func (tc *task) readMem(addr uint64, b []byte) errno { return tc.p.mem().read(tc.c, addr, b) }

func (tc *task) writeMem(addr uint64, b []byte) errno { return tc.p.mem().writeErr(tc.c, addr, b) }

func (tc *task) path(addr uint64) (string, errno) {
	s, e := tc.p.mem().readString(tc.c, addr, 4096)
	if e != 0 {
		return "", e
	}
	if s == "" {
		return "", eNOENT
	}
	return s, 0
}

// pathAt resolves a path argument against dirfd (AT_FDCWD or an open
// directory), as the *at calls do.
func (tc *task) pathAt(dirfd, addr uint64) (string, errno) {
	s, e := tc.path(addr)
	if e != 0 {
		return "", e
	}
	base := tc.p.cwdNow()
	if int32(dirfd) != unix.AT_FDCWD && (len(s) == 0 || s[0] != '/') {
		f, e := tc.p.files().get(dirfd)
		if e != 0 {
			return "", e
		}
		if f.kind != kindDir {
			return "", eNOTDIR
		}
		base = f.path
	}
	return resolve(base, s), 0
}

// The calls.

func sysRead(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	buf := make([]byte, min(a[2], 1<<20))
	n, e := tc.readFile(f, buf, -1)
	if e != 0 || tc.held {
		return 0, e
	}
	if e := tc.writeMem(a[1], buf[:n]); e != 0 {
		return 0, e
	}
	return uint64(n), 0
}

func sysPread(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	if f.kind != kindFile {
		return 0, eSPIPE
	}
	if int64(a[3]) < 0 {
		return 0, eINVAL
	}
	buf := make([]byte, min(a[2], 1<<20))
	n, e := tc.readFile(f, buf, int64(a[3]))
	if e != 0 {
		return 0, e
	}
	return uint64(n), tc.writeMem(a[1], buf[:n])
}

func sysWrite(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	buf := make([]byte, min(a[2], 1<<20))
	if e := tc.readMem(a[1], buf); e != 0 {
		return 0, e
	}
	n, e := tc.writeFile(f, buf, -1)
	return uint64(n), e
}

func sysPwrite(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	if f.kind != kindFile {
		return 0, eSPIPE
	}
	buf := make([]byte, min(a[2], 1<<20))
	if e := tc.readMem(a[1], buf); e != 0 {
		return 0, e
	}
	n, e := tc.writeFile(f, buf, int64(a[3]))
	return uint64(n), e
}

// iovecs reads an iovec array.
func (tc *task) iovecs(addr, n uint64) ([][2]uint64, errno) {
	if n > 1024 {
		return nil, eINVAL
	}
	raw := make([]byte, n*16)
	if e := tc.readMem(addr, raw); e != 0 {
		return nil, e
	}
	iov := make([][2]uint64, n)
	for i := range iov {
		iov[i] = [2]uint64{binary.LittleEndian.Uint64(raw[i*16:]), binary.LittleEndian.Uint64(raw[i*16+8:])}
	}
	return iov, 0
}

func sysWritev(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	iov, e := tc.iovecs(a[1], a[2])
	if e != 0 {
		return 0, e
	}
	var all []byte
	for _, v := range iov {
		if v[1] > 1<<20 || uint64(len(all))+v[1] > 4<<20 {
			return 0, eINVAL
		}
		b := make([]byte, v[1])
		if e := tc.readMem(v[0], b); e != 0 {
			return 0, e
		}
		all = append(all, b...)
	}
	n, e := tc.writeFile(f, all, -1)
	return uint64(n), e
}

func sysReadv(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	iov, e := tc.iovecs(a[1], a[2])
	if e != 0 {
		return 0, e
	}
	var total uint64
	for _, v := range iov {
		if v[1] == 0 {
			continue
		}
		b := make([]byte, min(v[1], 1<<20))
		n, e := tc.readFile(f, b, -1)
		if e != 0 || tc.held {
			return total, e
		}
		if e := tc.writeMem(v[0], b[:n]); e != 0 {
			return total, e
		}
		total += uint64(n)
		if n < len(b) {
			break
		}
	}
	return total, 0
}

func sysOpen(tc *task, a [6]uint64) (uint64, errno) {
	return sysOpenat(tc, [6]uint64{atFDCWD, a[0], a[1], a[2]})
}

func sysOpenat(tc *task, a [6]uint64) (uint64, errno) {
	abs, e := tc.pathAt(a[0], a[1])
	if e != 0 {
		return 0, e
	}
	flags := int(a[2])
	f, e := tc.open(abs, flags)
	if e != 0 {
		return 0, e
	}
	fd, e := tc.p.files().add(f, 0, flags&oCloexec != 0)
	if e != 0 {
		f.unref(tc.c)
	}
	return uint64(fd), e
}

func sysClose(tc *task, a [6]uint64) (uint64, errno) { return 0, tc.p.files().close(tc.c, a[0]) }

func sysLseek(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	if f.kind != kindFile && f.kind != kindDir {
		return 0, eSPIPE
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var base int64
	switch a[2] {
	case 0: // SEEK_SET
	case 1: // SEEK_CUR
		base = f.off
	case 2: // SEEK_END
		if f.kind == kindDir {
			return 0, eINVAL
		}
		size, _, err := tc.c.FileSize(f.handle)
		if err != nil {
			return 0, errnoOf(err, eIO)
		}
		base = int64(size)
	default:
		return 0, eINVAL
	}
	off := base + int64(a[1])
	if off < 0 {
		return 0, eINVAL
	}
	f.off = off
	return uint64(off), 0
}

// statFile fills a struct stat for f: the files root's record for files
// and directories, a character device for the rest.
func (tc *task) statFile(f *file) (unix.Stat_t, errno) {
	switch f.kind {
	case kindFile, kindDir:
		buf := make([]byte, statSize)
		if _, _, err := tc.c.FileStat(f.handle, buf); err != nil {
			return unix.Stat_t{}, errnoOf(err, eIO)
		}
		return linuxStat(buf), 0
	case kindPipe:
		return unix.Stat_t{Ino: inode(fmt.Sprintf("pipe:%p", f.pipe)), Nlink: 1, Mode: unix.S_IFIFO | 0o600, Blksize: 4096}, 0
	}
	return unix.Stat_t{Ino: inode(f.path), Nlink: 1, Mode: unix.S_IFCHR | 0o666, Rdev: 0x103, Blksize: 4096}, 0
}

// statSize is the size of the files root's nv_stat record.
var statSize = binary.Size(abi.Stat{})

// linuxStat turns an nv_stat record into Linux's struct stat.
func linuxStat(b []byte) unix.Stat_t {
	var st abi.Stat
	binary.Read(bytes.NewReader(b), binary.LittleEndian, &st)
	mode := uint32(st.Mode & 0o7777)
	switch st.Type {
	case abi.FileTypeRegular:
		mode |= unix.S_IFREG
	case abi.FileTypeDir:
		mode |= unix.S_IFDIR
	case abi.FileTypeSymlink:
		mode |= unix.S_IFLNK
	case abi.FileTypeChar:
		mode |= unix.S_IFCHR
	case abi.FileTypeBlock:
		mode |= unix.S_IFBLK
	case abi.FileTypeFIFO:
		mode |= unix.S_IFIFO
	case abi.FileTypeSocket:
		mode |= unix.S_IFSOCK
	}
	return unix.Stat_t{
		Dev: st.Device, Ino: st.Inode, Nlink: st.Nlink, Mode: mode, Uid: uint32(st.UID), Gid: uint32(st.GID),
		Rdev: st.Rdev, Size: int64(st.Size), Blksize: int64(st.BlockSize), Blocks: int64(st.Blocks),
		Atim: unix.Timespec{Sec: st.AtimeSec, Nsec: int64(st.AtimeNsec)},
		Mtim: unix.Timespec{Sec: st.MtimeSec, Nsec: int64(st.MtimeNsec)},
		Ctim: unix.Timespec{Sec: st.CtimeSec, Nsec: int64(st.CtimeNsec)},
	}
}

func (tc *task) putStat(addr uint64, st unix.Stat_t) errno {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, &st)
	return tc.writeMem(addr, b.Bytes())
}

func sysFstat(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	st, e := tc.statFile(f)
	if e != 0 {
		return 0, e
	}
	return 0, tc.putStat(a[1], st)
}

// statPath stats an absolute path; nofollow describes a final symbolic
// link itself (lstat, AT_SYMLINK_NOFOLLOW).
func (tc *task) statPath(abs string, nofollow bool) (unix.Stat_t, errno) {
	if f, _, ok := tc.k.special(abs, tc.p); ok {
		return tc.statFile(f)
	}
	files, ok := tc.k.caps[nester.CapFiles]
	if !ok {
		return unix.Stat_t{}, eNOENT
	}
	var flags uint64
	if nofollow {
		flags = abi.StatNoFollow
	}
	buf := make([]byte, statSize)
	if _, _, err := tc.c.FilesStat(files, []byte(rootRelative(abs)), flags, buf); err != nil {
		return unix.Stat_t{}, errnoOf(err, eIO)
	}
	return linuxStat(buf), 0
}

func sysStat(tc *task, a [6]uint64) (uint64, errno) {
	return sysNewfstatat(tc, [6]uint64{atFDCWD, a[0], a[1], 0})
}

func sysLstat(tc *task, a [6]uint64) (uint64, errno) {
	return sysNewfstatat(tc, [6]uint64{atFDCWD, a[0], a[1], unix.AT_SYMLINK_NOFOLLOW})
}

func sysNewfstatat(tc *task, a [6]uint64) (uint64, errno) {
	if a[3]&unix.AT_EMPTY_PATH != 0 {
		if s, e := tc.p.mem().readString(tc.c, a[1], 1); e == 0 && s == "" {
			return sysFstat(tc, [6]uint64{a[0], a[2]})
		}
	}
	abs, e := tc.pathAt(a[0], a[1])
	if e != 0 {
		return 0, e
	}
	st, e := tc.statPath(abs, a[3]&unix.AT_SYMLINK_NOFOLLOW != 0)
	if e != 0 {
		return 0, e
	}
	return 0, tc.putStat(a[2], st)
}

func sysAccess(tc *task, a [6]uint64) (uint64, errno) {
	return sysFaccessat(tc, [6]uint64{atFDCWD, a[0], a[1]})
}

func sysFaccessat(tc *task, a [6]uint64) (uint64, errno) {
	abs, e := tc.pathAt(a[0], a[1])
	if e != 0 {
		return 0, e
	}
	_, e = tc.statPath(abs, false)
	return 0, e
}

func sysGetdents64(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	if f.kind != kindDir {
		return 0, eNOTDIR
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Offsets count "." and ".." first, then the directory's entries.
	var ents []dirent
	if f.off < 2 {
		ents = append(ents, dirent{name: ".", typ: abi.FileTypeDir, ino: inode(f.path)}, dirent{name: "..", typ: abi.FileTypeDir, ino: inode(path.Dir(f.path))})[f.off:]
	}
	more, _, e := tc.readdir(f, uint64(max(f.off-2, 0)), int(min(a[2], 64<<10)))
	if e != 0 {
		return 0, e
	}
	ents = append(ents, more...)
	var out []byte
	for _, d := range ents {
		reclen := (19 + len(d.name) + 1 + 7) &^ 7
		if uint64(len(out)+reclen) > a[2] {
			break
		}
		rec := make([]byte, reclen)
		binary.LittleEndian.PutUint64(rec[0:], d.ino)
		binary.LittleEndian.PutUint64(rec[8:], uint64(f.off+1))
		binary.LittleEndian.PutUint16(rec[16:], uint16(reclen))
		rec[18] = dtype(d.typ)
		copy(rec[19:], d.name)
		out = append(out, rec...)
		f.off++
	}
	if len(out) == 0 && len(ents) > 0 {
		return 0, eINVAL // the buffer holds not even one entry
	}
	return uint64(len(out)), tc.writeMem(a[1], out)
}

func sysIoctl(tc *task, a [6]uint64) (uint64, errno) {
	if _, e := tc.p.files().get(a[0]); e != 0 {
		return 0, e
	}
	// No descriptor is a terminal: the console is a byte stream.
	return 0, eNOTTY
}

func sysFcntl(tc *task, a [6]uint64) (uint64, errno) {
	t := tc.p.files()
	switch a[1] {
	case unix.F_DUPFD, unix.F_DUPFD_CLOEXEC:
		f, e := t.get(a[0])
		if e != 0 {
			return 0, e
		}
		f.ref()
		fd, e := t.add(f, int(min(a[2], maxFDs)), a[1] == unix.F_DUPFD_CLOEXEC)
		if e != 0 {
			f.unref(tc.c)
		}
		return uint64(fd), e
	case unix.F_GETFD, unix.F_SETFD:
		t.mu.Lock()
		defer t.mu.Unlock()
		ent, ok := t.files[int(a[0])]
		if !ok {
			return 0, eBADF
		}
		if a[1] == unix.F_SETFD {
			ent.cloexec = a[2]&unix.FD_CLOEXEC != 0
			return 0, 0
		}
		if ent.cloexec {
			return unix.FD_CLOEXEC, 0
		}
		return 0, 0
	case unix.F_GETFL:
		f, e := t.get(a[0])
		if e != 0 {
			return 0, e
		}
		return uint64(f.fl() &^ (oCloexec | oCreat | oTrunc | oExcl)), 0
	case unix.F_SETFL:
		f, e := t.get(a[0])
		if e != 0 {
			return 0, e
		}
		f.mu.Lock()
		f.flags = f.flags&^(oAppend|oNonblock) | int(a[2])&(oAppend|oNonblock)
		f.mu.Unlock()
		return 0, 0
	}
	return 0, eINVAL
}

func sysDup(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	f.ref()
	fd, e := tc.p.files().add(f, 0, false)
	if e != 0 {
		f.unref(tc.c)
	}
	return uint64(fd), e
}

func sysDup2(tc *task, a [6]uint64) (uint64, errno) {
	fd, e := tc.p.files().dup2(tc.c, a[0], a[1], false)
	return uint64(fd), e
}

func sysDup3(tc *task, a [6]uint64) (uint64, errno) {
	if a[0] == a[1] {
		return 0, eINVAL
	}
	fd, e := tc.p.files().dup2(tc.c, a[0], a[1], a[2]&oCloexec != 0)
	return uint64(fd), e
}

func sysGetcwd(tc *task, a [6]uint64) (uint64, errno) {
	b := append([]byte(tc.p.cwdNow()), 0)
	if uint64(len(b)) > a[1] {
		return 0, eRANGE
	}
	return uint64(len(b)), tc.writeMem(a[0], b)
}

func sysChdir(tc *task, a [6]uint64) (uint64, errno) {
	abs, e := tc.pathAt(atFDCWD, a[0])
	if e != 0 {
		return 0, e
	}
	st, e := tc.statPath(abs, false)
	if e != 0 {
		return 0, e
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, eNOTDIR
	}
	tc.p.setCwd(abs)
	return 0, 0
}

func sysFchdir(tc *task, a [6]uint64) (uint64, errno) {
	f, e := tc.p.files().get(a[0])
	if e != 0 {
		return 0, e
	}
	if f.kind != kindDir {
		return 0, eNOTDIR
	}
	tc.p.setCwd(f.path)
	return 0, 0
}

func sysReadlink(tc *task, a [6]uint64) (uint64, errno) {
	return sysReadlinkat(tc, [6]uint64{atFDCWD, a[0], a[1], a[2]})
}

func sysReadlinkat(tc *task, a [6]uint64) (uint64, errno) {
	abs, e := tc.pathAt(a[0], a[1])
	if e != 0 {
		return 0, e
	}
	if int64(a[3]) <= 0 {
		return 0, eINVAL
	}
	var target []byte
	if abs == "/proc/self/exe" {
		target = []byte(tc.p.exeNow())
	} else {
		files, ok := tc.k.caps[nester.CapFiles]
		if !ok {
			return 0, eNOENT
		}
		buf := make([]byte, min(a[3], 4096))
		n, _, err := tc.c.FilesReadlink(files, []byte(rootRelative(abs)), buf)
		if err != nil {
			return 0, errnoOf(err, eIO)
		}
		target = buf[:min(n, uint64(len(buf)))]
	}
	if uint64(len(target)) > a[3] {
		target = target[:a[3]]
	}
	return uint64(len(target)), tc.writeMem(a[2], target)
}

func sysBrk(tc *task, a [6]uint64) (uint64, errno) { return tc.p.mem().setBrk(tc.c, a[0]), 0 }

func sysMmap(tc *task, a [6]uint64) (uint64, errno) {
	prot, flags := int(a[2]), int(a[3])
	if flags&mapShared != 0 && flags&mapAnonymous == 0 && prot&protWrite != 0 {
		return 0, eACCES // a shared writable file mapping: its writes would never reach the file
	}
	var data []byte
	if flags&mapAnonymous == 0 {
		f, e := tc.p.files().get(a[4])
		if e != 0 {
			return 0, e
		}
		if f.kind != kindFile || a[5]&pageMask != 0 || a[1] > 256<<20 {
			return 0, eINVAL
		}
		data = make([]byte, a[1])
		n, e := tc.readFile(f, data, int64(a[5]))
		if e != 0 {
			return 0, e
		}
		data = data[:n]
		if prot == 0 {
			data = nil
		}
	}
	return tc.p.mem().mmap(tc.c, a[0], a[1], prot, flags, data)
}

const pageMask = pageSize - 1

func sysMunmap(tc *task, a [6]uint64) (uint64, errno) { return 0, tc.p.mem().munmap(tc.c, a[0], a[1]) }

func sysMprotect(tc *task, a [6]uint64) (uint64, errno) {
	return 0, tc.p.mem().mprotect(tc.c, a[0], a[1], int(a[2]))
}

func sysMadvise(tc *task, a [6]uint64) (uint64, errno) {
	const madvDontneed = 4
	if a[2] != madvDontneed {
		return 0, 0
	}
	// MADV_DONTNEED on private anonymous memory reads back as zeros.
	m := tc.p.mem()
	ps, e := m.pieces(tc.c, a[0], pageUp(a[1]), accDrop)
	if e != 0 {
		return 0, 0 // reservations and read-only areas: nothing to drop
	}
	zero := make([]byte, 64<<10)
	for _, p := range ps {
		for off := p.lo; off < p.hi; {
			n := min(uint64(len(zero)), p.hi-off)
			tc.c.RegionWrite(p.region, p.off+(off-p.lo), zero[:n])
			off += n
		}
	}
	return 0, 0
}

func sysArchPrctl(tc *task, a [6]uint64) (uint64, errno) {
	const (
		archSetGS = 0x1001
		archSetFS = 0x1002
		archGetFS = 0x1003
		archGetGS = 0x1004
	)
	switch a[0] {
	case archSetFS:
		if a[1] >= abi.UserTop && a[1] < 1<<47 || a[1] >= 1<<47 {
			// Linux refuses what lies above TASK_SIZE; here the user range
			// ends lower, and nothing above it is the program's.
			if a[1] >= 1<<47 {
				return 0, ePERM
			}
		}
		tc.regs.FSBase = a[1]
		return 0, 0
	case archSetGS:
		if a[1] >= 1<<47 {
			return 0, ePERM
		}
		tc.regs.GSBase = a[1]
		return 0, 0
	case archGetFS, archGetGS:
		v := tc.regs.FSBase
		if a[0] == archGetGS {
			v = tc.regs.GSBase
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], v)
		return 0, tc.writeMem(a[1], b[:])
	}
	return 0, eINVAL
}

func sysSetTidAddress(tc *task, a [6]uint64) (uint64, errno) {
	tc.t.clearTID = a[0]
	return uint64(tc.t.tid), 0
}

func sysExit(tc *task, a [6]uint64) (uint64, errno) {
	// The last thread's exit ends the process, as exit_group does.
	p := tc.p
	p.mu.Lock()
	n := len(p.threads)
	p.mu.Unlock()
	if n <= 1 {
		return sysExitGroup(tc, a)
	}
	tc.exitThread()
	return 0, 0
}

func sysExitGroup(tc *task, a [6]uint64) (uint64, errno) {
	tc.held = true
	status := int(a[0] & 0xff)
	tc.fc.Kill(status, "exit_group")
	tc.k.exit(tc.p, status<<8, "")
	return 0, 0
}

func sysGetpid(tc *task, _ [6]uint64) (uint64, errno)  { return uint64(tc.p.pid), 0 }
func sysGetppid(tc *task, _ [6]uint64) (uint64, errno) { return uint64(tc.p.ppid), 0 }
func sysGettid(tc *task, _ [6]uint64) (uint64, errno)  { return uint64(tc.t.tid), 0 }
func sysZero(*task, [6]uint64) (uint64, errno)         { return 0, 0 }
func sysNosys(*task, [6]uint64) (uint64, errno)        { return 0, eNOSYS }

func sysUmask(tc *task, a [6]uint64) (uint64, errno) {
	tc.p.mu.Lock()
	defer tc.p.mu.Unlock()
	old := tc.p.umask
	tc.p.umask = uint32(a[0]) & 0o777
	return uint64(old), 0
}

func sysUname(tc *task, a [6]uint64) (uint64, errno) {
	var u [6][65]byte
	for i, s := range []string{"Linux", "nestvm", "6.1.0-nestvm", "#1 SMP nestvm", "x86_64", "(none)"} {
		copy(u[i][:], s)
	}
	b := make([]byte, 0, 6*65)
	for _, f := range u {
		b = append(b, f[:]...)
	}
	return 0, tc.writeMem(a[0], b)
}

func sysPrlimit(tc *task, a [6]uint64) (uint64, errno) {
	if a[0] != 0 && a[0] != uint64(tc.p.pid) {
		return 0, eSRCH
	}
	return tc.getrlimit(a[1], a[3])
}

func sysGetrlimit(tc *task, a [6]uint64) (uint64, errno) { return tc.getrlimit(a[0], a[1]) }

func (tc *task) getrlimit(res, addr uint64) (uint64, errno) {
	if addr == 0 {
		return 0, 0
	}
	inf := ^uint64(0)
	cur, max := inf, inf
	switch res {
	case unix.RLIMIT_STACK:
		cur = stackSize
	case unix.RLIMIT_NOFILE:
		cur, max = maxFDs, maxFDs
	case unix.RLIMIT_AS, unix.RLIMIT_DATA:
		cur, max = tc.k.memory, tc.k.memory
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], cur)
	binary.LittleEndian.PutUint64(b[8:], max)
	return 0, tc.writeMem(addr, b[:])
}

func sysGetrandom(tc *task, a [6]uint64) (uint64, errno) {
	b := make([]byte, min(a[1], 1<<20))
	rand.Read(b)
	return uint64(len(b)), tc.writeMem(a[0], b)
}

// clock reads the personality's clock capability.
func (tc *task) clock(which uint64) (uint64, errno) {
	h, ok := tc.k.caps[nester.CapClock]
	if !ok {
		return 0, eINVAL
	}
	c := uint64(abi.ClockMonotonic)
	if id := int32(which); id >= 0 && (id > unix.CLOCK_TAI || id == 10) {
		// Not a clock Linux has (10 was CLOCK_SGI_CYCLE); negative
		// numbers name other processes' and threads' CPU clocks.
		return 0, eINVAL
	}
	switch which {
	case unix.CLOCK_REALTIME, unix.CLOCK_REALTIME_COARSE, unix.CLOCK_TAI:
		c = abi.ClockRealtime
	}
	ns, _, err := tc.c.ClockRead(h, c)
	if err != nil {
		return 0, errnoOf(err, eINVAL)
	}
	return ns, 0
}

func timespec(ns uint64) []byte {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], ns/1e9)
	binary.LittleEndian.PutUint64(b[8:], ns%1e9)
	return b[:]
}

func sysClockGettime(tc *task, a [6]uint64) (uint64, errno) {
	ns, e := tc.clock(a[0])
	if e != 0 {
		return 0, e
	}
	return 0, tc.writeMem(a[1], timespec(ns))
}

func sysClockGetres(tc *task, a [6]uint64) (uint64, errno) {
	if a[1] == 0 {
		return 0, 0
	}
	return 0, tc.writeMem(a[1], timespec(1))
}

func sysGettimeofday(tc *task, a [6]uint64) (uint64, errno) {
	ns, e := tc.clock(unix.CLOCK_REALTIME)
	if e != 0 || a[0] == 0 {
		return 0, e
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], ns/1e9)
	binary.LittleEndian.PutUint64(b[8:], ns%1e9/1e3)
	return 0, tc.writeMem(a[0], b[:])
}

func sysTime(tc *task, a [6]uint64) (uint64, errno) {
	ns, e := tc.clock(unix.CLOCK_REALTIME)
	if e != 0 {
		return 0, e
	}
	if a[0] != 0 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], ns/1e9)
		if e := tc.writeMem(a[0], b[:]); e != 0 {
			return 0, e
		}
	}
	return ns / 1e9, 0
}

// sleepFor holds the thread for d. A sleep the thread re-issues after it
// was held (stopped, for a checkpoint) goes on to the end it had, and one
// a restored thread re-issues sleeps what it had left when the checkpoint
// was taken, as Linux restarts a stopped nanosleep with its time
// remaining. A signal ends it with EINTR and the time it had left, which
// nanosleep reports.
func (tc *task) sleepFor(d time.Duration) (time.Duration, errno) {
	p, t := tc.p, tc.t
	p.mu.Lock()
	dl, until := t.sleepDL, t.sleepUntil
	if t.resumeSleep != nil {
		d, t.resumeSleep = *t.resumeSleep, nil
		until = time.Time{}
	}
	p.mu.Unlock()
	if until.IsZero() {
		dl, until = tc.after(d), time.Now().Add(d)
	}
	p.mu.Lock()
	t.sleepDL, t.sleepUntil = dl, until
	p.mu.Unlock()
	r := tc.block(func() bool { return false }, dl)
	if r != blockHeld {
		p.mu.Lock()
		t.sleepDL, t.sleepUntil = deadline{}, time.Time{}
		p.mu.Unlock()
	}
	if r != blockInterrupted {
		return 0, 0
	}
	left := time.Until(until)
	if dl.ns != 0 {
		left = 0
		if now, e := tc.clock(1 /* CLOCK_MONOTONIC */); e == 0 && now < dl.ns {
			left = time.Duration(dl.ns - now)
		}
	}
	return max(left, 0), eINTR
}

// sleepLeft writes what an interrupted sleep had left to the timespec at
// addr (none when 0), as nanosleep does.
func sleepLeft(tc *task, addr uint64, left time.Duration, e errno) errno {
	if e != eINTR || addr == 0 {
		return e
	}
	if we := tc.writeMem(addr, timespec(uint64(left))); we != 0 {
		return we
	}
	return e
}

func readTimespec(tc *task, addr uint64) (time.Duration, errno) {
	var b [16]byte
	if e := tc.readMem(addr, b[:]); e != 0 {
		return 0, e
	}
	sec, nsec := int64(binary.LittleEndian.Uint64(b[:])), int64(binary.LittleEndian.Uint64(b[8:]))
	if sec < 0 || nsec < 0 || nsec >= 1e9 {
		return 0, eINVAL
	}
	if sec > 1<<32 {
		sec = 1 << 32
	}
	return time.Duration(sec)*time.Second + time.Duration(nsec), 0
}

func sysNanosleep(tc *task, a [6]uint64) (uint64, errno) {
	d, e := readTimespec(tc, a[0])
	if e != 0 {
		return 0, e
	}
	left, e := tc.sleepFor(d)
	return 0, sleepLeft(tc, a[1], left, e)
}

func sysClockNanosleep(tc *task, a [6]uint64) (uint64, errno) {
	d, e := readTimespec(tc, a[2])
	if e != 0 {
		return 0, e
	}
	if a[1]&unix.TIMER_ABSTIME != 0 {
		now, e := tc.clock(a[0])
		if e != 0 {
			return 0, e
		}
		d -= time.Duration(now)
		if d <= 0 {
			return 0, 0
		}
		_, e = tc.sleepFor(d)
		return 0, e // an absolute sleep has nothing left to report
	}
	left, e := tc.sleepFor(d)
	return 0, sleepLeft(tc, a[3], left, e)
}

func sysSchedGetaffinity(tc *task, a [6]uint64) (uint64, errno) {
	if a[1] < 8 {
		return 0, eINVAL
	}
	var b [8]byte
	b[0] = 1 // one CPU: each Linux thread is one vCPU, but they share the host's cores
	return 8, tc.writeMem(a[2], b[:])
}

func sysSysinfo(tc *task, a [6]uint64) (uint64, errno) {
	var si unix.Sysinfo_t
	ns, _ := tc.clock(unix.CLOCK_MONOTONIC)
	si.Uptime = int64(ns / 1e9)
	si.Totalram = tc.k.memory
	si.Freeram = tc.k.memory / 2
	si.Procs = 1
	si.Unit = 1
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, &si)
	return 0, tc.writeMem(a[0], b.Bytes())
}

func sysKill(tc *task, a [6]uint64) (uint64, errno) {
	pid, sig := int(int32(a[0])), int(a[1])
	if sig < 0 || sig > nsig {
		return 0, eINVAL
	}
	if pid == tc.p.pid || pid == 0 {
		return 0, tc.sendSelf(sig)
	}
	k := tc.k
	k.mu.Lock()
	var targets []*process
	for _, q := range k.procs {
		if !q.exited && (q.pid == pid || (pid == -1 && q.pid != 1 && q != tc.p) || (pid < -1 && q.pid == -pid)) {
			targets = append(targets, q)
		}
	}
	k.mu.Unlock()
	if len(targets) == 0 {
		return 0, eSRCH
	}
	if sig == 0 {
		return 0, 0
	}
	for _, q := range targets {
		k.signal(q, sigInfo{signo: int32(sig), code: siUser, pid: int32(tc.p.pid)})
	}
	if pid == -1 {
		return 0, tc.sendSelf(sig)
	}
	return 0, 0
}

func sysTgkill(tc *task, a [6]uint64) (uint64, errno) {
	if int(int32(a[0])) != tc.p.pid {
		return 0, eSRCH
	}
	return 0, tc.sendSelf(int(a[2]))
}

func sysTkill(tc *task, a [6]uint64) (uint64, errno) { return 0, tc.sendSelf(int(a[1])) }

func sysPrctl(tc *task, a [6]uint64) (uint64, errno) {
	const (
		prSetName = 15
		prGetName = 16
	)
	switch a[0] {
	case prSetName:
		return 0, 0
	case prGetName:
		name := []byte(tc.p.exeNow())
		if i := bytes.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		var b [16]byte
		copy(b[:15], name)
		return 0, tc.writeMem(a[1], b[:])
	}
	return 0, eINVAL
}

// table is the system call table, by x86-64 number.
var table [512]sysEntry

// unnamed names calls the table does not serve, for the log.
var unnamed = map[uint64]string{
	unix.SYS_IO_URING_SETUP: "io_uring_setup", unix.SYS_SOCKET: "socket", unix.SYS_CONNECT: "connect",
}

func init() {
	for nr, e := range map[uint64]sysEntry{
		unix.SYS_READ:              {"read", sysRead, Full, ""},
		unix.SYS_WRITE:             {"write", sysWrite, Full, ""},
		unix.SYS_OPEN:              {"open", sysOpen, Partial, "regular files and directories under the files root, and /dev/{null,zero,urandom,random,stdin,stdout,stderr}"},
		unix.SYS_CLOSE:             {"close", sysClose, Full, ""},
		unix.SYS_STAT:              {"stat", sysStat, Full, "the host file's own metadata, under the files root"},
		unix.SYS_FSTAT:             {"fstat", sysFstat, Full, "pipes, consoles and devices as Linux shows such"},
		unix.SYS_LSTAT:             {"lstat", sysLstat, Full, ""},
		unix.SYS_LSEEK:             {"lseek", sysLseek, Full, ""},
		unix.SYS_MMAP:              {"mmap", sysMmap, Partial, "anonymous memory and private copies of files; no shared writable file mappings"},
		unix.SYS_MPROTECT:          {"mprotect", sysMprotect, Full, ""},
		unix.SYS_MUNMAP:            {"munmap", sysMunmap, Full, ""},
		unix.SYS_BRK:               {"brk", sysBrk, Full, ""},
		unix.SYS_RT_SIGACTION:      {"rt_sigaction", sysRtSigaction, Partial, "handlers run when the thread next leaves a system call or faults; only a timer's signal stops a thread in the middle of guest code to run one"},
		unix.SYS_RT_SIGRETURN:      {"rt_sigreturn", sysRtSigreturn, Full, ""},
		unix.SYS_PAUSE:             {"pause", sysPause, Full, ""},
		unix.SYS_RT_SIGSUSPEND:     {"rt_sigsuspend", sysRtSigsuspend, Full, ""},
		unix.SYS_RT_SIGPROCMASK:    {"rt_sigprocmask", sysRtSigprocmask, Full, ""},
		unix.SYS_IOCTL:             {"ioctl", sysIoctl, Stub, "no descriptor is a terminal: ENOTTY"},
		unix.SYS_PREAD64:           {"pread64", sysPread, Full, ""},
		unix.SYS_PWRITE64:          {"pwrite64", sysPwrite, Full, ""},
		unix.SYS_READV:             {"readv", sysReadv, Full, ""},
		unix.SYS_WRITEV:            {"writev", sysWritev, Full, ""},
		unix.SYS_ACCESS:            {"access", sysAccess, Partial, "existence only"},
		unix.SYS_SCHED_YIELD:       {"sched_yield", sysZero, Full, ""},
		unix.SYS_MADVISE:           {"madvise", sysMadvise, Partial, "MADV_DONTNEED zeroes; other advice is ignored"},
		unix.SYS_DUP:               {"dup", sysDup, Full, ""},
		unix.SYS_DUP2:              {"dup2", sysDup2, Full, ""},
		unix.SYS_NANOSLEEP:         {"nanosleep", sysNanosleep, Full, ""},
		unix.SYS_ALARM:             {"alarm", sysAlarm, Full, ""},
		unix.SYS_SETITIMER:         {"setitimer", sysSetitimer, Partial, "ITIMER_REAL only (the CPU-time timers are EINVAL)"},
		unix.SYS_GETITIMER:         {"getitimer", sysGetitimer, Partial, "ITIMER_REAL only"},
		unix.SYS_TIMER_CREATE:      {"timer_create", sysTimerCreate, Partial, "wall and monotonic clocks, SIGEV_SIGNAL, SIGEV_NONE, and SIGEV_THREAD_ID as a signal to the process; no CPU-time clocks"},
		unix.SYS_TIMER_SETTIME:     {"timer_settime", sysTimerSettime, Full, ""},
		unix.SYS_TIMER_GETTIME:     {"timer_gettime", sysTimerGettime, Full, ""},
		unix.SYS_TIMER_GETOVERRUN:  {"timer_getoverrun", sysTimerGetoverrun, Partial, "counts expiries a late firing missed, not those that found the signal still pending"},
		unix.SYS_TIMER_DELETE:      {"timer_delete", sysTimerDelete, Full, ""},
		unix.SYS_GETPID:            {"getpid", sysGetpid, Full, ""},
		unix.SYS_EXIT:              {"exit", sysExit, Full, ""},
		unix.SYS_KILL:              {"kill", sysKill, Partial, "to processes and groups of one (a process group is its leader)"},
		unix.SYS_UNAME:             {"uname", sysUname, Full, ""},
		unix.SYS_FCNTL:             {"fcntl", sysFcntl, Partial, "descriptor flags, status flags, F_DUPFD; no locks"},
		unix.SYS_GETCWD:            {"getcwd", sysGetcwd, Full, ""},
		unix.SYS_CHDIR:             {"chdir", sysChdir, Full, ""},
		unix.SYS_FCHDIR:            {"fchdir", sysFchdir, Full, ""},
		unix.SYS_READLINK:          {"readlink", sysReadlink, Full, "links under the files root, and /proc/self/exe"},
		unix.SYS_UMASK:             {"umask", sysUmask, Full, ""},
		unix.SYS_GETRLIMIT:         {"getrlimit", sysGetrlimit, Full, ""},
		unix.SYS_SYSINFO:           {"sysinfo", sysSysinfo, Partial, "uptime and memory"},
		unix.SYS_GETUID:            {"getuid", sysZero, Full, "root"},
		unix.SYS_GETGID:            {"getgid", sysZero, Full, "root"},
		unix.SYS_GETEUID:           {"geteuid", sysZero, Full, "root"},
		unix.SYS_GETEGID:           {"getegid", sysZero, Full, "root"},
		unix.SYS_GETGROUPS:         {"getgroups", sysGetgroups, Full, "none: the program's own group only"},
		unix.SYS_SETGROUPS:         {"setgroups", sysZero, Stub, "accepted, not kept"},
		unix.SYS_SETUID:            {"setuid", sysZero, Stub, "accepted: the program stays root"},
		unix.SYS_SETGID:            {"setgid", sysZero, Stub, "as setuid"},
		unix.SYS_SETPGID:           {"setpgid", sysZero, Stub, ""},
		unix.SYS_GETPPID:           {"getppid", sysGetppid, Full, ""},
		unix.SYS_GETPGRP:           {"getpgrp", sysGetpid, Full, ""},
		unix.SYS_SETSID:            {"setsid", sysGetpid, Stub, ""},
		unix.SYS_GETPGID:           {"getpgid", sysGetpid, Full, ""},
		unix.SYS_GETSID:            {"getsid", sysGetpid, Full, ""},
		unix.SYS_SIGALTSTACK:       {"sigaltstack", sysSigaltstack, Full, ""},
		unix.SYS_ARCH_PRCTL:        {"arch_prctl", sysArchPrctl, Full, ""},
		unix.SYS_PRCTL:             {"prctl", sysPrctl, Partial, "PR_SET_NAME, PR_GET_NAME"},
		unix.SYS_GETTID:            {"gettid", sysGettid, Full, ""},
		unix.SYS_TKILL:             {"tkill", sysTkill, Partial, "to the calling thread"},
		unix.SYS_TIME:              {"time", sysTime, Full, ""},
		unix.SYS_SCHED_GETAFFINITY: {"sched_getaffinity", sysSchedGetaffinity, Full, "one CPU"},
		unix.SYS_GETDENTS64:        {"getdents64", sysGetdents64, Full, ""},
		unix.SYS_SET_TID_ADDRESS:   {"set_tid_address", sysSetTidAddress, Full, ""},
		unix.SYS_CLOCK_GETTIME:     {"clock_gettime", sysClockGettime, Full, ""},
		unix.SYS_CLOCK_GETRES:      {"clock_getres", sysClockGetres, Full, ""},
		unix.SYS_CLOCK_NANOSLEEP:   {"clock_nanosleep", sysClockNanosleep, Full, ""},
		unix.SYS_GETTIMEOFDAY:      {"gettimeofday", sysGettimeofday, Full, ""},
		unix.SYS_EXIT_GROUP:        {"exit_group", sysExitGroup, Full, ""},
		unix.SYS_TGKILL:            {"tgkill", sysTgkill, Partial, "to threads of the process itself"},
		unix.SYS_OPENAT:            {"openat", sysOpenat, Partial, "as open"},
		unix.SYS_NEWFSTATAT:        {"newfstatat", sysNewfstatat, Full, ""},
		unix.SYS_READLINKAT:        {"readlinkat", sysReadlinkat, Full, "as readlink"},
		unix.SYS_FACCESSAT:         {"faccessat", sysFaccessat, Partial, "as access"},
		unix.SYS_FACCESSAT2:        {"faccessat2", sysFaccessat, Partial, "as access"},
		unix.SYS_SET_ROBUST_LIST:   {"set_robust_list", sysZero, Stub, "the list is not walked at exit"},
		unix.SYS_DUP3:              {"dup3", sysDup3, Full, ""},
		unix.SYS_PRLIMIT64:         {"prlimit64", sysPrlimit, Partial, "reads limits; setting them is ignored"},
		unix.SYS_GETRANDOM:         {"getrandom", sysGetrandom, Full, ""},
		unix.SYS_PIPE:              {"pipe", sysPipe, Full, ""},
		unix.SYS_PIPE2:             {"pipe2", sysPipe2, Full, ""},
		unix.SYS_FORK:              {"fork", sysFork, Full, ""},
		unix.SYS_VFORK:             {"vfork", sysVfork, Partial, "the child gets a copy of the memory, not the parent's"},
		unix.SYS_EXECVE:            {"execve", sysExecve, Partial, "static programs and #! scripts under the files root"},
		unix.SYS_WAIT4:             {"wait4", sysWait4, Partial, "no rusage; process groups wait for any child"},
		unix.SYS_EVENTFD:           {"eventfd", sysEventfd, Full, ""},
		unix.SYS_EVENTFD2:          {"eventfd2", sysEventfd2, Full, ""},
		unix.SYS_EPOLL_CREATE:      {"epoll_create", sysEpollCreate, Full, ""},
		unix.SYS_EPOLL_CREATE1:     {"epoll_create1", sysEpollCreate1, Full, ""},
		unix.SYS_EPOLL_CTL:         {"epoll_ctl", sysEpollCtl, Partial, "pipes, eventfds and the console; regular files are refused as by Linux"},
		unix.SYS_EPOLL_WAIT:        {"epoll_wait", sysEpollWait, Full, ""},
		unix.SYS_EPOLL_PWAIT:       {"epoll_pwait", sysEpollWait, Partial, "the signal mask is not applied"},
		unix.SYS_POLL:              {"poll", sysPoll, Full, ""},
		unix.SYS_PPOLL:             {"ppoll", sysPpoll, Partial, "the signal mask is not applied"},
		unix.SYS_GETRUSAGE:         {"getrusage", sysGetrusage, Stub, "all zeros: nothing is accounted per process"},
		unix.SYS_TIMES:             {"times", sysTimes, Partial, "the clock ticks since an arbitrary point; no process times"},
		unix.SYS_SETRLIMIT:         {"setrlimit", sysZero, Stub, "accepted, not enforced"},
		unix.SYS_FSYNC:             {"fsync", sysFsync, Full, "writes reach the host's files at once"},
		unix.SYS_FDATASYNC:         {"fdatasync", sysFsync, Full, "as fsync"},
		unix.SYS_SYNC:              {"sync", sysZero, Full, "as fsync"},
		unix.SYS_SELECT:            {"select", sysSelectCall, Full, ""},
		unix.SYS_PSELECT6:          {"pselect6", sysPselect6Call, Partial, "the signal mask is not applied"},
		unix.SYS_SCHED_SETAFFINITY: {"sched_setaffinity", sysZero, Stub, "accepted: threads run where the host puts them"},
		unix.SYS_GETPRIORITY:       {"getpriority", sysZero, Stub, ""},
		unix.SYS_SETPRIORITY:       {"setpriority", sysZero, Stub, ""},
		unix.SYS_MREMAP:            {"mremap", sysNosys, Stub, "ENOSYS: callers copy instead"},
		unix.SYS_STATX:             {"statx", sysNosys, Stub, "ENOSYS: the C libraries fall back to newfstatat"},
		unix.SYS_CLONE3:            {"clone3", sysNosys, Stub, "ENOSYS: callers fall back to clone"},
		unix.SYS_WAITID:            {"waitid", sysWaitid, Partial, "ended children (WEXITED), with WNOHANG and WNOWAIT; no stopped or continued ones"},
		unix.SYS_PIDFD_OPEN:        {"pidfd_open", sysNosys, Stub, "ENOSYS: callers fall back to wait4"},
		unix.SYS_UNLINK:            {"unlink", sysUnlink, Full, ""},
		unix.SYS_UNLINKAT:          {"unlinkat", sysUnlinkat, Full, ""},
		unix.SYS_RMDIR:             {"rmdir", sysRmdir, Full, ""},
		unix.SYS_MKDIR:             {"mkdir", sysMkdir, Full, ""},
		unix.SYS_MKDIRAT:           {"mkdirat", sysMkdirat, Full, ""},
		unix.SYS_RENAME:            {"rename", sysRename, Full, ""},
		unix.SYS_RENAMEAT:          {"renameat", sysRenameat, Full, ""},
		unix.SYS_RENAMEAT2:         {"renameat2", sysRenameat2, Partial, "RENAME_NOREPLACE checked before the rename, not atomically with it; no RENAME_EXCHANGE"},
		unix.SYS_SYMLINK:           {"symlink", sysSymlink, Full, ""},
		unix.SYS_SYMLINKAT:         {"symlinkat", sysSymlinkat, Full, ""},
		unix.SYS_LINK:              {"link", sysLink, Stub, "EPERM: the files root makes no hard links"},
		unix.SYS_LINKAT:            {"linkat", sysLink, Stub, "as link"},
		unix.SYS_CHMOD:             {"chmod", sysChmod, Full, ""},
		unix.SYS_FCHMOD:            {"fchmod", sysFchmod, Partial, "by the path the file was opened by"},
		unix.SYS_FCHMODAT:          {"fchmodat", sysFchmodat, Full, ""},
		unix.SYS_TRUNCATE:          {"truncate", sysTruncate, Full, ""},
		unix.SYS_FTRUNCATE:         {"ftruncate", sysFtruncate, Partial, "by the path the file was opened by"},
		unix.SYS_UTIMENSAT:         {"utimensat", sysUtimensat, Partial, "a link's own times cannot be set"},
		unix.SYS_CHOWN:             {"chown", sysZero, Stub, "accepted: files keep their host owner"},
		unix.SYS_FCHOWN:            {"fchown", sysZero, Stub, "as chown"},
		unix.SYS_LCHOWN:            {"lchown", sysZero, Stub, "as chown"},
		unix.SYS_FCHOWNAT:          {"fchownat", sysZero, Stub, "as chown"},
		unix.SYS_CLONE:             {"clone", sysClone, Partial, "threads (CLONE_VM|CLONE_THREAD)"},
		unix.SYS_FUTEX:             {"futex", sysFutex, Partial, "WAIT, WAKE, REQUEUE, CMP_REQUEUE and the BITSET forms; no PI or WAKE_OP"},
		unix.SYS_RSEQ:              {"rseq", sysNosys, Stub, "ENOSYS: the C libraries do without"},
		unix.SYS_SENDFILE:          {"sendfile", sysNosys, Stub, "ENOSYS: callers fall back to read and write"},
	} {
		table[nr] = e
	}
}
