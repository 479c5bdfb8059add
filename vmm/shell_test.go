package vmm_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/vmm"
)

// secret is what the first space leaves everywhere it can.
const secret = 0x5ec7e75ec7e75ec7

// taintCode fills every general register, xmm0 and the data page with
// secret, then faults with nobody to handle it, so that the space ends
// with all of it in place.
var taintCode = func() []byte {
	code := []byte{0x48, 0xb8} // movabs rax, secret
	code = binary.LittleEndian.AppendUint64(code, secret)
	for _, r := range []byte{0xc3, 0xc1, 0xc2, 0xc6, 0xc7, 0xc5} { // mov rbx/rcx/rdx/rsi/rdi/rbp, rax
		code = append(code, 0x48, 0x89, r)
	}
	for r := byte(0); r < 8; r++ { // mov r8..r15, rax
		code = append(code, 0x49, 0x89, 0xc0+r)
	}
	code = append(code,
		0x66, 0x48, 0x0f, 0x6e, 0xc0, // movq xmm0, rax
		0x48, 0x89, 0x04, 0x25, 0x00, 0x10, 0x40, 0x00, // mov [0x401000], rax
		0x8a, 0x04, 0x25, 0x00, 0x10, 0x10, 0x00, // mov al, [0x101000]: a #PF
	)
	return code
}()

// probeCode reads where the first space kept its data page, which the
// second space does not map.
var probeCode = []byte{0x48, 0x8b, 0x04, 0x25, 0x00, 0x10, 0x40, 0x00} // mov rax, [0x401000]

func textImage(code []byte, data bool) *vmm.Image {
	text := bytes.Repeat([]byte{0xcc}, 4096)
	copy(text, code)
	img := &vmm.Image{Entry: textAddr, Segments: []vmm.Segment{{Addr: textAddr, MemSize: 4096, Data: text, Perm: machine.PermRead | machine.PermExec}}}
	if data {
		img.Segments = append(img.Segments, vmm.Segment{Addr: dataAddr, MemSize: 4096, Perm: machine.PermRead | machine.PermWrite})
	}
	return img
}

// TestRecycledShellCarriesNothing runs a space that leaves a secret in
// every register and in memory, then one in the same monitor, in the
// first one's recycled shell (on kvm its VM, on emu its machine): it must
// start with none of it, and reading the first space's data address must
// fault, not find stale translations.
func TestRecycledShellCarriesNothing(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		for round := range 3 {
			first, err := launchWithHandler(mon, textImage(taintCode, true), nil)
			if err != nil {
				t.Fatal(err)
			}
			if r := wait(t, first); r.Fault == nil || r.Fault.Fault.Vector != machine.VecPage {
				t.Fatalf("round %d: the tainting space ended with %s, want its page fault", round, r)
			}
			if vmm.IdleShells(mon) == 0 {
				t.Fatalf("round %d: no shell kept after the first space ended", round)
			}
			var f machine.Fault
			var regs machine.Regs
			var fpu machine.FPU
			second, err := launchWithHandler(mon, textImage(probeCode, false), func(ctx *vmm.FaultContext) bool {
				f = ctx.Fault
				regs, _ = ctx.Regs()
				fpu, _ = ctx.FPU()
				return false
			})
			if err != nil {
				t.Fatal(err)
			}
			wait(t, second)
			if f.Vector != machine.VecPage || f.Addr != dataAddr || f.RIP != textAddr {
				t.Fatalf("round %d: the second space's read of %#x gave %s, want a page fault there", round, uint64(dataAddr), f)
			}
			for i, v := range []uint64{regs.RAX, regs.RBX, regs.RCX, regs.RDX, regs.RSI, regs.RDI, regs.RBP, regs.RSP,
				regs.R8, regs.R9, regs.R10, regs.R11, regs.R12, regs.R13, regs.R14, regs.R15, regs.FSBase, regs.GSBase} {
				if v == secret {
					t.Errorf("round %d: register %d of the second space holds the first space's secret", round, i)
				}
			}
			if bytes.Contains(fpu[:], binary.LittleEndian.AppendUint64(nil, secret)) {
				t.Errorf("round %d: the second space's FPU state holds the first space's secret", round)
			}
		}
	})
}

// TestRecycledShellForgetsExec runs a space whose code lies at textAddr,
// then one in its recycled shell that holds data there and jumps to it:
// the jump must fault as a fetch from memory that may not run, on emu too,
// where Unicorn's permissions (not the page tables) say where code runs.
func TestRecycledShellForgetsExec(t *testing.T) {
	const jumpAddr = 0x500000
	jump := []byte{0xb8, 0x00, 0x00, 0x40, 0x00, 0xff, 0xe0} // mov eax, textAddr; jmp rax
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		for round := range 3 {
			first, err := launchWithHandler(mon, textImage(taintCode, true), nil)
			if err != nil {
				t.Fatal(err)
			}
			wait(t, first)
			if vmm.IdleShells(mon) == 0 {
				t.Fatalf("round %d: no shell kept after the first space ended", round)
			}
			text := bytes.Repeat([]byte{0xcc}, 4096)
			copy(text, jump)
			img := &vmm.Image{Entry: jumpAddr, Segments: []vmm.Segment{
				{Addr: jumpAddr, MemSize: 4096, Data: text, Perm: machine.PermRead | machine.PermExec},
				{Addr: textAddr, MemSize: 4096, Data: bytes.Repeat([]byte{0x90}, 4096), Perm: machine.PermRead | machine.PermWrite},
			}}
			var f machine.Fault
			second, err := launchWithHandler(mon, img, func(ctx *vmm.FaultContext) bool {
				f = ctx.Fault
				return false
			})
			if err != nil {
				t.Fatal(err)
			}
			wait(t, second)
			if f.Vector != machine.VecPage || f.Addr != textAddr || f.RIP != textAddr || f.ErrorCode&machine.PFFetch == 0 {
				t.Fatalf("round %d: the jump to data at %#x gave %s, want a fetch fault there", round, uint64(textAddr), f)
			}
		}
	})
}

// faultCode loads x into eax, then reads a supervisor page: the space
// faults with x in rax.
func faultCode(x byte) []byte {
	return []byte{
		0xb8, x, 0, 0, 0, // mov eax, x
		0x8a, 0x1c, 0x25, 0x00, 0x10, 0x10, 0x00, // mov bl, [0x101000]: a #PF
	}
}

// TestRecycledShellRunsItsOwnCode runs spaces one after another in one
// monitor, each with different code at the same address: each must run
// its own (on emu, where the next space's thread may run on the engine the
// last one's parked, no block translated from the other's code may
// survive), and fault as a first fault does.
func TestRecycledShellRunsItsOwnCode(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		mon := vmm.NewMonitor(b, nil)
		for round := range 6 {
			x := byte(0x11 + round)
			var f machine.Fault
			var regs machine.Regs
			s, err := launchWithHandler(mon, textImage(faultCode(x), false), func(ctx *vmm.FaultContext) bool {
				f = ctx.Fault
				regs, _ = ctx.Regs()
				return false
			})
			if err != nil {
				t.Fatal(err)
			}
			wait(t, s)
			if f.Vector != machine.VecPage || f.RIP != textAddr+5 || regs.RAX != uint64(x) {
				t.Fatalf("round %d: fault %s with rax %#x, want a page fault at %#x with rax %#x", round, f, regs.RAX, uint64(textAddr+5), x)
			}
		}
	})
}
