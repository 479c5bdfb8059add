package vmm

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/internal/testutil"
	"nestvm/machine"
)

// filesSpace is a space (see newFuzzSpace) holding a files root over a
// testutil.FilesTree, driven through the hypercall decoder as a guest
// would drive it.
type filesSpace struct {
	*fuzzSpace
	tree  testutil.FilesTree
	files *Files
	root  uint64 // the files root's handle number
}

func newFilesSpace(tb testing.TB, writable bool, rights abi.Rights) *filesSpace {
	tb.Helper()
	tree := testutil.NewFilesTree(tb)
	files, err := FilesServer(tree.Root, writable)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { files.Close() })
	fs := newFuzzSpace(tb, "files")
	h, err := fs.s.insertHandle(NewHostPort("files", files), rights, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return &filesSpace{fuzzSpace: fs, tree: tree, files: files, root: h}
}

// Where call arguments go in the space's data page: a path, then an
// output buffer.
const (
	pathAddr = fuzzData
	outAddr  = fuzzData + 0x800
	outCap   = 0x400
)

func (f *filesSpace) call(h uint64, op abi.Op, args ...uint64) (uint64, uint64) {
	c := machine.Call{Args: [6]uint64{h, uint64(op)}, RSP: fuzzData + 0xf00}
	copy(c.Args[2:], args)
	// a4 and a5 go on the stack, above the return address.
	for i := 4; i < len(args); i++ {
		binary.LittleEndian.PutUint64(f.data.Bytes()[0xf00+8*(i-3):], args[i])
	}
	f.t.Hypercall(&c)
	return c.Ret[0], c.Ret[1]
}

// setPath puts p where calls find it and returns its length.
func (f *filesSpace) setPath(p string) uint64 {
	copy(f.data.Bytes()[:0x800], p)
	return uint64(len(p))
}

// open opens path with flags on handle h: the new handle, or an error.
func (f *filesSpace) open(h uint64, path string, flags uint64) (uint64, abi.Error) {
	r0, _ := f.call(h, abi.OpFilesOpen, pathAddr, f.setPath(path), flags)
	if e := abi.ResultError(r0); e != abi.OK {
		return 0, e
	}
	return r0, abi.OK
}

func (f *filesSpace) list(path string, cap uint64) (string, uint64, abi.Error) {
	clear(f.data.Bytes()[0x800 : 0x800+outCap])
	r0, _ := f.call(f.root, abi.OpFilesList, pathAddr, f.setPath(path), outAddr, cap)
	if e := abi.ResultError(r0); e != abi.OK {
		return "", 0, e
	}
	return string(f.data.Bytes()[0x800 : 0x800+min(r0, cap)]), r0, abi.OK
}

func (f *filesSpace) read(h, off, n uint64) (string, abi.Error) {
	r0, _ := f.call(h, abi.OpFileRead, off, outAddr, n)
	if e := abi.ResultError(r0); e != abi.OK {
		return "", e
	}
	return string(f.data.Bytes()[0x800 : 0x800+r0]), abi.OK
}

func (f *filesSpace) write(h, off uint64, data string) (uint64, abi.Error) {
	r0, _ := f.call(h, abi.OpFileWrite, off, pathAddr, f.setPath(data))
	return r0, abi.ResultError(r0)
}

func (f *filesSpace) size(h uint64) (uint64, abi.Error) {
	r0, _ := f.call(h, abi.OpFileSize)
	return r0, abi.ResultError(r0)
}

const rootRights = abi.RightRead | abi.RightGrant | abi.RightDerive

func TestFilesOpenRefuses(t *testing.T) {
	f := newFilesSpace(t, true, rootRights|abi.RightWrite)
	if err := syscall.Mkfifo(filepath.Join(f.tree.Root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		flags uint64
		want  abi.Error
	}{
		{"hello.txt", abi.OpenRead, abi.OK},
		{"inlink", abi.OpenRead, abi.OK},
		{"sub/up", abi.OpenRead, abi.OK},
		{"sub/../hello.txt", abi.OpenRead, abi.OK},
		{"sub//inner.txt", abi.OpenRead, abi.OK},
		{"../outside.txt", abi.OpenRead, abi.ErrDenied},
		{"..", abi.OpenRead, abi.ErrDenied},
		{"sub/../../outside.txt", abi.OpenRead, abi.ErrDenied},
		{"escape", abi.OpenRead, abi.ErrDenied},
		{"abs", abi.OpenRead, abi.ErrDenied},
		{"escape", abi.OpenWrite | abi.OpenTruncate, abi.ErrDenied},
		{"../evil.txt", abi.OpenWrite | abi.OpenCreate, abi.ErrDenied},
		{"/etc/passwd", abi.OpenRead, abi.ErrInvalidArg},
		{"", abi.OpenRead, abi.ErrInvalidArg},
		{"hello.txt\x00/../x", abi.OpenRead, abi.ErrInvalidArg},
		{strings.Repeat("a", MaxFilesPath+1), abi.OpenRead, abi.ErrTooBig},
		{"missing", abi.OpenRead, abi.ErrNotFound},
		{"hello.txt/x", abi.OpenRead, abi.ErrNotDir},
		// A directory opens only with abi.OpenDir, and only to read.
		{"sub", abi.OpenRead, abi.ErrIsDir},
		{"sub", abi.OpenWrite, abi.ErrIsDir},
		{"sub", abi.OpenRead | abi.OpenDir, abi.OK},
		{"", abi.OpenRead | abi.OpenDir, abi.OK},
		{"sub", abi.OpenRead | abi.OpenWrite | abi.OpenDir, abi.ErrInvalidArg},
		{"sub", abi.OpenDir, abi.ErrInvalidArg},
		{"hello.txt", abi.OpenRead | abi.OpenDir, abi.ErrNotDir},
		{"fifo", abi.OpenRead | abi.OpenDir, abi.ErrNotDir},
		{"..", abi.OpenRead | abi.OpenDir, abi.ErrDenied},
		{"escape", abi.OpenRead | abi.OpenDir, abi.ErrDenied},
		{"abs", abi.OpenRead | abi.OpenDir, abi.ErrDenied},
		{"/", abi.OpenRead | abi.OpenDir, abi.ErrInvalidArg},
		// Opening a FIFO would block until a writer came; it must fail
		// at once, for reading and for writing.
		{"fifo", abi.OpenRead, abi.ErrInvalidArg},
		{"fifo", abi.OpenWrite, abi.ErrInvalidArg},
		{"hello.txt", 0, abi.ErrInvalidArg},
		{"hello.txt", 1 << 6, abi.ErrInvalidArg},
		// An exclusive create makes a new file or nothing: an existing
		// name of any kind, a link leading out included, is refused
		// without being opened.
		{"excl.txt", abi.OpenWrite | abi.OpenCreate | abi.OpenExclusive, abi.OK},
		{"excl.txt", abi.OpenWrite | abi.OpenCreate | abi.OpenExclusive, abi.ErrExists},
		{"hello.txt", abi.OpenRead | abi.OpenWrite | abi.OpenCreate | abi.OpenExclusive, abi.ErrExists},
		{"fifo", abi.OpenWrite | abi.OpenCreate | abi.OpenExclusive, abi.ErrExists},
		{"sub", abi.OpenWrite | abi.OpenCreate | abi.OpenExclusive, abi.ErrExists},
		{"escape", abi.OpenWrite | abi.OpenCreate | abi.OpenExclusive, abi.ErrExists},
		{"abs", abi.OpenWrite | abi.OpenCreate | abi.OpenExclusive, abi.ErrExists},
		{"../evil.txt", abi.OpenWrite | abi.OpenCreate | abi.OpenExclusive, abi.ErrDenied},
		{"escape/x", abi.OpenWrite | abi.OpenCreate | abi.OpenExclusive, abi.ErrDenied},
		{"hello.txt", abi.OpenWrite | abi.OpenExclusive, abi.ErrInvalidArg},
		{"hello.txt", ^uint64(0), abi.ErrInvalidArg},
		{"hello.txt", abi.OpenRead | abi.OpenCreate, abi.ErrInvalidArg},
		{"hello.txt", abi.OpenRead | abi.OpenTruncate, abi.ErrInvalidArg},
	} {
		done := make(chan abi.Error, 1)
		go func() {
			_, e := f.open(f.root, tc.path, tc.flags)
			done <- e
		}()
		select {
		case got := <-done:
			if got != tc.want {
				t.Errorf("open %q flags %#x: %v, want %v", tc.path, tc.flags, got, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("open %q flags %#x blocked", tc.path, tc.flags)
		}
	}
	f.tree.CheckOutside(t)
}

// Writing needs both the server's consent and the handle's write right;
// either alone is refused.
func TestFilesWriteNeedsServerAndRight(t *testing.T) {
	for _, tc := range []struct {
		name     string
		writable bool
		rights   abi.Rights
		want     abi.Error
	}{
		{"writable server, write right", true, rootRights | abi.RightWrite, abi.OK},
		{"writable server, no write right", true, rootRights, abi.ErrDenied},
		{"read-only server, write right", false, rootRights | abi.RightWrite, abi.ErrDenied},
		{"read-only server, no write right", false, rootRights, abi.ErrDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFilesSpace(t, tc.writable, tc.rights)
			for _, flags := range []uint64{abi.OpenWrite | abi.OpenCreate, abi.OpenWrite, abi.OpenRead | abi.OpenWrite | abi.OpenTruncate} {
				name := "hello.txt"
				if flags&abi.OpenCreate != 0 {
					name = "new.txt"
				}
				if _, got := f.open(f.root, name, flags); got != tc.want {
					t.Errorf("open %s flags %#x: %v, want %v", name, flags, got, tc.want)
				}
			}
			if b, _ := os.ReadFile(filepath.Join(f.tree.Root, "hello.txt")); tc.want != abi.OK && string(b) != "hello, files\n" {
				t.Errorf("a refused open changed hello.txt to %q", b)
			}
			if _, err := os.Stat(filepath.Join(f.tree.Root, "new.txt")); (err == nil) != (tc.want == abi.OK) {
				t.Errorf("new.txt: %v after an open that got %v", err, tc.want)
			}
			// Reading needs neither.
			if _, got := f.open(f.root, "hello.txt", abi.OpenRead); got != abi.OK {
				t.Errorf("open to read: %v", got)
			}
		})
	}
}

func TestFilesReadWrite(t *testing.T) {
	f := newFilesSpace(t, true, rootRights|abi.RightWrite)
	h, e := f.open(f.root, "hello.txt", abi.OpenRead)
	if e != abi.OK {
		t.Fatal(e)
	}
	if r0, r1 := f.call(h, abi.OpHandleInfo); abi.ObjectType(r0) != abi.ObjPort || abi.Rights(r1) != rootRights {
		t.Errorf("open file: type %d rights %v, want a port with %v", r0, abi.Rights(r1), rootRights)
	}
	for _, tc := range []struct {
		off, n uint64
		want   string
		err    abi.Error
	}{
		{0, outCap, "hello, files\n", abi.OK},
		{7, outCap, "files\n", abi.OK},
		{0, 5, "hello", abi.OK},
		{13, outCap, "", abi.OK},
		{1 << 40, outCap, "", abi.OK},
		{1 << 63, outCap, "", abi.ErrInvalidArg},
		{0, 0, "", abi.OK},
	} {
		if got, err := f.read(h, tc.off, tc.n); got != tc.want || err != tc.err {
			t.Errorf("read %d at %d: %q, %v; want %q, %v", tc.n, tc.off, got, err, tc.want, tc.err)
		}
	}
	if n, e := f.size(h); n != 13 || e != abi.OK {
		t.Errorf("size %d, %v", n, e)
	}
	// The decoder checks the handle's rights before the server sees the
	// call.
	if _, e := f.write(h, 0, "x"); e != abi.ErrRights {
		t.Errorf("write through a read handle: %v", e)
	}
	for _, op := range []abi.Op{abi.OpFilesOpen, abi.OpFilesList, abi.OpClockRead} {
		if r0, _ := f.call(h, op, pathAddr, 1, 0); abi.ResultError(r0) != abi.ErrInvalidOp {
			t.Errorf("%v on an open file: %v", op, abi.ResultError(r0))
		}
	}
	for _, op := range []abi.Op{abi.OpFileRead, abi.OpFileSize, abi.OpClockRead} {
		if r0, _ := f.call(f.root, op, 0, outAddr, 1); abi.ResultError(r0) != abi.ErrInvalidOp {
			t.Errorf("%v on the root: %v", op, abi.ResultError(r0))
		}
	}

	w, e := f.open(f.root, "new.txt", abi.OpenWrite|abi.OpenCreate)
	if e != abi.OK {
		t.Fatal(e)
	}
	if _, r1 := f.call(w, abi.OpHandleInfo); abi.Rights(r1) != abi.RightWrite|abi.RightGrant|abi.RightDerive {
		t.Errorf("write-only file rights %v", abi.Rights(r1))
	}
	if n, e := f.write(w, 0, "abc"); n != 3 || e != abi.OK {
		t.Errorf("write: %d, %v", n, e)
	}
	if n, e := f.write(w, 5, "xy"); n != 2 || e != abi.OK {
		t.Errorf("write at 5: %d, %v", n, e)
	}
	if _, e := f.write(w, 1<<63-1, "xy"); e != abi.ErrInvalidArg {
		t.Errorf("write past 2^63: %v", e)
	}
	if _, e := f.read(w, 0, 1); e != abi.ErrRights {
		t.Errorf("read through a write handle: %v", e)
	}
	if b, _ := os.ReadFile(filepath.Join(f.tree.Root, "new.txt")); string(b) != "abc\x00\x00xy" {
		t.Errorf("new.txt holds %q", b)
	}
	rw, e := f.open(f.root, "new.txt", abi.OpenRead|abi.OpenWrite|abi.OpenTruncate)
	if e != abi.OK {
		t.Fatal(e)
	}
	if n, e := f.size(rw); n != 0 || e != abi.OK {
		t.Errorf("size after truncating: %d, %v", n, e)
	}

	// An open file follows its name: the host removing it shows.
	os.Remove(filepath.Join(f.tree.Root, "new.txt"))
	if _, e := f.size(rw); e != abi.ErrNotFound {
		t.Errorf("size of a removed file: %v", e)
	}
	if _, e := f.write(w, 0, "again"); e != abi.ErrNotFound {
		t.Errorf("write to a removed file: %v", e)
	}
	// A link swapped in under an open file's name cannot lead out.
	os.Remove(filepath.Join(f.tree.Root, "hello.txt"))
	os.Symlink("../outside.txt", filepath.Join(f.tree.Root, "hello.txt"))
	if _, e := f.read(h, 0, outCap); e != abi.ErrDenied {
		t.Errorf("read through a link swapped in: %v", e)
	}
	f.tree.CheckOutside(t)

	f.files.Close()
	if _, e := f.read(h, 0, 1); e != abi.ErrPeerGone {
		t.Errorf("read after the server closed: %v", e)
	}
	if _, e := f.open(f.root, "sub/inner.txt", abi.OpenRead); e != abi.ErrPeerGone {
		t.Errorf("open after the server closed: %v", e)
	}
}

func TestFilesList(t *testing.T) {
	f := newFilesSpace(t, false, rootRights)
	os.Mkdir(filepath.Join(f.tree.Root, "sub", "deeper"), 0o755)
	os.Symlink("sub", filepath.Join(f.tree.Root, "dirlink"))
	const (
		root = "abs\x00dirlink/\x00escape\x00hello.txt\x00inlink\x00sub/\x00"
		sub  = "deeper/\x00inner.txt\x00up\x00"
	)
	for _, tc := range []struct {
		path string
		cap  uint64
		want string
		n    uint64
		err  abi.Error
	}{
		{"", outCap, root, uint64(len(root)), abi.OK},
		{".", outCap, root, uint64(len(root)), abi.OK},
		{"sub", outCap, sub, uint64(len(sub)), abi.OK},
		{"dirlink/", outCap, sub, uint64(len(sub)), abi.OK},
		{"sub/deeper", outCap, "", 0, abi.OK},
		// Only whole entries fit; R0 is what the whole list needs.
		{"", 16, "abs\x00dirlink/\x00\x00\x00\x00", uint64(len(root)), abi.OK},
		{"", 3, "\x00\x00\x00", uint64(len(root)), abi.OK},
		{"", 0, "", uint64(len(root)), abi.OK},
		{"..", outCap, "", 0, abi.ErrDenied},
		{"escape", outCap, "", 0, abi.ErrDenied},
		{"/", outCap, "", 0, abi.ErrInvalidArg},
		{"hello.txt", outCap, "", 0, abi.ErrNotDir},
		{"nope", outCap, "", 0, abi.ErrNotFound},
	} {
		got, n, err := f.list(tc.path, tc.cap)
		if got != tc.want || n != tc.n || err != tc.err {
			t.Errorf("list %q into %d: %q, %d, %v; want %q, %d, %v", tc.path, tc.cap, got, n, err, tc.want, tc.n, tc.err)
		}
	}
}

// Every open reopens through the root and closes again, so opening many
// files holds no host descriptors, and needs no cap.
func TestFilesHoldNoDescriptors(t *testing.T) {
	f := newFilesSpace(t, false, rootRights)
	fds := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("cannot count descriptors: %v", err)
		}
		return len(entries)
	}
	before := fds()
	for i := range 2000 {
		h, e := f.open(f.root, "hello.txt", abi.OpenRead)
		if e != abi.OK {
			t.Fatalf("open %d: %v", i, e)
		}
		if _, e := f.read(h, 0, 5); e != abi.OK {
			t.Fatalf("read %d: %v", i, e)
		}
		if r0, _ := f.call(h, abi.OpHandleClose); r0 != 0 {
			t.Fatalf("close %d: %v", i, abi.ResultError(r0))
		}
	}
	if after := fds(); after > before+8 {
		t.Errorf("%d descriptors open before 2000 opens, %d after", before, after)
	}
}

func TestFilesServerRefusesBadRoots(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct{ dir, want string }{
		{filepath.Join(dir, "nope"), "no such file or directory"},
		{file, "not a directory"},
	} {
		f, err := FilesServer(tc.dir, false)
		if err == nil {
			f.Close()
			t.Errorf("%s: served", tc.dir)
		} else if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.dir) {
			t.Errorf("%s: %v, want it named with %q", tc.dir, err, tc.want)
		}
	}
}

// namespaceOps are the files root's operations on names, which FuzzFiles
// picks among.
var namespaceOps = []abi.Op{
	abi.OpFilesUnlink, abi.OpFilesMkdir, abi.OpFilesRmdir, abi.OpFilesRename, abi.OpFilesSymlink,
	abi.OpFilesReadlink, abi.OpFilesChmod, abi.OpFilesTruncate, abi.OpFilesUtimes,
}

// FuzzFiles sends arbitrary paths, flags and offsets to a writable files
// root and its files and directories: nothing may panic, every result is a
// value or an error code, and nothing outside the root may change.
func FuzzFiles(f *testing.F) {
	for _, p := range []string{"hello.txt", "../outside.txt", "escape", "abs", "sub/up", "/etc/passwd", "", "sub", "a\x00b", "new.txt", "sub/../../x", "inlink/..",
		"hello.txt\x00../x", "../outside.txt\x00x", "x\x00escape/y", "sub\x00sub/", "sub/"} {
		f.Add(uint8(0), p, uint64(abi.OpenRead), uint64(0), uint64(16))
		f.Add(uint8(0), p, uint64(abi.OpenWrite|abi.OpenCreate|abi.OpenTruncate), uint64(3), uint64(4))
		f.Add(uint8(1), p, uint64(0), uint64(0), uint64(outCap))
		f.Add(uint8(2), p, uint64(abi.OpenRead|abi.OpenDir), uint64(0), uint64(outCap))
		f.Add(uint8(3), p, uint64(abi.StatNoFollow), uint64(0), uint64(outCap))
		for i := range namespaceOps {
			f.Add(uint8(4), p, uint64(i), uint64(0o755), uint64(0))
		}
	}
	f.Add(uint8(2), "hello.txt", uint64(abi.OpenRead|abi.OpenWrite), uint64(1<<62), uint64(8))
	f.Add(uint8(4), "hello.txt", uint64(7), uint64(1<<63), uint64(0))
	f.Add(uint8(4), "hello.txt", uint64(8), abi.UtimeNow, abi.UtimeOmit)
	f.Fuzz(func(t *testing.T, what uint8, path string, flags, off, n uint64) {
		if len(path) > 0x800 {
			return
		}
		fs := newFilesSpace(t, true, rootRights|abi.RightWrite)
		// Past the output buffer, below the stack: no call writes there.
		guard := fs.data.Bytes()[outAddr-fuzzData+outCap : 0xf00]
		before := bytes.Clone(guard)
		valid := func(op abi.Op, r0 uint64) {
			if err := checkResult(uint64(op), r0); err != nil {
				t.Fatal(err)
			}
		}
		switch what % 5 {
		case 0, 2:
			r0, _ := fs.call(fs.root, abi.OpFilesOpen, pathAddr, fs.setPath(path), flags)
			valid(abi.OpFilesOpen, r0)
			if abi.ResultError(r0) == abi.OK {
				h := r0
				for _, op := range []abi.Op{abi.OpFileRead, abi.OpFileWrite, abi.OpFileSize, abi.OpFileStat, abi.OpFileReaddir, abi.Op(what)} {
					var r0 uint64
					if op == abi.OpFileStat {
						r0, _ = fs.call(h, op, outAddr, min(n, outCap))
					} else {
						r0, _ = fs.call(h, op, off, outAddr, min(n, outCap))
					}
					valid(op, r0)
				}
			}
		case 1:
			r0, _ := fs.call(fs.root, abi.OpFilesList, pathAddr, fs.setPath(path), outAddr, min(n, outCap))
			valid(abi.OpFilesList, r0)
		case 3:
			r0, _ := fs.call(fs.root, abi.OpFilesStat, pathAddr, fs.setPath(path), flags, outAddr, min(n, outCap))
			valid(abi.OpFilesStat, r0)
		case 4:
			op := namespaceOps[flags%uint64(len(namespaceOps))]
			var r0 uint64
			if op == abi.OpFilesReadlink {
				r0, _ = fs.call(fs.root, op, pathAddr, fs.setPath(path), outAddr, min(n, outCap))
			} else {
				r0, _ = fs.call(fs.root, op, pathAddr, fs.setPath(path), off, n)
			}
			valid(op, r0)
		}
		fs.tree.CheckOutside(t)
		if !bytes.Equal(guard, before) {
			t.Fatal("a call wrote past its output buffer")
		}
	})
}
