package vmm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

// TestThreadStateNonCanonical: thread_set_state and thread_create refuse
// a non-canonical RIP, RSP, FS base or GS base with EINVAL, on each
// backend (on kvm such a thread never faults: it spins in the host
// kernel); canonical values in the upper half are taken, and the program
// then runs to its end.
func TestThreadStateNonCanonical(t *testing.T) {
	data, err := os.ReadFile(testutil.Guest(t, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := vmm.ParseELF(data, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		h := newHost(t, b)
		child, th := hostLoad(t, h.c, h.self, h.con, h.ep, img, "hello")
		buf := make([]byte, binary.Size(abi.ThreadState{}))
		mustOK(t)("thread_get_state")(h.c.ThreadGetState(th, buf))
		var good abi.ThreadState
		binary.Read(bytes.NewReader(buf), binary.LittleEndian, &good)
		const nonCanonical, upperHalf = 0x0000_8000_0000_0000, 0xffff_8000_0000_1000
		for _, f := range []struct {
			name string
			reg  func(*abi.ThreadRegs) *uint64
		}{
			{"rip", func(r *abi.ThreadRegs) *uint64 { return &r.RIP }},
			{"rsp", func(r *abi.ThreadRegs) *uint64 { return &r.RSP }},
			{"fs base", func(r *abi.ThreadRegs) *uint64 { return &r.FSBase }},
			{"gs base", func(r *abi.ThreadRegs) *uint64 { return &r.GSBase }},
		} {
			for _, v := range []uint64{nonCanonical, 0x7fff_0000_0000_0000, 0xfffe_ffff_ffff_f000} {
				st := good
				*f.reg(&st.Regs) = v
				rec, _ := binary.Append(nil, binary.LittleEndian, &st)
				if _, _, err := h.c.ThreadSetState(th, rec); !errors.Is(err, abi.ErrInvalidArg) {
					t.Errorf("thread_set_state with %s %#x: %v, want EINVAL", f.name, v, err)
				}
			}
		}
		for _, a := range [][2]uint64{{nonCanonical, good.Regs.RSP}, {good.Regs.RIP, nonCanonical}} {
			if _, _, err := h.c.ThreadCreate(child, a[0], a[1], 0); !errors.Is(err, abi.ErrInvalidArg) {
				t.Errorf("thread_create at rip %#x rsp %#x: %v, want EINVAL", a[0], a[1], err)
			}
		}
		st := good
		st.Regs.FSBase, st.Regs.GSBase = upperHalf, upperHalf
		rec, _ := binary.Append(nil, binary.LittleEndian, &st)
		mustOK(t)("thread_set_state canonical")(h.c.ThreadSetState(th, rec))
		mustOK(t)("thread_start")(h.c.ThreadStart(th))
		if m := h.wait(); m.Words[0] != abi.SpaceExited || m.Words[1] != 0 || h.out.String() != "Hello, nestvm!\n" {
			t.Errorf("hello ended %d/%d, printed %q", m.Words[0], m.Words[1], h.out.String())
		}
	})
}
