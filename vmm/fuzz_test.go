package vmm

import (
	"bytes"
	"errors"
	"testing"

	"nestvm/abi"
	"nestvm/machine"
)

// stubBackend is a Backend whose machines only record mappings: enough to
// build spaces and drive the hypercall decoder directly, without running
// guest code (the guest tables do that on real backends). Their vCPUs
// (stubVCPU, harness_test.go) run no instructions: they serve the
// hypercalls a test scripts for them, and otherwise wait to be stopped.
type stubBackend struct{}

func (stubBackend) Name() string                              { return "stub" }
func (stubBackend) Available() error                          { return nil }
func (stubBackend) Describe() string                          { return "stub: runs no instructions" }
func (stubBackend) CPUFeatures() machine.CPUFeatures          { return machine.CPUFeatures{} }
func (b stubBackend) WithCPU(string) (machine.Backend, error) { return b, nil }
func (stubBackend) NewMachine(machine.MachineConfig) (machine.Machine, error) {
	return &stubMachine{}, nil
}

type stubMachine struct{}

func (*stubMachine) MapMemory(uint64, []byte, machine.Perm) error     { return nil }
func (*stubMachine) UnmapMemory(uint64) error                         { return nil }
func (*stubMachine) ProtectMemory(uint64, uint64, machine.Perm) error { return nil }
func (*stubMachine) CodeChanged(uint64, uint64)                       {}
func (*stubMachine) NewVCPU(cfg machine.VCPUConfig) (machine.VCPU, error) {
	return newStubVCPU(cfg), nil
}
func (*stubMachine) Features() machine.Features { return machine.Features{} }
func (*stubMachine) Recycle() error             { return errors.New("stub machines are not recycled") }
func (*stubMachine) Close() error               { return nil }

// fuzzSpace is a space with the root handles, a data page at 0x500000
// (writable, filled with a pattern), a read-only page after it, and a
// thread that is never started.
type fuzzSpace struct {
	s       *Space
	t       *Thread
	console *bytes.Buffer
	data    *machine.Memory
}

const fuzzData = 0x500000

func newFuzzSpace(tb testing.TB, name string) *fuzzSpace {
	tb.Helper()
	s, err := NewMonitor(stubBackend{}, nil).NewSpace(name, DefaultQuota)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := machine.NewMemory("fuzz-data", 2*pageSize)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range data.Bytes() {
		data.Bytes()[i] = byte(i * 7)
	}
	if err := s.mapAt(fuzzData, data, 0, pageSize, machine.PermRead|machine.PermWrite); err != nil {
		tb.Fatal(err)
	}
	if err := s.mapAt(fuzzData+pageSize, data, pageSize, pageSize, machine.PermRead); err != nil {
		tb.Fatal(err)
	}
	t, err := s.NewThread(machine.Regs{})
	if err != nil {
		tb.Fatal(err)
	}
	var console bytes.Buffer
	for _, h := range []struct {
		obj    Object
		rights abi.Rights
	}{
		{s, abi.RightsAll}, {t, abi.RightsAll},
		{NewHostPort("console", ConsoleServer(&console)), abi.RightWrite | abi.RightGrant | abi.RightDerive},
		{NewHostPort("clock", ClockServer()), abi.RightRead},
	} {
		if _, err := s.insertHandle(h.obj, h.rights, 0); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() { s.Kill("test over"); s.Wait(); data.Unref() })
	return &fuzzSpace{s: s, t: t, console: &console, data: data}
}

// FuzzHypercall makes one call with any handle, operation and slots from a
// thread of the kernel fixture (harness_test.go), whose table holds a
// handle to each kind of object, and checks that it returns a value or an
// error code, ends (blocking calls are stopped, then killed), leaves the
// bystander space untouched and the kernel's records whole, and that
// ending the spaces gives back every goroutine and file descriptor.
func FuzzHypercall(f *testing.F) {
	seed := func(h, op uint64, args ...uint64) {
		var a [6]uint64
		copy(a[:], args)
		f.Add(h, op, a[0], a[1], a[2], a[3], a[4], a[5])
	}
	// Every operation, valid-looking and then hostile in each argument.
	for _, c := range everySeedCall() {
		seed(c.h, uint64(c.op), c.args...)
		for _, v := range hostileVariants(c) {
			seed(v.h, uint64(v.op), v.args...)
		}
	}
	seed(hConsole, uint64(abi.OpConsoleWrite), fixData+pageSize-8, 16) // crosses into the read-only page
	seed(hConsole, uint64(abi.OpConsoleWrite), 0, 5)
	seed(hThread0, uint64(abi.OpThreadExit), 3)
	seed(9999, uint64(abi.OpConsoleWrite), fixData, 1)
	seed(hConsole, 1<<32|uint64(abi.OpConsoleWrite), fixData, 1)
	seed(hConsole, 0)
	seed(hConsole, uint64(abi.OpCount))
	f.Fuzz(func(t *testing.T, h, op, a0, a1, a2, a3, a4, a5 uint64) {
		fuzzOneCall(t, h, op, [abi.MaxArgSlots]uint64{a0, a1, a2, a3, a4, a5})
	})
}

// The decoder's fixed order: a call wrong in several ways always gets the
// error of the first check it fails.
func TestHypercallDecodeOrder(t *testing.T) {
	a := newFuzzSpace(t, "a")
	call := func(h uint64, op abi.Op, args ...uint64) abi.Error {
		c := machine.Call{Args: [6]uint64{h, uint64(op)}, RSP: fuzzData + 0x800}
		copy(c.Args[2:], args)
		a.t.Hypercall(&c)
		return abi.ResultError(c.Ret[0])
	}
	for _, tc := range []struct {
		name string
		got  abi.Error
		want abi.Error
	}{
		{"bad handle and bad op", call(77, 0), abi.ErrBadHandle},
		{"bad op", call(3, abi.OpCount), abi.ErrInvalidOp},
		{"thread op on a space, no rights issue", call(1, abi.OpThreadExit, 0), abi.ErrWrongType},
		{"rights before arguments", call(4, abi.OpConsoleWrite, 0, 99), abi.ErrRights},
		{"too big before bad address", call(3, abi.OpConsoleWrite, 0, abi.MaxBuffer+1), abi.ErrTooBig},
		{"bad address", call(3, abi.OpConsoleWrite, 0, 1), abi.ErrBadAddress},
		{"write from read-only memory is fine", call(3, abi.OpConsoleWrite, fuzzData+pageSize, 4), abi.OK},
		{"crossing into unmapped memory", call(3, abi.OpConsoleWrite, fuzzData+2*pageSize-2, 4), abi.ErrBadAddress},
		{"crossing two mappings", call(3, abi.OpConsoleWrite, fuzzData+pageSize-2, 4), abi.OK},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	// The write that crossed two mappings delivered the bytes of both.
	want := append(append([]byte(nil), a.data.Bytes()[pageSize:pageSize+4]...), a.data.Bytes()[pageSize-2:pageSize+2]...)
	if got := a.console.Bytes(); !bytes.Equal(got, want) {
		t.Errorf("console got % x, want % x", got, want)
	}
}
