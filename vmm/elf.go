package vmm

// The loader reads the ELF header and program headers itself instead of
// using debug/elf: loading needs nothing else, while debug/elf also parses
// section headers (which a static program may strip, and a hostile file can
// use to be refused for reasons unrelated to loading) and sizes its tables
// from header fields. Every field here is checked before it is used, and
// nothing is allocated in proportion to a size the file claims.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"nestvm/abi"
)

// ErrBadELF is wrapped by every error ParseELF returns.
var ErrBadELF = errors.New("not a program nestvm can run")

// Segment is one loadable piece of a program image.
type Segment struct {
	Addr    uint64 // guest address of the first byte
	MemSize uint64 // bytes in memory; those past len(Data) are zero
	Data    []byte // the bytes from the file (len(Data) <= MemSize); aliases the input
	Perm    Perm
}

// Image is a program ready to load.
type Image struct {
	Entry    uint64
	Segments []Segment // sorted by Addr, disjoint
}

// ELF constants the loader checks (see the System V ABI and its x86-64
// supplement).
const (
	elfHeaderSize  = 64
	elfPhdrSize    = 56
	elfClass64     = 2
	elfData2LSB    = 1
	elfVersion     = 1
	elfTypeRel     = 1
	elfTypeExec    = 2
	elfTypeDyn     = 3
	elfTypeCore    = 4
	elfMachineX64  = 62
	ptLoad         = 1
	ptDynamic      = 2
	ptInterp       = 3
	ptTLS          = 7
	pfX            = 1
	pfW            = 2
	pfR            = 4
	maxPhdrs       = 64
	maxInterpShown = 256
)

var machineNames = map[uint16]string{
	3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "S390", 40: "ARM",
	43: "SPARC V9", 50: "IA-64", 183: "AArch64", 243: "RISC-V", 258: "LoongArch",
}

func badELF(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadELF}, a...)...)
}

// ParseELF checks that data is a static ELF64 x86-64 executable that fits
// in the user address range and in maxMemory bytes, and returns its image.
// Every refusal says what is wrong with the file.
func ParseELF(data []byte, maxMemory uint64) (*Image, error) {
	le := binary.LittleEndian
	switch {
	case len(data) < 4 || !bytes.Equal(data[:4], []byte{0x7f, 'E', 'L', 'F'}):
		return nil, badELF("not an ELF file")
	case len(data) < 5:
		return nil, badELF("truncated ELF header (%d bytes)", len(data))
	case data[4] == 1:
		return nil, badELF("32-bit ELF: nestvm runs 64-bit x86-64 programs")
	case data[4] != elfClass64:
		return nil, badELF("unknown ELF class %d", data[4])
	case len(data) < elfHeaderSize:
		return nil, badELF("truncated ELF header (%d of %d bytes)", len(data), elfHeaderSize)
	case data[5] != elfData2LSB:
		return nil, badELF("big-endian ELF: nestvm runs little-endian x86-64 programs")
	case data[6] != elfVersion || le.Uint32(data[20:]) != elfVersion:
		return nil, badELF("unknown ELF version")
	}
	if m := le.Uint16(data[18:]); m != elfMachineX64 {
		name := machineNames[m]
		if name == "" {
			name = fmt.Sprintf("%d", m)
		}
		return nil, badELF("machine %s, not x86-64", name)
	}
	typ := le.Uint16(data[16:])
	entry := le.Uint64(data[24:])
	phoff := le.Uint64(data[32:])
	phentsize := le.Uint16(data[54:])
	phnum := le.Uint16(data[56:])
	switch typ {
	case elfTypeExec, elfTypeDyn:
	case elfTypeRel:
		return nil, badELF("relocatable object (ET_REL), not an executable: link it first")
	case elfTypeCore:
		return nil, badELF("core dump (ET_CORE), not an executable")
	default:
		return nil, badELF("ELF type %d is not an executable", typ)
	}
	switch {
	case phnum == 0:
		return nil, badELF("no program headers: nothing to load")
	case phentsize != elfPhdrSize:
		return nil, badELF("program header size %d, want %d", phentsize, elfPhdrSize)
	case phnum > maxPhdrs:
		return nil, badELF("%d program headers, more than the %d nestvm accepts", phnum, maxPhdrs)
	case phoff > uint64(len(data)) || uint64(len(data))-phoff < uint64(phnum)*elfPhdrSize:
		return nil, badELF("program headers at %#x run past the end of the file (%d bytes)", phoff, len(data))
	}

	phdr := func(i int) []byte { return data[phoff+uint64(i)*elfPhdrSize:][:elfPhdrSize] }

	// First what kind of program this is: a dynamically linked or
	// position-independent one is refused as such, whatever its segments.
	var interp string
	var dynamic bool
	for i := 0; i < int(phnum); i++ {
		ph := phdr(i)
		off, filesz := le.Uint64(ph[8:]), le.Uint64(ph[32:])
		switch le.Uint32(ph[0:]) {
		case ptInterp:
			interp = "?"
			if off < uint64(len(data)) && filesz <= uint64(len(data))-off {
				s := data[off : off+min(filesz, maxInterpShown)]
				interp = string(bytes.TrimRight(s, "\x00"))
			}
		case ptDynamic:
			dynamic = true
		}
	}
	switch {
	case interp != "":
		return nil, badELF("dynamically linked (interpreter %s): nestvm runs static programs only; link with -static", interp)
	case dynamic:
		return nil, badELF("dynamically linked (has a PT_DYNAMIC segment): nestvm runs static programs only; link with -static")
	case typ == elfTypeDyn:
		return nil, badELF("position-independent executable (ET_DYN): nestvm loads programs at their link address; link with -static -no-pie")
	}

	img := &Image{Entry: entry}
	for i := 0; i < int(phnum); i++ {
		ph := phdr(i)
		ptype, flags := le.Uint32(ph[0:]), le.Uint32(ph[4:])
		off, vaddr := le.Uint64(ph[8:]), le.Uint64(ph[16:])
		filesz, memsz := le.Uint64(ph[32:]), le.Uint64(ph[40:])
		switch ptype {
		case ptTLS:
			if memsz > 0 {
				return nil, badELF("segment %d is thread-local storage (PT_TLS), which nestvm does not support yet", i)
			}
			continue
		case ptLoad:
		default:
			continue // notes, GNU_STACK, GNU_RELRO, GNU_PROPERTY: nothing to load
		}
		if memsz == 0 {
			continue
		}
		end := vaddr + memsz
		switch {
		case filesz > memsz:
			return nil, badELF("segment %d has %#x bytes in the file but only %#x in memory", i, filesz, memsz)
		case off > uint64(len(data)) || filesz > uint64(len(data))-off:
			return nil, badELF("segment %d (file offset %#x, %#x bytes) runs past the end of the file (%d bytes)", i, off, filesz, len(data))
		case end < vaddr:
			return nil, badELF("segment %d at %#x with %#x bytes wraps around the address space", i, vaddr, memsz)
		case flags&(pfR|pfW|pfX) == 0:
			return nil, badELF("segment %d at %#x has no permissions", i, vaddr)
		case vaddr < abi.ReservedTop:
			return nil, badELF("segment %d at %#x-%#x overlaps the monitor's reserved range %#x-%#x (programs load at %#x or above)",
				i, vaddr, end, uint64(0), uint64(abi.ReservedTop), uint64(abi.UserBase))
		case end > abi.UserTop:
			return nil, badELF("segment %d at %#x-%#x ends above the user range's top %#x", i, vaddr, end, uint64(abi.UserTop))
		}
		var perm Perm
		if flags&pfR != 0 {
			perm |= PermRead
		}
		if flags&pfW != 0 {
			perm |= PermWrite | PermRead
		}
		if flags&pfX != 0 {
			perm |= PermExec | PermRead
		}
		img.Segments = append(img.Segments, Segment{Addr: vaddr, MemSize: memsz, Data: data[off : off+filesz : off+filesz], Perm: perm})
	}
	if len(img.Segments) == 0 {
		return nil, badELF("no loadable segments")
	}
	sort.Slice(img.Segments, func(i, j int) bool { return img.Segments[i].Addr < img.Segments[j].Addr })
	var total uint64
	for i, s := range img.Segments {
		if i > 0 {
			if p := img.Segments[i-1]; p.Addr+p.MemSize > s.Addr {
				return nil, badELF("segments at %#x-%#x and %#x-%#x overlap", p.Addr, p.Addr+p.MemSize, s.Addr, s.Addr+s.MemSize)
			}
		}
		end, _ := pageUp(s.Addr + s.MemSize)
		total += end - pageDown(s.Addr)
	}
	if total > maxMemory {
		return nil, badELF("segments need %#x bytes, more than the memory limit of %#x", total, maxMemory)
	}
	for _, s := range img.Segments {
		if s.Perm&PermExec != 0 && entry >= s.Addr && entry < s.Addr+s.MemSize {
			return img, nil
		}
	}
	return nil, badELF("entry point %#x is outside every executable segment", entry)
}
