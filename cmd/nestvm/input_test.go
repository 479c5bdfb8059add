package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"nestvm/nester"
	"nestvm/services/checkpoint"
)

// TestInputFiles: run, restore and inspect refuse at once an input that
// is not a regular file (a device that never ends, a FIFO that would
// block, a directory), and read of a huge sparse file only what its
// header makes worth reading: a 2 GiB file that is no program and a
// 3 GiB one with a valid checkpoint header are refused in little memory.
func TestInputFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	sparse := func(name string, head []byte, size int64) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, head, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	elf := sparse("big.elf", []byte{0x7f, 'E', 'L', 'F', 2, 1, 1}, 2<<30)
	hdr := make([]byte, 32)
	copy(hdr, checkpoint.Magic)
	binary.LittleEndian.PutUint32(hdr[8:], checkpoint.FormatVersion)
	binary.LittleEndian.PutUint64(hdr[16:], 3<<30)
	ck := sparse("big.nvck", hdr, 32+3<<30)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"run", "--backend", "emu", "/dev/zero"}, "not a regular file (a character device)"},
		{[]string{"run", "--backend", "emu", fifo}, "not a regular file (a FIFO)"},
		{[]string{"run", "--backend", "emu", dir}, "not a regular file (a directory)"},
		{[]string{"restore", "--backend", "emu", fifo}, "not a regular file (a FIFO)"},
		{[]string{"inspect", "/dev/zero"}, "not a regular file (a character device)"},
		{[]string{"run", "--backend", "emu", elf}, "ELF version 0x0"},
		{[]string{"restore", "--backend", "emu", ck}, "the body's records end after"},
		{[]string{"inspect", ck}, "the body's records end after"},
	} {
		cmd, stdout, stderr := nestvm(t, c.args...)
		status := wait(t, cmd)
		if status != nester.StatusNotRunnable || stdout.String() != "" || !strings.Contains(stderr.String(), c.msg) {
			t.Errorf("%v: status %d, stdout %q, stderr %q (want %q)", c.args, status, stdout, stderr, c.msg)
		}
		if rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10; rss > 256<<20 {
			t.Errorf("%v: took %d MiB of memory", c.args, rss>>20)
		}
	}
}
