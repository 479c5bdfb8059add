package vmm

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"nestvm/abi"
)

// phdr is a program header for testELF.
type phdr struct {
	typ, flags           uint32
	off, vaddr           uint64
	filesz, memsz, align uint64
}

// testELF builds an ELF64 file: header, program headers, then body at
// offset 0x1000. Fields can be altered afterwards.
func testELF(typ uint16, entry uint64, phs []phdr, body []byte) []byte {
	le := binary.LittleEndian
	f := make([]byte, 0x1000+len(body))
	copy(f, []byte{0x7f, 'E', 'L', 'F', elfClass64, elfData2LSB, elfVersion})
	le.PutUint16(f[16:], typ)
	le.PutUint16(f[18:], elfMachineX64)
	le.PutUint32(f[20:], elfVersion)
	le.PutUint64(f[24:], entry)
	le.PutUint64(f[32:], elfHeaderSize)
	le.PutUint16(f[52:], elfHeaderSize)
	le.PutUint16(f[54:], elfPhdrSize)
	le.PutUint16(f[56:], uint16(len(phs)))
	for i, p := range phs {
		h := f[elfHeaderSize+i*elfPhdrSize:]
		le.PutUint32(h[0:], p.typ)
		le.PutUint32(h[4:], p.flags)
		le.PutUint64(h[8:], p.off)
		le.PutUint64(h[16:], p.vaddr)
		le.PutUint64(h[24:], p.vaddr)
		le.PutUint64(h[32:], p.filesz)
		le.PutUint64(h[40:], p.memsz)
		le.PutUint64(h[48:], p.align)
	}
	copy(f[0x1000:], body)
	return f
}

// validPhdrs: text r-x at 0x400000 (0x100 bytes from the file), data rw-
// at 0x401000 (0x10 bytes from the file, 0x2000 in memory).
func validPhdrs() []phdr {
	return []phdr{
		{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: 0x400000, filesz: 0x100, memsz: 0x100, align: 0x1000},
		{typ: ptLoad, flags: pfR | pfW, off: 0x1100, vaddr: 0x401000, filesz: 0x10, memsz: 0x2000, align: 0x1000},
		{typ: 0x6474e551, flags: pfR | pfW}, // PT_GNU_STACK: ignored
	}
}

func validELF() []byte { return testELF(elfTypeExec, 0x400010, validPhdrs(), make([]byte, 0x200)) }

func TestParseELFValid(t *testing.T) {
	data := validELF()
	img, err := ParseELF(data, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if img.Entry != 0x400010 || len(img.Segments) != 2 {
		t.Fatalf("image %+v", img)
	}
	text, dat := img.Segments[0], img.Segments[1]
	if text.Addr != 0x400000 || text.MemSize != 0x100 || len(text.Data) != 0x100 || text.Perm != PermRead|PermExec {
		t.Errorf("text segment %+v", text)
	}
	if dat.Addr != 0x401000 || dat.MemSize != 0x2000 || len(dat.Data) != 0x10 || dat.Perm != PermRead|PermWrite {
		t.Errorf("data segment %+v", dat)
	}
	if &text.Data[0] != &data[0x1000] {
		t.Errorf("segment data is copied; it should alias the file")
	}
}

func TestParseELFRefusals(t *testing.T) {
	le := binary.LittleEndian
	edit := func(f func(b []byte)) []byte { b := validELF(); f(b); return b }
	withPhdrs := func(phs ...phdr) []byte { return testELF(elfTypeExec, 0x400010, phs, make([]byte, 0x200)) }
	text := validPhdrs()[0]
	interp := append([]byte("/lib64/ld-linux-x86-64.so.2"), 0)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not an ELF file"},
		{"text", []byte("#!/bin/sh\necho hello\n"), "not an ELF file"},
		{"magic only", []byte{0x7f, 'E', 'L', 'F'}, "truncated ELF header"},
		{"32-bit", edit(func(b []byte) { b[4] = 1 }), "32-bit ELF"},
		{"big-endian", edit(func(b []byte) { b[5] = 2 }), "big-endian"},
		{"aarch64", edit(func(b []byte) { le.PutUint16(b[18:], 183) }), "machine AArch64, not x86-64"},
		{"bad version", edit(func(b []byte) { b[6] = 9 }), "unknown ELF version"},
		{"relocatable", edit(func(b []byte) { le.PutUint16(b[16:], elfTypeRel) }), "relocatable object"},
		{"core", edit(func(b []byte) { le.PutUint16(b[16:], elfTypeCore) }), "core dump"},
		{"static pie", edit(func(b []byte) { le.PutUint16(b[16:], elfTypeDyn) }), "position-independent executable"},
		{"no phdrs", edit(func(b []byte) { le.PutUint16(b[56:], 0) }), "no program headers"},
		{"phdr size", edit(func(b []byte) { le.PutUint16(b[54:], 32) }), "program header size 32"},
		{"too many phdrs", edit(func(b []byte) { le.PutUint16(b[56:], 65535) }), "more than the 64"},
		{"phdrs past end", edit(func(b []byte) { le.PutUint64(b[32:], 1<<63) }), "run past the end of the file"},
		{"phoff overflow", edit(func(b []byte) { le.PutUint64(b[32:], ^uint64(0)-10) }), "run past the end of the file"},
		{"dynamic with interpreter", testELF(elfTypeDyn, 0x400010, append(validPhdrs(),
			phdr{typ: ptInterp, off: 0x1100, filesz: uint64(len(interp))}), append(make([]byte, 0x100), interp...)),
			"dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)"},
		{"exec with PT_DYNAMIC", withPhdrs(text, phdr{typ: ptDynamic, off: 0x1000, filesz: 16}), "dynamically linked (has a PT_DYNAMIC"},
		{"interp past end", withPhdrs(text, phdr{typ: ptInterp, off: 1 << 40, filesz: 5}), "interpreter ?"},
		{"tls", withPhdrs(text, phdr{typ: ptTLS, flags: pfR, off: 0x1000, vaddr: 0x402000, filesz: 8, memsz: 8}), "thread-local storage"},
		{"filesz > memsz", withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: 0x400000, filesz: 0x100, memsz: 0x10}), "only 0x10 in memory"},
		{"data past end", withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: 0x400000, filesz: 0x100000, memsz: 0x100000}), "runs past the end of the file"},
		{"offset overflow", withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: ^uint64(0), vaddr: 0x400000, filesz: 2, memsz: 0x100}), "runs past the end of the file"},
		{"vaddr wraps", withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: ^uint64(0) - 0x10, filesz: 0, memsz: 0x100}), "wraps around"},
		{"no permissions", withPhdrs(phdr{typ: ptLoad, off: 0x1000, vaddr: 0x400000, filesz: 0x10, memsz: 0x10}), "has no permissions"},
		{"in reserved range", withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: abi.ABIPage, filesz: 0x10, memsz: 0x1000}),
			"overlaps the monitor's reserved range"},
		{"at null", withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: 0, filesz: 0x10, memsz: 0x1000}), "overlaps the monitor's reserved range"},
		{"straddles user base", withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: abi.UserBase - 0x1000, filesz: 0x10, memsz: 0x2000}),
			"overlaps the monitor's reserved range"},
		{"above user top", withPhdrs(text, phdr{typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: abi.UserTop - 0x1000, filesz: 0, memsz: 0x2000}),
			"ends above the user range"},
		{"overlapping", withPhdrs(text, phdr{typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: 0x400080, filesz: 0, memsz: 0x100}),
			"segments at 0x400000-0x400100 and 0x400080-0x400180 overlap"},
		{"too big", withPhdrs(text, phdr{typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: 0x500000, filesz: 0, memsz: 0x10000000}),
			"more than the memory limit"},
		{"no load segments", withPhdrs(phdr{typ: 0x6474e551, flags: pfR}), "no loadable segments"},
		{"entry outside", edit(func(b []byte) { le.PutUint64(b[24:], 0x401000) }), "entry point 0x401000 is outside every executable segment"},
		{"entry past text", edit(func(b []byte) { le.PutUint64(b[24:], 0x400100) }), "outside every executable segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := ParseELF(tc.data, 1<<20)
			if err == nil {
				t.Fatalf("accepted: %+v", img)
			}
			if !errors.Is(err, ErrBadELF) {
				t.Errorf("error %q does not wrap ErrBadELF", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// Two segments may share a page (ld packs them); the loader merges the
// page's permissions, so the parser accepts it.
func TestParseELFSharedPage(t *testing.T) {
	data := testELF(elfTypeExec, 0x400010, []phdr{
		{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: 0x400000, filesz: 0x100, memsz: 0x100},
		{typ: ptLoad, flags: pfR | pfW, off: 0x1100, vaddr: 0x400100, filesz: 0x10, memsz: 0x100},
	}, make([]byte, 0x200))
	if _, err := ParseELF(data, 1<<20); err != nil {
		t.Fatal(err)
	}
}

func TestParseELFTruncated(t *testing.T) {
	data := validELF()
	for n := 0; n < 0x1100; n++ {
		if _, err := ParseELF(data[:n], 1<<20); err == nil {
			t.Fatalf("accepted the file cut at %d bytes", n)
		}
	}
}

func TestParseELFDynamicHostBinary(t *testing.T) {
	data, err := os.ReadFile("/bin/ls")
	if err != nil {
		t.Skipf("no /bin/ls to try: %v", err)
	}
	_, err = ParseELF(data, 1<<30)
	if err == nil || !strings.Contains(err.Error(), "dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)") {
		t.Fatalf("ParseELF(/bin/ls) = %v, want dynamically linked with the interpreter named", err)
	}
}

func TestParseELFFromGCC(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("needs gcc: %v", err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "p.c")
	os.WriteFile(src, []byte("int x = 5; int y[100]; void _start(void) { for (;;) y[0] = x; }\n"), 0o644)
	out := filepath.Join(dir, "p")
	cmd := exec.Command(gcc, "-O2", "-static", "-nostdlib", "-ffreestanding", "-fno-pie", "-no-pie",
		"-Wl,-Ttext-segment=0x400000", "-o", out, src)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	data, _ := os.ReadFile(out)
	img, err := ParseELF(data, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var exec, write bool
	for _, s := range img.Segments {
		exec = exec || s.Perm&PermExec != 0
		write = write || s.Perm&PermWrite != 0
	}
	if !exec || !write {
		t.Fatalf("segments %+v: want an executable one and a writable one", img.Segments)
	}
}

func FuzzParseELF(f *testing.F) {
	data := validELF()
	f.Add(data)
	for _, n := range []int{0, 4, 63, 64, 200, 0x1000, 0x1050} {
		f.Add(data[:n])
	}
	b := validELF()
	binary.LittleEndian.PutUint16(b[16:], elfTypeDyn)
	f.Add(b)
	if ls, err := os.ReadFile("/bin/ls"); err == nil {
		f.Add(ls)
	}
	const limit = 1 << 24
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := ParseELF(data, limit)
		if err != nil {
			if !errors.Is(err, ErrBadELF) {
				t.Fatalf("error %v does not wrap ErrBadELF", err)
			}
			return
		}
		var total uint64
		entryOK := false
		for i, s := range img.Segments {
			if s.Addr < abi.UserBase || s.Addr+s.MemSize > abi.UserTop || s.Addr+s.MemSize < s.Addr {
				t.Fatalf("segment %d %#x+%#x outside the user range", i, s.Addr, s.MemSize)
			}
			if uint64(len(s.Data)) > s.MemSize {
				t.Fatalf("segment %d has more data than memory", i)
			}
			if i > 0 && img.Segments[i-1].Addr+img.Segments[i-1].MemSize > s.Addr {
				t.Fatalf("segments %d and %d overlap or are unsorted", i-1, i)
			}
			if s.Perm&PermExec != 0 && img.Entry >= s.Addr && img.Entry < s.Addr+s.MemSize {
				entryOK = true
			}
			end, _ := pageUp(s.Addr + s.MemSize)
			total += end - pageDown(s.Addr)
		}
		if !entryOK || total > limit {
			t.Fatalf("accepted an image with entry %#x outside exec segments or %#x bytes", img.Entry, total)
		}
	})
}
