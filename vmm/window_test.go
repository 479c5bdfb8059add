package vmm_test

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/vmm"
)

// farAddr is in the middle of the user range, 32 chunks away from the
// program's text.
const farAddr = 0x8_0000_0000

// farCode says it runs, waits for a flag, then reads the word at farAddr
// and writes it to farAddr+8 and to the data page; makes a call (any: on
// emu, its engine takes the memory map's new regions on the way out),
// then copies the word at farAddr+16 to the data page too, and spins.
var farCode = func() []byte {
	code := []byte{
		0x48, 0xc7, 0x04, 0x25, 0x10, 0x10, 0x40, 0x00, 0x01, 0x00, 0x00, 0x00, // mov qword [0x401010], 1
		0x48, 0x8b, 0x04, 0x25, 0x00, 0x10, 0x40, 0x00, // 1: mov rax, [0x401000]
		0x48, 0x85, 0xc0, // test rax, rax
		0x74, 0xf3, // jz 1b
		0x48, 0xa1, // movabs rax, [farAddr]
	}
	code = binary.LittleEndian.AppendUint64(code, farAddr)
	code = append(code, 0x48, 0xa3) // movabs [farAddr+8], rax
	code = binary.LittleEndian.AppendUint64(code, farAddr+8)
	code = append(code,
		0x48, 0x89, 0x04, 0x25, 0x08, 0x10, 0x40, 0x00, // mov [0x401008], rax
		0xbf, 0x01, 0x00, 0x00, 0x00, // mov edi, 1 (no such handle)
		0xbe, 0x01, 0x00, 0x00, 0x00, // mov esi, 1 (handle_info)
		0xb8, 0x00, 0x00, 0x10, 0x00, // mov eax, 0x100000
		0xff, 0xd0, // call rax
		0x48, 0xa1, // movabs rax, [farAddr+16]
	)
	code = binary.LittleEndian.AppendUint64(code, farAddr+16)
	return append(code,
		0x48, 0x89, 0x04, 0x25, 0x18, 0x10, 0x40, 0x00, // mov [0x401018], rax
		0xeb, 0xfe, // jmp .
	)
}()

// TestWindowReservesWhatIsMapped checks that a space's user window holds
// host address space for the chunks its memory reaches and no more (with
// the whole range, 64 GiB a space, a 47-bit host holds some 2,000
// spaces), that memory mapped into a new chunk while a thread of the
// space runs is what that thread then reads and writes (on emu, with an
// engine opened before the chunk existed), and that hostile addresses
// are refused without reserving anything.
func TestWindowReservesWhatIsMapped(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		host := mon.NewHostSpace("host", vmm.Quota{Memory: 1 << 20, Threads: 8, Handles: 16, Children: 2})
		defer func() { host.Kill("test over"); host.Wait() }()
		c := host.NewCaller()
		must := func(r0, _ uint64, err error) uint64 {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return r0
		}
		chunks := func() int {
			t.Helper()
			n := vmm.ChildWindowChunks(host)
			if len(n) != 1 {
				t.Fatalf("host has %d children, want 1", len(n))
			}
			return n[0]
		}
		self, err := c.Insert(host, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		child := must(c.SpaceCreate(self, 64, 2, 8, 0))
		if n := chunks(); n != 0 {
			t.Fatalf("a new space holds %d chunks of address space, want 0", n)
		}
		text := must(c.RegionCreate(self, 4096))
		must(c.RegionWrite(text, 0, farCode))
		must(c.SpaceMap(child, text, textAddr, 0, 4096, abi.PermRead|abi.PermExec))
		data := must(c.RegionCreate(self, 4096))
		must(c.SpaceMap(child, data, dataAddr, 0, 4096, abi.PermRead|abi.PermWrite))
		if n := chunks(); n != 1 {
			t.Fatalf("text and data in the first GiB hold %d chunks, want 1", n)
		}
		far := must(c.RegionCreate(self, 4096))
		for _, addr := range []uint64{abi.UserTop, abi.UserTop - 4096 + 1<<20, abi.UserBase - 4096, farAddr + 0x800, 1 << 63, 1<<64 - 4096} {
			if _, _, err := c.SpaceMap(child, far, addr, 0, 4096, abi.PermRead|abi.PermWrite); err == nil {
				t.Fatalf("space_map at %#x succeeded", addr)
			} else if !errors.Is(err, abi.ErrInvalidArg) {
				t.Logf("space_map at %#x: %v", addr, err)
			}
		}
		if n := chunks(); n != 1 {
			t.Fatalf("refused maps left %d chunks reserved, want 1", n)
		}

		th := must(c.ThreadCreate(child, textAddr, dataAddr+4096, 0))
		must(c.ThreadStart(th))
		word := func(r, off uint64) uint64 {
			t.Helper()
			buf := make([]byte, 8)
			must(c.RegionRead(r, off, buf))
			return binary.LittleEndian.Uint64(buf)
		}
		waitWord := func(r, off uint64, what string) uint64 {
			t.Helper()
			deadline := time.Now().Add(20 * time.Second)
			for {
				if v := word(r, off); v != 0 {
					return v
				}
				if st := must(c.ThreadStatus(th)); st != abi.ThreadRunning {
					t.Fatalf("%s: the thread ended first (status %d)", what, st)
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: not seen in 20 s", what)
				}
				time.Sleep(time.Millisecond)
			}
		}
		waitWord(data, 0x10, "the thread's start")

		// The far chunk appears while the thread runs.
		const value, later = 0x600d_c0de_0000_002a, 0x1a7e_0000_0000_0001
		must(c.RegionWrite(far, 0, binary.LittleEndian.AppendUint64(nil, value)))
		must(c.RegionWrite(far, 16, binary.LittleEndian.AppendUint64(nil, later)))
		must(c.SpaceMap(child, far, farAddr, 0, 4096, abi.PermRead|abi.PermWrite))
		if n := chunks(); n != 2 {
			t.Fatalf("memory in a second GiB holds %d chunks, want 2", n)
		}
		must(c.RegionWrite(data, 0, binary.LittleEndian.AppendUint64(nil, 1)))
		if got := waitWord(data, 8, "the far word read by the thread"); got != value {
			t.Fatalf("the thread read %#x at %#x, want %#x", got, uint64(farAddr), uint64(value))
		}
		if got := word(far, 8); got != value {
			t.Fatalf("the thread's store at %#x left %#x in the region, want %#x", uint64(farAddr+8), got, uint64(value))
		}
		if got := waitWord(data, 0x18, "the far word read after a call"); got != later {
			t.Fatalf("after a call the thread read %#x at %#x, want %#x", got, uint64(farAddr+16), uint64(later))
		}
		must(c.SpaceKill(child, 0))
	})
}
