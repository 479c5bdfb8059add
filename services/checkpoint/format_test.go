package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"

	"nestvm/abi"
	"nestvm/machine"
	"nestvm/vmm"
)

// sample is a small checkpoint with one of everything.
func sample() *Checkpoint {
	page := make([]byte, abi.PageSize)
	page[7] = 42
	return &Checkpoint{
		Program: "counter", Backend: "emu", Saved: 1764000000, ConsoleBytes: 6,
		CPU:       &machine.CPUFeatures{machine.CPU1ECX: 0x02182200, machine.CPU7EBX: 1 << 5, machine.CPUExt1EDX: 1 << 29},
		Externals: []string{"console", "clock"},
		Spaces: []Space{
			{Parent: -1, Pages: 16384, Threads: 4, Handles: 64, Children: 2, Exception: Ref{Kind: RefParent},
				Maps: []Map{{Addr: abi.UserBase, Size: 2 * abi.PageSize, Perm: abi.PermRead | abi.PermExec, Limit: 7, Region: 0}},
				Table: []Handle{{Number: 1, Rights: uint64(abi.RightsAll), Object: Ref{Kind: RefSpace}}, {Number: 2, Rights: 2, Object: Ref{Kind: RefExternal}}, {Number: 5, Rights: 0x30, Badge: 9, Object: Ref{Kind: RefPort}},
					{Number: 6, Rights: 0x20, Badge: 9, Object: Ref{Kind: RefPort}, Parent: &HandleRef{Space: 0, Number: 5}}, {Number: 7, Rights: 0x20, Object: Ref{Kind: RefPortSet}}}},
			{Parent: 0, Pages: 8, Threads: 1, Handles: 8, Exception: Ref{Kind: RefPort}, ExceptionBadge: 3},
		},
		Threads:  []Thread{{Space: 0, Status: abi.ThreadRunning, State: make([]byte, threadStateSize)}, {Space: 1, Status: abi.ThreadNew, State: make([]byte, threadStateSize)}},
		Regions:  []Region{{Owner: 0, Size: 4 * abi.PageSize, Pages: []Page{{Index: 1, Data: page}}}, {Owner: 1, Size: abi.PageSize, Keeper: Ref{Kind: RefPort}, KeeperBadge: 1}},
		Ports:    []Port{{Owner: 0, Msgs: []Message{{Tag: 7, Badge: 1, Data: []byte("hi"), Handle: Ref{Kind: RefRegion, Index: 1}, Rights: 1}}}, {Owner: 1}},
		PortSets: []PortSet{{Owner: 0, Ports: []uint32{0, 1}}},
	}
}

func TestEncodeDecode(t *testing.T) {
	ck := sample()
	got, err := Decode(Encode(ck))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ck) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, ck)
	}
}

// TestDecodeVersion3: a file of the previous format version, which
// recorded no CPU features, still reads, with CPU nil (unknown); one whose
// CPU record has the wrong number of words is refused.
func TestDecodeVersion3(t *testing.T) {
	ck := sample()
	got, err := Decode(encodeVersion(ck, 3))
	if err != nil {
		t.Fatal(err)
	}
	if got.CPU != nil {
		t.Errorf("version 3 file: CPU %v, want nil", got.CPU)
	}
	got.CPU = ck.CPU
	if !reflect.DeepEqual(got, ck) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, ck)
	}
	ck.CPU = nil
	if got, err := Decode(Encode(ck)); err != nil || got.CPU != nil {
		t.Errorf("no CPU recorded: %v, CPU %v", err, got.CPU)
	}
	body := encodeVersion(sample(), FormatVersion)[headerSize:]
	// The CPU record follows the program, backend, time, console count
	// and clock reading.
	at := 4 + len("counter") + 4 + len("emu") + 8 + 8 + 16
	binary.LittleEndian.PutUint32(body[at:], 3)
	if _, err := Decode(withHeader(body)); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "CPU feature words") {
		t.Errorf("3 CPU words: %v", err)
	}
}

// TestDecodeRefuses: truncation at every length, every byte flipped, a
// newer version, and hand-made files naming what does not exist are all
// refused with ErrFormat.
func TestDecodeRefuses(t *testing.T) {
	data := Encode(sample())
	for n := 0; n < len(data); n++ {
		if _, err := Decode(data[:n]); !errors.Is(err, ErrFormat) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	for i := range data {
		b := append([]byte(nil), data...)
		b[i] ^= 0x10
		if _, err := Decode(b); !errors.Is(err, ErrFormat) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	newer := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(newer[8:], FormatVersion+1)
	if _, err := Decode(newer); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("newer version: %v", err)
	}
	for name, spoil := range map[string]func(*Checkpoint){
		"handle to a missing port":   func(ck *Checkpoint) { ck.Spaces[0].Table[2].Object.Index = 9 },
		"map of a missing region":    func(ck *Checkpoint) { ck.Spaces[0].Maps[0].Region = 5 },
		"map below the user range":   func(ck *Checkpoint) { ck.Spaces[0].Maps[0].Addr = 0x1000 },
		"map past the region":        func(ck *Checkpoint) { ck.Spaces[0].Maps[0].Offset = 3 * abi.PageSize },
		"page outside its region":    func(ck *Checkpoint) { ck.Regions[0].Pages[0].Index = 4 },
		"short page":                 func(ck *Checkpoint) { ck.Regions[0].Pages[0].Data = ck.Regions[0].Pages[0].Data[:100] },
		"thread in a missing space":  func(ck *Checkpoint) { ck.Threads[0].Space = 2 },
		"short thread state":         func(ck *Checkpoint) { ck.Threads[0].State = ck.Threads[0].State[:8] },
		"unknown external":           func(ck *Checkpoint) { ck.Externals[1] = "network" },
		"handle number 0":            func(ck *Checkpoint) { ck.Spaces[0].Table[0].Number = 0 },
		"handle number twice":        func(ck *Checkpoint) { ck.Spaces[0].Table[1].Number = 1 },
		"space its own parent":       func(ck *Checkpoint) { ck.Spaces[1].Parent = 1 },
		"exception port a region":    func(ck *Checkpoint) { ck.Spaces[1].Exception = Ref{Kind: RefRegion} },
		"runner with no name":        func(ck *Checkpoint) { ck.Runner = &Runner{Record: []byte{1}} },
		"unaligned region":           func(ck *Checkpoint) { ck.Regions[1].Size = 100 },
		"message with a bad handle":  func(ck *Checkpoint) { ck.Ports[0].Msgs[0].Handle.Kind = 99 },
		"keeper a thread":            func(ck *Checkpoint) { ck.Regions[1].Keeper = Ref{Kind: RefThread} },
		"region owned by no space":   func(ck *Checkpoint) { ck.Regions[1].Owner = 7 },
		"unknown rights":             func(ck *Checkpoint) { ck.Spaces[0].Table[0].Rights = 1 << 20 },
		"map perm beyond its limit":  func(ck *Checkpoint) { ck.Spaces[0].Maps[0].Limit = 1 },
		"map wrapping the addresses": func(ck *Checkpoint) { ck.Spaces[0].Maps[0].Addr = abi.UserTop - abi.PageSize },
		"parent that does not exist": func(ck *Checkpoint) { ck.Spaces[0].Table[3].Parent.Number = 4 },
		"parent in a missing space":  func(ck *Checkpoint) { ck.Spaces[0].Table[3].Parent.Space = 2 },
		"parent naming another object": func(ck *Checkpoint) {
			ck.Spaces[0].Table[3].Parent.Number = 2
		},
		"rights beyond the parent's": func(ck *Checkpoint) { ck.Spaces[0].Table[3].Rights = 0x1 },
		"derived from itself":        func(ck *Checkpoint) { ck.Spaces[0].Table[3].Parent.Number = 6 },
		"derivation loop": func(ck *Checkpoint) {
			ck.Spaces[0].Table[2].Parent = &HandleRef{Space: 0, Number: 6}
			ck.Spaces[0].Table[2].Rights = 0x20
		},
		"regions beyond its memory":   func(ck *Checkpoint) { ck.Regions[1].Size = 2 << 30 },
		"non-canonical rip":           func(ck *Checkpoint) { setRegs(ck, func(r *abi.ThreadRegs) { r.RIP = 1 << 47 }) },
		"non-canonical rsp":           func(ck *Checkpoint) { setRegs(ck, func(r *abi.ThreadRegs) { r.RSP = 0x7fff_0000_0000_0000 }) },
		"non-canonical fs base":       func(ck *Checkpoint) { setRegs(ck, func(r *abi.ThreadRegs) { r.FSBase = 0xfffe_ffff_ffff_f000 }) },
		"non-canonical gs base":       func(ck *Checkpoint) { setRegs(ck, func(r *abi.ThreadRegs) { r.GSBase = 1 << 47 }) },
		"port set of a missing port":  func(ck *Checkpoint) { ck.PortSets[0].Ports[1] = 2 },
		"port in a set twice":         func(ck *Checkpoint) { ck.PortSets[0].Ports[1] = 0 },
		"port set in a missing space": func(ck *Checkpoint) { ck.PortSets[0].Owner = 2 },
		"handle to a missing set":     func(ck *Checkpoint) { ck.Spaces[0].Table[4].Object.Index = 1 },
	} {
		ck := sample()
		spoil(ck)
		if _, err := Decode(Encode(ck)); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// setRegs changes the registers of ck's second thread.
func setRegs(ck *Checkpoint, f func(*abi.ThreadRegs)) {
	var st abi.ThreadState
	binary.Read(bytes.NewReader(ck.Threads[1].State), binary.LittleEndian, &st)
	f(&st.Regs)
	ck.Threads[1].State, _ = binary.Append(nil, binary.LittleEndian, &st)
}

// withHeader makes body a file with a valid header, so that fuzzing
// reaches the body's decoder past the checksum.
func withHeader(body []byte) []byte {
	return append(header(FormatVersion, uint64(len(body)), crc32.Checksum(body, castagnoli)), body...)
}

// FuzzDecode: no input panics the decoder, as a whole file or as a body
// under a valid header, and whatever it accepts encodes back to the same
// bytes.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(sample()))
	f.Add(Encode(sample())[headerSize:])
	f.Add(Encode(&Checkpoint{Spaces: []Space{{Parent: -1}}}))
	f.Add(Encode(&Checkpoint{Spaces: []Space{{Parent: -1}}})[headerSize:])
	f.Add([]byte(Magic))
	f.Add([]byte{})
	withRunner := sample()
	withRunner.Runner = &Runner{Name: "linux", Record: []byte("NVLINUX\x00\x01\x00\x00\x00")}
	f.Add(Encode(withRunner))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, withHeader(data)} {
			ck, err := Decode(in)
			if err != nil {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("an error that is not ErrFormat: %v", err)
				}
				continue
			}
			if again := Encode(ck); string(again) != string(in) {
				t.Fatalf("accepted a file that does not encode back to itself")
			}
		}
	})
}

// TestPortableStubStop: a thread saved on the ret of the ABI entry stub
// (after a 7-byte MMIO trap, or a 2-byte PIO one) is saved as having
// returned, so it resumes on a backend whose stub is laid out otherwise.
func TestPortableStubStop(t *testing.T) {
	for _, rip := range []uint64{abi.ABIEntry + 2, abi.ABIEntry + 7} {
		ck := sample()
		stack := make([]byte, abi.PageSize)
		binary.LittleEndian.PutUint64(stack[0xff8:], 0x401234)
		ck.Regions[0].Pages = append(ck.Regions[0].Pages, Page{Index: 3, Data: stack})
		ck.Spaces[0].Maps[0].Size = 4 * abi.PageSize
		st := abi.ThreadState{Regs: abi.ThreadRegs{RIP: rip, RSP: abi.UserBase + 3*abi.PageSize + 0xff8, RAX: 5}}
		ck.Threads[0].State, _ = binary.Append(nil, binary.LittleEndian, &st)
		s := &saver{ck: ck}
		if err := s.portable(&ck.Threads[0]); err != nil {
			t.Fatal(err)
		}
		var got abi.ThreadState
		binary.Read(bytes.NewReader(ck.Threads[0].State), binary.LittleEndian, &got)
		if got.Regs.RIP != 0x401234 || got.Regs.RSP != st.Regs.RSP+8 || got.Regs.RAX != 5 {
			t.Errorf("rip %#x: now rip %#x rsp %#x rax %d", rip, got.Regs.RIP, got.Regs.RSP, got.Regs.RAX)
		}
	}
}

// memFile is an io.WriterAt in memory.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if need := int(off) + len(p); need > len(m.b) {
		m.b = append(m.b, make([]byte, need-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// TestWriteFileStreams: the file WriteFile streams (its body in chunks,
// the header last) is byte for byte what Encode returns, and decodes.
func TestWriteFileStreams(t *testing.T) {
	ck := sample()
	ck.Regions[0].Size = 1024 * abi.PageSize
	ck.Regions[0].Pages = nil
	for i := uint64(0); i < 600; i++ { // past the spill size, twice
		p := make([]byte, abi.PageSize)
		p[i%abi.PageSize] = byte(i)
		ck.Regions[0].Pages = append(ck.Regions[0].Pages, Page{Index: i, Data: p})
	}
	var f memFile
	n, err := WriteFile(&f, ck)
	if err != nil {
		t.Fatal(err)
	}
	if want := Encode(ck); int(n) != len(want) || !bytes.Equal(f.b, want) {
		t.Fatalf("streamed %d bytes, unlike Encode's %d", n, len(want))
	}
	if _, err := Decode(f.b); err != nil {
		t.Fatal(err)
	}
}

// TestReadSummary: a summary is the checkpoint without its pages'
// contents.
func TestReadSummary(t *testing.T) {
	data := Encode(sample())
	got, err := ReadSummary(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	want := sample()
	for i := range want.Regions {
		for k := range want.Regions[i].Pages {
			want.Regions[i].Pages[k].Data = nil
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary\n%+v\nwant\n%+v", got, want)
	}
}

// TestRestoreQuota: a checkpoint's program is restored with the quota it
// was saved with, or the default where that is more; a given value above
// it takes its place, and one below it is a *QuotaError naming it.
func TestRestoreQuota(t *testing.T) {
	ck := &Checkpoint{Spaces: []Space{{Pages: (1 << 30) / abi.PageSize, Threads: 8, Handles: 16, Children: 5}}}
	q, err := ck.RestoreQuota(vmm.Quota{})
	want := vmm.Quota{Memory: 1 << 30, Threads: max(8, vmm.DefaultQuota.Threads), Handles: max(16, vmm.DefaultQuota.Handles), Children: max(4, vmm.DefaultQuota.Children)}
	if err != nil || q != want {
		t.Fatalf("saved quota: %+v, %v; want %+v", q, err, want)
	}
	if q, err := ck.RestoreQuota(vmm.Quota{Threads: 9, Memory: 2 << 30}); err != nil || q.Threads != 9 || q.Memory != 2<<30 || q.Handles != want.Handles {
		t.Errorf("raised quota: %+v, %v", q, err)
	}
	for _, tc := range []struct {
		given vmm.Quota
		want  QuotaError
	}{
		{vmm.Quota{Children: 3}, QuotaError{Key: "children", Given: 3, Saved: 4}},
		{vmm.Quota{Threads: 7}, QuotaError{Key: "threads", Given: 7, Saved: 8}},
		{vmm.Quota{Handles: 15}, QuotaError{Key: "handles", Given: 15, Saved: 16}},
		{vmm.Quota{Memory: 1 << 20}, QuotaError{Key: "memory", Given: 1 << 20, Saved: 1 << 30}},
	} {
		_, err := ck.RestoreQuota(tc.given)
		var qe *QuotaError
		if !errors.As(err, &qe) || *qe != tc.want {
			t.Errorf("%+v: %v, want %+v", tc.given, err, tc.want)
		}
	}
}
