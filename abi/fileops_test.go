package abi_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"nestvm/abi"
)

// NextDirEntry reads back what file_readdir writes, and refuses what is
// cut short or lacks its NUL byte.
func TestNextDirEntry(t *testing.T) {
	if n := binary.Size(abi.DirEntry{}); n != 16 {
		t.Fatalf("nv_dirent is %d bytes; NextDirEntry assumes 16", n)
	}
	entry := func(ino uint64, typ uint32, name string) []byte {
		b, _ := binary.Append(nil, binary.LittleEndian, abi.DirEntry{Inode: ino, Type: typ, NameLen: uint32(len(name))})
		b = append(b, name...)
		return append(b, make([]byte, 8-len(name)%8)...)
	}
	buf := bytes.Join([][]byte{entry(7, abi.FileTypeDir, "sub"), entry(9, abi.FileTypeRegular, "exactly8")}, nil)
	ent, name, rest, ok := abi.NextDirEntry(buf)
	if !ok || name != "sub" || ent.Inode != 7 || ent.Type != abi.FileTypeDir || len(rest) != 32 {
		t.Fatalf("first: %+v %q, %d left, %v", ent, name, len(rest), ok)
	}
	ent, name, rest, ok = abi.NextDirEntry(rest)
	if !ok || name != "exactly8" || ent.Inode != 9 || len(rest) != 0 {
		t.Fatalf("second: %+v %q, %d left, %v", ent, name, len(rest), ok)
	}
	noNUL := entry(1, 0, "abc")
	noNUL[16+3] = 'x'
	huge := entry(1, 0, "abc")
	binary.LittleEndian.PutUint32(huge[12:], 1<<31)
	for _, bad := range [][]byte{nil, buf[:15], buf[:20], noNUL, huge} {
		if _, _, _, ok := abi.NextDirEntry(bad); ok {
			t.Errorf("% x decoded", bad)
		}
	}
}
