package vmm

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"nestvm/abi"
)

// The files root's operations beyond open and list (files.go): stat, the
// namespace and metadata operations, and reading an open directory.

// stat answers files_stat.
func (f *Files) stat(inv *Invocation) {
	flags := inv.Slots[2]
	if flags&^abi.StatNoFollow != 0 {
		inv.Fail(abi.ErrInvalidArg)
		return
	}
	name, e := filesPath(inv.Buffer(0).Bytes(), true)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	var st fs.FileInfo
	var err error
	if flags&abi.StatNoFollow != 0 {
		st, err = f.root.Lstat(name)
	} else {
		st, err = f.root.Stat(name)
	}
	if err != nil {
		inv.Fail(f.error(err))
		return
	}
	returnStat(inv, inv.Buffer(1), st)
}

// stat answers file_stat: the file or directory the handle's name leads
// to now (see openFile).
func (o *openFile) stat(inv *Invocation) {
	st, err := o.files.root.Stat(o.name)
	if err != nil {
		inv.Fail(o.files.error(err))
		return
	}
	returnStat(inv, inv.Buffer(0), st)
}

// statSize is the size of the nv_stat record.
var statSize = binary.Size(abi.Stat{})

// returnStat writes st to buf as an nv_stat record, or as much of it as
// fits (records only grow at the end, so a program built against an
// older, shorter record gets the fields it knows), and returns the
// record's size.
func returnStat(inv *Invocation, buf GuestBuffer, st fs.FileInfo) {
	rec := statRecord(st)
	b := make([]byte, 0, statSize)
	b, _ = binary.Append(b, binary.LittleEndian, &rec)
	buf.Write(b)
	inv.Return(uint64(len(b)), 0)
}

// statRecord describes st as files_stat does. A FileInfo that does not
// come from the host's stat (no *syscall.Stat_t) gets its type, mode, size
// and modification time only.
func statRecord(st fs.FileInfo) abi.Stat {
	rec := abi.Stat{Type: fileType(st.Mode()), Size: uint64(st.Size())}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		m := st.Mode()
		rec.Mode = uint64(m.Perm())
		if m&fs.ModeSetuid != 0 {
			rec.Mode |= 0o4000
		}
		if m&fs.ModeSetgid != 0 {
			rec.Mode |= 0o2000
		}
		if m&fs.ModeSticky != 0 {
			rec.Mode |= 0o1000
		}
		mt := st.ModTime()
		rec.MtimeSec, rec.MtimeNsec = mt.Unix(), uint64(mt.Nanosecond())
		return rec
	}
	rec.Mode = uint64(sys.Mode & 0o7777)
	rec.Nlink = uint64(sys.Nlink)
	rec.UID, rec.GID = uint64(sys.Uid), uint64(sys.Gid)
	rec.Inode, rec.Device, rec.Rdev = sys.Ino, sys.Dev, sys.Rdev
	rec.Blocks, rec.BlockSize = uint64(sys.Blocks), uint64(sys.Blksize)
	rec.AtimeSec, rec.AtimeNsec = sys.Atim.Sec, uint64(sys.Atim.Nsec)
	rec.MtimeSec, rec.MtimeNsec = sys.Mtim.Sec, uint64(sys.Mtim.Nsec)
	rec.CtimeSec, rec.CtimeNsec = sys.Ctim.Sec, uint64(sys.Ctim.Nsec)
	return rec
}

// fileType is the abi.FileType* of a file of mode m.
func fileType(m fs.FileMode) uint64 {
	switch {
	case m.IsRegular():
		return abi.FileTypeRegular
	case m.IsDir():
		return abi.FileTypeDir
	case m&fs.ModeSymlink != 0:
		return abi.FileTypeSymlink
	case m&fs.ModeCharDevice != 0:
		return abi.FileTypeChar
	case m&fs.ModeDevice != 0:
		return abi.FileTypeBlock
	case m&fs.ModeNamedPipe != 0:
		return abi.FileTypeFIFO
	case m&fs.ModeSocket != 0:
		return abi.FileTypeSocket
	}
	return abi.FileTypeOther
}

// mayWrite reports whether inv may change the tree. The dispatcher has
// checked the handle's write right (the operations need it); the server
// must allow writes too.
func (f *Files) mayWrite(inv *Invocation) bool {
	if !f.writable || !inv.Rights.Has(abi.RightWrite) {
		inv.Fail(abi.ErrDenied)
		return false
	}
	return true
}

// atParent answers files_unlink, files_rmdir and files_mkdir: each acts on
// a name, never on what a link there leads to (see inParent).
func (f *Files) atParent(inv *Invocation) {
	if !f.mayWrite(inv) {
		return
	}
	name, e := filesPath(inv.Buffer(0).Bytes(), false)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	var mode uint64
	if inv.Op == abi.OpFilesMkdir {
		if mode = inv.Slots[2]; mode&^0o7777 != 0 {
			inv.Fail(abi.ErrInvalidArg)
			return
		}
		if _, base, _ := splitParent(name); base == "." || base == ".." {
			inv.Fail(abi.ErrExists) // as Linux answers: it is there
			return
		}
	}
	err := f.inParent(name, func(fd int, base string, slash bool) error {
		switch inv.Op {
		case abi.OpFilesUnlink:
			if slash {
				// "name/" names a directory, which unlink refuses
				// whatever it is.
				if err := isDirAt(fd, base); err != nil {
					return err
				}
				return syscall.EISDIR
			}
			return unix.Unlinkat(fd, base, 0)
		case abi.OpFilesRmdir:
			return unix.Unlinkat(fd, base, unix.AT_REMOVEDIR)
		default:
			return unix.Mkdirat(fd, base, uint32(mode))
		}
	})
	if err != nil {
		inv.Fail(f.error(err))
		return
	}
	inv.Return(0, 0)
}

// inParent opens the parent directory of name through the root and calls
// fn with it, the last component and whether slashes followed that. An
// *at call fn makes on the component does not follow it if it is a link,
// and the parent was resolved beneath the root, so a link swapped in
// anywhere on the path, even one leading out, cannot take the call
// outside. A last component of "." or ".." is refused, as Linux refuses
// removing or renaming them.
func (f *Files) inParent(name string, fn func(fd int, base string, slash bool) error) error {
	parent, base, slash := splitParent(name)
	if base == "." || base == ".." {
		return syscall.EINVAL
	}
	dir, err := f.root.OpenFile(parent, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer dir.Close()
	conn, err := dir.SyscallConn()
	if err != nil {
		return err
	}
	var fnErr error
	if err := conn.Control(func(fd uintptr) { fnErr = fn(int(fd), base, slash) }); err != nil {
		return err
	}
	return fnErr
}

// splitParent splits a path into its parent directory and its last
// component, and says whether slashes followed that.
func splitParent(name string) (parent, base string, slash bool) {
	trimmed := strings.TrimRight(name, "/")
	slash = len(trimmed) < len(name)
	if i := strings.LastIndexByte(trimmed, '/'); i >= 0 {
		return trimmed[:i+1], trimmed[i+1:], slash
	}
	return ".", trimmed, slash
}

// isDirAt is nil when base in the directory fd is a directory (not a link
// to one), and ENOTDIR when it is something else.
func isDirAt(fd int, base string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return syscall.ENOTDIR
	}
	return nil
}

// pair answers files_rename and files_symlink, whose two paths travel in
// one buffer (see abi.PathPair).
func (f *Files) pair(inv *Invocation) {
	if !f.mayWrite(inv) {
		return
	}
	b := inv.Buffer(0).Bytes()
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		inv.Fail(abi.ErrInvalidArg)
		return
	}
	name, e := filesPath(b[i+1:], false)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	var err error
	if inv.Op == abi.OpFilesRename {
		from, e := filesPath(b[:i], false)
		if e != abi.OK {
			inv.Fail(e)
			return
		}
		err = f.rename(from, name)
	} else {
		// The target is text, stored as given: where it leads is
		// decided, confined, each time the link is followed.
		target := b[:i]
		switch {
		case len(target) > MaxFilesPath:
			inv.Fail(abi.ErrTooBig)
			return
		case len(target) == 0:
			inv.Fail(abi.ErrNotFound) // as Linux answers an empty target
			return
		}
		err = f.inParent(name, func(fd int, base string, _ bool) error {
			return unix.Symlinkat(string(target), fd, base)
		})
	}
	if err != nil {
		inv.Fail(f.error(err))
		return
	}
	inv.Return(0, 0)
}

// rename renames from to to with renameat on their parents (see
// inParent), which replaces an empty directory as POSIX says: os.Root's
// Rename refuses any directory there.
func (f *Files) rename(from, to string) error {
	return f.inParent(from, func(ofd int, obase string, oslash bool) error {
		return f.inParent(to, func(nfd int, nbase string, nslash bool) error {
			// Trailing slashes say "a directory": the entry moved must
			// be one.
			if oslash || nslash {
				if err := isDirAt(ofd, obase); err != nil {
					return err
				}
			}
			return unix.Renameat(ofd, obase, nfd, nbase)
		})
	})
}

// readlink answers files_readlink.
func (f *Files) readlink(inv *Invocation) {
	name, e := filesPath(inv.Buffer(0).Bytes(), false)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	target, err := f.root.Readlink(name)
	if err != nil {
		inv.Fail(f.error(err))
		return
	}
	inv.Buffer(1).Write([]byte(target))
	inv.Return(uint64(len(target)), 0)
}

// setAttr answers files_chmod, files_truncate and files_utimes, which act
// on what the name leads to (following links within the root).
func (f *Files) setAttr(inv *Invocation) {
	if !f.mayWrite(inv) {
		return
	}
	name, e := filesPath(inv.Buffer(0).Bytes(), true)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	var err error
	switch inv.Op {
	case abi.OpFilesChmod:
		mode := inv.Slots[2]
		if mode&^0o7777 != 0 {
			inv.Fail(abi.ErrInvalidArg)
			return
		}
		fm := fs.FileMode(mode & 0o777)
		if mode&0o4000 != 0 {
			fm |= fs.ModeSetuid
		}
		if mode&0o2000 != 0 {
			fm |= fs.ModeSetgid
		}
		if mode&0o1000 != 0 {
			fm |= fs.ModeSticky
		}
		err = f.root.Chmod(name, fm)
	case abi.OpFilesTruncate:
		size := inv.Slots[2]
		if size > math.MaxInt64 {
			inv.Fail(abi.ErrInvalidArg)
			return
		}
		// As files_open: look before opening, so a FIFO is never
		// opened; reopen checks again what it opened.
		if st, err := f.root.Stat(name); err != nil {
			inv.Fail(f.error(err))
			return
		} else if !st.Mode().IsRegular() {
			inv.Fail(notRegular(st))
			return
		}
		file, _, e := f.reopen(name, os.O_WRONLY)
		if e != abi.OK {
			inv.Fail(e)
			return
		}
		err = file.Truncate(int64(size))
		file.Close()
	case abi.OpFilesUtimes:
		now := time.Now()
		at := func(v uint64) time.Time {
			switch v {
			case abi.UtimeOmit:
				return time.Time{} // Chtimes leaves a zero time as it is
			case abi.UtimeNow:
				return now
			}
			return time.Unix(0, int64(v))
		}
		err = f.root.Chtimes(name, at(inv.Slots[2]), at(inv.Slots[3]))
	}
	if err != nil {
		inv.Fail(f.error(err))
		return
	}
	inv.Return(0, 0)
}

// direntSize is the size of the nv_dirent header before each name.
var direntSize = binary.Size(abi.DirEntry{})

// readdir answers file_readdir on an open directory.
func (o *openFile) readdir(inv *Invocation) {
	off, buf := inv.Slots[0], inv.Buffer(0)
	entries, e := o.files.dirEntries(o.name)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	var out []byte
	next := off
	for ; next < uint64(len(entries)); next++ {
		ent := entries[next]
		n := (direntSize + len(ent.name) + 1 + 7) &^ 7
		if uint64(len(out)+n) > buf.Len() {
			break
		}
		out, _ = binary.Append(out, binary.LittleEndian, abi.DirEntry{Inode: ent.ino, Type: ent.typ, NameLen: uint32(len(ent.name))})
		out = append(out, ent.name...)
		out = append(out, make([]byte, n-direntSize-len(ent.name))...)
	}
	if len(out) == 0 && next < uint64(len(entries)) {
		inv.Fail(abi.ErrTooBig)
		return
	}
	buf.Write(out)
	inv.Return(uint64(len(out)), next)
}

// dirent is one entry of a directory as the host reports it.
type dirent struct {
	name string
	ino  uint64
	typ  uint32
}

// dirEntries reads the directory name beneath the root with getdents,
// which gives each entry's inode and type without a stat (a file system
// that does not record types gets an lstat per entry), and returns its
// entries sorted by name, "." and ".." left out.
func (f *Files) dirEntries(name string) ([]dirent, abi.Error) {
	dir, e := f.openDirFile(name)
	if e != abi.OK {
		return nil, e
	}
	defer dir.Close()
	conn, err := dir.SyscallConn()
	if err != nil {
		return nil, f.error(err)
	}
	var (
		entries []dirent
		readErr error
	)
	err = conn.Control(func(fd uintptr) {
		buf := make([]byte, 16<<10)
		for {
			n, err := unix.Getdents(int(fd), buf)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				readErr = err
				return
			}
			if n <= 0 {
				return
			}
			entries = parseDirents(buf[:n], entries)
		}
	})
	if err == nil {
		err = readErr
	}
	if err != nil {
		return nil, f.error(err)
	}
	for i := range entries {
		if entries[i].typ == unknownType {
			entries[i].typ = abi.FileTypeOther
			if st, err := f.root.Lstat(name + "/" + entries[i].name); err == nil {
				entries[i].typ = uint32(fileType(st.Mode()))
			}
		}
	}
	slices.SortFunc(entries, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	return entries, abi.OK
}

// unknownType marks an entry whose type the directory did not record.
const unknownType = ^uint32(0)

// parseDirents appends the entries of a getdents64 buffer to out: records
// of inode (8 bytes), offset (8), record length (2), type (1) and a
// NUL-terminated name.
func parseDirents(b []byte, out []dirent) []dirent {
	for len(b) >= 19 {
		reclen := int(binary.LittleEndian.Uint16(b[16:]))
		if reclen < 19 || reclen > len(b) {
			break
		}
		rec := b[:reclen]
		b = b[reclen:]
		nm := rec[19:]
		if i := bytes.IndexByte(nm, 0); i >= 0 {
			nm = nm[:i]
		}
		if string(nm) == "." || string(nm) == ".." {
			continue
		}
		out = append(out, dirent{name: string(nm), ino: binary.LittleEndian.Uint64(rec), typ: direntType(rec[18])})
	}
	return out
}

// direntType maps a getdents type to abi.FileType*.
func direntType(t uint8) uint32 {
	switch t {
	case unix.DT_REG:
		return abi.FileTypeRegular
	case unix.DT_DIR:
		return abi.FileTypeDir
	case unix.DT_LNK:
		return abi.FileTypeSymlink
	case unix.DT_CHR:
		return abi.FileTypeChar
	case unix.DT_BLK:
		return abi.FileTypeBlock
	case unix.DT_FIFO:
		return abi.FileTypeFIFO
	case unix.DT_SOCK:
		return abi.FileTypeSocket
	case unix.DT_UNKNOWN:
		return unknownType
	}
	return abi.FileTypeOther
}
