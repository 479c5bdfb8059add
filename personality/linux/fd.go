package linux

import (
	"crypto/rand"
	"errors"
	"hash/fnv"
	"path"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"nestvm/abi"
	"nestvm/nester"
	"nestvm/vmm"
)

// kind says what an open file description reads and writes.
type kind int

const (
	kindFile    kind = iota // a file under the files root: a file handle
	kindDir                 // a directory under the files root: its listing
	kindConsole             // the console or stderr capability
	kindStdin               // the stdin capability
	kindNull                // /dev/null
	kindZero                // /dev/zero
	kindRandom              // /dev/urandom, /dev/random
	kindPipe                // one end of a pipe
	kindEventfd             // an eventfd counter
	kindEpoll               // an epoll instance
)

// file is an open file description: what a descriptor names, shared by
// dup'ed descriptors, with the offset Linux keeps (the ABI's files have
// none).
type file struct {
	kind   kind
	handle uint64 // the file, console or stdin handle; for consoles not owned
	owned  bool   // handle was opened for this description: close it at the end
	path   string // absolute, for fstat and /proc
	flags  int    // O_ACCMODE and O_APPEND, O_NONBLOCK

	mu    sync.Mutex
	off   int64
	ents  []dirent // a directory's listing, read at open
	pipe  *pipe
	event *eventfd
	epoll *epoll
	refs  int
}

type dirent struct {
	name string
	typ  uint32 // abi.FileType*
	ino  uint64
}

// fdTable is a process's descriptor table.
type fdTable struct {
	mu    sync.Mutex
	files map[int]*fdEntry
}

type fdEntry struct {
	f       *file
	cloexec bool
}

// Linux open flags (include/uapi/asm-generic/fcntl.h).
const (
	oAccMode   = 0x3
	oRdOnly    = 0x0
	oWrOnly    = 0x1
	oRdWr      = 0x2
	oCreat     = 0x40
	oExcl      = 0x80
	oTrunc     = 0x200
	oAppend    = 0x400
	oNonblock  = 0x800
	oDirectory = 0x10000
	oNofollow  = 0x20000
	oCloexec   = 0x80000
	oPath      = 0x200000
)

// stdFDs is the table a first process starts with: stdin, stdout, stderr.
func (k *kernel) stdFDs() *fdTable {
	t := &fdTable{files: map[int]*fdEntry{}}
	in := &file{kind: kindNull, path: "/dev/stdin", refs: 1}
	if h, ok := k.caps["stdin"]; ok {
		in = &file{kind: kindStdin, handle: h, path: "/dev/stdin", refs: 1}
	}
	t.files[0] = &fdEntry{f: in}
	out := &file{kind: kindNull, path: "/dev/stdout", flags: oWrOnly, refs: 1}
	if h, ok := k.caps[nester.CapConsole]; ok {
		out = &file{kind: kindConsole, handle: h, path: "/dev/stdout", flags: oWrOnly, refs: 1}
	}
	t.files[1] = &fdEntry{f: out}
	errf := out
	if h, ok := k.caps[nester.CapStderr]; ok {
		errf = &file{kind: kindConsole, handle: h, path: "/dev/stderr", flags: oWrOnly, refs: 0}
	}
	errf.refs++
	t.files[2] = &fdEntry{f: errf}
	return t
}

// get returns the description fd names.
func (t *fdTable) get(fd uint64) (*file, errno) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.files[int(fd)]
	if !ok || fd > 1<<20 {
		return nil, eBADF
	}
	return e.f, 0
}

// maxFDs is RLIMIT_NOFILE's soft limit, as the personality reports it.
const maxFDs = 1024

// add gives f the lowest free descriptor at or above min.
func (t *fdTable) add(f *file, min int, cloexec bool) (int, errno) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for fd := min; fd < maxFDs; fd++ {
		if _, used := t.files[fd]; !used {
			t.files[fd] = &fdEntry{f: f, cloexec: cloexec}
			return fd, 0
		}
	}
	return 0, eMFILE
}

// close removes fd; the description's handle goes with its last
// descriptor.
func (t *fdTable) close(c *vmm.Caller, fd uint64) errno {
	t.mu.Lock()
	e, ok := t.files[int(fd)]
	if ok {
		delete(t.files, int(fd))
	}
	t.mu.Unlock()
	if !ok {
		return eBADF
	}
	e.f.unref(c)
	return 0
}

// dup2 makes newfd name what oldfd names.
func (t *fdTable) dup2(c *vmm.Caller, oldfd, newfd uint64, cloexec bool) (int, errno) {
	if newfd >= maxFDs {
		return 0, eBADF
	}
	t.mu.Lock()
	e, ok := t.files[int(oldfd)]
	if !ok {
		t.mu.Unlock()
		return 0, eBADF
	}
	if oldfd == newfd {
		t.mu.Unlock()
		return int(newfd), 0
	}
	old := t.files[int(newfd)]
	e.f.ref()
	t.files[int(newfd)] = &fdEntry{f: e.f, cloexec: cloexec}
	t.mu.Unlock()
	if old != nil {
		old.f.unref(c)
	}
	return int(newfd), 0
}

func (t *fdTable) closeAll(c *vmm.Caller) {
	t.mu.Lock()
	files := t.files
	t.files = map[int]*fdEntry{}
	t.mu.Unlock()
	for _, e := range files {
		e.f.unref(c)
	}
}

// fl returns the description's flags: fcntl changes O_APPEND and
// O_NONBLOCK while other threads read them.
func (f *file) fl() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flags
}

func (f *file) ref() {
	f.mu.Lock()
	f.refs++
	f.mu.Unlock()
}

func (f *file) unref(c *vmm.Caller) {
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	f.mu.Unlock()
	if !last {
		return
	}
	if f.owned {
		c.HandleClose(f.handle)
	}
	if f.pipe != nil {
		f.pipe.closeEnd(f.fl()&oAccMode == oWrOnly)
	}
}

// resolve makes a path the program gave absolute and clean, against its
// working directory (or dirfd's directory).
func resolve(cwd, p string) string {
	if !strings.HasPrefix(p, "/") {
		p = cwd + "/" + p
	}
	return path.Clean(p)
}

// rootRelative is an absolute path as the files root names it: "." for
// the root itself. ".." at the top stays at the top, as in a chroot.
func rootRelative(abs string) string {
	rel := strings.TrimPrefix(path.Clean(abs), "/")
	if rel == "" {
		return "."
	}
	return rel
}

// special returns the description of a device file the personality
// provides itself, if path names one: a new one (no references yet), or
// for /dev/stdin and its kin the one the descriptor has.
func (k *kernel) special(abs string, p *process) (f *file, shared, ok bool) {
	switch abs {
	case "/dev/null":
		return &file{kind: kindNull, path: abs}, false, true
	case "/dev/zero":
		return &file{kind: kindZero, path: abs}, false, true
	case "/dev/urandom", "/dev/random":
		return &file{kind: kindRandom, path: abs}, false, true
	case "/dev/stdin", "/dev/stdout", "/dev/stderr", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2":
		fd := map[string]uint64{"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}[abs]
		if strings.HasPrefix(abs, "/proc/") {
			fd = uint64(abs[len(abs)-1] - '0')
		}
		f, e := p.files().get(fd)
		if e != 0 {
			return nil, false, false
		}
		return f, true, true
	}
	return nil, false, false
}

// open opens abs (absolute, clean) with Linux flags.
func (tc *task) open(abs string, flags int) (*file, errno) {
	k, c := tc.k, tc.c
	if f, shared, ok := k.special(abs, tc.p); ok {
		if shared {
			f.ref()
			return f, 0
		}
		f.refs = 1
		f.flags = flags
		return f, 0
	}
	files, ok := k.caps[nester.CapFiles]
	if !ok {
		return nil, eNOENT
	}
	rel := rootRelative(abs)
	var of uint64
	switch flags & oAccMode {
	case oRdOnly:
		of = abi.OpenRead
	case oWrOnly:
		of = abi.OpenWrite
	default:
		of = abi.OpenRead | abi.OpenWrite
	}
	if flags&oCreat != 0 {
		of |= abi.OpenCreate
		if flags&oExcl != 0 {
			of |= abi.OpenExclusive
		}
	}
	if flags&oTrunc != 0 {
		of |= abi.OpenTruncate
	}
	if flags&oDirectory == 0 {
		h, _, err := c.FilesOpen(files, []byte(rel), of)
		if err == nil {
			return &file{kind: kindFile, handle: h, owned: true, path: abs, flags: flags, refs: 1}, 0
		}
		e := errnoOf(err, eIO)
		if e == eACCES && flags&oAccMode != oRdOnly && k.readOnly() {
			return nil, eROFS
		}
		if e != eISDIR && e != eINVAL {
			return nil, e
		}
		// A directory: Linux opens one read-only without O_DIRECTORY too.
	}
	if flags&oAccMode != oRdOnly || flags&oCreat != 0 {
		return nil, eISDIR
	}
	h, _, err := c.FilesOpen(files, []byte(rel), abi.OpenRead|abi.OpenDir)
	if err != nil {
		return nil, errnoOf(err, eIO)
	}
	return &file{kind: kindDir, handle: h, owned: true, path: abs, flags: flags, refs: 1}, 0
}

// readOnly reports whether the files root refuses writes.
func (k *kernel) readOnly() bool {
	k.roOnce.Do(func() {
		c := k.caller()
		defer k.release(c)
		_, rights, err := c.HandleInfo(k.caps[nester.CapFiles])
		k.ro = err != nil || abi.Rights(rights)&abi.RightWrite == 0
	})
	return k.ro
}

// readdir reads up to max bytes of a directory's entries from index
// start (past "." and ".."), as the directory handle reports them.
func (tc *task) readdir(f *file, start uint64, max int) ([]dirent, uint64, errno) {
	buf := make([]byte, max)
	n, next, err := tc.c.FileReaddir(f.handle, start, buf)
	if err != nil {
		return nil, start, errnoOf(err, eIO)
	}
	var ents []dirent
	for b := buf[:n]; ; {
		ent, name, rest, ok := abi.NextDirEntry(b)
		if !ok {
			break
		}
		ents = append(ents, dirent{name: name, typ: ent.Type, ino: ent.Inode})
		b = rest
	}
	return ents, next, 0
}

// dtype is the d_type getdents reports for an ABI file type.
func dtype(t uint32) byte {
	switch t {
	case abi.FileTypeRegular:
		return unix.DT_REG
	case abi.FileTypeDir:
		return unix.DT_DIR
	case abi.FileTypeSymlink:
		return unix.DT_LNK
	case abi.FileTypeChar:
		return unix.DT_CHR
	case abi.FileTypeBlock:
		return unix.DT_BLK
	case abi.FileTypeFIFO:
		return unix.DT_FIFO
	case abi.FileTypeSocket:
		return unix.DT_SOCK
	}
	return unix.DT_UNKNOWN
}

// inode is a stable number for a path, as st_ino and d_ino report it.
func inode(abs string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(abs))
	return h.Sum64()>>1 | 1
}

// read reads from f at its offset (or at off, for pread, when at >= 0).
func (tc *task) readFile(f *file, b []byte, at int64) (int, errno) {
	c := tc.c
	switch f.kind {
	case kindNull:
		return 0, 0
	case kindZero:
		clear(b)
		return len(b), 0
	case kindRandom:
		rand.Read(b)
		return len(b), 0
	case kindConsole:
		return 0, eBADF
	case kindDir:
		return 0, eISDIR
	case kindStdin:
		return tc.readStdin(f, b)
	case kindPipe:
		return tc.readPipe(f, b)
	case kindEventfd:
		return tc.readEventfd(f, b)
	case kindEpoll:
		return 0, eINVAL
	}
	if f.fl()&oAccMode == oWrOnly {
		return 0, eBADF
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	off := f.off
	if at >= 0 {
		off = at
	}
	n, _, err := c.FileRead(f.handle, uint64(off), b)
	if err != nil {
		return 0, errnoOf(err, eIO)
	}
	if at < 0 {
		f.off += int64(n)
	}
	return int(n), 0
}

// writeFile writes to f at its offset (or at off, for pwrite).
func (tc *task) writeFile(f *file, b []byte, at int64) (int, errno) {
	c := tc.c
	switch f.kind {
	case kindNull, kindZero, kindRandom:
		return len(b), 0
	case kindConsole:
		if _, _, err := c.ConsoleWrite(f.handle, b); errors.Is(err, abi.ErrPeerGone) {
			// Stopped before the write was done (a checkpoint above holds
			// the console): the call is issued again when it resumes.
			tc.held = true
			return 0, 0
		} else if err != nil {
			return 0, errnoOf(err, eIO)
		}
		return len(b), 0
	case kindDir:
		return 0, eISDIR
	case kindStdin:
		return 0, eBADF
	case kindPipe:
		return tc.writePipe(f, b)
	case kindEventfd:
		return tc.writeEventfd(f, b)
	case kindEpoll:
		return 0, eINVAL
	}
	if f.fl()&oAccMode == oRdOnly {
		return 0, eBADF
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	off := f.off
	if f.flags&oAppend != 0 && at < 0 {
		// file_stat, not file_size: it needs no read right, and a file
		// opened O_WRONLY|O_APPEND has none.
		buf := make([]byte, statSize)
		if _, _, err := c.FileStat(f.handle, buf); err != nil {
			return 0, errnoOf(err, eIO)
		}
		off = linuxStat(buf).Size
	}
	if at >= 0 {
		off = at
	}
	n, _, err := c.FileWrite(f.handle, uint64(off), b)
	if err != nil {
		return 0, errnoOf(err, eIO)
	}
	if at < 0 {
		f.off = off + int64(n)
	}
	return int(n), 0
}
