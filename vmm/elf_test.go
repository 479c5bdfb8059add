package vmm

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"nestvm/abi"
	"nestvm/machine"
)

// phdr is a program header for testELF.
type phdr struct {
	typ, flags           uint32
	off, vaddr           uint64
	filesz, memsz, align uint64
}

// testELF builds an ELF64 x86-64 file in memory: the header, the program
// headers right after it, and body at file offset 0x1000. Tests alter
// fields of the result to break one rule at a time.
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

const ptGNUStack = 0x6474e551

// validPhdrs: text r-x at 0x400000 (0x100 bytes from the file), data rw-
// at 0x401000 (0x10 bytes from the file, 0x2000 in memory: the rest is
// bss), and a PT_GNU_STACK the loader ignores.
func validPhdrs() []phdr {
	return []phdr{
		{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: 0x400000, filesz: 0x100, memsz: 0x100, align: 0x1000},
		{typ: ptLoad, flags: pfR | pfW, off: 0x1100, vaddr: 0x401000, filesz: 0x10, memsz: 0x2000, align: 0x1000},
		{typ: ptGNUStack, flags: pfR | pfW},
	}
}

// validELF is a program that ParseELF accepts. Its last byte is the last
// byte of its data segment, so every shorter prefix must be refused.
func validELF() []byte {
	body := make([]byte, 0x110)
	for i := range body {
		body[i] = byte(i)
	}
	return testELF(elfTypeExec, 0x400010, validPhdrs(), body)
}

func TestParseELFValid(t *testing.T) {
	data := validELF()
	img, err := ParseELF(data, 0x3000)
	if err != nil {
		t.Fatal(err)
	}
	want := &Image{Entry: 0x400010, Segments: []Segment{
		{Addr: 0x400000, MemSize: 0x100, Data: data[0x1000:0x1100], Perm: machine.PermRead | machine.PermExec},
		{Addr: 0x401000, MemSize: 0x2000, Data: data[0x1100:0x1110], Perm: machine.PermRead | machine.PermWrite},
	}}
	if img.Entry != want.Entry || len(img.Segments) != len(want.Segments) {
		t.Fatalf("image %+v, want %+v", img, want)
	}
	for i, s := range img.Segments {
		w := want.Segments[i]
		if s.Addr != w.Addr || s.MemSize != w.MemSize || s.Perm != w.Perm || !bytes.Equal(s.Data, w.Data) {
			t.Errorf("segment %d: addr %#x size %#x perm %v data %d bytes, want addr %#x size %#x perm %v data %d bytes",
				i, s.Addr, s.MemSize, s.Perm, len(s.Data), w.Addr, w.MemSize, w.Perm, len(w.Data))
		}
		if &s.Data[0] != &w.Data[0] {
			t.Errorf("segment %d data is a copy; it should alias the file", i)
		}
		if cap(s.Data) != len(s.Data) {
			t.Errorf("segment %d data has capacity %d past its length %d: an append would overwrite the file", i, cap(s.Data), len(s.Data))
		}
	}
}

func TestParseELFRefusals(t *testing.T) {
	le := binary.LittleEndian
	edit := func(f func(b []byte)) []byte { b := validELF(); f(b); return b }
	withPhdrs := func(phs ...phdr) []byte { return testELF(elfTypeExec, 0x400010, phs, make([]byte, 0x200)) }
	text := validPhdrs()[0]
	interp := append([]byte("/lib64/ld-linux-x86-64.so.2"), 0)
	dynamic := phdr{typ: ptDynamic, flags: pfR | pfW, off: 0x1000, vaddr: 0x402000, filesz: 0x10, memsz: 0x10}
	for _, tc := range []struct {
		name  string
		data  []byte
		limit uint64 // 0 means 1 MiB
		want  string
	}{
		{name: "empty", data: nil, want: "not an ELF file"},
		{name: "text", data: []byte("#!/bin/sh\necho hello\n"), want: "not an ELF file"},
		{name: "half magic", data: []byte{0x7f, 'E'}, want: "not an ELF file"},
		{name: "magic only", data: []byte{0x7f, 'E', 'L', 'F'}, want: "truncated ELF header: the file has 0x4 bytes, the header needs 0x40"},
		{name: "short header", data: validELF()[:63], want: "truncated ELF header: the file has 0x3f bytes"},
		{name: "32-bit", data: edit(func(b []byte) { b[4] = elfClass32 }), want: "32-bit ELF: nestvm runs 64-bit x86-64 programs"},
		{name: "bad class", data: edit(func(b []byte) { b[4] = 3 }), want: "unknown ELF class 0x3"},
		{name: "big-endian", data: edit(func(b []byte) { b[5] = elfData2MSB }), want: "big-endian ELF"},
		{name: "bad byte order", data: edit(func(b []byte) { b[5] = 0 }), want: "unknown ELF byte order 0x0"},
		{name: "aarch64", data: edit(func(b []byte) { le.PutUint16(b[18:], 183) }), want: "machine AArch64, not x86-64"},
		{name: "unknown machine", data: edit(func(b []byte) { le.PutUint16(b[18:], 0x1234) }), want: "machine 0x1234, not x86-64"},
		{name: "ident version", data: edit(func(b []byte) { b[6] = 9 }), want: "ELF version 0x9, want 0x1"},
		{name: "header version", data: edit(func(b []byte) { le.PutUint32(b[20:], 0) }), want: "ELF version 0x0, want 0x1"},
		{name: "relocatable", data: edit(func(b []byte) { le.PutUint16(b[16:], elfTypeRel) }), want: "relocatable object (ET_REL)"},
		{name: "core", data: edit(func(b []byte) { le.PutUint16(b[16:], elfTypeCore) }), want: "core dump (ET_CORE)"},
		{name: "unknown type", data: edit(func(b []byte) { le.PutUint16(b[16:], 0xfe00) }), want: "ELF type 0xfe00 is not an executable"},
		{name: "pie", data: edit(func(b []byte) { le.PutUint16(b[16:], elfTypeDyn) }),
			want: "position-independent executable: link with -static -no-pie"},
		{name: "static pie", data: testELF(elfTypeDyn, 0x400010, []phdr{text, dynamic}, make([]byte, 0x200)),
			want: "position-independent executable: link with -static -no-pie"},
		{name: "no phdrs", data: edit(func(b []byte) { le.PutUint16(b[56:], 0) }), want: "no program headers"},
		{name: "phdr size", data: edit(func(b []byte) { le.PutUint16(b[54:], 32) }), want: "program header size 0x20, want 0x38"},
		{name: "too many phdrs", data: edit(func(b []byte) { le.PutUint16(b[56:], 65) }), want: "65 program headers, more than the 64 nestvm accepts"},
		{name: "PN_XNUM", data: edit(func(b []byte) { le.PutUint16(b[56:], 0xffff) }), want: "65535 program headers"},
		{name: "phdrs past end", data: edit(func(b []byte) { le.PutUint64(b[32:], 0x1100) }),
			want: "program header table (0xa8 bytes at offset 0x1100) runs past the end of the file (0x1110 bytes)"},
		{name: "phoff huge", data: edit(func(b []byte) { le.PutUint64(b[32:], 1<<63) }), want: "runs past the end of the file"},
		{name: "phoff wraps", data: edit(func(b []byte) { le.PutUint64(b[32:], ^uint64(0)-10) }), want: "runs past the end of the file"},
		{name: "dynamic with interpreter",
			data: testELF(elfTypeDyn, 0x400010, append(validPhdrs(), phdr{typ: ptInterp, off: 0x1100, filesz: uint64(len(interp))}),
				append(make([]byte, 0x100), interp...)),
			want: "dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2): nestvm runs static programs only; link with -static"},
		{name: "exec with interpreter",
			data: testELF(elfTypeExec, 0x400010, append(validPhdrs(), phdr{typ: ptInterp, off: 0x1100, filesz: uint64(len(interp))}),
				append(make([]byte, 0x100), interp...)),
			want: "dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)"},
		{name: "empty interpreter", data: withPhdrs(text, phdr{typ: ptInterp, off: 0x1000, filesz: 0}), want: `dynamically linked (interpreter "")`},
		{name: "interpreter past end", data: withPhdrs(text, phdr{typ: ptInterp, off: 1 << 40, filesz: 5}),
			want: "dynamically linked (interpreter path at file offset 0x10000000000, outside the file)"},
		{name: "interpreter size wraps", data: withPhdrs(text, phdr{typ: ptInterp, off: 0x1000, filesz: ^uint64(0)}),
			want: "outside the file"},
		{name: "interpreter unprintable",
			data: testELF(elfTypeExec, 0x400010, []phdr{text, {typ: ptInterp, off: 0x1100, filesz: 5}}, append(make([]byte, 0x100), "a\nb\x1b\x00"...)),
			want: `dynamically linked (interpreter "a\nb\x1b")`},
		{name: "interpreter long",
			data: testELF(elfTypeExec, 0x400010, []phdr{text, {typ: ptInterp, off: 0x1000, filesz: 0x1000}}, bytes.Repeat([]byte("a"), 0x1000)),
			want: `dynamically linked (interpreter "` + strings.Repeat("a", maxInterpShown) + `"...)`},
		{name: "exec with PT_DYNAMIC", data: withPhdrs(text, dynamic),
			want: "dynamically linked (dynamic section without an interpreter): nestvm runs static programs only; link with -static"},
		{name: "tls", data: withPhdrs(text, phdr{typ: ptTLS, flags: pfR, off: 0x1000, vaddr: 0x402000, filesz: 8, memsz: 8}),
			want: "segment 1 is thread-local storage (PT_TLS, 0x8 bytes), which nestvm does not support yet"},
		{name: "filesz > memsz", data: withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: 0x400000, filesz: 0x100, memsz: 0x10}),
			want: "segment 0 has 0x100 bytes in the file but only 0x10 in memory"},
		{name: "data past end", data: withPhdrs(text, phdr{typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: 0x401000, filesz: 0x100000, memsz: 0x100000}),
			want: "segment 1 (0x100000 bytes at file offset 0x1000) runs past the end of the file (0x1200 bytes)"},
		{name: "offset past end", data: withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1201, vaddr: 0x400000, filesz: 0, memsz: 0x100}),
			want: "segment 0 (0x0 bytes at file offset 0x1201) runs past the end of the file"},
		{name: "offset wraps", data: withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: ^uint64(0), vaddr: 0x400000, filesz: 2, memsz: 0x100}),
			want: "runs past the end of the file"},
		{name: "vaddr wraps", data: withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: ^uint64(0) - 0x10, filesz: 0, memsz: 0x100}),
			want: "segment 0 at 0xffffffffffffffef with 0x100 bytes wraps around the end of the address space"},
		{name: "no permissions", data: withPhdrs(text, phdr{typ: ptLoad, flags: 0xf0000000, off: 0x1000, vaddr: 0x401000, filesz: 0x10, memsz: 0x10}),
			want: "segment 1 at 0x401000-0x401010 has no permissions"},
		{name: "in reserved range", data: withPhdrs(text, phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: abi.ABIPage, filesz: 0x10, memsz: 0x1000}),
			want: "segment 1 at 0x100000-0x101000 overlaps the monitor's reserved range 0x100000-0x400000"},
		{name: "straddles user base", data: withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: abi.UserBase - 0x1000, filesz: 0x10, memsz: 0x2000}),
			want: "segment 0 at 0x3ff000-0x401000 overlaps the monitor's reserved range 0x100000-0x400000"},
		{name: "from null into reserved", data: withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: 0, filesz: 0x10, memsz: 0x200000}),
			want: "segment 0 at 0x0-0x200000 overlaps the monitor's reserved range"},
		{name: "at null", data: withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: 0, filesz: 0x10, memsz: 0x1000}),
			want: "segment 0 at 0x0-0x1000 lies in the null-pointer guard 0x0-0x100000 below the monitor's reserved range; link programs at 0x400000 or above"},
		{name: "above user top", data: withPhdrs(text, phdr{typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: abi.UserTop - 0x1000, filesz: 0, memsz: 0x2000}),
			want: "segment 1 at 0xffffff000-0x1000001000 ends above the top of the user range 0x1000000000"},
		{name: "overlapping", data: withPhdrs(text, phdr{typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: 0x400080, filesz: 0, memsz: 0x100}),
			want: "segment 0 at 0x400000-0x400100 and segment 1 at 0x400080-0x400180 overlap"},
		{name: "overlapping out of order", data: withPhdrs(
			phdr{typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: 0x410000, filesz: 0, memsz: 0x100},
			phdr{typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: 0x408000, filesz: 0, memsz: 0x8001},
			text),
			want: "segment 1 at 0x408000-0x410001 and segment 0 at 0x410000-0x410100 overlap"},
		{name: "same address", data: withPhdrs(text, text), want: "segment 0 at 0x400000-0x400100 and segment 1 at 0x400000-0x400100 overlap"},
		{name: "too big", data: withPhdrs(text, phdr{typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: 0x500000, filesz: 0, memsz: 0x10000000}),
			want: "segments need 0x10001000 bytes, more than the memory limit 0x100000"},
		{name: "one byte over", data: validELF(), limit: 0x2fff, want: "segments need 0x3000 bytes, more than the memory limit 0x2fff"},
		{name: "no load segments", data: withPhdrs(phdr{typ: ptGNUStack, flags: pfR}), want: "no loadable segments"},
		{name: "only empty load segments", data: withPhdrs(phdr{typ: ptLoad, flags: pfR | pfX, vaddr: 0x400000}), want: "no loadable segments"},
		{name: "entry in data", data: edit(func(b []byte) { le.PutUint64(b[24:], 0x401000) }),
			want: "entry point 0x401000 is outside every executable segment"},
		{name: "entry past text", data: edit(func(b []byte) { le.PutUint64(b[24:], 0x400100) }),
			want: "entry point 0x400100 is outside every executable segment"},
		{name: "entry zero", data: edit(func(b []byte) { le.PutUint64(b[24:], 0) }),
			want: "entry point 0x0 is outside every executable segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.limit
			if limit == 0 {
				limit = 1 << 20
			}
			img, err := ParseELF(tc.data, limit)
			if err == nil {
				t.Fatalf("accepted: %+v", img)
			}
			if !errors.Is(err, ErrBadELF) {
				t.Errorf("error %q does not wrap ErrBadELF", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to say %q", err, tc.want)
			}
		})
	}
}

// Files that are odd but loadable.
func TestParseELFAccepts(t *testing.T) {
	text := validPhdrs()[0]
	for _, tc := range []struct {
		name  string
		data  []byte
		limit uint64
		segs  int
	}{
		// ld packs small segments into one page; the loader merges the
		// page's permissions, and the page counts once against the limit.
		{name: "shared page", limit: 0x1000, segs: 2, data: testELF(elfTypeExec, 0x400010, []phdr{
			text, {typ: ptLoad, flags: pfR | pfW, off: 0x1100, vaddr: 0x400100, filesz: 0x10, memsz: 0x100},
		}, make([]byte, 0x200))},
		{name: "three in a page", limit: 0x1000, segs: 3, data: testELF(elfTypeExec, 0x400010, []phdr{
			{typ: ptLoad, flags: pfR, off: 0x1000, vaddr: 0x400200, filesz: 0x10, memsz: 0x100},
			text,
			{typ: ptLoad, flags: pfR | pfW, off: 0x1100, vaddr: 0x400100, filesz: 0x10, memsz: 0x100},
		}, make([]byte, 0x200))},
		{name: "unaligned across pages", limit: 0x2000, segs: 1, data: testELF(elfTypeExec, 0x400ff0, []phdr{
			{typ: ptLoad, flags: pfR | pfX, off: 0x1000, vaddr: 0x400ff0, filesz: 0x20, memsz: 0x20},
		}, make([]byte, 0x200))},
		{name: "exactly at limit", data: validELF(), limit: 0x3000, segs: 2},
		{name: "empty load segment skipped", limit: 0x1000, segs: 1, data: testELF(elfTypeExec, 0x400010, []phdr{
			{typ: ptLoad, off: ^uint64(0), vaddr: 0, filesz: 0x10},
			text,
		}, make([]byte, 0x200))},
		{name: "empty TLS ignored", limit: 0x1000, segs: 1, data: testELF(elfTypeExec, 0x400010, []phdr{
			text, {typ: ptTLS, flags: pfR, off: 0x1000, vaddr: 0x402000},
		}, make([]byte, 0x200))},
		{name: "notes and relro ignored", limit: 0x1000, segs: 1, data: testELF(elfTypeExec, 0x400010, []phdr{
			{typ: 4, flags: pfR, off: 1 << 62, vaddr: 0, filesz: 1 << 62, memsz: 1 << 62},          // PT_NOTE
			{typ: 0x6474e552, flags: pfR, off: 0, vaddr: abi.ABIPage, filesz: 0x100, memsz: 0x100}, // PT_GNU_RELRO
			{typ: 0x6474e553, flags: pfR, off: 0x1000, vaddr: 0x400000, filesz: 0x10, memsz: 0x10}, // PT_GNU_PROPERTY
			text,
		}, make([]byte, 0x200))},
		{name: "last byte of user range", limit: 0x2000, segs: 2, data: testELF(elfTypeExec, 0x400010, []phdr{
			text, {typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: abi.UserTop - 0x1000, memsz: 0x1000},
		}, make([]byte, 0x200))},
		{name: "GNU/Linux OS ABI", limit: 0x3000, segs: 2, data: func() []byte { b := validELF(); b[7] = 3; return b }()},
		{name: "FreeBSD OS ABI", limit: 0x3000, segs: 2, data: func() []byte { b := validELF(); b[7] = 9; return b }()},
		{name: "64 program headers", limit: 0x1000, segs: 1, data: func() []byte {
			phs := make([]phdr, maxPhdrs)
			phs[maxPhdrs-1] = text
			return testELF(elfTypeExec, 0x400010, phs, make([]byte, 0x200))
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := ParseELF(tc.data, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(img.Segments) != tc.segs {
				t.Errorf("%d segments, want %d: %+v", len(img.Segments), tc.segs, img.Segments)
			}
			checkImage(t, tc.data, img, tc.limit)
		})
	}
}

func TestParseELFTruncated(t *testing.T) {
	data := validELF()
	for n := range len(data) {
		if img, err := ParseELF(data[:n], 1<<20); err == nil {
			t.Fatalf("accepted the file cut at %#x of %#x bytes: %+v", n, len(data), img)
		} else if !errors.Is(err, ErrBadELF) {
			t.Fatalf("cut at %#x: error %q does not wrap ErrBadELF", n, err)
		}
	}
}

// A file may claim segments far larger than itself; parsing must cost
// the same as for a small one, since the loader allocates pages lazily.
func TestParseELFAllocatesNothingBySize(t *testing.T) {
	data := testELF(elfTypeExec, 0x400010, []phdr{
		validPhdrs()[0],
		{typ: ptLoad, flags: pfR | pfW, off: 0x1000, vaddr: 0x800000, memsz: abi.UserTop - 0x800000},
	}, make([]byte, 0x200))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := ParseELF(data, abi.UserTop); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("parsing a file that claims 64 GiB allocated %d bytes", n)
	}
}

func TestParseELFDynamicHostBinary(t *testing.T) {
	data, err := os.ReadFile("/bin/ls")
	if err != nil {
		t.Skipf("no /bin/ls to try: %v", err)
	}
	if f, err := elf.NewFile(bytes.NewReader(data)); err != nil || f.Machine != elf.EM_X86_64 {
		t.Skipf("/bin/ls is not an x86-64 ELF program here")
	}
	_, err = ParseELF(data, 1<<30)
	if err == nil || !strings.Contains(err.Error(), "dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)") {
		t.Fatalf("ParseELF(/bin/ls) = %v, want dynamically linked with the interpreter named", err)
	}
}

// buildWithGCC compiles src with gcc and the given flags and returns the
// program, or skips the test when gcc is missing.
func buildWithGCC(t *testing.T, src string, flags ...string) []byte {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skipf("needs gcc to build a test program: %v", err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "p.c"), filepath.Join(dir, "p")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-O2", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-o", out}, flags...)
	if b, err := exec.Command(gcc, append(args, in)...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(flags, " "), err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const gccProgram = `
int x = 5;
int y[1000];
const char msg[] = "hello";
void _start(void) { for (;;) y[x] = msg[x]; }
`

// A real toolchain's static program parses, and to what debug/elf reads
// from the same file.
func TestParseELFFromGCC(t *testing.T) {
	data := buildWithGCC(t, gccProgram, "-static", "-fno-pie", "-no-pie", "-Wl,-Ttext-segment=0x400000")
	img, err := ParseELF(data, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, data, img, 1<<20)
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if img.Entry != f.Entry {
		t.Errorf("entry %#x, debug/elf says %#x", img.Entry, f.Entry)
	}
	var want []Segment
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Memsz == 0 {
			continue
		}
		perm := machine.Perm(0)
		if p.Flags&elf.PF_R != 0 {
			perm |= machine.PermRead
		}
		if p.Flags&elf.PF_W != 0 {
			perm |= machine.PermWrite | machine.PermRead
		}
		if p.Flags&elf.PF_X != 0 {
			perm |= machine.PermExec | machine.PermRead
		}
		want = append(want, Segment{Addr: p.Vaddr, MemSize: p.Memsz, Data: data[p.Off : p.Off+p.Filesz], Perm: perm})
	}
	if len(img.Segments) != len(want) {
		t.Fatalf("%d segments, debug/elf finds %d loadable", len(img.Segments), len(want))
	}
	var hasExec, hasWrite bool
	for i, s := range img.Segments {
		w := want[i]
		if s.Addr != w.Addr || s.MemSize != w.MemSize || s.Perm != w.Perm || !bytes.Equal(s.Data, w.Data) {
			t.Errorf("segment %d: %#x+%#x %v, debug/elf says %#x+%#x %v", i, s.Addr, s.MemSize, s.Perm, w.Addr, w.MemSize, w.Perm)
		}
		hasExec = hasExec || s.Perm&machine.PermExec != 0
		hasWrite = hasWrite || s.Perm&machine.PermWrite != 0
	}
	if !hasExec || !hasWrite {
		t.Errorf("segments %+v: want an executable one and a writable one", img.Segments)
	}
}

func TestParseELFStaticPIEFromGCC(t *testing.T) {
	data := buildWithGCC(t, gccProgram, "-static-pie", "-fpie")
	_, err := ParseELF(data, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "position-independent executable: link with -static -no-pie") {
		t.Fatalf("ParseELF(static-pie) = %v, want it refused as position-independent", err)
	}
}

// checkImage checks what every accepted image promises: segments sorted,
// disjoint, inside the user range, their data inside the input and no
// longer than the segment, the entry in an executable segment, and the
// pages they need within limit.
func checkImage(t *testing.T, data []byte, img *Image, limit uint64) {
	t.Helper()
	var pages = map[uint64]bool{}
	entryOK := false
	for i, s := range img.Segments {
		end := s.Addr + s.MemSize
		if s.MemSize == 0 || end < s.Addr || s.Addr < abi.UserBase || end > abi.UserTop {
			t.Fatalf("segment %d at %#x+%#x is empty or outside the user range", i, s.Addr, s.MemSize)
		}
		if uint64(len(s.Data)) > s.MemSize {
			t.Fatalf("segment %d has %#x bytes of data but %#x of memory", i, len(s.Data), s.MemSize)
		}
		if len(s.Data) > 0 && !within(data, s.Data) {
			t.Fatalf("segment %d data does not lie inside the input", i)
		}
		if s.Perm == 0 || s.Perm&^(machine.PermRead|machine.PermWrite|machine.PermExec) != 0 {
			t.Fatalf("segment %d has permissions %#x", i, s.Perm)
		}
		if i > 0 {
			if p := img.Segments[i-1]; p.Addr+p.MemSize > s.Addr {
				t.Fatalf("segments %d (%#x+%#x) and %d (%#x+%#x) overlap or are unsorted", i-1, p.Addr, p.MemSize, i, s.Addr, s.MemSize)
			}
		}
		if s.Perm&machine.PermExec != 0 && img.Entry >= s.Addr && img.Entry < end {
			entryOK = true
		}
		// Counting pages one by one is fine here: every accepted image
		// fits in limit, which the tests keep small.
		for p := pageDown(s.Addr); p < end && uint64(len(pages))*pageSize <= limit; p += pageSize {
			pages[p] = true
		}
	}
	if !entryOK {
		t.Fatalf("entry %#x is outside every executable segment", img.Entry)
	}
	if n := uint64(len(pages)) * pageSize; n > limit {
		t.Fatalf("segments need at least %#x bytes, more than the limit %#x", n, limit)
	}
}

// within reports whether sub is a slice of data's memory, by finding the
// element of data its first byte is.
func within(data, sub []byte) bool {
	for i := range data {
		if &data[i] == &sub[0] {
			return len(sub) <= len(data)-i
		}
	}
	return false
}

func FuzzParseELF(f *testing.F) {
	le := binary.LittleEndian
	valid := validELF()
	f.Add(valid)
	for _, n := range []int{0, 4, 5, 63, 64, 0x40 + elfPhdrSize, 0xe8, 0x1000, 0x1100, 0x110f} {
		f.Add(valid[:n])
	}
	corrupt := func(fn func(b []byte)) {
		b := validELF()
		fn(b)
		f.Add(b)
	}
	corrupt(func(b []byte) { le.PutUint16(b[16:], elfTypeDyn) })
	corrupt(func(b []byte) { le.PutUint16(b[56:], maxPhdrs) })
	corrupt(func(b []byte) { le.PutUint64(b[32:], ^uint64(0)-0x37) })
	corrupt(func(b []byte) { le.PutUint64(b[64+8:], ^uint64(0)) })                      // text offset
	corrupt(func(b []byte) { le.PutUint64(b[64+16:], abi.ReservedBase) })               // text address
	corrupt(func(b []byte) { le.PutUint64(b[64+56+40:], abi.UserTop-0x401000+0x1000) }) // data size
	corrupt(func(b []byte) { le.PutUint64(b[64+56+16:], 0x400080) })                    // data overlaps text
	corrupt(func(b []byte) {
		le.PutUint32(b[64+2*56:], ptInterp)
		le.PutUint64(b[64+2*56+8:], 0x1000)
		le.PutUint64(b[64+2*56+32:], 0x20)
	})
	corrupt(func(b []byte) { le.PutUint32(b[64+2*56:], ptTLS); le.PutUint64(b[64+2*56+40:], 0x10) })
	if ls, err := os.ReadFile("/bin/ls"); err == nil {
		f.Add(ls)
	}
	// A nestvm note in the third program header, pointing into the text.
	corrupt(func(b []byte) {
		le.PutUint32(b[64+2*56:], ptNote)
		le.PutUint64(b[64+2*56+8:], 0x1000)
		le.PutUint64(b[64+2*56+32:], 20)
		copy(b[0x1000:], []byte{7, 0, 0, 0, 0, 0, 0, 0, NoteABI, 0, 0, 0, 'n', 'e', 's', 't', 'v', 'm', 0, 0})
	})
	const limit = 1 << 24
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := ParseELF(data, limit)
		linux, lerr := ParseELFWith(data, limit, ELFOptions{TLS: true})
		if lerr != nil && !errors.Is(lerr, ErrBadELF) {
			t.Fatalf("error %q does not wrap ErrBadELF", lerr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadELF) {
				t.Fatalf("error %q does not wrap ErrBadELF", err)
			}
		} else {
			checkImage(t, data, img, limit)
			if lerr != nil {
				t.Fatalf("accepted without PT_TLS but refused with it: %v", lerr)
			}
		}
		if lerr != nil {
			return
		}
		checkImage(t, data, linux, limit)
		// AT_PHDR points at the table inside a loaded segment's file bytes.
		if linux.Phdr != 0 {
			in := false
			for _, s := range linux.Segments {
				if linux.Phdr >= s.Addr && linux.Phdr-s.Addr+uint64(linux.Phnum)*elfPhdrSize <= uint64(len(s.Data)) {
					in = true
				}
			}
			if !in {
				t.Fatalf("Phdr %#x (%d entries) is not inside a segment's file bytes", linux.Phdr, linux.Phnum)
			}
		}
	})
}
