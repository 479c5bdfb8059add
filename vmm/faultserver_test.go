package vmm_test

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"nestvm/abi"
	"nestvm/internal/backendtest"
	"nestvm/machine"
	"nestvm/services/checkpoint"
	"nestvm/vmm"
)

// syscallServer is a FaultServer answering the syscall_exit snippet's
// system call, optionally holding it until released.
type syscallServer struct {
	hold     bool
	mu       sync.Mutex
	calls    []machine.Regs // the registers at each ServeFault
	results  []vmm.SleepResult
	held     chan struct{} // closed when the first call sleeps
	released bool
	wake     func()
}

func (s *syscallServer) Serve(inv *vmm.Invocation) { inv.Fail(abi.ErrInvalidOp) }

func (s *syscallServer) SpaceEnded(uint64, bool, int) {}

func (s *syscallServer) ServeFault(fc *vmm.FaultCall) {
	if fc.Fault.Vector != machine.VecSyscall {
		fc.Kill(99, "not a system call: "+fc.Fault.String())
		return
	}
	r, err := fc.Regs()
	if err != nil {
		fc.Kill(98, err.Error())
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, r)
	first := len(s.calls) == 1
	s.wake = fc.Waker()
	s.mu.Unlock()
	if s.hold && first {
		close(s.held)
		res := fc.Sleep(func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.released
		}, time.Time{})
		s.mu.Lock()
		s.results = append(s.results, res)
		s.mu.Unlock()
		if res != vmm.SleepReady {
			return // the thread re-issues the call when resumed
		}
	}
	r.RAX = 0x42
	r.RIP += 2
	if err := fc.SetRegs(r); err != nil {
		fc.Kill(97, err.Error())
	}
}

// launchServed starts the syscall_exit snippet with srv as the exception
// port of its space.
func launchServed(t *testing.T, b machine.Backend, srv *syscallServer) (*vmm.Monitor, *vmm.Space, map[string]uint64) {
	t.Helper()
	img, addrs := snippetImage(t, "syscall_exit")
	mon := vmm.NewMonitor(b, nil)
	q := vmm.DefaultQuota
	q.Memory = 16 << 20
	s, err := mon.LaunchWith(vmm.Program{Name: "syscall_exit", Image: img, Quota: q}, vmm.Env{Console: &bytes.Buffer{}},
		func(s *vmm.Space) { vmm.SetExceptionPort(s, vmm.NewHostPort("syscalls", srv), 7) })
	if err != nil {
		t.Fatal(err)
	}
	return mon, s, addrs
}

// TestFaultServerServesSyscall: a system call reaches a FaultServer inline,
// at the instruction, with RCX and R11 as Linux's syscall leaves them on
// every backend, and the thread resumes with what the server set.
func TestFaultServerServesSyscall(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		srv := &syscallServer{}
		_, s, addrs := launchServed(t, b, srv)
		r := wait(t, s)
		if !r.Exited || r.Status != 0x42 {
			t.Fatalf("result %s, want exit status 0x42 from the server's RAX", r)
		}
		if len(srv.calls) != 1 {
			t.Fatalf("%d calls served, want 1", len(srv.calls))
		}
		c := srv.calls[0]
		rip := addrs["syscall_exit"] + 16
		if c.RIP != rip || c.RAX != 39 || c.RCX != rip+2 || c.R11 != c.RFLAGS {
			t.Fatalf("at the fault rip %#x rax %d rcx %#x r11 %#x rflags %#x; want rip %#x rax 39 rcx %#x r11 = rflags",
				c.RIP, c.RAX, c.RCX, c.R11, c.RFLAGS, rip, rip+2)
		}
	})
}

// TestFaultServerHeldCall: a thread held in a served call counts as
// running, so stopping its space (as a checkpoint does) stops it: its
// server's Sleep lets it go, it stops at the call with the registers it
// made it with, and resumed it issues the call again.
func TestFaultServerHeldCall(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		srv := &syscallServer{hold: true, held: make(chan struct{})}
		mon, s, addrs := launchServed(t, b, srv)
		select {
		case <-srv.held:
		case <-time.After(20 * time.Second):
			s.Kill("test timeout")
			t.Fatal("the call never reached the server")
		}
		c := mon.NewHostSpace("test", vmm.DefaultQuota).NewCaller()
		top, err := c.Insert(s, abi.RightsAll, 0)
		if err != nil {
			t.Fatal(err)
		}
		threads, err := checkpoint.StopAll(c, top)
		if err != nil || len(threads) != 1 {
			t.Fatalf("stop: %v, %d threads stopped; want the held one", err, len(threads))
		}
		srv.mu.Lock()
		results := append([]vmm.SleepResult(nil), srv.results...)
		srv.mu.Unlock()
		if len(results) != 1 || results[0] != vmm.SleepStop {
			t.Fatalf("the held call ended %v, want SleepStop", results)
		}
		if st, _, err := c.ThreadStatus(threads[0]); err != nil || st != abi.ThreadStopped {
			t.Fatalf("thread status %d, %v: want stopped", st, err)
		}
		state := make([]byte, binary.Size(abi.ThreadState{}))
		if _, _, err := c.ThreadGetState(threads[0], state); err != nil {
			t.Fatal(err)
		}
		var ts abi.ThreadState
		binary.Read(bytes.NewReader(state), binary.LittleEndian, &ts)
		if rip := addrs["syscall_exit"] + 16; ts.Regs.RIP != rip || ts.Regs.RAX != 39 {
			t.Fatalf("stopped at rip %#x rax %d; want the call again: rip %#x rax 39", ts.Regs.RIP, ts.Regs.RAX, rip)
		}
		if err := checkpoint.StartAll(c, threads); err != nil {
			t.Fatal(err)
		}
		r := wait(t, s)
		if !r.Exited || r.Status != 0x42 {
			t.Fatalf("result %s, want exit status 0x42", r)
		}
		if len(srv.calls) != 2 {
			t.Fatalf("%d calls served, want 2: the held one, issued again", len(srv.calls))
		}
	})
}

// TestFaultServerKillEndsHeldCall: killing a space whose thread is held in
// a served call ends it at once.
func TestFaultServerKillEndsHeldCall(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		srv := &syscallServer{hold: true, held: make(chan struct{})}
		_, s, _ := launchServed(t, b, srv)
		<-srv.held
		s.Kill("test says stop")
		r := wait(t, s)
		if r.Killed == "" {
			t.Fatalf("result %s, want killed", r)
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.results) != 1 || srv.results[0] != vmm.SleepExit {
			t.Fatalf("the held call ended %v, want SleepExit", srv.results)
		}
	})
}
