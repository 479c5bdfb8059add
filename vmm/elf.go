package vmm

// The loader reads the ELF header and the program headers itself, with
// encoding/binary, instead of using debug/elf: loading needs nothing else,
// while debug/elf also parses the section headers (which a loader must not
// depend on, and through which a hostile or merely unusual file is refused
// for reasons unrelated to loading) and sizes its tables from counts the file
// claims. Reading two fixed-size tables by hand keeps every field checked
// before use and every allocation bounded by constants, not by the file.

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"nestvm/abi"
	"nestvm/machine"
)

// ErrBadELF is wrapped by every error ParseELF returns, so callers can tell
// a program nestvm refuses from a failure of the monitor.
var ErrBadELF = errors.New("not a program nestvm can run")

// Segment is one loadable piece of a program image.
type Segment struct {
	// Addr is the guest address of the first byte, as in the file (not
	// necessarily page-aligned).
	Addr uint64
	// MemSize is the segment's size in memory; the bytes past len(Data)
	// are zero.
	MemSize uint64
	// Data holds the bytes from the file (len(Data) <= MemSize). From
	// ParseELF it aliases the slice given, so that slice must stay
	// unchanged until the image is loaded.
	Data []byte
	// Perm comes from p_flags. Write and exec imply read, because x86 page
	// tables cannot deny reading a present page: saying so here makes every
	// backend give the program the same access.
	Perm machine.Perm
}

// Image is a program ready to load.
type Image struct {
	// Entry is the address of the first instruction; it lies inside an
	// executable segment.
	Entry uint64
	// Segments are sorted by Addr and share no byte, though neighbours may
	// share a page (the loader merges that page's permissions).
	Segments []Segment
	// Phdr is the address of the program header table in the loaded
	// image (0 when no segment holds it), and Phnum its entries: what a
	// Linux program's C library finds through AT_PHDR and AT_PHNUM.
	Phdr  uint64
	Phnum int
	// Nestvm is set for a program built against nestvm's SDK: it carries
	// an ELF note owned by "nestvm" (NoteOwner). Any other program is one
	// for another ABI, such as Linux's.
	Nestvm bool
	// TLS is set when the program has thread-local storage (PT_TLS).
	TLS bool
}

// NoteOwner is the owner name of the ELF note (type NoteABI, no
// descriptor) that marks a program built for nestvm's own ABI; the SDK's
// start file carries it.
const (
	NoteOwner = "nestvm"
	NoteABI   = 1
)

// ELFOptions widen what ParseELFWith accepts.
type ELFOptions struct {
	// TLS accepts thread-local storage (PT_TLS): a Linux program's C
	// library sets it up itself from the image, through arch_prctl.
	TLS bool
}

// ELF constants the loader checks, from the System V gABI and its x86-64
// supplement.
const (
	elfHeaderSize = 64
	elfPhdrSize   = 56
	elfClass32    = 1
	elfClass64    = 2
	elfData2LSB   = 1
	elfData2MSB   = 2
	elfVersion    = 1
	elfTypeRel    = 1
	elfTypeExec   = 2
	elfTypeDyn    = 3
	elfTypeCore   = 4
	elfMachineX64 = 62
	ptLoad        = 1
	ptDynamic     = 2
	ptInterp      = 3
	ptNote        = 4
	ptTLS         = 7
	pfX           = 1
	pfW           = 2
	pfR           = 4
)

// maxPhdrs bounds the program header table: real static programs have
// about ten entries, and the bound keeps the work per file small and fixed.
const maxPhdrs = 64

// maxInterpShown bounds how much of an interpreter path goes into an error
// message, since the file chooses its length.
const maxInterpShown = 256

// machineNames names the ELF machines a user is likely to try by mistake.
var machineNames = map[uint16]string{
	3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "S390", 40: "ARM",
	43: "SPARC V9", 50: "IA-64", 183: "AArch64", 243: "RISC-V", 258: "LoongArch",
}

func badELF(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadELF}, a...)...)
}

// ParseELF checks that data is a static ELF64 x86-64 executable that lies
// in the user address range and fits in maxMemory bytes of pages, and
// returns its image. Every refusal wraps ErrBadELF and says what is wrong
// with the file. The image's segment data aliases data.
//
// The OS ABI byte is not checked: nestvm programs make no system calls of
// any operating system, so what the toolchain wrote there does not matter.
func ParseELF(data []byte, maxMemory uint64) (*Image, error) {
	return ParseELFWith(data, maxMemory, ELFOptions{})
}

// ParseELFWith is ParseELF with what opts accepts besides.
func ParseELFWith(data []byte, maxMemory uint64, opts ELFOptions) (*Image, error) {
	return ReadELFWith(sliceAt(data), int64(len(data)), maxMemory, opts)
}

// ReadELF is ParseELF for a file of size bytes read through r: it reads
// the headers, checks them, and only then the segments' bytes, so what it
// reads is bounded by maxMemory and the fixed-size tables, never by what
// the file's size or fields claim. A read that fails is an error that
// does not wrap ErrBadELF.
func ReadELF(r io.ReaderAt, size int64, maxMemory uint64) (*Image, error) {
	return ReadELFWith(r, size, maxMemory, ELFOptions{})
}

// ReadELFWith is ReadELF with what opts accepts besides.
func ReadELFWith(r io.ReaderAt, size int64, maxMemory uint64, opts ELFOptions) (*Image, error) {
	if size < 0 {
		return nil, fmt.Errorf("ELF file of size %d", size)
	}
	data, err := readAt(r, 0, uint64(min(size, elfHeaderSize)))
	if err != nil {
		return nil, err
	}
	return readELF(r, data, uint64(size), maxMemory, opts)
}

// sliceAt reads a byte slice with ReadAt, and lends its bytes out without
// a copy through readAt.
type sliceAt []byte

func (s sliceAt) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(s).ReadAt(p, off)
}

// readAt returns the n bytes at off of r, which the caller has checked lie
// inside it: a sub-slice of a sliceAt, a new buffer otherwise.
func readAt(r io.ReaderAt, off, n uint64) ([]byte, error) {
	if s, ok := r.(sliceAt); ok {
		return s[off : off+n : off+n], nil
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, int64(off)); err != nil {
		return nil, fmt.Errorf("read %#x bytes at offset %#x: %w", n, off, err)
	}
	return b, nil
}

// readELF parses the file of size bytes r reads, whose first bytes (up to
// the header's size) are data.
func readELF(r io.ReaderAt, data []byte, size, maxMemory uint64, opts ELFOptions) (*Image, error) {
	le := binary.LittleEndian
	switch {
	case len(data) < 4 || !bytes.Equal(data[:4], []byte{0x7f, 'E', 'L', 'F'}):
		return nil, badELF("not an ELF file")
	case len(data) < 5:
		return nil, badELF("truncated ELF header: the file has %#x bytes, the header needs %#x", size, elfHeaderSize)
	case data[4] == elfClass32:
		return nil, badELF("32-bit ELF: nestvm runs 64-bit x86-64 programs")
	case data[4] != elfClass64:
		return nil, badELF("unknown ELF class %#x: nestvm runs 64-bit x86-64 programs", data[4])
	case len(data) < elfHeaderSize:
		return nil, badELF("truncated ELF header: the file has %#x bytes, the header needs %#x", size, elfHeaderSize)
	case data[5] == elfData2MSB:
		return nil, badELF("big-endian ELF: nestvm runs little-endian x86-64 programs")
	case data[5] != elfData2LSB:
		return nil, badELF("unknown ELF byte order %#x: nestvm runs little-endian x86-64 programs", data[5])
	case data[6] != elfVersion:
		return nil, badELF("ELF version %#x, want 0x1", data[6])
	case le.Uint32(data[20:]) != elfVersion:
		return nil, badELF("ELF version %#x, want 0x1", le.Uint32(data[20:]))
	}
	if m := le.Uint16(data[18:]); m != elfMachineX64 {
		name, ok := machineNames[m]
		if !ok {
			name = fmt.Sprintf("%#x", m)
		}
		return nil, badELF("machine %s, not x86-64", name)
	}
	typ := le.Uint16(data[16:])
	entry := le.Uint64(data[24:])
	phoff := le.Uint64(data[32:])
	phentsize := le.Uint16(data[54:])
	phnum := int(le.Uint16(data[56:]))
	switch typ {
	case elfTypeExec, elfTypeDyn:
	case elfTypeRel:
		return nil, badELF("relocatable object (ET_REL), not an executable: link it first")
	case elfTypeCore:
		return nil, badELF("core dump (ET_CORE), not an executable")
	default:
		return nil, badELF("ELF type %#x is not an executable", typ)
	}
	switch {
	case phnum == 0:
		return nil, badELF("no program headers: nothing to load")
	case phentsize != elfPhdrSize:
		return nil, badELF("program header size %#x, want %#x", phentsize, elfPhdrSize)
	case phnum > maxPhdrs:
		return nil, badELF("%d program headers, more than the %d nestvm accepts", phnum, maxPhdrs)
	case phoff > size || size-phoff < uint64(phnum)*elfPhdrSize:
		// Written as a subtraction so that no sum of file fields can wrap.
		return nil, badELF("program header table (%#x bytes at offset %#x) runs past the end of the file (%#x bytes)",
			phnum*elfPhdrSize, phoff, size)
	}
	phdrs, err := readAt(r, phoff, uint64(phnum)*elfPhdrSize)
	if err != nil {
		return nil, err
	}
	phdr := func(i int) []byte { return phdrs[i*elfPhdrSize:][:elfPhdrSize] }

	// First what kind of program this is, so that a dynamically linked or
	// position-independent one is refused as such rather than for one of
	// its segments.
	var interp string
	var hasInterp, hasDynamic, nestvm, hasTLS bool
	for i := range phnum {
		ph := phdr(i)
		switch le.Uint32(ph[0:]) {
		case ptInterp:
			hasInterp = true
			interp = interpName(r, size, le.Uint64(ph[8:]), le.Uint64(ph[32:]))
		case ptDynamic:
			hasDynamic = true
		case ptNote:
			nestvm = nestvm || hasNestvmNote(r, size, le.Uint64(ph[8:]), le.Uint64(ph[32:]))
		case ptTLS:
			hasTLS = hasTLS || le.Uint64(ph[40:]) > 0
		}
	}
	switch {
	case hasInterp:
		return nil, badELF("dynamically linked (interpreter %s): nestvm runs static programs only; link with -static", interp)
	case typ == elfTypeDyn:
		// A static-pie has a dynamic section (for its self-relocation) but
		// no interpreter; what the user must change is -pie, not -static.
		return nil, badELF("position-independent executable: link with -static -no-pie (nestvm loads a program at the address it was linked for)")
	case hasDynamic:
		return nil, badELF("dynamically linked (dynamic section without an interpreter): nestvm runs static programs only; link with -static")
	}

	type loadable struct {
		Segment
		index       int // in the program header table, as readelf numbers it
		off, filesz uint64
	}
	var segs []loadable
	var phdrAddr uint64
	for i := range phnum {
		ph := phdr(i)
		ptype, flags := le.Uint32(ph[0:]), le.Uint32(ph[4:])
		off, vaddr := le.Uint64(ph[8:]), le.Uint64(ph[16:])
		filesz, memsz := le.Uint64(ph[32:]), le.Uint64(ph[40:])
		switch ptype {
		case ptTLS:
			if memsz > 0 && !opts.TLS {
				return nil, badELF("segment %d is thread-local storage (PT_TLS, %#x bytes), which nestvm does not support yet", i, memsz)
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
		case off > size || filesz > size-off:
			return nil, badELF("segment %d (%#x bytes at file offset %#x) runs past the end of the file (%#x bytes)", i, filesz, off, size)
		case end < vaddr:
			return nil, badELF("segment %d at %#x with %#x bytes wraps around the end of the address space", i, vaddr, memsz)
		case flags&(pfR|pfW|pfX) == 0:
			return nil, badELF("segment %d at %#x-%#x has no permissions", i, vaddr, end)
		case end <= abi.ReservedBase:
			return nil, badELF("segment %d at %#x-%#x lies in the null-pointer guard %#x-%#x below the monitor's reserved range; link programs at %#x or above",
				i, vaddr, end, 0, abi.ReservedBase, abi.UserBase)
		case vaddr < abi.UserBase:
			return nil, badELF("segment %d at %#x-%#x overlaps the monitor's reserved range %#x-%#x; link programs at %#x or above",
				i, vaddr, end, abi.ReservedBase, abi.ReservedTop, abi.UserBase)
		case end > abi.UserTop:
			return nil, badELF("segment %d at %#x-%#x ends above the top of the user range %#x", i, vaddr, end, abi.UserTop)
		}
		var perm machine.Perm
		if flags&pfR != 0 {
			perm |= machine.PermRead
		}
		if flags&pfW != 0 {
			perm |= machine.PermWrite | machine.PermRead
		}
		if flags&pfX != 0 {
			perm |= machine.PermExec | machine.PermRead
		}
		// The table is in memory where a segment loads the file bytes
		// that hold it: what Linux reports as AT_PHDR.
		if phdrAddr == 0 && phoff >= off && phoff-off <= filesz && filesz-(phoff-off) >= uint64(phnum)*elfPhdrSize {
			phdrAddr = vaddr + (phoff - off)
		}
		segs = append(segs, loadable{
			Segment: Segment{Addr: vaddr, MemSize: memsz, Perm: perm},
			index:   i, off: off, filesz: filesz,
		})
	}
	if len(segs) == 0 {
		return nil, badELF("no loadable segments (no PT_LOAD with a nonzero size)")
	}
	slices.SortFunc(segs, func(a, b loadable) int { return cmp.Compare(a.Addr, b.Addr) })

	// Sorted and checked pairwise, no segment reaches past its successor, so
	// a page is shared only by neighbours and counting from the end of the
	// pages already counted charges each page once, as the loader maps it.
	var total, counted uint64
	for i, s := range segs {
		if i > 0 {
			if p := segs[i-1]; p.Addr+p.MemSize > s.Addr {
				return nil, badELF("segment %d at %#x-%#x and segment %d at %#x-%#x overlap",
					p.index, p.Addr, p.Addr+p.MemSize, s.index, s.Addr, s.Addr+s.MemSize)
			}
		}
		// Cannot wrap: every segment ends at or below abi.UserTop.
		hi, _ := pageUp(s.Addr + s.MemSize)
		lo := max(pageDown(s.Addr), counted)
		if hi > lo {
			total += hi - lo
		}
		counted = max(counted, hi)
	}
	if total > maxMemory {
		return nil, badELF("segments need %#x bytes, more than the memory limit %#x", total, maxMemory)
	}

	img := &Image{Entry: entry, Segments: make([]Segment, len(segs)), Nestvm: nestvm, TLS: hasTLS, Phdr: phdrAddr, Phnum: phnum}
	entryOK := false
	for i, s := range segs {
		// Checked above: the segment lies in the file, and the file bytes
		// of all of them, no more than their memory, fit in maxMemory.
		if s.Data, err = readAt(r, s.off, s.filesz); err != nil {
			return nil, fmt.Errorf("segment %d: %w", s.index, err)
		}
		img.Segments[i] = s.Segment
		if s.Perm&machine.PermExec != 0 && entry >= s.Addr && entry-s.Addr < s.MemSize {
			entryOK = true
		}
	}
	if !entryOK {
		return nil, badELF("entry point %#x is outside every executable segment", entry)
	}
	return img, nil
}

// maxNotes bounds the bytes of a note segment read to look for nestvm's
// note: the SDK's is 20 bytes, in the only note segment a guest has.
const maxNotes = 4096

// hasNestvmNote reports whether the notes in n bytes at file offset off
// include nestvm's ABI note. Notes past the file, or past maxNotes, are
// not looked at.
func hasNestvmNote(r io.ReaderAt, size, off, n uint64) bool {
	if off > size || n > size-off {
		return false
	}
	b, err := readAt(r, off, min(n, maxNotes))
	if err != nil {
		return false
	}
	le := binary.LittleEndian
	for len(b) >= 12 {
		namesz, descsz, typ := uint64(le.Uint32(b)), uint64(le.Uint32(b[4:])), le.Uint32(b[8:])
		b = b[12:]
		name, desc := (namesz+3)&^3, (descsz+3)&^3
		if name > uint64(len(b)) || desc > uint64(len(b))-name {
			return false
		}
		if typ == NoteABI && namesz == uint64(len(NoteOwner))+1 && string(b[:namesz]) == NoteOwner+"\x00" {
			return true
		}
		b = b[name+desc:]
	}
	return false
}

// interpName returns the interpreter path a PT_INTERP header points at,
// for an error message: bounded in length, cut at its terminating NUL, and
// quoted when it holds bytes that would garble the message.
func interpName(r io.ReaderAt, size, off, n uint64) string {
	if off > size || n > size-off {
		return fmt.Sprintf("path at file offset %#x, outside the file", off)
	}
	s, err := readAt(r, off, min(n, maxInterpShown))
	if err != nil {
		return fmt.Sprintf("path at file offset %#x, unreadable", off)
	}
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	} else if n > maxInterpShown {
		return strconv.Quote(string(s)) + "..."
	}
	if len(s) == 0 {
		return `""`
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f {
			return strconv.Quote(string(s))
		}
	}
	return string(s)
}
