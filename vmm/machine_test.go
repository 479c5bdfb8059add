package vmm_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/vmm"
)

// Hand-assembled test code (GNU as, Intel syntax, shown beside the bytes),
// loaded as one r-x page at 0x400000 with one rw- data page at 0x401000.
// Each snippet has its own entry point.
var snippets = []struct {
	name string
	code []byte
}{
	{"info_exit", []byte{ // exit(handle_info(console).r0)
		0xbf, 0x03, 0x00, 0x00, 0x00, // mov edi, 3 (console)
		0xbe, 0x01, 0x00, 0x00, 0x00, // mov esi, 1 (handle_info)
		0xb8, 0x00, 0x00, 0x10, 0x00, // mov eax, 0x100000
		0xff, 0xd0, // call rax
		0x48, 0x89, 0xc2, // mov rdx, rax
		0xbf, 0x02, 0x00, 0x00, 0x00, // mov edi, 2 (self thread)
		0xbe, 0x05, 0x00, 0x00, 0x00, // mov esi, 5 (thread_exit)
		0xb8, 0x00, 0x00, 0x10, 0x00, // mov eax, 0x100000
		0xff, 0xd0, // call rax
		0x0f, 0x0b, // ud2
	}},
	{"three_pf", []byte{ // three reads of the ring-0 page, then exit(7)
		0x8a, 0x04, 0x25, 0x00, 0x10, 0x10, 0x00, // mov al, [0x101000]
		0x8a, 0x04, 0x25, 0x00, 0x10, 0x10, 0x00, // mov al, [0x101000]
		0x8a, 0x04, 0x25, 0x00, 0x10, 0x10, 0x00, // mov al, [0x101000]
		0xbf, 0x02, 0x00, 0x00, 0x00, // mov edi, 2
		0xbe, 0x05, 0x00, 0x00, 0x00, // mov esi, 5
		0xba, 0x07, 0x00, 0x00, 0x00, // mov edx, 7
		0xb8, 0x00, 0x00, 0x10, 0x00, // mov eax, 0x100000
		0xff, 0xd0, // call rax
		0x0f, 0x0b, // ud2
	}},
	{"fpu", []byte{ // xmm0 = pattern; fault; exit(low byte of xmm1)
		0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // movabs rax, 0x1122334455667788
		0x66, 0x48, 0x0f, 0x6e, 0xc0, // movq xmm0, rax
		0x8a, 0x04, 0x25, 0x00, 0x10, 0x10, 0x00, // mov al, [0x101000]
		0x66, 0x48, 0x0f, 0x7e, 0xca, // movq rdx, xmm1
		0x81, 0xe2, 0xff, 0x00, 0x00, 0x00, // and edx, 0xff
		0xbf, 0x02, 0x00, 0x00, 0x00, // mov edi, 2
		0xbe, 0x05, 0x00, 0x00, 0x00, // mov esi, 5
		0xb8, 0x00, 0x00, 0x10, 0x00, // mov eax, 0x100000
		0xff, 0xd0, // call rax
		0x0f, 0x0b, // ud2
	}},
	{"spin", []byte{0xeb, 0xfe}}, // jmp .
	{"nulltrap", []byte{ // the raw trap, then exit(3)
		0xb8, 0x20, 0x00, 0x10, 0x00, // mov eax, 0x100020
		0xff, 0xd0, // call rax
		0xbf, 0x02, 0x00, 0x00, 0x00, // mov edi, 2
		0xbe, 0x05, 0x00, 0x00, 0x00, // mov esi, 5
		0xba, 0x03, 0x00, 0x00, 0x00, // mov edx, 3
		0xb8, 0x00, 0x00, 0x10, 0x00, // mov eax, 0x100000
		0xff, 0xd0, // call rax
		0x0f, 0x0b, // ud2
	}},
	{"null_read", []byte{0x8a, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00}}, // mov al, [0]
	{"ud2", []byte{0x0f, 0x0b}},
	{"div0", []byte{0x31, 0xc9, 0xf7, 0xf1}},                                  // xor ecx, ecx; div ecx
	{"illegal_out", []byte{0xe6, 0x80}},                                       // out 0x80, al
	{"in_insn", []byte{0xe4, 0x60}},                                           // in al, 0x60
	{"int80", []byte{0xcd, 0x80}},                                             // int 0x80
	{"int3", []byte{0xcc}},                                                    // int3
	{"hlt", []byte{0xf4}},                                                     // hlt
	{"wtext", []byte{0xc6, 0x05, 0xf9, 0xff, 0xff, 0xff, 0x01}},               // mov byte ptr [rip-7], 1 (itself)
	{"jmpdata", []byte{0x48, 0xc7, 0xc0, 0x00, 0x10, 0x40, 0x00, 0xff, 0xe0}}, // mov rax, 0x401000; jmp rax
	{"syscall", []byte{0x0f, 0x05}},
	{"syscall_exit", []byte{ // rax = 39; rcx, r11 = junk; syscall; exit(rax)
		0xb8, 0x27, 0x00, 0x00, 0x00, // mov eax, 39
		0xb9, 0x11, 0x11, 0x00, 0x00, // mov ecx, 0x1111
		0x41, 0xbb, 0x22, 0x22, 0x00, 0x00, // mov r11d, 0x2222
		0x0f, 0x05, // syscall
		0x48, 0x89, 0xc2, // mov rdx, rax
		0xbf, 0x02, 0x00, 0x00, 0x00, // mov edi, 2 (self thread)
		0xbe, 0x05, 0x00, 0x00, 0x00, // mov esi, 5 (thread_exit)
		0xb8, 0x00, 0x00, 0x10, 0x00, // mov eax, 0x100000
		0xff, 0xd0, // call rax
		0x0f, 0x0b, // ud2
	}},
	{"syscall_entry", []byte{ // as a PVM host leaves a syscall: at the syscall entry, rcx past the instruction
		0x48, 0x8d, 0x0d, 0x0f, 0x00, 0x00, 0x00, // lea rcx, [rip+15]: past the syscall below
		0x41, 0xbb, 0x02, 0x02, 0x00, 0x00, // mov r11d, 0x202
		0xb8, 0x30, 0x00, 0x10, 0x00, // mov eax, 0x100030 (machine.SyscallEntry)
		0xff, 0xe0, // jmp rax
		0x0f, 0x05, // syscall, at offset 20: never run
	}},
	{"push_guard", []byte{0x48, 0xc7, 0xc4, 0x00, 0x30, 0x40, 0x00, 0x50}},  // mov rsp, 0x403000; push rax
	{"write_ring0", []byte{0xc6, 0x04, 0x25, 0x00, 0x10, 0x10, 0x00, 0x01}}, // mov byte ptr [0x101000], 1
	{"pf_loop", []byte{ // a page fault, again and again
		0x8a, 0x04, 0x25, 0x00, 0x10, 0x10, 0x00, // mov al, [0x101000]
		0xeb, 0xf7, // jmp back to the load
	}},
}

const (
	textAddr = 0x400000
	dataAddr = 0x401000
)

// snippetImage returns an image whose text holds every snippet (each at a
// 64-byte slot) and whose entry is the named one.
func snippetImage(t *testing.T, entry string) (*vmm.Image, map[string]uint64) {
	t.Helper()
	text := bytes.Repeat([]byte{0xcc}, 4096)
	addrs := map[string]uint64{}
	for i, s := range snippets {
		if len(s.code) > 64 {
			t.Fatalf("snippet %s too long", s.name)
		}
		copy(text[i*64:], s.code)
		addrs[s.name] = textAddr + uint64(i*64)
	}
	e, ok := addrs[entry]
	if !ok {
		t.Fatalf("no snippet %s", entry)
	}
	return &vmm.Image{
		Entry: e,
		Segments: []vmm.Segment{
			{Addr: textAddr, MemSize: 4096, Data: text, Perm: machine.PermRead | machine.PermExec},
			{Addr: dataAddr, MemSize: 4096, Perm: machine.PermRead | machine.PermWrite},
		},
	}, addrs
}

// launch runs the snippet entry on b and returns its space.
func launch(t *testing.T, b machine.Backend, entry string, console *bytes.Buffer) (*vmm.Space, map[string]uint64) {
	t.Helper()
	img, addrs := snippetImage(t, entry)
	if console == nil {
		console = &bytes.Buffer{}
	}
	q := vmm.DefaultQuota
	q.Memory = 16 << 20
	s, err := vmm.NewMonitor(b, nil).Launch(vmm.Program{Name: entry, Image: img, Args: []string{entry}, Quota: q}, vmm.Env{Console: console})
	if err != nil {
		t.Fatalf("launch %s: %v", entry, err)
	}
	return s, addrs
}

func wait(t *testing.T, s *vmm.Space) vmm.Result {
	t.Helper()
	select {
	case <-s.Done():
		return s.Wait()
	case <-time.After(20 * time.Second):
		s.Kill("test timeout")
		t.Fatalf("guest did not finish in 20s")
		return vmm.Result{}
	}
}

func TestHypercallRoundTrip(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		s, _ := launch(t, b, "info_exit", nil)
		r := wait(t, s)
		// handle_info on the console returns ObjPort (4) in R0, which the
		// snippet passes to thread_exit.
		if !r.Exited || r.Status != 4 {
			t.Fatalf("result %s, want exit status 4", r)
		}
	})
}

func TestNullTrap(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		s, _ := launch(t, b, "nulltrap", nil)
		if r := wait(t, s); !r.Exited || r.Status != 3 {
			t.Fatalf("result %s, want exit status 3", r)
		}
	})
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		entry  string
		vector machine.Vector
		addr   func(a map[string]uint64) uint64 // page faults only
		access machine.Access
		prot   bool // page present: a protection fault
	}{
		{entry: "null_read", vector: machine.VecPage, addr: func(map[string]uint64) uint64 { return 0 }, access: machine.AccessRead},
		{entry: "write_ring0", vector: machine.VecPage, addr: func(map[string]uint64) uint64 { return 0x101000 }, access: machine.AccessWrite, prot: true},
		{entry: "wtext", vector: machine.VecPage, addr: func(a map[string]uint64) uint64 { return a["wtext"] }, access: machine.AccessWrite, prot: true},
		{entry: "jmpdata", vector: machine.VecPage, addr: func(map[string]uint64) uint64 { return dataAddr }, access: machine.AccessExec, prot: true},
		{entry: "push_guard", vector: machine.VecPage, addr: func(map[string]uint64) uint64 { return 0x402ff8 }, access: machine.AccessWrite},
		{entry: "ud2", vector: machine.VecInvalidOp},
		{entry: "syscall", vector: machine.VecSyscall},
		{entry: "div0", vector: machine.VecDivide},
		{entry: "int3", vector: machine.VecBreakpoint},
		{entry: "hlt", vector: machine.VecGP},
		{entry: "int80", vector: machine.VecGP},
		{entry: "illegal_out", vector: machine.VecGP},
		{entry: "in_insn", vector: machine.VecGP},
	} {
		t.Run(tc.entry, func(t *testing.T) {
			backendtest.Each(t, func(t *testing.T, b machine.Backend) {
				s, addrs := launch(t, b, tc.entry, nil)
				r := wait(t, s)
				if r.Fault == nil {
					t.Fatalf("result %s, want a fault", r)
				}
				f := r.Fault.Fault
				want := tc.vector
				if f.Vector != want {
					t.Fatalf("fault %s, want vector %d (%s)", f, want, want)
				}
				wantRIP := addrs[tc.entry]
				switch tc.entry {
				case "div0":
					wantRIP += 2 // after xor ecx, ecx
				case "jmpdata":
					wantRIP = dataAddr // the fetch faults at the target
				case "push_guard":
					wantRIP += 7
				case "int3":
					wantRIP++ // a trap: RIP is past the instruction
				}
				if f.RIP != wantRIP {
					t.Errorf("fault at rip %#x, want %#x (%s)", f.RIP, wantRIP, f)
				}
				if tc.vector != machine.VecPage {
					return
				}
				if want := tc.addr(addrs); f.Addr != want {
					t.Errorf("fault address %#x, want %#x (%s)", f.Addr, want, f)
				}
				if f.Access() != tc.access {
					t.Errorf("access %s, want %s (%s)", f.Access(), tc.access, f)
				}
				if got := f.ErrorCode&machine.PFPresent != 0; got != tc.prot {
					t.Errorf("protection=%v, want %v (%s)", got, tc.prot, f)
				}
				if f.ErrorCode&machine.PFUser == 0 {
					t.Errorf("user bit clear in %#x", f.ErrorCode)
				}
			})
		})
	}
}

// TestSyscallEntryResumed: a thread at the syscall entry with RCX past a
// syscall instruction is where a stop leaves a system call on a PVM host
// (it jumps to MSR_LSTAR at CPL3 and traps there); a checkpoint can save
// it so, and every backend must then report the system call at the
// instruction, as kvm does on that host (emu used to report the entry's
// trap as an illegal port access, so a Linux program saved on kvm died of
// SIGSEGV restored on emu). On other KVM hosts a thread cannot be there at
// CPL3 (the entry's trap is an I/O instruction ring 3 may not run).
func TestSyscallEntryResumed(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		if _, err := os.Stat("/sys/module/kvm_pvm"); b.Name() == "kvm" && err != nil { // as kvm.HostIsPVM
			t.Skip("only a PVM host leaves a system call at the syscall entry in ring 3")
		}
		s, addrs := launch(t, b, "syscall_entry", nil)
		r := wait(t, s)
		if r.Fault == nil {
			t.Fatalf("result %s, want a syscall fault", r)
		}
		if f := r.Fault.Fault; f.Vector != machine.VecSyscall || f.RIP != addrs["syscall_entry"]+20 {
			t.Fatalf("fault %s, want a system call at %#x", f, addrs["syscall_entry"]+20)
		}
	})
}

// TestStateAtSyscallEntry: the state of a thread at the syscall entry
// (where a stop leaves a system call on a PVM host) reads as the syscall
// instruction, RFLAGS from R11, on every backend, so a checkpoint taken
// there resumes on hosts where the entry cannot run in ring 3.
func TestStateAtSyscallEntry(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		s, addrs := launch(t, b, "spin", nil)
		defer s.Kill("test over")
		at := addrs["spin"]
		th, err := s.NewThread(machine.Regs{RIP: machine.SyscallEntry, RCX: at + 2, R11: 0x246, RSP: 0x403000})
		if err != nil {
			t.Fatal(err)
		}
		regs, _, err := th.State()
		if err != nil {
			t.Fatal(err)
		}
		if regs.RIP != at || regs.RFLAGS != 0x246 {
			t.Errorf("state at the syscall entry: rip %#x rflags %#x, want the syscall at %#x and rflags 0x246", regs.RIP, regs.RFLAGS, at)
		}
	})
}

// TestFaultsInARow resumes a thread after each of three page faults: each
// must arrive as a page fault (the emulator would otherwise report the
// second as a double fault), and the thread must still be in ring 3 after
// them (its hypercall works).
func TestFaultsInARow(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		img, _ := snippetImage(t, "three_pf")
		mon := vmm.NewMonitor(b, nil)
		var seen []machine.Vector
		space, err := launchWithHandler(mon, img, func(ctx *vmm.FaultContext) bool {
			seen = append(seen, ctx.Fault.Vector)
			regs, err := ctx.Regs()
			if err != nil {
				t.Errorf("regs: %v", err)
				return false
			}
			regs.RIP += 7 // skip the load
			return ctx.SetRegs(regs) == nil
		})
		if err != nil {
			t.Fatal(err)
		}
		r := wait(t, space)
		if !r.Exited || r.Status != 7 {
			t.Fatalf("result %s, want exit status 7", r)
		}
		if len(seen) != 3 {
			t.Fatalf("saw %d faults, want 3: %v", len(seen), seen)
		}
		for i, v := range seen {
			if v != machine.VecPage {
				t.Errorf("fault %d arrived as %s, want a page fault", i+1, v)
			}
		}
	})
}

// TestFaultFPUState reads and changes SSE state at a fault.
func TestFaultFPUState(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		img, _ := snippetImage(t, "fpu")
		mon := vmm.NewMonitor(b, nil)
		var xmm0 []byte
		space, err := launchWithHandler(mon, img, func(ctx *vmm.FaultContext) bool {
			fpu, err := ctx.FPU()
			if err != nil {
				t.Errorf("fpu: %v", err)
				return false
			}
			xmm0 = append([]byte(nil), fpu[machine.FXXMM0:machine.FXXMM0+8]...)
			fpu[machine.FXXMM0+16] = 0x5a // xmm1's low byte
			regs, _ := ctx.Regs()
			regs.RIP += 7
			return ctx.SetFPU(fpu) == nil && ctx.SetRegs(regs) == nil
		})
		if err != nil {
			t.Fatal(err)
		}
		r := wait(t, space)
		if want := []byte{0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}; !bytes.Equal(xmm0, want) {
			t.Errorf("xmm0 at the fault = % x, want % x", xmm0, want)
		}
		if !r.Exited || r.Status != 0x5a {
			t.Fatalf("result %s, want exit status 0x5a (xmm1 set at the fault)", r)
		}
	})
}

func launchWithHandler(mon *vmm.Monitor, img *vmm.Image, h vmm.FaultHandler) (*vmm.Space, error) {
	q := vmm.DefaultQuota
	q.Memory = 16 << 20
	return mon.LaunchWith(vmm.Program{Name: "test", Image: img, Quota: q}, vmm.Env{Console: &bytes.Buffer{}},
		func(s *vmm.Space) { vmm.SetFaultHandler(s, h) })
}

// TestKillSpinning stops a guest that never traps, from another goroutine.
func TestKillSpinning(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		s, _ := launch(t, b, "spin", nil)
		var killed atomic.Bool
		time.AfterFunc(50*time.Millisecond, func() { killed.Store(true); s.Kill("test says stop") })
		r := wait(t, s)
		if !killed.Load() || !strings.Contains(r.Killed, "test says stop") {
			t.Fatalf("result %s, want killed by the test", r)
		}
	})
}

// TestStopDuringFaults stops a thread that page-faults without pause,
// again and again, and reads its state each time: the state is always
// the program's own (in its text), never the ring-0 stub's, which on kvm
// runs for a while between an exception and its trap to the monitor (on a
// paravirtual host that emulates ring 0 instruction by instruction, for
// long). A stop that landed there once left the thread, resumed, running
// the stub's code at CPL3: a Go program under the pager died of a
// "SIGSEGV at 0x1010e2".
func TestStopDuringFaults(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		img, addrs := snippetImage(t, "pf_loop")
		load := addrs["pf_loop"]
		mon := vmm.NewMonitor(b, nil)
		var faults atomic.Int64
		var bad atomic.Pointer[machine.Fault]
		space, err := launchWithHandler(mon, img, func(ctx *vmm.FaultContext) bool {
			if f := ctx.Fault; f.Vector != machine.VecPage || f.RIP != load || f.Addr != 0x101000 {
				bad.CompareAndSwap(nil, &f)
				return false
			}
			faults.Add(1)
			regs, err := ctx.Regs()
			if err != nil {
				return false
			}
			regs.RIP += 7 // skip the load
			return ctx.SetRegs(regs) == nil
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { space.Kill("test done"); wait(t, space) }()
		c := space.NewCaller()
		st := make([]byte, binary.Size(abi.ThreadState{}))
		const stops = 500
		for i := range stops {
			// Let it fault once more between stops.
			for n := faults.Load(); faults.Load() == n && bad.Load() == nil; {
				runtime.Gosched()
			}
			if _, _, err := c.ThreadStop(vmm.RootHandleThread); err != nil {
				t.Fatalf("stop %d: thread_stop: %v (faults %d, fault %+v)", i, err, faults.Load(), bad.Load())
			}
			if _, _, err := c.ThreadGetState(vmm.RootHandleThread, st); err != nil {
				t.Fatalf("stop %d: thread_get_state: %v", i, err)
			}
			var regs abi.ThreadRegs
			binary.Read(bytes.NewReader(st), binary.LittleEndian, &regs)
			if regs.RIP < textAddr || regs.RIP >= textAddr+4096 {
				t.Fatalf("stop %d (after %d faults): stopped at RIP %#x, RSP %#x: not in the program's text", i, faults.Load(), regs.RIP, regs.RSP)
			}
			if _, _, err := c.ThreadStart(vmm.RootHandleThread); err != nil {
				t.Fatalf("stop %d: thread_start: %v", i, err)
			}
			if f := bad.Load(); f != nil {
				t.Fatalf("after %d stops: fault %s at %#x (address %#x), want only page faults at the load (%#x)", i, f.Vector, f.RIP, f.Addr, load)
			}
		}
		if faults.Load() == 0 {
			t.Fatal("the thread never faulted")
		}
	})
}
