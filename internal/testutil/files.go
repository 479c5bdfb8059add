package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// FilesTree is a directory laid out for the tests of the files root (the
// fileio guest expects exactly this layout):
//
//	Root/hello.txt       "hello, files\n"
//	Root/sub/inner.txt   "inner\n"
//	Root/sub/up          -> ../hello.txt    (stays inside)
//	Root/inlink          -> hello.txt
//	Root/escape          -> ../outside.txt  (leaves the root)
//	Root/abs             -> Outside, an absolute path
//	Outside              "secret\n", beside Root
type FilesTree struct {
	Root    string
	Outside string
}

// OutsideContents is what FilesTree.Outside holds; a test that finds
// anything else there caught a write that left the root.
const OutsideContents = "secret\n"

// NewFilesTree lays out a FilesTree in a fresh temporary directory.
func NewFilesTree(t testing.TB) FilesTree {
	t.Helper()
	top := t.TempDir()
	ft := FilesTree{Root: filepath.Join(top, "root"), Outside: filepath.Join(top, "outside.txt")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(ft.Root, "sub"), 0o755))
	must(os.WriteFile(ft.Outside, []byte(OutsideContents), 0o644))
	must(os.WriteFile(filepath.Join(ft.Root, "hello.txt"), []byte("hello, files\n"), 0o644))
	must(os.WriteFile(filepath.Join(ft.Root, "sub", "inner.txt"), []byte("inner\n"), 0o644))
	must(os.Symlink("../hello.txt", filepath.Join(ft.Root, "sub", "up")))
	must(os.Symlink("hello.txt", filepath.Join(ft.Root, "inlink")))
	must(os.Symlink("../outside.txt", filepath.Join(ft.Root, "escape")))
	must(os.Symlink(ft.Outside, filepath.Join(ft.Root, "abs")))
	return ft
}

// CheckOutside fails t when anything beside the root changed: the outside
// file's contents, or a file created next to it.
func (ft FilesTree) CheckOutside(t testing.TB) {
	t.Helper()
	if b, err := os.ReadFile(ft.Outside); err != nil || string(b) != OutsideContents {
		t.Errorf("the file outside the root now holds %q (%v)", b, err)
	}
	entries, err := os.ReadDir(filepath.Dir(ft.Root))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("beside the root: %q, want only root and outside.txt", names)
	}
}
