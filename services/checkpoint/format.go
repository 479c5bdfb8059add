// Package checkpoint saves a running subtree of spaces (every space,
// thread, region with its pages, port with its queued messages, port set,
// handle with its rights, badge and derivation, quota) to one file through
// the state operations (space_get_state, region_get_state, port_get_state,
// port_set_get_state, thread_get_state), and rebuilds it in a fresh
// monitor, on any backend, with ordinary operations (space_create,
// region_create, space_map, space_insert_at, thread_set_state, ...). Handles that name objects
// outside the subtree (console, stderr, clock, files) are saved by their
// name in the environment and reconnected on restore, as CRIU reconnects
// files.
//
// As a layer (--layer checkpoint=FILE,after-writes=K), it watches the
// program below it and saves it when a trigger fires.
package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"nestvm/abi"
	"nestvm/machine"
	"nestvm/vmm"
)

// The file format.
//
// A file is a 32-byte header and a body:
//
//	offset 0   magic    "NVCKPT\r\n"
//	offset 8   version  uint32 (FormatVersion)
//	offset 12  flags    uint32, 0
//	offset 16  length   uint64, of the body
//	offset 24  crc      uint32, CRC-32C (Castagnoli) of the body, then of
//	                    the header with this field zero (body first, so
//	                    a save can stream the body to the file and write
//	                    the header last)
//	offset 28  pad      uint32, 0
//
// then the body, every integer little-endian, a list a uint32 count and its
// elements, bytes and strings a uint32 length and their bytes. The body is
// a Checkpoint, field by field in the order the struct declares them; CPU
// is a list of uint32 words, none when it is nil; the last, Runner, is
// present only when it is not nil (its name and record), so a file without
// one reads as before. Version 3 files, which have no CPU, still read
// (their CPU is nil).
//
// Why a hand-written encoding and not encoding/gob: the decoder must refuse
// hostile files without panicking or allocating what the file merely
// claims, and gob says it is not hardened against adversarial input; a
// length-prefixed encoding whose every count is checked against the bytes
// left before anything is allocated is short, and a fuzz target covers it.
// Every byte is covered: the header's fields are checked one by one and the
// CRC covers the rest, so any flipped byte is refused.
const (
	Magic         = "NVCKPT\r\n"
	FormatVersion = 4
	// oldestVersion is the oldest format Read still reads: version 3 is
	// version 4 without CPU.
	oldestVersion = 3
	headerSize    = 32
)

// Limits a file is checked against.
const (
	maxSpaces   = 1 << 10
	maxObjects  = 1 << 16
	maxHandles  = 1 << 16 // the numbers space_insert_at accepts
	maxMsgs     = 1 << 12
	maxMsgData  = abi.MaxBuffer
	maxNameLen  = 256
	maxFileSize = 1 << 36
	maxRunner   = 64 << 20 // a runner's record
)

// RefKind says what a Ref names.
type RefKind uint8

const (
	RefNone     RefKind = iota // nothing
	RefSpace                   // Checkpoint.Spaces[Index]
	RefThread                  // Checkpoint.Threads[Index]
	RefRegion                  // Checkpoint.Regions[Index]
	RefPort                    // Checkpoint.Ports[Index]
	RefExternal                // Checkpoint.Externals[Index], by name
	RefParent                  // whoever runs the subtree (the top space's exception port)
	RefPortSet                 // Checkpoint.PortSets[Index]
	refKinds
)

var refKindNames = [...]string{"none", "space", "thread", "region", "port", "external", "parent", "port set"}

func (k RefKind) String() string {
	if k < refKinds {
		return refKindNames[k]
	}
	return fmt.Sprintf("kind%d", k)
}

// Ref names an object of the checkpoint.
type Ref struct {
	Kind  RefKind
	Index uint32
}

func (r Ref) String() string {
	if r.Kind == RefNone || r.Kind == RefParent {
		return r.Kind.String()
	}
	return fmt.Sprintf("%s %d", r.Kind, r.Index)
}

// Checkpoint is a saved subtree. Spaces[0] is its top; every other space
// has a parent earlier in the list.
type Checkpoint struct {
	Program string // what was run, for inspect
	Backend string // where it was saved
	Saved   int64  // Unix nanoseconds
	// ConsoleBytes is how many bytes the subtree had written to its console
	// when it was saved: what restore continues after.
	ConsoleBytes uint64
	// Clock is what the subtree's clock read when it was saved, through
	// the clock the checkpoint layer was given: under a layer that owns
	// time (timewarp), the subtree's virtual time, from which a restore
	// under such a layer goes on. Zero when there was no clock to read.
	Clock Clock
	// CPU is the CPU features the saving backend offered the program
	// (vmm.CPUModel); nil when unknown. Restore refuses a backend that
	// lacks one of them: the program may have chosen code that uses it.
	CPU       *machine.CPUFeatures
	Externals []string // names in the environment (console, stderr, clock, files)
	Spaces    []Space
	Threads   []Thread
	Regions   []Region
	Ports     []Port
	PortSets  []PortSet
	// Runner is the state of the personality that served the subtree (its
	// top space's exception port), nil when that was no personality.
	Runner *Runner
}

// Clock is a reading of both clocks (nanoseconds, as clock_read gives
// them).
type Clock struct {
	Monotonic, Realtime uint64
}

// Runner is what server_get_state on the subtree's exception port
// answered: the personality's name (nester.RegisterRunner) and its record,
// in a format of that personality's, which restore hands back to it.
type Runner struct {
	Name   string
	Record []byte
}

// Space is one saved space.
type Space struct {
	Parent                            int32 // index in Spaces; -1 for the top
	Pages, Threads, Handles, Children uint64
	Exception                         Ref // RefNone, RefParent or a port
	ExceptionBadge                    uint64
	Maps                              []Map
	Table                             []Handle
}

// Map is one mapping of a region into a space.
type Map struct {
	Addr, Size, Offset, Perm, Limit uint64
	Region                          uint32
}

// Handle is one entry of a space's handle table.
type Handle struct {
	Number, Rights, Badge uint64
	Object                Ref
	// Parent is the handle of the subtree it was derived from, so that
	// revoke reaches the same handles after a restore; nil when it has
	// none there (it came from outside, or its source was closed). In the
	// file, none is space 0xffffffff, number 0.
	Parent *HandleRef
}

// HandleRef names a handle of the checkpoint: a number in a space's table.
type HandleRef struct {
	Space  uint32 // index in Spaces
	Number uint64
}

const noParentSpace = ^uint32(0)

// Thread is one saved thread: its space, run state and CPU state (an
// nv_thread_state record).
type Thread struct {
	Space  uint32
	Status uint64 // abi.ThreadNew, ThreadRunning (start it on restore) or ThreadStopped
	State  []byte
}

// Regs returns the registers t's state holds (zero where the state is
// shorter than its record, which Validate refuses).
func (t *Thread) Regs() abi.ThreadRegs {
	var regs abi.ThreadRegs
	binary.Read(bytes.NewReader(t.State), binary.LittleEndian, &regs)
	return regs
}

// Region is a saved region: its size, keeper, and the pages that are not
// zero (or, for a kept region, supplied).
type Region struct {
	Owner       uint32 // the space it is created in (charged to)
	Size        uint64
	Keeper      Ref // RefNone or a port
	KeeperBadge uint64
	Pages       []Page
}

// Page is one page of a region's contents.
type Page struct {
	Index uint64 // page number in the region
	Data  []byte // abi.PageSize bytes
}

// Port is a saved port and its queued one-way messages.
type Port struct {
	Owner uint32 // the space it is created in
	Msgs  []Message
}

// PortSet is a saved port set: the ports it holds.
type PortSet struct {
	Owner uint32   // the space it is created in
	Ports []uint32 // indexes in Checkpoint.Ports
}

// Message is a one-way message queued on a port.
type Message struct {
	Tag, Badge uint64
	Data       []byte
	Handle     Ref // a handle it carries, or RefNone
	Rights     uint64
}

// Encode returns the file for ck.
func Encode(ck *Checkpoint) []byte {
	// Sized for the pages, which are nearly all of it: growing a buffer
	// of tens of MiB by appending copies it over and over. The header's
	// room comes first, filled in at the end.
	return encodeVersion(ck, FormatVersion)
}

// encodeVersion is Encode in format version v (FormatVersion, or an older
// one the tests write to check that Read still reads it).
func encodeVersion(ck *Checkpoint, v uint32) []byte {
	e := &encoder{b: make([]byte, headerSize, headerSize+ck.PageCount()*(abi.PageSize+12)+1<<16), version: v}
	e.body(ck)
	body := e.b[headerSize:]
	copy(e.b, header(v, uint64(len(body)), crc32.Checksum(body, castagnoli)))
	return e.b
}

// WriteFile writes ck's file to w, streaming the body in chunks (a save of
// a large program needs no buffer the size of its memory), then the
// header at offset 0, which w must allow (a new file does). It returns the
// file's size.
func WriteFile(w io.WriterAt, ck *Checkpoint) (int64, error) {
	e := &encoder{b: make([]byte, 0, spillSize+abi.PageSize+64), w: &offsetWriter{w: w, off: headerSize}, version: FormatVersion}
	e.body(ck)
	e.flush()
	if e.err != nil {
		return 0, e.err
	}
	if _, err := w.WriteAt(header(FormatVersion, e.n, e.crc), 0); err != nil {
		return 0, err
	}
	return headerSize + int64(e.n), nil
}

// offsetWriter writes to an io.WriterAt from off on.
type offsetWriter struct {
	w   io.WriterAt
	off int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.w.WriteAt(p, o.off)
	o.off += int64(n)
	return n, err
}

// header returns the file header of format version v for a body of n
// bytes whose CRC-32C is bodyCRC.
func header(v uint32, n uint64, bodyCRC uint32) []byte {
	hdr := make([]byte, headerSize)
	copy(hdr, Magic)
	binary.LittleEndian.PutUint32(hdr[8:], v)
	binary.LittleEndian.PutUint64(hdr[16:], n)
	binary.LittleEndian.PutUint32(hdr[24:], crc32.Update(bodyCRC, castagnoli, hdr))
	return hdr
}

// body appends ck, field by field.
func (e *encoder) body(ck *Checkpoint) {
	e.str(ck.Program)
	e.str(ck.Backend)
	e.u64(uint64(ck.Saved))
	e.u64(ck.ConsoleBytes)
	e.u64(ck.Clock.Monotonic)
	e.u64(ck.Clock.Realtime)
	if e.version >= 4 {
		if ck.CPU == nil {
			e.u32(0)
		} else {
			e.u32(uint32(len(ck.CPU)))
			for _, w := range ck.CPU {
				e.u32(w)
			}
		}
	}
	e.u32(uint32(len(ck.Externals)))
	for _, n := range ck.Externals {
		e.str(n)
	}
	e.u32(uint32(len(ck.Spaces)))
	for _, s := range ck.Spaces {
		e.u32(uint32(s.Parent))
		e.u64(s.Pages)
		e.u64(s.Threads)
		e.u64(s.Handles)
		e.u64(s.Children)
		e.ref(s.Exception)
		e.u64(s.ExceptionBadge)
		e.u32(uint32(len(s.Maps)))
		for _, m := range s.Maps {
			e.u64(m.Addr)
			e.u64(m.Size)
			e.u64(m.Offset)
			e.u64(m.Perm)
			e.u64(m.Limit)
			e.u32(m.Region)
		}
		e.u32(uint32(len(s.Table)))
		for _, h := range s.Table {
			e.u64(h.Number)
			e.u64(h.Rights)
			e.u64(h.Badge)
			e.ref(h.Object)
			if h.Parent == nil {
				e.u32(noParentSpace)
				e.u64(0)
			} else {
				e.u32(h.Parent.Space)
				e.u64(h.Parent.Number)
			}
		}
	}
	e.u32(uint32(len(ck.Threads)))
	for _, t := range ck.Threads {
		e.u32(t.Space)
		e.u64(t.Status)
		e.bytes(t.State)
	}
	e.u32(uint32(len(ck.Regions)))
	for _, r := range ck.Regions {
		e.u32(r.Owner)
		e.u64(r.Size)
		e.ref(r.Keeper)
		e.u64(r.KeeperBadge)
		e.u32(uint32(len(r.Pages)))
		for _, p := range r.Pages {
			e.u64(p.Index)
			e.bytes(p.Data)
		}
	}
	e.u32(uint32(len(ck.Ports)))
	for _, p := range ck.Ports {
		e.u32(p.Owner)
		e.u32(uint32(len(p.Msgs)))
		for _, m := range p.Msgs {
			e.u64(m.Tag)
			e.u64(m.Badge)
			e.bytes(m.Data)
			e.ref(m.Handle)
			e.u64(m.Rights)
		}
	}
	e.u32(uint32(len(ck.PortSets)))
	for _, ps := range ck.PortSets {
		e.u32(ps.Owner)
		e.u32(uint32(len(ps.Ports)))
		for _, p := range ps.Ports {
			e.u32(p)
		}
	}
	if ck.Runner != nil {
		e.str(ck.Runner.Name)
		e.bytes(ck.Runner.Record)
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encoder appends the body to b; with w set, it hands b to w (updating
// the body's length and CRC) each time b passes spillSize.
type encoder struct {
	b       []byte
	w       io.Writer
	n       uint64
	crc     uint32
	err     error
	version uint32 // the format version written
}

const spillSize = 1 << 20

// flush hands what b holds to w.
func (e *encoder) flush() {
	if e.w == nil || len(e.b) == 0 {
		return
	}
	e.crc = crc32.Update(e.crc, castagnoli, e.b)
	e.n += uint64(len(e.b))
	if e.err == nil {
		_, e.err = e.w.Write(e.b)
	}
	e.b = e.b[:0]
}

func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }
func (e *encoder) bytes(b []byte) {
	e.u32(uint32(len(b)))
	e.b = append(e.b, b...)
	if e.w != nil && len(e.b) >= spillSize {
		e.flush()
	}
}
func (e *encoder) str(s string) { e.bytes([]byte(s)) }
func (e *encoder) ref(r Ref)    { e.b = append(e.b, byte(r.Kind)); e.u32(r.Index) }

// ErrFormat is what every refusal of Decode wraps.
var ErrFormat = errors.New("not a valid checkpoint")

// Decode parses and checks a checkpoint file: its header, checksum and
// version, then every reference, address and size in it, so that Restore
// never meets an object, page or address that does not exist.
func Decode(data []byte) (*Checkpoint, error) {
	return Read(bytes.NewReader(data), int64(len(data)))
}

// Read is Decode for a file of size bytes read through r. It checks the
// header against size before it reads the body, then decodes the body's
// structure (no page contents) as it sums it, in one streaming pass, and
// keeps the pages only of a body whose structure and checksum are right,
// in a second pass: what it holds in memory is what the checkpoint holds,
// never more than the file, and no page of a file that is refused.
func Read(r io.ReaderAt, size int64) (*Checkpoint, error) {
	return read(r, size, false)
}

// ReadSummary is Read, but keeps no page contents: every Page's Data is
// nil. It is what shows a file's contents (nestvm inspect) needs.
func ReadSummary(r io.ReaderAt, size int64) (*Checkpoint, error) {
	return read(r, size, true)
}

func read(r io.ReaderAt, size int64, summary bool) (*Checkpoint, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, a...))
	}
	hdr := make([]byte, headerSize)
	if size < headerSize {
		return nil, bad("truncated: %d bytes, shorter than the %d-byte header", size, headerSize)
	}
	if _, err := r.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("read the header: %w", err)
	}
	if string(hdr[:8]) != Magic {
		return nil, bad("no checkpoint magic (the file does not start with %q)", Magic)
	}
	version := binary.LittleEndian.Uint32(hdr[8:])
	if version > FormatVersion {
		return nil, bad("format version %d is newer than this nestvm reads (%d)", version, FormatVersion)
	}
	if version < oldestVersion {
		// Version 1 had no handle derivation and no port sets, version 2
		// no clock reading.
		return nil, bad("format version %d is older than this nestvm reads (%d to %d); restore it with the nestvm that saved it", version, oldestVersion, FormatVersion)
	}
	if f := binary.LittleEndian.Uint32(hdr[12:]); f != 0 {
		return nil, bad("unknown header flags %#x", f)
	}
	if p := binary.LittleEndian.Uint32(hdr[28:]); p != 0 {
		return nil, bad("header padding is not zero")
	}
	n := binary.LittleEndian.Uint64(hdr[16:])
	if have := uint64(size - headerSize); n != have {
		if n > have {
			return nil, bad("truncated: the header says %d bytes of body, the file has %d", n, have)
		}
		return nil, bad("%d bytes of trailing data after the body", have-n)
	}
	if n > maxFileSize {
		return nil, bad("a body of %d bytes, more than the %d a checkpoint may have", n, uint64(maxFileSize))
	}
	var zeroed [headerSize]byte
	copy(zeroed[:], hdr)
	binary.LittleEndian.PutUint32(zeroed[24:], 0)
	want := binary.LittleEndian.Uint32(hdr[24:])
	// The first pass decodes the structure, keeping no page contents, as
	// it sums the body: a file whose structure is wrong is refused where
	// it goes wrong (a sparse file of gigabytes with a valid header, at
	// once), and one whose checksum is wrong before any page is kept.
	sum := crc32.New(castagnoli)
	d := &decoder{r: bufio.NewReaderSize(io.TeeReader(io.NewSectionReader(r, headerSize, int64(n)), sum), 1<<16), left: n, summary: true, version: version}
	ck := d.checkpoint()
	// The header's length matched the file's, so records that do not
	// fit the body, or end before it does, are a corrupted file.
	if d.err != nil {
		return nil, bad("the file is corrupted: %v", d.err)
	}
	if d.left != 0 {
		return nil, bad("the file is corrupted: the body's records end after %d of its %d bytes", n-d.left, n)
	}
	if got := crc32.Update(sum.Sum32(), castagnoli, zeroed[:]); got != want {
		return nil, bad("checksum mismatch (CRC-32C %#08x, the header says %#08x): the file is corrupted", got, want)
	}
	if !summary {
		// The second pass keeps the pages, of a body now known whole.
		d = &decoder{r: bufio.NewReaderSize(io.NewSectionReader(r, headerSize, int64(n)), 1<<16), left: n, version: version}
		if ck = d.checkpoint(); d.err != nil || d.left != 0 {
			return nil, fmt.Errorf("read the body again: it changed while read (%v, %d bytes left)", d.err, d.left)
		}
	}
	if err := ck.validate(!summary); err != nil {
		return nil, bad("%v", err)
	}
	return ck, nil
}

// decoder reads a body of left bytes from r, each count and length
// checked against the bytes left before anything is allocated for it.
type decoder struct {
	r       *bufio.Reader
	left    uint64
	summary bool   // skip page contents
	version uint32 // the file's format version
	scratch [8]byte
	err     error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, a...)
	}
}

// take reads the next n bytes into buf (or, when buf is nil, skips them),
// and reports whether it could.
func (d *decoder) take(n uint64, buf []byte, what string) bool {
	if d.err != nil {
		return false
	}
	if n > d.left {
		d.fail("truncated body: %s needs %d bytes, %d are left", what, n, d.left)
		return false
	}
	var err error
	if buf == nil {
		_, err = d.r.Discard(int(n))
	} else {
		_, err = io.ReadFull(d.r, buf[:n])
	}
	if err != nil {
		d.fail("%s: %w", what, err)
		return false
	}
	d.left -= n
	return true
}

func (d *decoder) u32(what string) uint32 {
	if d.take(4, d.scratch[:], what) {
		return binary.LittleEndian.Uint32(d.scratch[:])
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if d.take(8, d.scratch[:], what) {
		return binary.LittleEndian.Uint64(d.scratch[:])
	}
	return 0
}

func (d *decoder) bytes(what string, max uint64) []byte {
	n := uint64(d.u32(what + " length"))
	if n > max {
		d.fail("%s: %d bytes, more than %d", what, n, max)
		return nil
	}
	if d.err != nil || n > d.left {
		d.take(n, nil, what)
		return nil
	}
	b := make([]byte, n)
	if !d.take(n, b, what) {
		return nil
	}
	return b
}

// page reads a page's contents, which must be a whole page; in a summary
// it skips them.
func (d *decoder) page() []byte {
	n := uint64(d.u32("page length"))
	if d.err == nil && n != abi.PageSize {
		d.fail("page: %d bytes, not a page", n)
		return nil
	}
	if d.summary {
		d.take(n, nil, "page")
		return nil
	}
	b := make([]byte, n)
	if !d.take(n, b, "page") {
		return nil
	}
	return b
}

func (d *decoder) str(what string) string { return string(d.bytes(what, maxNameLen)) }

func (d *decoder) ref(what string) Ref {
	if !d.take(1, d.scratch[:], what) {
		return Ref{}
	}
	k := RefKind(d.scratch[0])
	return Ref{Kind: k, Index: d.u32(what)}
}

// count reads a list's length, refusing one larger than max or than the
// bytes left could hold at minSize bytes an element.
func (d *decoder) count(what string, max, minSize int) int {
	n := int(d.u32(what + " count"))
	if d.err != nil {
		return 0
	}
	if n > max {
		d.fail("%d %s, more than %d", n, what, max)
		return 0
	}
	if uint64(n)*uint64(minSize) > d.left {
		d.fail("truncated body: %d %s cannot fit in the %d bytes left", n, what, d.left)
		return 0
	}
	return n
}

func (d *decoder) checkpoint() *Checkpoint {
	ck := &Checkpoint{}
	ck.Program = d.str("program")
	ck.Backend = d.str("backend")
	ck.Saved = int64(d.u64("time"))
	ck.ConsoleBytes = d.u64("console bytes")
	ck.Clock = Clock{Monotonic: d.u64("clock monotonic"), Realtime: d.u64("clock realtime")}
	if d.version >= 4 {
		switch n := d.count("CPU feature words", machine.CPUWords, 4); n {
		case 0:
		case machine.CPUWords:
			var f machine.CPUFeatures
			for i := range f {
				f[i] = d.u32("CPU feature word")
			}
			ck.CPU = &f
		default:
			d.fail("%d CPU feature words, want %d", n, machine.CPUWords)
		}
	}
	for range d.count("externals", 64, 4) {
		ck.Externals = append(ck.Externals, d.str("external name"))
	}
	for range d.count("spaces", maxSpaces, 4+8*4+5+8+4+4) {
		s := Space{Parent: int32(d.u32("space parent"))}
		s.Pages, s.Threads, s.Handles, s.Children = d.u64("pages"), d.u64("threads"), d.u64("handles"), d.u64("children")
		s.Exception = d.ref("exception port")
		s.ExceptionBadge = d.u64("exception badge")
		for range d.count("mappings", maxObjects, 44) {
			s.Maps = append(s.Maps, Map{Addr: d.u64("map"), Size: d.u64("map"), Offset: d.u64("map"), Perm: d.u64("map"), Limit: d.u64("map"), Region: d.u32("map")})
		}
		for range d.count("handles", maxHandles, 41) {
			h := Handle{Number: d.u64("handle"), Rights: d.u64("handle"), Badge: d.u64("handle"), Object: d.ref("handle")}
			p := HandleRef{Space: d.u32("handle parent"), Number: d.u64("handle parent")}
			if p.Space != noParentSpace {
				h.Parent = &p
			} else if p.Number != 0 {
				d.fail("handle %d: no parent, but a parent number %d", h.Number, p.Number)
			}
			s.Table = append(s.Table, h)
		}
		ck.Spaces = append(ck.Spaces, s)
	}
	for range d.count("threads", maxObjects, 16) {
		ck.Threads = append(ck.Threads, Thread{Space: d.u32("thread"), Status: d.u64("thread"), State: d.bytes("thread state", threadStateSize)})
	}
	// Every region is charged in full to the top space's quota: what its
	// pages may take is bounded by that before any is read.
	var memory, regions uint64
	if len(ck.Spaces) > 0 {
		memory = ck.Memory()
	}
	for range d.count("regions", maxObjects, 29) {
		r := Region{Owner: d.u32("region"), Size: d.u64("region size"), Keeper: d.ref("keeper"), KeeperBadge: d.u64("keeper badge")}
		if regions += r.Size; r.Size > memory || regions > memory {
			d.fail("regions of more than %d bytes, the memory the program may use (its top space's quota)", memory)
		}
		for range d.count("pages", int(min(r.Size/abi.PageSize, math.MaxInt32)), 12+abi.PageSize) {
			r.Pages = append(r.Pages, Page{Index: d.u64("page index"), Data: d.page()})
		}
		ck.Regions = append(ck.Regions, r)
	}
	for range d.count("ports", maxObjects, 8) {
		p := Port{Owner: d.u32("port")}
		for range d.count("messages", maxMsgs, 33) {
			p.Msgs = append(p.Msgs, Message{Tag: d.u64("message"), Badge: d.u64("message"), Data: d.bytes("message data", maxMsgData),
				Handle: d.ref("message handle"), Rights: d.u64("message rights")})
		}
		ck.Ports = append(ck.Ports, p)
	}
	for range d.count("port sets", maxObjects, 8) {
		ps := PortSet{Owner: d.u32("port set")}
		for range d.count("port set ports", maxObjects, 4) {
			ps.Ports = append(ps.Ports, d.u32("port set port"))
		}
		ck.PortSets = append(ck.PortSets, ps)
	}
	if d.err == nil && d.left > 0 {
		ck.Runner = &Runner{Name: d.str("runner name"), Record: d.bytes("runner record", maxRunner)}
	}
	return ck
}

var threadStateSize = uint64(binary.Size(abi.ThreadState{}))

// knownExternals are the environment names a checkpoint may reconnect.
var knownExternals = map[string]bool{"console": true, "stderr": true, "stdin": true, "clock": true, "files": true}

// Validate checks that every reference names an object of the checkpoint,
// and that every address, size and number is one the ABI accepts.
func (ck *Checkpoint) Validate() error { return ck.validate(true) }

// validate is Validate; without pages it does not look at the pages'
// contents (ReadSummary drops them).
func (ck *Checkpoint) validate(pages bool) error {
	ref := func(r Ref, what string, kinds ...RefKind) error {
		ok := false
		for _, k := range kinds {
			ok = ok || r.Kind == k
		}
		if !ok {
			return fmt.Errorf("%s names a %s, which it cannot", what, r.Kind)
		}
		var n int
		switch r.Kind {
		case RefNone, RefParent:
			if r.Index != 0 {
				return fmt.Errorf("%s: %s with index %d", what, r.Kind, r.Index)
			}
			return nil
		case RefSpace:
			n = len(ck.Spaces)
		case RefThread:
			n = len(ck.Threads)
		case RefRegion:
			n = len(ck.Regions)
		case RefPort:
			n = len(ck.Ports)
		case RefExternal:
			n = len(ck.Externals)
		case RefPortSet:
			n = len(ck.PortSets)
		}
		if uint64(r.Index) >= uint64(n) {
			return fmt.Errorf("%s names %s, which does not exist (there are %d)", what, r, n)
		}
		return nil
	}
	if len(ck.Spaces) == 0 {
		return errors.New("no spaces")
	}
	seenName := map[string]bool{}
	for _, n := range ck.Externals {
		if !knownExternals[n] {
			return fmt.Errorf("external capability %q is not one restore can reconnect (console, stderr, stdin, clock, files)", n)
		}
		if seenName[n] {
			return fmt.Errorf("external capability %q listed twice", n)
		}
		seenName[n] = true
	}
	for i, s := range ck.Spaces {
		if i == 0 && s.Parent != -1 || i > 0 && (s.Parent < 0 || int(s.Parent) >= i) {
			return fmt.Errorf("space %d: parent %d (the top must have none, others one listed before them)", i, s.Parent)
		}
		if s.Pages > abi.UserTop/abi.PageSize || s.Threads > 1<<16 || s.Handles > maxHandles || s.Children > 1<<16 {
			return fmt.Errorf("space %d: quota out of range (pages %d, threads %d, handles %d, children %d)", i, s.Pages, s.Threads, s.Handles, s.Children)
		}
		// Below the top too, a space may be served by whoever runs the
		// subtree: a personality serves each of its processes.
		kinds := []RefKind{RefNone, RefPort, RefParent}
		if err := ref(s.Exception, fmt.Sprintf("space %d's exception port", i), kinds...); err != nil {
			return err
		}
		for j, m := range s.Maps {
			what := fmt.Sprintf("space %d mapping %d", i, j)
			if m.Addr%abi.PageSize != 0 || m.Size%abi.PageSize != 0 || m.Offset%abi.PageSize != 0 || m.Size == 0 {
				return fmt.Errorf("%s: address %#x, size %#x, offset %#x are not whole pages", what, m.Addr, m.Size, m.Offset)
			}
			if m.Addr < abi.UserBase || m.Addr > abi.UserTop || m.Size > abi.UserTop-m.Addr {
				return fmt.Errorf("%s: [%#x, +%#x) is outside the user range [%#x, %#x)", what, m.Addr, m.Size, uint64(abi.UserBase), uint64(abi.UserTop))
			}
			if m.Perm&^7 != 0 || m.Limit&^7 != 0 || m.Perm&^m.Limit != 0 {
				return fmt.Errorf("%s: permissions %#x beyond %#x", what, m.Perm, m.Limit)
			}
			if uint64(m.Region) >= uint64(len(ck.Regions)) {
				return fmt.Errorf("%s names region %d, which does not exist", what, m.Region)
			}
			if r := ck.Regions[m.Region]; m.Offset > r.Size || m.Size > r.Size-m.Offset {
				return fmt.Errorf("%s: offset %#x size %#x outside region %d of %#x bytes", what, m.Offset, m.Size, m.Region, r.Size)
			}
		}
		nums := map[uint64]bool{}
		for _, h := range s.Table {
			what := fmt.Sprintf("space %d handle %d", i, h.Number)
			if h.Number == abi.NoHandle || h.Number >= maxHandles || nums[h.Number] {
				return fmt.Errorf("%s: a number out of range or used twice", what)
			}
			nums[h.Number] = true
			if h.Rights&^uint64(abi.RightsAll) != 0 {
				return fmt.Errorf("%s: unknown rights %#x", what, h.Rights)
			}
			if err := ref(h.Object, what, RefSpace, RefThread, RefRegion, RefPort, RefPortSet, RefExternal); err != nil {
				return err
			}
		}
		if uint64(len(nums)) > s.Handles && s.Handles != 0 {
			return fmt.Errorf("space %d: %d handles, more than its quota of %d", i, len(nums), s.Handles)
		}
	}
	for i, t := range ck.Threads {
		if uint64(t.Space) >= uint64(len(ck.Spaces)) {
			return fmt.Errorf("thread %d is in space %d, which does not exist", i, t.Space)
		}
		if uint64(len(t.State)) != threadStateSize {
			return fmt.Errorf("thread %d: a state of %d bytes, not %d", i, len(t.State), threadStateSize)
		}
		if t.Status != abi.ThreadNew && t.Status != abi.ThreadRunning && t.Status != abi.ThreadStopped {
			return fmt.Errorf("thread %d: status %d", i, t.Status)
		}
		// thread_set_state refuses these too; saying so here names the
		// thread and refuses the file before anything is built.
		regs := t.Regs()
		for _, r := range []struct {
			name string
			v    uint64
		}{{"rip", regs.RIP}, {"rsp", regs.RSP}, {"fs base", regs.FSBase}, {"gs base", regs.GSBase}} {
			if !machine.Canonical(r.v) {
				return fmt.Errorf("thread %d: %s %#x is not a canonical address", i, r.name, r.v)
			}
		}
	}
	var regions uint64
	for i, r := range ck.Regions {
		if regions += r.Size; r.Size > ck.Memory() || regions > ck.Memory() {
			return fmt.Errorf("regions of more than %d bytes, the memory the program may use (its top space's quota)", ck.Memory())
		}
		if uint64(r.Owner) >= uint64(len(ck.Spaces)) {
			return fmt.Errorf("region %d belongs to space %d, which does not exist", i, r.Owner)
		}
		if r.Size == 0 || r.Size%abi.PageSize != 0 || r.Size > abi.UserTop {
			return fmt.Errorf("region %d: size %#x", i, r.Size)
		}
		if err := ref(r.Keeper, fmt.Sprintf("region %d's keeper", i), RefNone, RefPort); err != nil {
			return err
		}
		last := int64(-1)
		for _, p := range r.Pages {
			if p.Index >= r.Size/abi.PageSize || int64(p.Index) <= last {
				return fmt.Errorf("region %d: page %d is outside its %d pages or out of order", i, p.Index, r.Size/abi.PageSize)
			}
			last = int64(p.Index)
			if pages && len(p.Data) != abi.PageSize {
				return fmt.Errorf("region %d page %d: %d bytes, not a page", i, p.Index, len(p.Data))
			}
		}
	}
	for i, p := range ck.Ports {
		if uint64(p.Owner) >= uint64(len(ck.Spaces)) {
			return fmt.Errorf("port %d belongs to space %d, which does not exist", i, p.Owner)
		}
		for j, m := range p.Msgs {
			if err := ref(m.Handle, fmt.Sprintf("port %d message %d", i, j), RefNone, RefSpace, RefThread, RefRegion, RefPort, RefPortSet, RefExternal); err != nil {
				return err
			}
			if m.Rights&^uint64(abi.RightsAll) != 0 {
				return fmt.Errorf("port %d message %d: unknown rights %#x", i, j, m.Rights)
			}
		}
	}
	inSet := map[uint32]int{}
	for i, ps := range ck.PortSets {
		if uint64(ps.Owner) >= uint64(len(ck.Spaces)) {
			return fmt.Errorf("port set %d belongs to space %d, which does not exist", i, ps.Owner)
		}
		for _, p := range ps.Ports {
			if uint64(p) >= uint64(len(ck.Ports)) {
				return fmt.Errorf("port set %d holds port %d, which does not exist", i, p)
			}
			if j, dup := inSet[p]; dup {
				return fmt.Errorf("port %d is in port sets %d and %d; a port is in one set at most", p, j, i)
			}
			inSet[p] = i
		}
	}
	if r := ck.Runner; r != nil {
		if r.Name == "" || len(r.Name) > maxNameLen || len(r.Record) > maxRunner {
			return fmt.Errorf("runner %q: a name of %d bytes, a record of %d", r.Name, len(r.Name), len(r.Record))
		}
	}
	return ck.validateDerivation()
}

// Memory is the memory the checkpoint's subtree may use: its top space's
// quota, or where that is inherited (0), vmm.DefaultQuota's, no less than
// the latter (what nestvm restore gives it). Its regions fit in it.
func (ck *Checkpoint) Memory() uint64 {
	return max(ck.Spaces[0].Pages*abi.PageSize, vmm.DefaultQuota.Memory)
}

// QuotaError is RestoreQuota's refusal of a quota below what the saved
// program holds: its space could not be rebuilt under it.
type QuotaError struct {
	Key          string // children, threads, handles or memory
	Given, Saved uint64 // bytes for memory
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("quota %s=%d: below the %d the checkpoint's program was saved with", e.Key, e.Given, e.Saved)
}

// RestoreQuota is the quota the checkpoint's program is restored with:
// what it was saved with, or vmm.DefaultQuota's where that is more, with
// given's values in their place where they are not 0. A given value
// below what the saved program has is a *QuotaError.
func (ck *Checkpoint) RestoreQuota(given vmm.Quota) (vmm.Quota, error) {
	top := ck.Spaces[0]
	// The saved Children counts the program's space itself (see
	// nester.RootConfig).
	saved := vmm.Quota{Memory: top.Pages * abi.PageSize, Threads: int(top.Threads), Handles: int(top.Handles), Children: int(top.Children) - 1}
	q := vmm.Quota{Memory: ck.Memory(), Threads: max(saved.Threads, vmm.DefaultQuota.Threads),
		Handles: max(saved.Handles, vmm.DefaultQuota.Handles), Children: max(saved.Children, vmm.DefaultQuota.Children)}
	for _, c := range []struct {
		key         string
		given, have uint64
		dst         func(uint64)
	}{
		{"children", uint64(given.Children), uint64(max(saved.Children, 0)), func(v uint64) { q.Children = int(v) }},
		{"threads", uint64(given.Threads), uint64(saved.Threads), func(v uint64) { q.Threads = int(v) }},
		{"handles", uint64(given.Handles), uint64(saved.Handles), func(v uint64) { q.Handles = int(v) }},
		{"memory", given.Memory, saved.Memory, func(v uint64) { q.Memory = v }},
	} {
		if c.given == 0 {
			continue
		}
		if c.given < c.have {
			return vmm.Quota{}, &QuotaError{Key: c.key, Given: c.given, Saved: c.have}
		}
		c.dst(c.given)
	}
	return q, nil
}

// handleIndex maps every handle of the checkpoint by its HandleRef.
func (ck *Checkpoint) handleIndex() map[HandleRef]*Handle {
	idx := map[HandleRef]*Handle{}
	for i := range ck.Spaces {
		for k := range ck.Spaces[i].Table {
			h := &ck.Spaces[i].Table[k]
			idx[HandleRef{Space: uint32(i), Number: h.Number}] = h
		}
	}
	return idx
}

// parentIn returns the handle h was derived from, or nil.
func (h *Handle) parentIn(idx map[HandleRef]*Handle) *Handle {
	if h.Parent == nil {
		return nil
	}
	return idx[*h.Parent]
}

// validateDerivation checks that every handle's parent is a handle of the
// checkpoint naming the same object with at least its rights (less grant
// and derive, which a restorer adds to rebuild the tree), and that no
// handle descends from itself.
func (ck *Checkpoint) validateDerivation() error {
	idx := ck.handleIndex()
	const spare = uint64(abi.RightGrant | abi.RightDerive)
	// state: 0 unseen, 1 on the current chain, 2 known to reach a root.
	state := map[*Handle]uint8{}
	for i, s := range ck.Spaces {
		for k := range s.Table {
			h := &s.Table[k]
			what := fmt.Sprintf("space %d handle %d", i, h.Number)
			if h.Parent == nil {
				continue
			}
			p := idx[*h.Parent]
			if p == nil {
				return fmt.Errorf("%s: derived from handle %d of space %d, which does not exist", what, h.Parent.Number, h.Parent.Space)
			}
			if p.Object != h.Object {
				return fmt.Errorf("%s names %s but is derived from a handle naming %s", what, h.Object, p.Object)
			}
			if h.Rights&^(p.Rights|spare) != 0 {
				return fmt.Errorf("%s has rights %#x beyond those of the handle it was derived from (%#x)", what, h.Rights, p.Rights)
			}
			var chain []*Handle
			for c := h; c != nil && state[c] != 2; c = c.parentIn(idx) {
				if state[c] == 1 {
					return fmt.Errorf("%s: its derivation chain loops", what)
				}
				state[c] = 1
				chain = append(chain, c)
			}
			for _, c := range chain {
				state[c] = 2
			}
		}
	}
	return nil
}
