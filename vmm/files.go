package vmm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"nestvm/abi"
)

// MaxFilesPath is the longest path files_open and files_list accept
// (Linux's PATH_MAX); longer ones fail with ErrTooBig.
const MaxFilesPath = 4096

// Files is the root's files service: a host directory served to programs.
// The port holding it answers files_open, files_list, files_stat and the
// namespace operations (files_unlink, files_mkdir, files_rmdir,
// files_rename, files_symlink, files_readlink, files_chmod,
// files_truncate, files_utimes); each file opened gets a port of its own
// that answers file_read, file_write, file_size and file_stat, and each
// directory opened (abi.OpenDir) one that answers file_readdir and
// file_stat.
//
// Every access goes through an os.Root, which resolves each path one
// component at a time beneath the directory and refuses any that would
// leave it, whether by "..", by an absolute name or by a symbolic link
// pointing outside (however many links deep), so no path a program sends
// can reach a host file outside the directory. (Hard links and mount
// points inside it are its own entries: whoever made them let them in.)
// Only regular files and directories open, so no device or FIFO under the
// directory can block the monitor or be driven by a program.
//
// Operations that act on a name rather than on what it leads to (unlink,
// rmdir, mkdir, rename, symlink) open the name's parent directory through
// the os.Root and act on the last component with the *at system call,
// which never follows it: a link swapped in under the name, even one
// leading out, is acted on itself, and nothing outside can be reached.
//
// Threads of a program may call it at once: it keeps no state but the
// os.Root, which is safe for concurrent use.
type Files struct {
	root     *os.Root
	writable bool
	// escapes is the error os.Root reports for a path leaving the root.
	// The package does not export it, so FilesServer learns it by asking
	// for a path that must escape; it becomes ErrDenied.
	escapes error
}

// FilesServer serves the host directory dir, read-only unless writable.
// Writing also needs the write right on the handle a program invokes, so
// a program can hand on a read-only view of a writable root. Close the
// server when no program will use it again.
func FilesServer(dir string, writable bool) (*Files, error) {
	// The cause alone: the path is in the message already.
	cause := func(err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("files root %s: %w", dir, cause(err))
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("files root %s: %w", dir, syscall.ENOTDIR)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("files root %s: %w", dir, cause(err))
	}
	f := &Files{root: root, writable: writable}
	// An absolute path is refused before any system call.
	if _, err := root.Lstat("/"); err != nil {
		f.escapes = cause(err)
	}
	return f, nil
}

// Close releases the directory. Operations still arriving (on the root or
// on files opened through it) fail with ErrPeerGone.
func (f *Files) Close() error { return f.root.Close() }

// Serve implements Server for the files root.
func (f *Files) Serve(inv *Invocation) {
	switch inv.Op {
	case abi.OpFilesOpen:
		f.open(inv)
	case abi.OpFilesList:
		f.list(inv)
	case abi.OpFilesStat:
		f.stat(inv)
	case abi.OpFilesUnlink, abi.OpFilesRmdir, abi.OpFilesMkdir:
		f.atParent(inv)
	case abi.OpFilesRename, abi.OpFilesSymlink:
		f.pair(inv)
	case abi.OpFilesReadlink:
		f.readlink(inv)
	case abi.OpFilesChmod, abi.OpFilesTruncate, abi.OpFilesUtimes:
		f.setAttr(inv)
	default:
		inv.Fail(abi.ErrInvalidOp)
	}
}

// Flags files_open understands.
const openFlags = abi.OpenRead | abi.OpenWrite | abi.OpenCreate | abi.OpenTruncate | abi.OpenDir | abi.OpenExclusive

func (f *Files) open(inv *Invocation) {
	flags := inv.Slots[2]
	read, write := flags&abi.OpenRead != 0, flags&abi.OpenWrite != 0
	// Creating and truncating are writes; a file opened for neither
	// reading nor writing would be a handle that can do nothing; a
	// directory opens for reading only.
	if flags&^openFlags != 0 || (!read && !write) ||
		(!write && flags&(abi.OpenCreate|abi.OpenTruncate) != 0) ||
		(flags&abi.OpenExclusive != 0 && flags&abi.OpenCreate == 0) ||
		(flags&abi.OpenDir != 0 && flags != abi.OpenRead|abi.OpenDir) {
		inv.Fail(abi.ErrInvalidArg)
		return
	}
	dir := flags&abi.OpenDir != 0
	name, e := filesPath(inv.Buffer(0).Bytes(), dir)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	if dir {
		f.openDir(inv, name)
		return
	}
	if write && (!f.writable || !inv.Rights.Has(abi.RightWrite)) {
		inv.Fail(abi.ErrDenied)
		return
	}
	// Refuse what is not a regular file before opening it: opening a
	// FIFO or a device can block the monitor or act on hardware. An
	// exclusive create leaves the refusal of any existing name, a
	// dangling link included, to O_EXCL.
	excl := flags&abi.OpenExclusive != 0
	if st, err := f.root.Stat(name); err == nil && !excl && !st.Mode().IsRegular() {
		inv.Fail(notRegular(st))
		return
	} else if err != nil && !excl && (flags&abi.OpenCreate == 0 || !errors.Is(err, fs.ErrNotExist)) {
		inv.Fail(f.error(err))
		return
	}
	mode := os.O_RDONLY
	switch {
	case read && write:
		mode = os.O_RDWR
	case write:
		mode = os.O_WRONLY
	}
	if flags&abi.OpenCreate != 0 {
		mode |= os.O_CREATE
	}
	if excl {
		mode |= os.O_EXCL
	}
	if flags&abi.OpenTruncate != 0 {
		mode |= os.O_TRUNC
	}
	// Opening now creates and truncates as asked, and checks that the
	// host allows the access; the new handle reopens the file for each
	// operation (see openFile).
	file, _, e := f.reopen(name, mode)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	file.Close()
	rights := abi.RightGrant | abi.RightDerive
	if read {
		rights |= abi.RightRead
	}
	if write {
		rights |= abi.RightWrite
	}
	port := NewHostPort("file "+name, &openFile{files: f, name: name, write: write})
	inv.ReturnHandle(port, rights, 0)
}

// openDir answers files_open with abi.OpenDir: a handle on a directory,
// which reads its entries (file_readdir) and describes it (file_stat).
// Like an open file it holds the name only.
func (f *Files) openDir(inv *Invocation, name string) {
	dir, e := f.openDirFile(name)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	dir.Close()
	port := NewHostPort("dir "+name, &openFile{files: f, name: name, dir: true})
	inv.ReturnHandle(port, abi.RightRead|abi.RightGrant|abi.RightDerive, 0)
}

// openDirFile opens the directory name beneath the root for reading its
// entries. O_DIRECTORY refuses anything else without opening it, so a
// FIFO cannot block here either.
func (f *Files) openDirFile(name string) (*os.File, abi.Error) {
	dir, err := f.root.OpenFile(name, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, f.error(err)
	}
	return dir, abi.OK
}

// notRegular is the error for opening st, which is not a regular file, as
// one: a directory needs abi.OpenDir; anything else does not open.
func notRegular(st fs.FileInfo) abi.Error {
	if st.IsDir() {
		return abi.ErrIsDir
	}
	return abi.ErrInvalidArg
}

// reopen opens name beneath the root with mode and checks that it is a
// regular file (the name may have changed since the caller last looked).
// O_NONBLOCK keeps a FIFO swapped in under the name from blocking the
// open; it changes nothing for regular files.
func (f *Files) reopen(name string, mode int) (*os.File, fs.FileInfo, abi.Error) {
	file, err := f.root.OpenFile(name, mode|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0o666)
	if err != nil {
		return nil, nil, f.error(err)
	}
	st, err := file.Stat()
	if err != nil || !st.Mode().IsRegular() {
		file.Close()
		if err != nil {
			return nil, nil, f.error(err)
		}
		return nil, nil, notRegular(st)
	}
	return file, st, abi.OK
}

// list answers files_list: the names in a directory, sorted, each ending
// in a NUL byte, the names of directories (and of links to directories
// inside the root) in '/' before it. Only whole entries are copied, so a buffer that
// is too small still holds a usable prefix of the list; R0 is the length
// of the whole list, for a retry with a buffer that fits.
func (f *Files) list(inv *Invocation) {
	name, e := filesPath(inv.Buffer(0).Bytes(), true)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	dir, e := f.openDirFile(name)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	entries, err := dir.ReadDir(-1)
	dir.Close()
	if err != nil {
		inv.Fail(f.error(err))
		return
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	var out []byte
	fit := 0 // the length of the whole entries that fit the buffer
	limit := inv.Buffer(1).Len()
	for _, e := range entries {
		out = append(out, e.Name()...)
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			st, err := f.root.Stat(path.Join(name, e.Name()))
			isDir = err == nil && st.IsDir()
		}
		if isDir {
			out = append(out, '/')
		}
		out = append(out, 0)
		if uint64(len(out)) <= limit {
			fit = len(out)
		}
	}
	inv.Buffer(1).Write(out[:fit])
	inv.Return(uint64(len(out)), 0)
}

// filesPath checks a path a program sent: relative, '/'-separated, no NUL
// bytes. An empty path names the root where emptyOK, and is invalid
// elsewhere. Whether it stays beneath the root is for os.Root to decide,
// as it resolves links.
func filesPath(p []byte, emptyOK bool) (string, abi.Error) {
	switch {
	case len(p) > MaxFilesPath:
		return "", abi.ErrTooBig
	case len(p) == 0 && emptyOK:
		return ".", abi.OK
	case len(p) == 0, bytes.IndexByte(p, 0) >= 0, p[0] == '/':
		return "", abi.ErrInvalidArg
	}
	return string(p), abi.OK
}

// error maps a host error to the error a program sees, as precisely as
// the ABI's codes allow: a POSIX personality turns them back into errno.
func (f *Files) error(err error) abi.Error {
	switch {
	case f.escapes != nil && errors.Is(err, f.escapes):
		return abi.ErrDenied
	case errors.Is(err, os.ErrClosed):
		return abi.ErrPeerGone
	case errors.Is(err, fs.ErrNotExist):
		return abi.ErrNotFound
	case errors.Is(err, syscall.ENOTDIR):
		return abi.ErrNotDir
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return abi.ErrDenied
	// Before ErrExist, which matches ENOTEMPTY too.
	case errors.Is(err, syscall.ENOTEMPTY):
		return abi.ErrNotEmpty
	case errors.Is(err, fs.ErrExist):
		return abi.ErrExists
	case errors.Is(err, syscall.EISDIR):
		return abi.ErrIsDir
	case errors.Is(err, syscall.ELOOP):
		return abi.ErrLoop
	case errors.Is(err, syscall.EXDEV):
		return abi.ErrCrossDev
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return abi.ErrNoSpace
	case errors.Is(err, syscall.EINVAL):
		return abi.ErrInvalidArg
	case errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EFBIG):
		return abi.ErrTooBig
	}
	return abi.ErrIO
}

// openFile serves one file opened with files_open.
//
// It holds the file's name, not a host descriptor, and reopens the file
// through the root for each operation. The kernel does not tell a host
// server when the last handle to its port goes away, so a kept *os.File
// would leak one descriptor per files_open until the monitor exits, and
// a cap on open files would make a program that opens many files in turn
// (cat of a long list) fail though it closes each one. Reopening costs an
// openat per operation and holds nothing between calls; the open file's
// whole state is its name and mode, which a checkpoint can record and
// rebuild. The price is that the handle follows the name: a file the host
// replaces is seen anew, one it removes fails with ErrNotFound. Each
// reopen goes through the os.Root, so a link swapped in under the name
// cannot lead outside either.
type openFile struct {
	files *Files
	name  string
	write bool // opened for writing (reads are checked by the handle's rights)
	dir   bool // a directory, opened with abi.OpenDir
}

// Serve implements Server for an open file or directory. The dispatcher
// has already checked the handle's rights against each operation's.
func (o *openFile) Serve(inv *Invocation) {
	switch {
	case inv.Op == abi.OpFileStat:
		o.stat(inv)
	case o.dir && inv.Op == abi.OpFileReaddir:
		o.readdir(inv)
	case o.dir && (inv.Op == abi.OpFileRead || inv.Op == abi.OpFileSize):
		inv.Fail(abi.ErrIsDir)
	case !o.dir && inv.Op == abi.OpFileReaddir:
		inv.Fail(abi.ErrNotDir)
	default:
		o.serveFile(inv)
	}
}

func (o *openFile) serveFile(inv *Invocation) {
	switch inv.Op {
	case abi.OpFileRead:
		o.read(inv)
	case abi.OpFileWrite:
		o.writeAt(inv)
	case abi.OpFileSize:
		st, err := o.files.root.Stat(o.name)
		switch {
		case err != nil:
			inv.Fail(o.files.error(err))
		case !st.Mode().IsRegular():
			inv.Fail(notRegular(st))
		default:
			inv.Return(uint64(st.Size()), 0)
		}
	default:
		inv.Fail(abi.ErrInvalidOp)
	}
}

func (o *openFile) read(inv *Invocation) {
	off, buf := inv.Slots[0], inv.Buffer(0)
	if off > math.MaxInt64 {
		inv.Fail(abi.ErrInvalidArg)
		return
	}
	file, st, e := o.files.reopen(o.name, os.O_RDONLY)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	defer file.Close()
	// Read no more than the file holds, so a large buffer over a small
	// file costs no large allocation.
	n := min(buf.Len(), uint64(max(st.Size()-int64(off), 0)))
	if n == 0 {
		inv.Return(0, 0)
		return
	}
	tmp := make([]byte, n)
	got, err := file.ReadAt(tmp, int64(off))
	if err != nil && !errors.Is(err, io.EOF) && got == 0 {
		inv.Fail(o.files.error(err))
		return
	}
	inv.Return(uint64(buf.Write(tmp[:got])), 0)
}

func (o *openFile) writeAt(inv *Invocation) {
	off, data := inv.Slots[0], inv.Buffer(0)
	if !o.write {
		inv.Fail(abi.ErrRights)
		return
	}
	if off > math.MaxInt64 || off+data.Len() > math.MaxInt64 {
		inv.Fail(abi.ErrInvalidArg)
		return
	}
	if data.Len() == 0 {
		inv.Return(0, 0)
		return
	}
	file, _, e := o.files.reopen(o.name, os.O_WRONLY)
	if e != abi.OK {
		inv.Fail(e)
		return
	}
	defer file.Close()
	n, err := file.WriteAt(data.Bytes(), int64(off))
	if err != nil && n == 0 {
		inv.Fail(o.files.error(err))
		return
	}
	inv.Return(uint64(n), 0)
}
