package vmm

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"nestvm/abi"
	"nestvm/internal/testutil"
)

// stat calls files_stat (or, with h an open file, file_stat) and decodes
// the record.
func (f *filesSpace) stat(h uint64, path string, flags uint64) (abi.Stat, abi.Error) {
	clear(f.data.Bytes()[0x800 : 0x800+outCap])
	var r0 uint64
	if h == f.root {
		r0, _ = f.call(h, abi.OpFilesStat, pathAddr, f.setPath(path), flags, outAddr, outCap)
	} else {
		r0, _ = f.call(h, abi.OpFileStat, outAddr, outCap)
	}
	var st abi.Stat
	if e := abi.ResultError(r0); e != abi.OK {
		return st, e
	}
	if r0 != uint64(statSize) {
		return st, abi.ErrIO
	}
	if _, err := binary.Decode(f.data.Bytes()[0x800:], binary.LittleEndian, &st); err != nil {
		return st, abi.ErrIO
	}
	return st, abi.OK
}

// do performs a files operation that takes one path (and values after
// it), or two paths when path holds a NUL byte (rename, symlink).
func (f *filesSpace) do(op abi.Op, path string, vals ...uint64) abi.Error {
	r0, _ := f.call(f.root, op, append([]uint64{pathAddr, f.setPath(path)}, vals...)...)
	return abi.ResultError(r0)
}

// hostStat is the host's lstat (or stat) of a path under the tree.
func hostStat(t *testing.T, path string, follow bool) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	var err error
	if follow {
		err = syscall.Stat(path, &st)
	} else {
		err = syscall.Lstat(path, &st)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &st
}

func TestFilesStat(t *testing.T) {
	f := newFilesSpace(t, false, rootRights)
	root := f.tree.Root
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Symlink("loop", filepath.Join(root, "loop"))
	syscall.Chmod(filepath.Join(root, "sub"), 0o1751)
	for _, tc := range []struct {
		path   string
		flags  uint64
		host   string // the host path whose stat it must equal, when it succeeds
		follow bool
		typ    uint64
		err    abi.Error
	}{
		{"", 0, ".", true, abi.FileTypeDir, abi.OK},
		{"hello.txt", 0, "hello.txt", true, abi.FileTypeRegular, abi.OK},
		{"sub", 0, "sub", true, abi.FileTypeDir, abi.OK},
		{"sub/", 0, "sub", true, abi.FileTypeDir, abi.OK},
		{"inlink", 0, "hello.txt", true, abi.FileTypeRegular, abi.OK},
		{"inlink", abi.StatNoFollow, "inlink", false, abi.FileTypeSymlink, abi.OK},
		{"sub/up", 0, "hello.txt", true, abi.FileTypeRegular, abi.OK},
		{"fifo", 0, "fifo", true, abi.FileTypeFIFO, abi.OK},
		// A link leading out is refused when followed; the link itself
		// is an entry of the root, and may be described.
		{"escape", 0, "", false, 0, abi.ErrDenied},
		{"abs", 0, "", false, 0, abi.ErrDenied},
		{"escape", abi.StatNoFollow, "escape", false, abi.FileTypeSymlink, abi.OK},
		{"abs", abi.StatNoFollow, "abs", false, abi.FileTypeSymlink, abi.OK},
		{"..", 0, "", false, 0, abi.ErrDenied},
		{"..", abi.StatNoFollow, "", false, 0, abi.ErrDenied},
		{"../outside.txt", abi.StatNoFollow, "", false, 0, abi.ErrDenied},
		{"sub/../../outside.txt", 0, "", false, 0, abi.ErrDenied},
		{"escape/x", abi.StatNoFollow, "", false, 0, abi.ErrDenied},
		{"/etc/passwd", 0, "", false, 0, abi.ErrInvalidArg},
		{"hello.txt\x00x", 0, "", false, 0, abi.ErrInvalidArg},
		{strings.Repeat("a", MaxFilesPath+1), 0, "", false, 0, abi.ErrTooBig},
		{"missing", 0, "", false, 0, abi.ErrNotFound},
		{"hello.txt/x", 0, "", false, 0, abi.ErrNotDir},
		{"loop", 0, "", false, 0, abi.ErrLoop},
		{"loop", abi.StatNoFollow, "loop", false, abi.FileTypeSymlink, abi.OK},
		{"hello.txt", 2, "", false, 0, abi.ErrInvalidArg},
	} {
		st, e := f.stat(f.root, tc.path, tc.flags)
		if e != tc.err {
			t.Errorf("stat %q flags %d: %v, want %v", tc.path, tc.flags, e, tc.err)
			continue
		}
		if e != abi.OK {
			continue
		}
		h := hostStat(t, filepath.Join(root, tc.host), tc.follow)
		want := abi.Stat{
			Type: tc.typ, Mode: uint64(h.Mode & 0o7777), Size: uint64(h.Size), Nlink: h.Nlink,
			UID: uint64(h.Uid), GID: uint64(h.Gid), Inode: h.Ino, Device: h.Dev, Rdev: h.Rdev,
			Blocks: uint64(h.Blocks), BlockSize: uint64(h.Blksize),
			AtimeSec: h.Atim.Sec, AtimeNsec: uint64(h.Atim.Nsec), MtimeSec: h.Mtim.Sec, MtimeNsec: uint64(h.Mtim.Nsec),
			CtimeSec: h.Ctim.Sec, CtimeNsec: uint64(h.Ctim.Nsec),
		}
		// The access time may move under the test's own reads.
		st.AtimeSec, st.AtimeNsec, want.AtimeSec, want.AtimeNsec = 0, 0, 0, 0
		if st != want {
			t.Errorf("stat %q flags %d:\n got %+v\nwant %+v", tc.path, tc.flags, st, want)
		}
	}
	if st, _ := f.stat(f.root, "sub", 0); st.Mode != 0o1751 {
		t.Errorf("sub's mode %#o, want 01751 (the sticky bit kept)", st.Mode)
	}
	if st, _ := f.stat(f.root, "inlink", abi.StatNoFollow); st.Size != uint64(len("hello.txt")) {
		t.Errorf("a link's size %d, want the length of its target", st.Size)
	}

	// A buffer shorter than the record gets its first bytes, and R0 says
	// how long the whole record is.
	clear(f.data.Bytes()[0x800 : 0x800+outCap])
	r0, _ := f.call(f.root, abi.OpFilesStat, pathAddr, f.setPath("hello.txt"), 0, outAddr, 8)
	if r0 != uint64(statSize) || binary.LittleEndian.Uint64(f.data.Bytes()[0x800:]) != abi.FileTypeRegular ||
		binary.LittleEndian.Uint64(f.data.Bytes()[0x808:]) != 0 {
		t.Errorf("stat into 8 bytes: R0 %d, buffer % x", r0, f.data.Bytes()[0x800:0x810])
	}

	// file_stat describes what an open handle's name leads to: a file,
	// a file open only for writing (it needs no rights), a directory.
	for _, tc := range []struct {
		path  string
		flags uint64
		typ   uint64
	}{
		{"hello.txt", abi.OpenRead, abi.FileTypeRegular},
		{"inlink", abi.OpenRead, abi.FileTypeRegular},
		{"sub", abi.OpenRead | abi.OpenDir, abi.FileTypeDir},
		{"", abi.OpenRead | abi.OpenDir, abi.FileTypeDir},
	} {
		h, e := f.open(f.root, tc.path, tc.flags)
		if e != abi.OK {
			t.Fatalf("open %q: %v", tc.path, e)
		}
		st, e := f.stat(h, "", 0)
		want := hostStat(t, filepath.Join(root, tc.path), true)
		if e != abi.OK || st.Type != tc.typ || st.Inode != want.Ino || st.Size != uint64(want.Size) {
			t.Errorf("file_stat of %q: %+v, %v; want type %d inode %d", tc.path, st, e, tc.typ, want.Ino)
		}
	}
}

// A file open only for writing can be described: fstat works on every
// descriptor.
func TestFileStatNeedsNoRights(t *testing.T) {
	f := newFilesSpace(t, true, rootRights|abi.RightWrite)
	h, e := f.open(f.root, "hello.txt", abi.OpenWrite)
	if e != abi.OK {
		t.Fatal(e)
	}
	if st, e := f.stat(h, "", 0); e != abi.OK || st.Size != 13 {
		t.Errorf("file_stat of a write-only file: %+v, %v", st, e)
	}
}

func TestFilesNamespace(t *testing.T) {
	f := newFilesSpace(t, true, rootRights|abi.RightWrite)
	root := f.tree.Root
	pair := func(a, b string) string { return string(abi.PathPair(a, b)) }
	os.Mkdir(filepath.Join(root, "full"), 0o755)
	os.WriteFile(filepath.Join(root, "full", "x"), nil, 0o644)
	os.Symlink("sub", filepath.Join(root, "dirlink"))
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each step in order; after it, the host must show what it says.
	for _, tc := range []struct {
		op    abi.Op
		path  string
		vals  []uint64
		err   abi.Error
		check func() bool
	}{
		{abi.OpFilesMkdir, "d", []uint64{0o750}, abi.OK, func() bool {
			st, err := os.Lstat(filepath.Join(root, "d"))
			return err == nil && st.IsDir()
		}},
		{abi.OpFilesMkdir, "d", []uint64{0o750}, abi.ErrExists, nil},
		{abi.OpFilesMkdir, "escape", []uint64{0o750}, abi.ErrExists, nil}, // even a link leading out
		{abi.OpFilesMkdir, "d/e/", []uint64{0o700}, abi.OK, nil},
		{abi.OpFilesMkdir, "nope/e", []uint64{0o700}, abi.ErrNotFound, nil},
		{abi.OpFilesMkdir, "hello.txt/e", []uint64{0o700}, abi.ErrNotDir, nil},
		{abi.OpFilesMkdir, "d/.", []uint64{0o700}, abi.ErrExists, nil},
		{abi.OpFilesMkdir, "bad", []uint64{0o10000}, abi.ErrInvalidArg, nil},
		{abi.OpFilesRmdir, "d", nil, abi.ErrNotEmpty, nil},
		{abi.OpFilesRmdir, "d/e", nil, abi.OK, func() bool {
			_, err := os.Lstat(filepath.Join(root, "d", "e"))
			return os.IsNotExist(err)
		}},
		{abi.OpFilesRmdir, "hello.txt", nil, abi.ErrNotDir, nil},
		{abi.OpFilesRmdir, "dirlink", nil, abi.ErrNotDir, nil},
		{abi.OpFilesRmdir, "d/..", nil, abi.ErrInvalidArg, nil},
		{abi.OpFilesUnlink, "d", nil, abi.ErrIsDir, nil},
		{abi.OpFilesUnlink, "hello.txt/", nil, abi.ErrNotDir, nil},
		{abi.OpFilesUnlink, "sub/", nil, abi.ErrIsDir, nil},
		{abi.OpFilesUnlink, "missing", nil, abi.ErrNotFound, nil},
		// Unlinking a link removes the link, never what it leads to.
		{abi.OpFilesUnlink, "dirlink", nil, abi.OK, func() bool {
			_, err := os.Lstat(filepath.Join(root, "dirlink"))
			st, err2 := os.Stat(filepath.Join(root, "sub", "inner.txt"))
			return os.IsNotExist(err) && err2 == nil && st.Size() == 6
		}},
		{abi.OpFilesUnlink, "escape", nil, abi.OK, nil},
		{abi.OpFilesUnlink, "fifo", nil, abi.OK, nil},
		{abi.OpFilesSymlink, pair("../hello.txt", "d/ln"), nil, abi.OK, func() bool {
			target, err := os.Readlink(filepath.Join(root, "d", "ln"))
			return err == nil && target == "../hello.txt"
		}},
		{abi.OpFilesSymlink, pair("x", "d/ln"), nil, abi.ErrExists, nil},
		{abi.OpFilesSymlink, pair("", "d/empty"), nil, abi.ErrNotFound, nil},
		{abi.OpFilesSymlink, "no-nul", nil, abi.ErrInvalidArg, nil},
		{abi.OpFilesRename, pair("d/ln", "d/ln2"), nil, abi.OK, func() bool {
			target, err := os.Readlink(filepath.Join(root, "d", "ln2"))
			return err == nil && target == "../hello.txt"
		}},
		{abi.OpFilesRename, pair("hello.txt", "d/h"), nil, abi.OK, func() bool {
			b, err := os.ReadFile(filepath.Join(root, "d", "h"))
			return err == nil && string(b) == "hello, files\n"
		}},
		{abi.OpFilesRename, pair("d/h", "sub/inner.txt"), nil, abi.OK, func() bool {
			b, err := os.ReadFile(filepath.Join(root, "sub", "inner.txt"))
			return err == nil && string(b) == "hello, files\n"
		}},
		{abi.OpFilesRename, pair("d", "full"), nil, abi.ErrNotEmpty, nil},
		{abi.OpFilesRename, pair("sub/inner.txt", "full"), nil, abi.ErrIsDir, nil},
		{abi.OpFilesRename, pair("full", "sub/inner.txt"), nil, abi.ErrNotDir, nil},
		{abi.OpFilesRename, pair("missing", "x"), nil, abi.ErrNotFound, nil},
		{abi.OpFilesRename, pair("full", ""), nil, abi.ErrInvalidArg, nil},
		{abi.OpFilesRename, pair("", "x"), nil, abi.ErrInvalidArg, nil},
		{abi.OpFilesRename, "full", nil, abi.ErrInvalidArg, nil},
		{abi.OpFilesChmod, "sub/inner.txt", []uint64{0o4640}, abi.OK, func() bool {
			st, err := os.Stat(filepath.Join(root, "sub", "inner.txt"))
			return err == nil && st.Mode().Perm() == 0o640 && st.Mode()&os.ModeSetuid != 0
		}},
		{abi.OpFilesChmod, "sub/inner.txt", []uint64{0o10000}, abi.ErrInvalidArg, nil},
		{abi.OpFilesTruncate, "sub/inner.txt", []uint64{5}, abi.OK, func() bool {
			b, err := os.ReadFile(filepath.Join(root, "sub", "inner.txt"))
			return err == nil && string(b) == "hello"
		}},
		{abi.OpFilesTruncate, "sub/inner.txt", []uint64{8}, abi.OK, func() bool {
			b, err := os.ReadFile(filepath.Join(root, "sub", "inner.txt"))
			return err == nil && string(b) == "hello\x00\x00\x00"
		}},
		{abi.OpFilesTruncate, "sub/inner.txt", []uint64{1 << 63}, abi.ErrInvalidArg, nil},
		{abi.OpFilesTruncate, "sub", []uint64{0}, abi.ErrIsDir, nil},
		{abi.OpFilesTruncate, "missing", []uint64{0}, abi.ErrNotFound, nil},
		{abi.OpFilesUtimes, "sub/inner.txt", []uint64{1_000_000_001, 2_000_000_002}, abi.OK, func() bool {
			st := hostStat(t, filepath.Join(root, "sub", "inner.txt"), true)
			return st.Atim.Sec == 1 && st.Atim.Nsec == 1 && st.Mtim.Sec == 2 && st.Mtim.Nsec == 2
		}},
		{abi.OpFilesUtimes, "sub/inner.txt", []uint64{abi.UtimeOmit, 3_000_000_000}, abi.OK, func() bool {
			st := hostStat(t, filepath.Join(root, "sub", "inner.txt"), true)
			return st.Atim.Sec == 1 && st.Mtim.Sec == 3
		}},
		{abi.OpFilesUtimes, "sub/inner.txt", []uint64{abi.UtimeNow, abi.UtimeOmit}, abi.OK, func() bool {
			st := hostStat(t, filepath.Join(root, "sub", "inner.txt"), true)
			return st.Atim.Sec > 1_000_000_000 && st.Mtim.Sec == 3
		}},
	} {
		e := f.do(tc.op, tc.path, tc.vals...)
		if e != tc.err {
			t.Errorf("%v %q %v: %v, want %v", tc.op, tc.path, tc.vals, e, tc.err)
		} else if tc.check != nil && !tc.check() {
			t.Errorf("%v %q %v: the host does not show it", tc.op, tc.path, tc.vals)
		}
	}
	// readlink reads the text as stored, cut to the buffer.
	os.Symlink("../outside.txt", filepath.Join(root, "out"))
	for _, tc := range []struct {
		path string
		cap  uint64
		want string
		n    uint64
		err  abi.Error
	}{
		{"out", outCap, "../outside.txt", 14, abi.OK},
		{"d/ln2", outCap, "../hello.txt", 12, abi.OK},
		{"d/ln2", 3, "../", 12, abi.OK},
		{"abs", outCap, f.tree.Outside, uint64(len(f.tree.Outside)), abi.OK},
		{"full", outCap, "", 0, abi.ErrInvalidArg},
		{"missing", outCap, "", 0, abi.ErrNotFound},
		{"../outside.txt", outCap, "", 0, abi.ErrDenied},
	} {
		clear(f.data.Bytes()[0x800 : 0x800+outCap])
		r0, _ := f.call(f.root, abi.OpFilesReadlink, pathAddr, f.setPath(tc.path), outAddr, tc.cap)
		if e := abi.ResultError(r0); e != tc.err {
			t.Errorf("readlink %q: %v, want %v", tc.path, e, tc.err)
			continue
		}
		if got := string(f.data.Bytes()[0x800 : 0x800+min(r0, tc.cap)]); tc.err == abi.OK && (r0 != tc.n || got != tc.want) {
			t.Errorf("readlink %q into %d: %q, %d; want %q, %d", tc.path, tc.cap, got, r0, tc.want, tc.n)
		}
	}
	f.tree.CheckOutside(t)
}

// Every namespace operation stays beneath the root: by "..", by an
// absolute path, by a link leading out (in the middle of a path or, for
// those that follow it, at its end). Each is refused with the tree and
// what lies beside it unchanged.
func TestFilesNamespaceConfined(t *testing.T) {
	f := newFilesSpace(t, true, rootRights|abi.RightWrite)
	root := f.tree.Root
	// out leads to the directory holding the root and outside.txt.
	os.Symlink("..", filepath.Join(root, "out"))
	pair := func(a, b string) string { return string(abi.PathPair(a, b)) }
	for _, tc := range []struct {
		op   abi.Op
		path string
		vals []uint64
		err  abi.Error
	}{
		{abi.OpFilesUnlink, "../outside.txt", nil, abi.ErrDenied},
		{abi.OpFilesUnlink, "out/outside.txt", nil, abi.ErrDenied},
		{abi.OpFilesUnlink, "sub/../../outside.txt", nil, abi.ErrDenied},
		{abi.OpFilesUnlink, "/etc/passwd", nil, abi.ErrInvalidArg},
		{abi.OpFilesRmdir, "..", nil, abi.ErrInvalidArg},
		{abi.OpFilesRmdir, "out/root", nil, abi.ErrDenied},
		{abi.OpFilesMkdir, "../evil", []uint64{0o755}, abi.ErrDenied},
		{abi.OpFilesMkdir, "out/evil", []uint64{0o755}, abi.ErrDenied},
		{abi.OpFilesMkdir, "/tmp/evil", []uint64{0o755}, abi.ErrInvalidArg},
		{abi.OpFilesRename, pair("hello.txt", "../evil"), nil, abi.ErrDenied},
		{abi.OpFilesRename, pair("hello.txt", "out/evil"), nil, abi.ErrDenied},
		{abi.OpFilesRename, pair("out/outside.txt", "stolen"), nil, abi.ErrDenied},
		{abi.OpFilesRename, pair("../outside.txt", "stolen"), nil, abi.ErrDenied},
		{abi.OpFilesRename, pair("hello.txt", "/tmp/evil"), nil, abi.ErrInvalidArg},
		{abi.OpFilesSymlink, pair("x", "../evil"), nil, abi.ErrDenied},
		{abi.OpFilesSymlink, pair("x", "out/evil"), nil, abi.ErrDenied},
		{abi.OpFilesChmod, "escape", []uint64{0o777}, abi.ErrDenied},
		{abi.OpFilesChmod, "abs", []uint64{0o777}, abi.ErrDenied},
		{abi.OpFilesChmod, "out/outside.txt", []uint64{0o777}, abi.ErrDenied},
		{abi.OpFilesTruncate, "escape", []uint64{0}, abi.ErrDenied},
		{abi.OpFilesTruncate, "abs", []uint64{0}, abi.ErrDenied},
		{abi.OpFilesUtimes, "escape", []uint64{0, 0}, abi.ErrDenied},
		{abi.OpFilesUtimes, "../outside.txt", []uint64{0, 0}, abi.ErrDenied},
	} {
		if e := f.do(tc.op, tc.path, tc.vals...); e != tc.err {
			t.Errorf("%v %q: %v, want %v", tc.op, tc.path, e, tc.err)
		}
	}
	// A link may hold any text; following it stays confined.
	if e := f.do(abi.OpFilesSymlink, pair("../outside.txt", "lnk")); e != abi.OK {
		t.Fatalf("symlink: %v", e)
	}
	if _, e := f.stat(f.root, "lnk", 0); e != abi.ErrDenied {
		t.Errorf("stat through a link made to lead out: %v", e)
	}
	if _, e := f.open(f.root, "lnk", abi.OpenRead); e != abi.ErrDenied {
		t.Errorf("open through a link made to lead out: %v", e)
	}
	st, err := os.Stat(f.tree.Outside)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("outside.txt: %v, mode %v", err, st.Mode())
	}
	f.tree.CheckOutside(t)
}

// Without the server's consent or the handle's write right, no namespace
// operation changes anything; readlink and stat need neither.
func TestFilesNamespaceNeedsWrite(t *testing.T) {
	for _, tc := range []struct {
		name     string
		writable bool
		rights   abi.Rights
	}{
		{"read-only server", false, rootRights | abi.RightWrite},
		{"no write right", true, rootRights},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFilesSpace(t, tc.writable, tc.rights)
			want := abi.ErrDenied
			if !tc.rights.Has(abi.RightWrite) {
				want = abi.ErrRights // the decoder refuses before the server sees it
			}
			for _, c := range []struct {
				op   abi.Op
				path string
				vals []uint64
			}{
				{abi.OpFilesUnlink, "hello.txt", nil},
				{abi.OpFilesMkdir, "d", []uint64{0o755}},
				{abi.OpFilesRmdir, "sub", nil},
				{abi.OpFilesRename, string(abi.PathPair("hello.txt", "x")), nil},
				{abi.OpFilesSymlink, string(abi.PathPair("hello.txt", "x")), nil},
				{abi.OpFilesChmod, "hello.txt", []uint64{0o600}},
				{abi.OpFilesTruncate, "hello.txt", []uint64{0}},
				{abi.OpFilesUtimes, "hello.txt", []uint64{0, 0}},
			} {
				if e := f.do(c.op, c.path, c.vals...); e != want {
					t.Errorf("%v: %v, want %v", c.op, e, want)
				}
			}
			if b, _ := os.ReadFile(filepath.Join(f.tree.Root, "hello.txt")); string(b) != "hello, files\n" {
				t.Errorf("hello.txt now holds %q", b)
			}
			if _, err := os.Lstat(filepath.Join(f.tree.Root, "x")); err == nil {
				t.Error("x was made")
			}
			if _, err := os.Stat(filepath.Join(f.tree.Root, "sub")); err != nil {
				t.Errorf("sub: %v", err)
			}
			r0, _ := f.call(f.root, abi.OpFilesReadlink, pathAddr, f.setPath("inlink"), outAddr, outCap)
			if r0 != uint64(len("hello.txt")) {
				t.Errorf("readlink: %v", abi.ResultError(r0))
			}
		})
	}
}

// A directory on the path swapped for a link leading out, while unlink,
// rename, rmdir and mkdir run through it, must never let one act outside:
// each component is resolved beneath the root whenever it is looked at.
func TestFilesNamespaceSymlinkRace(t *testing.T) {
	f := newFilesSpace(t, true, rootRights|abi.RightWrite)
	root := f.tree.Root
	d, real := filepath.Join(root, "d"), filepath.Join(root, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	outside, err := os.Stat(f.tree.Outside)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// d is by turns a directory holding a decoy outside.txt and
			// a link to the directory that holds the real one.
			os.RemoveAll(d)
			if i%2 == 0 {
				os.Mkdir(d, 0o755)
				os.WriteFile(filepath.Join(d, "outside.txt"), []byte("decoy"), 0o644)
			} else {
				os.Symlink("..", d)
			}
		}
	}()
	pair := func(a, b string) string { return string(abi.PathPair(a, b)) }
	for i := range 500 {
		f.do(abi.OpFilesUnlink, "d/outside.txt")
		f.do(abi.OpFilesRename, pair("d/outside.txt", "real/stolen"))
		f.do(abi.OpFilesRename, pair("hello.txt", "d/planted"))
		f.do(abi.OpFilesRename, pair("real/hello.txt", "hello.txt"))
		f.do(abi.OpFilesRmdir, "d/root")
		f.do(abi.OpFilesMkdir, "d/evil", 0o755)
		f.do(abi.OpFilesSymlink, pair("x", "d/evil2"))
		f.do(abi.OpFilesChmod, "d/outside.txt", 0o600)
		f.do(abi.OpFilesTruncate, "d/outside.txt", 0)
		// The real outside.txt is where it was, untouched: whatever was
		// moved, removed or changed was a decoy inside the root.
		st, err := os.Stat(f.tree.Outside)
		if err != nil || !os.SameFile(st, outside) || st.Mode().Perm() != 0o644 || st.Size() != outside.Size() {
			t.Fatalf("round %d: outside.txt is now %v, %v", i, st, err)
		}
		if st, err := os.Stat(filepath.Join(root, "real", "stolen")); err == nil && os.SameFile(st, outside) {
			t.Fatalf("round %d: rename took outside.txt into the root", i)
		}
		os.Remove(filepath.Join(root, "real", "stolen"))
	}
	// The flipping goroutine works inside the root only; what lies
	// beside it is checked while it still runs.
	f.tree.CheckOutside(t)
}

// readdir reads an open directory's entries from offset into the output
// buffer's first n bytes, decoded.
func (f *filesSpace) readdir(h, off, n uint64) ([]string, uint64, abi.Error) {
	clear(f.data.Bytes()[0x800 : 0x800+outCap])
	r0, r1 := f.call(h, abi.OpFileReaddir, off, outAddr, n)
	if e := abi.ResultError(r0); e != abi.OK {
		return nil, 0, e
	}
	var out []string
	b := f.data.Bytes()[0x800 : 0x800+r0]
	for len(b) > 0 {
		ent, name, rest, ok := abi.NextDirEntry(b)
		if !ok {
			return nil, 0, abi.ErrIO
		}
		out = append(out, name+"|"+string(rune('0'+ent.Type))+"|"+strings.Repeat("i", min(1, int(ent.Inode))))
		b = rest
	}
	return out, r1, abi.OK
}

func TestFileReaddir(t *testing.T) {
	f := newFilesSpace(t, false, rootRights)
	root := f.tree.Root
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, e := f.open(f.root, "", abi.OpenRead|abi.OpenDir)
	if e != abi.OK {
		t.Fatal(e)
	}
	if _, r1 := f.call(h, abi.OpHandleInfo); abi.Rights(r1) != rootRights {
		t.Errorf("directory handle rights %v, want %v", abi.Rights(r1), rootRights)
	}
	// Name|type|whether it has an inode.
	want := []string{"abs|3|i", "escape|3|i", "fifo|6|i", "hello.txt|1|i", "inlink|3|i", "sub|2|i"}
	got, next, e := f.readdir(h, 0, outCap)
	if e != abi.OK || strings.Join(got, " ") != strings.Join(want, " ") || next != uint64(len(want)) {
		t.Errorf("readdir: %q, next %d, %v; want %q", got, next, e, want)
	}
	// The inodes are the host's.
	clear(f.data.Bytes()[0x800 : 0x800+outCap])
	f.call(h, abi.OpFileReaddir, 3, outAddr, outCap)
	if ino := binary.LittleEndian.Uint64(f.data.Bytes()[0x800:]); ino != hostStat(t, filepath.Join(root, "hello.txt"), false).Ino {
		t.Errorf("hello.txt's inode %d", ino)
	}
	// A buffer that fits one entry at a time reads them all in turn.
	var all []string
	for off := uint64(0); ; {
		got, next, e := f.readdir(h, off, 32)
		if e != abi.OK {
			t.Fatalf("readdir at %d into 32: %v", off, e)
		}
		if len(got) == 0 {
			if next != off {
				t.Errorf("readdir at the end: next %d, want %d", next, off)
			}
			break
		}
		all = append(all, got...)
		off = next
	}
	if strings.Join(all, " ") != strings.Join(want, " ") {
		t.Errorf("readdir one by one: %q", all)
	}
	for _, tc := range []struct {
		off, n uint64
		err    abi.Error
	}{
		{0, 16, abi.ErrTooBig},
		{0, 0, abi.ErrTooBig},
		{100, outCap, abi.OK},
		{^uint64(0), outCap, abi.OK},
	} {
		if _, _, e := f.readdir(h, tc.off, tc.n); e != tc.err {
			t.Errorf("readdir at %d into %d: %v, want %v", tc.off, tc.n, e, tc.err)
		}
	}
	// A directory handle does not read or size; a file handle does not
	// list.
	if _, e := f.read(h, 0, 4); e != abi.ErrIsDir {
		t.Errorf("file_read on a directory: %v", e)
	}
	if _, e := f.size(h); e != abi.ErrIsDir {
		t.Errorf("file_size on a directory: %v", e)
	}
	fh, _ := f.open(f.root, "hello.txt", abi.OpenRead)
	if _, _, e := f.readdir(fh, 0, outCap); e != abi.ErrNotDir {
		t.Errorf("file_readdir on a file: %v", e)
	}
	// Like an open file, the handle follows its name, through the root.
	sh, _ := f.open(f.root, "sub", abi.OpenRead|abi.OpenDir)
	if got, _, e := f.readdir(sh, 0, outCap); e != abi.OK || strings.Join(got, " ") != "inner.txt|1|i up|3|i" {
		t.Errorf("readdir sub: %q, %v", got, e)
	}
	os.Rename(filepath.Join(root, "sub"), filepath.Join(root, "sub2"))
	os.Symlink("..", filepath.Join(root, "sub"))
	if _, _, e := f.readdir(sh, 0, outCap); e != abi.ErrDenied {
		t.Errorf("readdir through a link swapped in: %v", e)
	}
}

// The entries of a getdents buffer decode whole, and a malformed record
// ends the decoding instead of reading past the buffer.
func TestParseDirents(t *testing.T) {
	rec := func(ino uint64, typ uint8, name string, reclen int) []byte {
		b := make([]byte, reclen)
		binary.LittleEndian.PutUint64(b, ino)
		binary.LittleEndian.PutUint16(b[16:], uint16(reclen))
		b[18] = typ
		copy(b[19:], name)
		return b
	}
	buf := bytes.Join([][]byte{
		rec(1, syscall.DT_DIR, ".", 24), rec(2, syscall.DT_DIR, "..", 24),
		rec(7, syscall.DT_REG, "a", 24), rec(8, syscall.DT_LNK, "bb", 24), rec(9, 99, "c", 24),
	}, nil)
	got := parseDirents(buf, nil)
	want := []dirent{{"a", 7, abi.FileTypeRegular}, {"bb", 8, abi.FileTypeSymlink}, {"c", 9, abi.FileTypeOther}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range [][]byte{rec(1, 0, "x", 24)[:20], append(rec(1, 0, "x", 24)[:16], 0xff, 0xff, 0, 'x'), append(rec(1, 0, "x", 24)[:16], 3, 0, 0, 0)} {
		if got := parseDirents(bad, nil); len(got) != 0 {
			t.Errorf("malformed % x: %+v", bad, got)
		}
	}
}

// A Go layer (the Linux personality) drives the same operations through
// the host API: the generated Caller methods, abi.PathPair for the two
// paths, and the records decoded with encoding/binary and
// abi.NextDirEntry.
func TestFilesHostAPI(t *testing.T) {
	tree := testutil.NewFilesTree(t)
	files, err := FilesServer(tree.Root, true)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	s := NewMonitor(stubBackend{}, nil).NewHostSpace("personality", DefaultQuota)
	defer s.Kill("test over")
	c := s.NewCaller()
	root, err := c.Insert(NewHostPort("files", files), rootRights|abi.RightWrite, 0)
	if err != nil {
		t.Fatal(err)
	}
	must := func(what string, _, _ uint64, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	r0, r1, err := c.FilesMkdir(root, []byte("d"), 0o700)
	must("mkdir", r0, r1, err)
	r0, r1, err = c.FilesRename(root, abi.PathPair("hello.txt", "d/h"))
	must("rename", r0, r1, err)
	r0, r1, err = c.FilesSymlink(root, abi.PathPair("h", "d/l"))
	must("symlink", r0, r1, err)
	buf := make([]byte, 256)
	n, _, err := c.FilesStat(root, []byte("d/l"), 0, buf)
	must("stat", n, 0, err)
	var st abi.Stat
	if _, err := binary.Decode(buf[:n], binary.LittleEndian, &st); err != nil || st.Type != abi.FileTypeRegular || st.Size != 13 {
		t.Errorf("stat d/l: %+v, %v", st, err)
	}
	if _, _, err := c.FilesRmdir(root, []byte("d")); err != abi.ErrNotEmpty {
		t.Errorf("rmdir d: %v", err)
	}
	dir, _, err := c.FilesOpen(root, []byte("d"), abi.OpenRead|abi.OpenDir)
	must("open d", dir, 0, err)
	n, next, err := c.FileReaddir(dir, 0, buf)
	must("readdir", n, next, err)
	var names []string
	for b := buf[:n]; len(b) > 0; {
		ent, name, rest, ok := abi.NextDirEntry(b)
		if !ok {
			t.Fatalf("readdir wrote % x", buf[:n])
		}
		names = append(names, name+"|"+string(rune('0'+ent.Type)))
		b = rest
	}
	if strings.Join(names, " ") != "h|1 l|3" || next != 2 {
		t.Errorf("readdir d: %q, next %d", names, next)
	}
	if n, _, err := c.FileStat(dir, buf); err != nil || n != uint64(statSize) {
		t.Errorf("file_stat d: %d, %v", n, err)
	}
}
