package linux_test

import (
	"path/filepath"
	"reflect"
	"testing"

	linuxp "nestvm/personality/linux"
)

// TestEnviron: set replaces and adds, unset removes, base's order stays.
func TestEnviron(t *testing.T) {
	base := []string{"HOME=/root", "PATH=/bin", "TERM=xterm", "LANG=C"}
	got := linuxp.Environ(base, []string{"PATH=/usr/bin", "NEW=1"}, []string{"TERM", "MISSING"})
	want := []string{"HOME=/root", "LANG=C", "PATH=/usr/bin", "NEW=1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Environ: %q, want %q", got, want)
	}
	if got := linuxp.Environ(nil, []string{"A=b"}, nil); !reflect.DeepEqual(got, []string{"A=b"}) {
		t.Errorf("Environ with no base: %q", got)
	}
	if &base[0] == &linuxp.Environ(base, nil, nil)[0] {
		t.Error("Environ returned its base: a caller's later change would reach the program")
	}
}

// TestExePath: a program under its files root is named from that root, as
// in a chroot; one outside it keeps the path it was started by.
func TestExePath(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct{ prog, want string }{
		{filepath.Join(root, "bin", "sh"), "/bin/sh"},
		{filepath.Join(root, "sh"), "/sh"},
		{"/elsewhere/prog", "/elsewhere/prog"},
		{filepath.Join(root, "..", "beside"), filepath.Join(root, "..", "beside")},
	} {
		if got := linuxp.ExePath(tc.prog, root); got != tc.want {
			t.Errorf("ExePath(%q, root): %q, want %q", tc.prog, got, tc.want)
		}
	}
}
