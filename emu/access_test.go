package emu

import (
	"encoding/binary"
	"testing"

	"nestvm/machine"
)

func TestWalk(t *testing.T) {
	mem := map[uint64]uint64{
		0x1000:       0x2000 | 1,      // PML4[0] -> PDPT
		0x2000:       0x3000 | 1,      // PDPT[0] -> PD
		0x3000 + 2*8: 0x400000 | 0x81, // PD[2]: a 2 MiB page at 4 MiB
		0x3000 + 3*8: 0x4000 | 1,      // PD[3] -> PT
		0x4000 + 5*8: 0x605000 | 7,    // PT[5]: 0x605000
		0x4000 + 6*8: 0x606000,        // PT[6]: not present
	}
	read := func(gpa uint64, buf []byte) bool {
		v, ok := mem[gpa]
		if !ok {
			v = 0
		}
		binary.LittleEndian.PutUint64(buf, v)
		return true
	}
	for _, tc := range []struct {
		addr    uint64
		pte     uint64
		present bool
	}{
		{0x412345, 0x400000 | 0x81, true},
		{0x605abc, 0x605000 | 7, true},
		{0x606000, 0x606000, false},
		{0x8000000, 0, false},
	} {
		pte, ok := walk(read, 0x1000, tc.addr)
		if !ok || pte != tc.pte || (pte&1 != 0) != tc.present {
			t.Errorf("walk(%#x) = %#x, %v; want %#x", tc.addr, pte, ok, tc.pte)
		}
	}
}

func TestClassifyAccess(t *testing.T) {
	const rip, rsp, rdi = 0x401000, 0x7fff0000, 0x500000
	for _, tc := range []struct {
		name string
		insn []byte
		addr uint64
		want machine.Access
	}{
		{"load", []byte{0x8b, 0x04, 0x25, 0, 0, 0x60, 0}, 0x600000, machine.AccessRead},   // mov eax, [0x600000]
		{"store", []byte{0x89, 0x04, 0x25, 0, 0, 0x60, 0}, 0x600000, machine.AccessWrite}, // mov [0x600000], eax
		{"store to itself", []byte{0xc6, 0x05, 0xf9, 0xff, 0xff, 0xff, 1}, rip, machine.AccessWrite},
		{"cmp", []byte{0x39, 0x04, 0x25, 0, 0, 0x60, 0}, 0x600000, machine.AccessRead}, // cmp [0x600000], eax
		{"push", []byte{0x50}, rsp - 8, machine.AccessWrite},
		{"pop", []byte{0x58}, rsp, machine.AccessRead},
		{"ret", []byte{0xc3}, rsp, machine.AccessRead},
		{"rep stosb", []byte{0xf3, 0xaa}, rdi + 100, machine.AccessWrite},
		{"add to memory", []byte{0x01, 0x04, 0x25, 0, 0, 0x60, 0}, 0x600000, machine.AccessWrite}, // add [0x600000], eax
		{"truncated fetch", []byte{0x8b, 0x04}, rip + 2, machine.AccessExec},
		{"nothing fetched", nil, rip, machine.AccessExec},
	} {
		if got := classifyAccess(tc.insn, rip, rsp, rdi, tc.addr); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestFindIO(t *testing.T) {
	code := []byte{0x48, 0xff, 0xc3, 0x90, 0xe6, 0x80, 0x48, 0xff, 0xc3} // inc rbx; nop; out 0x80, al; inc rbx
	if got := findIO(code, 0x400000); got != 0x400004 {
		t.Errorf("findIO = %#x, want 0x400004", got)
	}
	if got := findIO([]byte{0x90, 0x90}, 0x400000); got != 0x400000 {
		t.Errorf("findIO without I/O = %#x, want the block start", got)
	}
}

func TestSpans(t *testing.T) {
	var s spans
	s.set(0x1000, 0x3000, true)
	s.set(0x5000, 0x6000, true)
	s.set(0x3000, 0x4000, true) // adjacent: merges
	if len(s) != 2 || s[0] != (span{0x1000, 0x4000}) {
		t.Fatalf("spans %v", s)
	}
	s.set(0x2000, 0x2800, false)
	if len(s) != 3 || s.contains(0x2400) || !s.contains(0x2800) || !s.contains(0x1fff) {
		t.Fatalf("after removing: %v", s)
	}
	var none spans
	d := none.diff(s)
	if len(d) != 3 || !d[0].exec || d[0].start != 0x1000 || d[0].end != 0x2000 {
		t.Fatalf("diff %v", d)
	}
	if len(s.diff(s)) != 0 {
		t.Fatalf("a set differs from itself")
	}
	if got := clip([]span{{0, 0x2000}, {0x2000, 0x9000}}, 0x1000, 0x3000); len(got) != 2 || got[0] != (span{0x1000, 0x2000}) || got[1] != (span{0x2000, 0x3000}) {
		t.Fatalf("clip %v", got)
	}
	if got := pieces(0x400000, 0x40400000, spans{{0x400000, 0x401000}}); len(got) != 3 || got[0] != (span{0x400000, 0x401000}) || got[1].end != 1<<30 {
		t.Fatalf("pieces %v", got)
	}
}
