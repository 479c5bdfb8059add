package linux

import (
	"debug/elf"
	"encoding/binary"
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

// TestVDSOCode decodes the hand-assembled code: every entry point and
// every branch target must be an instruction boundary, every call must
// reach read (offset 0), and each function must end in ret, syscall's
// ret or ud2: an offset off by a byte in vdso.go fails here, not in a
// program.
func TestVDSOCode(t *testing.T) {
	starts := map[int]bool{}
	type branch struct{ at, target int }
	var branches []branch
	var calls []int
	for off := 0; off < len(vdsoText); {
		inst, err := x86asm.Decode(vdsoText[off:], 64)
		if err != nil {
			t.Fatalf("offset %#x: %v", off, err)
		}
		starts[off] = true
		next := off + inst.Len
		if rel, ok := inst.Args[0].(x86asm.Rel); ok {
			b := branch{off, next + int(rel)}
			if inst.Op == x86asm.CALL {
				calls = append(calls, b.target)
			} else {
				branches = append(branches, b)
			}
		}
		off = next
	}
	for _, e := range []int{0, vdsoClockGettimeEntry, vdsoGettimeofdayEntry, vdsoTimeEntry, vdsoGetcpuEntry, vdsoKickEntry} {
		if !starts[e] {
			t.Errorf("entry %#x is not an instruction boundary", e)
		}
	}
	for _, b := range branches {
		if !starts[b.target] {
			t.Errorf("the branch at %#x goes to %#x, inside an instruction", b.at, b.target)
		}
	}
	if len(calls) != 3 {
		t.Errorf("%d calls, want 3 (clock_gettime, gettimeofday and time call read)", len(calls))
	}
	for _, c := range calls {
		if c != 0 {
			t.Errorf("a call goes to %#x, not to read", c)
		}
	}
}

// TestVDSOImage reads the built image as a C library does: the symbols
// are found through the program headers and the dynamic section, with
// version LINUX_2.6, at their entry points.
func TestVDSOImage(t *testing.T) {
	img := vdsoImageBytes
	le := binary.LittleEndian
	if string(img[:4]) != "\x7fELF" || elf.Type(le.Uint16(img[16:])) != elf.ET_DYN {
		t.Fatalf("not an ELF shared object: % x", img[:18])
	}
	var dyn []byte
	phoff, phnum := le.Uint64(img[32:]), int(le.Uint16(img[56:]))
	for i := range phnum {
		ph := img[phoff+uint64(i)*56:]
		if elf.ProgType(le.Uint32(ph)) == elf.PT_DYNAMIC {
			off, size := le.Uint64(ph[8:]), le.Uint64(ph[32:])
			dyn = img[off : off+size]
		}
	}
	tags := map[elf.DynTag]uint64{}
	for i := 0; i+16 <= len(dyn); i += 16 {
		tags[elf.DynTag(le.Uint64(dyn[i:]))] = le.Uint64(dyn[i+8:])
	}
	str := func(off uint64) string {
		s := img[tags[elf.DT_STRTAB]+off:]
		for i, c := range s {
			if c == 0 {
				return string(s[:i])
			}
		}
		return ""
	}
	nsym := le.Uint32(img[tags[elf.DT_HASH]+4:])
	// The version whose index the symbols carry.
	versions := map[uint16]string{}
	for off := tags[elf.DT_VERDEF]; ; {
		vd := img[off:]
		versions[le.Uint16(vd[4:])] = str(uint64(le.Uint32(img[off+uint64(le.Uint32(vd[12:])):])))
		next := le.Uint32(vd[16:])
		if next == 0 {
			break
		}
		off += uint64(next)
	}
	got := map[string]uint64{}
	for i := uint32(1); i < nsym; i++ {
		sym := img[tags[elf.DT_SYMTAB]+uint64(i)*24:]
		ver := versions[le.Uint16(img[tags[elf.DT_VERSYM]+uint64(i)*2:])]
		if ver != vdsoVersion || le.Uint16(sym[6:]) == 0 || elf.ST_TYPE(sym[4]) != elf.STT_FUNC {
			t.Errorf("symbol %d: version %q, section %d, type %v", i, ver, le.Uint16(sym[6:]), elf.ST_TYPE(sym[4]))
		}
		got[str(uint64(le.Uint32(sym)))] = le.Uint64(sym[8:])
	}
	text := uint64(vdsoKick - vdsoImage - vdsoKickEntry)
	for _, s := range vdsoSymbols {
		if got[s.name] != text+uint64(s.entry) {
			t.Errorf("%s at %#x, want %#x", s.name, got[s.name], text+uint64(s.entry))
		}
	}
	// The lea reaches the time page, a page below the image.
	disp := int32(le.Uint32(img[text+vdsoLeaDisp:]))
	if int64(text)+vdsoLeaEnd+int64(disp) != -pageSize {
		t.Errorf("read's lea reaches image%+#x, not the time page at -%#x", int64(text)+vdsoLeaEnd+int64(disp), pageSize)
	}
}
