// Package testutil holds helpers shared by the project's tests: finding
// the guest programs the build produced, and skipping tests that need
// hardware this machine lacks, with a reason.
package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireKVM skips t, saying why, unless /dev/kvm can be opened for
// reading and writing.
func RequireKVM(t testing.TB) {
	t.Helper()
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("needs /dev/kvm (%v); the same cases run on the emu backend", err)
	}
	defer unix.Close(fd)
	// Something else at that path (a container's placeholder) is not KVM.
	const kvmGetAPIVersion = 0xae00
	if v, err := unix.IoctlRetInt(fd, kvmGetAPIVersion); err != nil || v != 12 {
		t.Skipf("needs a working /dev/kvm (KVM_GET_API_VERSION: %d, %v); the same cases run on the emu backend", v, err)
	}
}

// Root returns the repository root: the nearest directory above this
// test's working directory that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// GuestDir returns the directory holding the built guest programs. It is
// $NESTVM_GUESTS when set (the device machine runs test binaries away from
// the tree), else build/guests under the repository root.
func GuestDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("NESTVM_GUESTS"); d != "" {
		return d
	}
	return filepath.Join(Root(t), "build", "guests")
}

// Guest returns the path of the built guest program name (without .elf).
// A missing guest fails the test with the command that builds it: tests
// never silently skip their real workload.
func Guest(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(GuestDir(t), name+".elf")
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		t.Fatalf("guest %s not built: run `make guests` first (looked for %s)", name, p)
	} else if err != nil {
		t.Fatalf("guest %s: %v", name, err)
	}
	return p
}

// RequireLinuxAMD64 skips t on hosts that cannot run x86-64 guests.
func RequireLinuxAMD64(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("needs linux/amd64, this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
}
