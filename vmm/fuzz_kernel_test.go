package vmm

import (
	"encoding/binary"
	"fmt"
	"testing"

	"nestvm/abi"
	"nestvm/machine"
)

// Fuzz targets for the object kernel, on the kernel fixture (see
// harness_test.go): FuzzHypercall (fuzz_test.go) tries one call with any
// slots; the Fuzz*Ops targets aim one call at one kind of object; and
// FuzzHypercallSequence runs many calls in a row from two threads, so the
// handles, messages and blocked calls one call makes are what the next
// ones use. After each input the fixture checks that the bystander space
// is untouched and the kernel's records are whole, and its teardown that
// ending the spaces gave back every goroutine and file descriptor.

// fuzzValues are argument values worth trying: addresses around a's
// mappings and in the monitor's reserved range, lengths at the limits,
// offsets that overflow, rights and permission masks.
var fuzzValues = []uint64{
	fixData, fixData + pageSize - 8, fixData + pageSize, fixData + 2*pageSize - 2, fixMsg, fixBuf,
	fixRegion, fixRegion + pageSize, fixRegion + 3*pageSize, fixKept, fixKept + pageSize, fixFree,
	abi.ReservedBase, abi.ReservedTop - 8, abi.ReservedTop - pageSize, machine.TrapPageAddr,
	abi.UserBase, abi.UserTop, abi.UserTop - pageSize, abi.UserTop - 1,
	pageSize, 2 * pageSize, 4 * pageSize, 64 * pageSize, pageSize - 1, pageSize + 1,
	abi.MaxBuffer, abi.MaxBuffer + 1, 1 << 32, 1 << 63, ^uint64(0), ^uint64(0) - pageSize + 1, ^uint64(0) - 7,
	uint64(abi.RightsAll), uint64(abi.RightCall), uint64(abi.RightRead | abi.RightMap), uint64(abi.RightGrant),
	uint64(abi.RightReceive), uint64(abi.RightsAll &^ abi.RightGrant),
	abi.PermAll, abi.PermRead | abi.PermWrite, abi.PermRead, abi.PermExec,
	uint64(msgSize), uint64(stateSize), uint64(msgSize) - 1, uint64(stateSize) - 1,
	0x150e0700, // the 32-bit word at fixData
	1000, 1000000, abi.FaultResumeState, abi.FaultKill,
}

// checkResult returns an error unless r0 is a value or an error code
// that op declares (abi.OpInfo.AllErrors): anything the kernel, or a
// server of the monitor's own, returns must be one. A number that names
// no operation fails only the handle check or the operation check.
func checkResult(op, r0 uint64) error {
	v := int64(r0)
	if v >= 0 {
		return nil
	}
	if -v >= int64(abi.ErrCount) {
		return fmt.Errorf("%s: R0 %d is neither a value nor an error code", abi.Op(op), v)
	}
	e := abi.Error(-v)
	info, valid := abi.Op(op).Info()
	if op != uint64(uint32(op)) || !valid {
		if e == abi.ErrBadHandle || e == abi.ErrInvalidOp {
			return nil
		}
		return fmt.Errorf("op %#x, which is no operation, returned %s", op, abi.ErrorSymbols[e])
	}
	if !info.Declares(e) {
		return fmt.Errorf("%s returned %s, which it does not declare (abi.Ops[%d].Errors)", info.Name, abi.ErrorSymbols[e], op)
	}
	return nil
}

// servedByGuest reports whether op on handle h of s, with arguments a,
// goes to a guest server, whose r0 is whatever it replied. What the
// checks refuse, the handle operations, a port's own operations
// (servedBy) and port_send, which gets no reply, have results of the
// kernel's; futex_wait_clock's clock_wait goes to its clock's server.
func servedByGuest(s *Space, h uint64, op uint64, a [abi.MaxArgSlots]uint64) bool {
	n, ok := s.lookupHandle(h)
	if !ok {
		return false
	}
	info, valid := abi.Op(op).Info()
	if op != uint64(uint32(op)) || !valid || info.Iface == abi.IfaceHandle {
		return false
	}
	guest := func(obj Object, op abi.Op) bool {
		p, isPort := obj.(*Port)
		return isPort && p.server == nil && servedBy(p, op) && op != abi.OpPortSend
	}
	if _, isSpace := n.obj.(*Space); isSpace && abi.Op(op) == abi.OpFutexWaitClock {
		c, ok := s.lookupHandle(a[2])
		return ok && guest(c.obj, abi.OpClockWait)
	}
	return guest(n.obj, abi.Op(op))
}

// fuzzOneCall runs one call from thread 0 of a fresh fixture and checks
// the aftermath.
func fuzzOneCall(t *testing.T, h, op uint64, a [abi.MaxArgSlots]uint64) {
	f := newKernelFixture(t)
	served := servedByGuest(f.a, h, op, a)
	sc := f.d[0].issue(h, op, a)
	if sc == nil {
		t.Fatal("thread 0 ended before its first call")
	}
	f.d[0].finish()
	if !served {
		if err := checkResult(op, sc.c.Ret[0]); err != nil {
			t.Fatal(err)
		}
	}
	f.check()
}

// opsOf returns the operations of the interfaces given.
func opsOf(ifaces ...abi.Interface) []abi.Op {
	var out []abi.Op
	for op := abi.Op(1); op < abi.OpCount; op++ {
		for _, i := range ifaces {
			if abi.Ops[op].Iface == i {
				out = append(out, op)
			}
		}
	}
	return out
}

// seedCall is a call worth trying: a valid-looking one, from which
// hostileVariants makes the rest.
type seedCall struct {
	h    uint64
	op   abi.Op
	args []uint64
}

// seedCalls holds a valid-looking call of every operation on the
// fixture's handles.
var seedCalls = []seedCall{
	{hSpace, abi.OpHandleInfo, nil},
	{hConsoleNG, abi.OpHandleClose, nil},
	{hConsole, abi.OpConsoleWrite, []uint64{fixData, 16}},
	{hClock, abi.OpClockRead, []uint64{abi.ClockMonotonic}},
	{hClock, abi.OpClockTimePage, nil},
	{hClock, abi.OpClockWait, []uint64{abi.ClockMonotonic, 1}},
	{hSpace, abi.OpSpaceRunning, nil},
	{hThread1, abi.OpThreadExit, []uint64{3}},
	{hPort, abi.OpHandleDerive, []uint64{uint64(abi.RightCall | abi.RightDerive), 42}},
	{hPort, abi.OpHandleRevoke, nil},
	{hSpace, abi.OpSpaceCreate, []uint64{4, 1, 4, 0}},
	{hSpace, abi.OpSpaceMap, []uint64{hRegion, fixFree, pageSize, 2 * pageSize, abi.PermRead}},
	{hSpace, abi.OpSpaceUnmap, []uint64{fixRegion, 4 * pageSize}},
	{hSpace, abi.OpSpaceUnmap, []uint64{fixRegion + pageSize, 2 * pageSize}},
	{hSpace, abi.OpSpaceProtect, []uint64{fixRegion, 4 * pageSize, abi.PermRead}},
	{hSpace, abi.OpSpaceProtect, []uint64{fixRegion + pageSize, pageSize, 0}},
	{hSpace, abi.OpSpaceProtect, []uint64{fixKept + pageSize, pageSize, abi.PermRead}},
	{hChild, abi.OpSpaceInsert, []uint64{hConsole, uint64(abi.RightWrite)}},
	{hChild, abi.OpSpaceInsertAt, []uint64{hConsole, uint64(abi.RightWrite), 9, 0}},
	{hChild, abi.OpSpaceInsertAt, []uint64{hConsole, uint64(abi.RightWrite), 10, abi.InsertMove}},
	{hSpace, abi.OpSpaceInsertAt, []uint64{hPort, uint64(abi.RightsAll), 40, abi.InsertMove}},
	{hPortSet, abi.OpPortSetGetState, []uint64{fixBuf, 1024}},
	{hChild, abi.OpSpaceRemove, []uint64{1}},
	{hChild, abi.OpSpaceSetExceptionPort, []uint64{hPortCall}},
	{hChild, abi.OpSpaceStatus, nil},
	{hChild, abi.OpSpaceKill, []uint64{5}},
	{hChild, abi.OpSpaceAbort, []uint64{fixData, 16}},
	{hChild, abi.OpThreadCreate, []uint64{abi.UserBase, 0, 0}},
	{hThread1, abi.OpThreadStart, nil},
	{hThread1, abi.OpThreadStop, nil},
	{hChildThr, abi.OpThreadGetState, []uint64{fixBuf, uint64(stateSize)}},
	{hChildThr, abi.OpThreadSetState, []uint64{fixBuf, uint64(stateSize)}},
	{hChildThr, abi.OpThreadStatus, nil},
	{hChild, abi.OpRegionCreate, []uint64{2 * pageSize}},
	{hRegion, abi.OpRegionRead, []uint64{8, fixBuf, 64}},
	{hRegion, abi.OpRegionWrite, []uint64{8, fixData, 64}},
	{hRegion, abi.OpRegionSize, nil},
	{hRegion, abi.OpRegionSetKeeper, []uint64{hPortCall}},
	{hKept, abi.OpRegionSupply, []uint64{pageSize, fixData, pageSize}},
	{hRegion, abi.OpRegionDirty, []uint64{fixBuf, 8}},
	{hRegion, abi.OpRegionAccessed, []uint64{fixBuf, 8}},
	{hKept, abi.OpRegionEvict, []uint64{0, pageSize, fixData, pageSize}},
	{hChild, abi.OpPortCreate, nil},
	{hPort, abi.OpPortReceive, []uint64{fixMsg, uint64(msgSize), fixBuf, 64}},
	{hPort, abi.OpPortReply, []uint64{1, 0, 0, fixBuf, 8, abi.NoHandle}},
	{hPortCall, abi.OpPortSend, []uint64{7, fixBuf, 8, hConsole}},
	{hPortCall, abi.OpPortCall, []uint64{7, fixBuf, 8, fixBuf + 0x100, 64}},
	{hChild, abi.OpPortSetCreate, nil},
	{hPortSet, abi.OpPortSetAdd, []uint64{hPort}},
	{hSpace, abi.OpFutexWait, []uint64{fixData, 0x150e0700, 0}},
	{hSpace, abi.OpFutexWake, []uint64{fixData, 1}},
	{hSpace, abi.OpFutexWaitClock, []uint64{fixData, 0x150e0700, hClock, abi.ClockMonotonic, 1}},
	{hConsole, abi.OpFilesOpen, []uint64{fixBuf, 8, abi.OpenRead}},
	{hConsole, abi.OpFilesList, []uint64{fixBuf, 0, fixBuf, 64}},
	{hConsole, abi.OpFileRead, []uint64{0, fixBuf, 64}},
	{hConsole, abi.OpFileWrite, []uint64{0, fixBuf, 64}},
	{hConsole, abi.OpFileSize, nil},
}

// seedHandles is the fixture handle a synthesized seed invokes an
// operation of each interface on.
var seedHandles = map[abi.Interface]uint64{
	abi.IfaceHandle: hPort, abi.IfaceThread: hThread1, abi.IfaceSpace: hChild,
	abi.IfaceConsole: hConsole, abi.IfaceClock: hClock, abi.IfaceRegion: hRegion,
	abi.IfacePort: hPort, abi.IfacePortSet: hPortSet, abi.IfaceFiles: hConsole, abi.IfaceFile: hConsole,
}

// everySeedCall returns seedCalls and, for each operation it lacks (one
// added since), a call made from the operation's description, so that
// every operation gets seeds.
func everySeedCall() []seedCall {
	have := map[abi.Op]bool{}
	for _, c := range seedCalls {
		have[c.op] = true
	}
	out := append([]seedCall(nil), seedCalls...)
	for op := abi.Op(1); op < abi.OpCount; op++ {
		if have[op] {
			continue
		}
		info := &abi.Ops[op]
		c := seedCall{h: seedHandles[info.Iface], op: op}
		for _, a := range info.Args {
			switch a.Kind {
			case abi.ArgValue:
				c.args = append(c.args, 0)
			case abi.ArgHandle:
				c.args = append(c.args, hConsole)
			default:
				c.args = append(c.args, fixBuf, 1024)
			}
		}
		out = append(out, c)
	}
	return out
}

// Hostile buffers: in the reserved range, crossing into an unmapped page,
// a writable one crossing into a read-only one, lengths that wrap or
// exceed the limit, the top of the user range.
var hostileBufs = [][2]uint64{
	{abi.ReservedBase, 16}, {abi.ReservedTop - 8, 16}, {fixData + 2*pageSize - 2, 4},
	{fixData + pageSize - 8, 16}, {fixData, ^uint64(0)}, {fixData, abi.MaxBuffer + 1},
	{abi.UserTop - 8, 16}, {fixFree, pageSize}, {fixKept, 8},
}

// hostileVariants returns c with each argument in turn replaced by
// hostile values of its kind, and c on forged and weaker handles.
func hostileVariants(c seedCall) []seedCall {
	info := &abi.Ops[c.op]
	var out []seedCall
	with := func(slot int, vals ...uint64) {
		v := seedCall{h: c.h, op: c.op, args: make([]uint64, max(len(c.args), slot+len(vals)))}
		copy(v.args, c.args)
		copy(v.args[slot:], vals)
		out = append(out, v)
	}
	slot := 0
	for _, a := range info.Args {
		switch a.Kind {
		case abi.ArgValue:
			with(slot, ^uint64(0))
			with(slot, 1<<63)
			with(slot, ^uint64(0)-pageSize+1)
		case abi.ArgHandle:
			with(slot, 0xdead)
			with(slot, hSpace)
			with(slot, hRegionRO)
			with(slot, hConsoleNG)
		case abi.ArgIn, abi.ArgOut:
			for _, b := range hostileBufs {
				with(slot, b[0], b[1])
			}
		}
		slot += a.Kind.Slots()
	}
	for _, h := range []uint64{abi.NoHandle, 0xdead, 1 << 63, hConsoleNG, hRegionRO, hPortCall, hClock} {
		if h != c.h {
			out = append(out, seedCall{h: h, op: c.op, args: c.args})
		}
	}
	return out
}

func (c seedCall) slots() [abi.MaxArgSlots]uint64 {
	var a [abi.MaxArgSlots]uint64
	copy(a[:], c.args)
	return a
}

// fuzzIfaceOps is the body of the Fuzz*Ops targets: op and h pick an
// operation of ops and a handle of handles; the slots are the fuzzer's.
func fuzzIfaceOps(f *testing.F, ops []abi.Op, handles []uint64) {
	for _, c := range everySeedCall() {
		for _, v := range append([]seedCall{c}, hostileVariants(c)...) {
			oi, hi := -1, -1
			for i, o := range ops {
				if o == v.op {
					oi = i
				}
			}
			for i, h := range handles {
				if h == v.h {
					hi = i
				}
			}
			if oi < 0 || hi < 0 {
				continue
			}
			a := v.slots()
			f.Add(uint8(oi), uint8(hi), a[0], a[1], a[2], a[3], a[4], a[5])
		}
	}
	f.Fuzz(func(t *testing.T, op, h uint8, a0, a1, a2, a3, a4, a5 uint64) {
		o := ops[int(op)%len(ops)]
		fuzzOneCall(t, handles[int(h)%len(handles)], uint64(o), [abi.MaxArgSlots]uint64{a0, a1, a2, a3, a4, a5})
	})
}

func FuzzHandleOps(f *testing.F) {
	hs := make([]uint64, 0, hFixed+2)
	for h := uint64(0); h <= hFixed+1; h++ {
		hs = append(hs, h)
	}
	fuzzIfaceOps(f, opsOf(abi.IfaceHandle), hs)
}

func FuzzSpaceOps(f *testing.F) {
	fuzzIfaceOps(f, opsOf(abi.IfaceSpace), []uint64{hSpace, hChild})
}

func FuzzThreadOps(f *testing.F) {
	fuzzIfaceOps(f, opsOf(abi.IfaceThread), []uint64{hThread0, hThread1, hChildThr})
}

func FuzzRegionOps(f *testing.F) {
	fuzzIfaceOps(f, opsOf(abi.IfaceRegion), []uint64{hRegion, hKept, hRegionRO})
}

func FuzzPortOps(f *testing.F) {
	fuzzIfaceOps(f, opsOf(abi.IfacePort, abi.IfacePortSet), []uint64{hPort, hPortCall, hPortSet, hChildPort})
}

// The sequence fuzzer's input is a list of steps. Each step is a header
// byte (bit 0: which thread; bit 1: a poke follows: a 2-byte offset, a
// length byte and that many bytes, written into a's data page first), a
// handle selector, an operation byte (0xff: 8 raw bytes follow; 0xfe: no
// call, the thread faults, with the vector, error code, address and RIP
// of the first four arguments) and six argument selectors. A selector
// byte means:
//
//	0x00-0x3f  that number
//	0x40-0x7f  fuzzValues[sel-0x40], modulo its length
//	0x80-0x87  R0 of the k-th latest call to end (0x80: the latest)
//	0x88-0x8f  R1 of the same
//	0x90       call id of the last message received
//	0x91-0x94  handles[0..3] of that message
//	0x95-0x97  its badge, op, and page offset (words[5])
//	0x98-0xd7  1 << (sel-0x98)
//	0xd8-0xfe  ^0 - (sel-0xd8): small negative numbers
//	0xff       8 raw bytes follow, little-endian
const (
	seqMaxSteps = 64
	opFault     = 0xfe
	selRaw      = 0xff
	selR0       = 0x80
	selR1       = 0x88
	selCallID   = 0x90
	selHandle   = 0x91
	selBadge    = 0x95
	selOp       = 0x96
	selOffset   = 0x97
)

type seqRunner struct {
	f    *kernelFixture
	in   []byte
	r0   [8]uint64
	r1   [8]uint64
	msg  lastMsg
	open []seqCall // issued calls whose results are not recorded yet
}

type seqCall struct {
	sc     *scriptedCall
	served bool
}

func (r *seqRunner) byte() (byte, bool) {
	if len(r.in) == 0 {
		return 0, false
	}
	b := r.in[0]
	r.in = r.in[1:]
	return b, true
}

func (r *seqRunner) u64() uint64 {
	var raw [8]byte
	n := copy(raw[:], r.in)
	r.in = r.in[n:]
	return binary.LittleEndian.Uint64(raw[:])
}

func (r *seqRunner) value() uint64 {
	sel, _ := r.byte()
	switch {
	case sel < 0x40:
		return uint64(sel)
	case sel < 0x80:
		return fuzzValues[int(sel-0x40)%len(fuzzValues)]
	case sel < selR1:
		return r.r0[sel-selR0]
	case sel < selCallID:
		return r.r1[sel-selR1]
	case sel == selCallID:
		return r.msg.callID
	case sel < selBadge:
		return r.msg.handles[sel-selHandle]
	case sel == selBadge:
		return r.msg.badge
	case sel == selOp:
		return r.msg.op
	case sel == selOffset:
		return r.msg.offset
	case sel < 0xd8:
		return 1 << (sel - 0x98)
	case sel < selRaw:
		return ^uint64(0) - uint64(sel-0xd8)
	}
	return r.u64()
}

// harvest records the results of the calls that have ended, in the order
// they are found ended, and checks each R0 the kernel made.
func (r *seqRunner) harvest(t *testing.T) {
	keep := r.open[:0]
	for _, c := range r.open {
		select {
		case <-c.sc.done:
		default:
			keep = append(keep, c)
			continue
		}
		r0, r1 := c.sc.c.Ret[0], c.sc.c.Ret[1]
		if testing.Verbose() {
			t.Logf("  %s on %d ended: %#x %#x, action %d", abi.Op(c.sc.c.Args[1]), c.sc.c.Args[0], r0, r1, c.sc.act)
		}
		if !c.served {
			if err := checkResult(c.sc.c.Args[1], r0); err != nil {
				t.Fatal(err)
			}
		}
		copy(r.r0[1:], r.r0[:])
		copy(r.r1[1:], r.r1[:])
		r.r0[0], r.r1[0] = r0, r1
		args := c.sc.c.Args
		if args[1] == uint64(abi.OpPortReceive) && c.sc.act == machine.CallContinue && int64(r0) >= 0 {
			if m, ok := r.f.readMsg(args[2]); ok {
				r.msg = lastMsg{callID: m.CallID, badge: m.Badge, op: m.Op, offset: m.Words[abi.FaultWordOffset], handles: m.Handles}
			}
		}
	}
	r.open = keep
}

// run performs the steps of the input.
func (r *seqRunner) run(t *testing.T) {
	page := r.f.data.Bytes()[:pageSize]
	for step := 0; step < seqMaxSteps; step++ {
		hdr, ok := r.byte()
		if !ok {
			break
		}
		d := r.f.d[hdr&1]
		if hdr&2 != 0 {
			lo, _ := r.byte()
			hi, _ := r.byte()
			n, _ := r.byte()
			off := (int(hi)<<8 | int(lo)) % pageSize
			k := min(int(n), len(r.in))
			copy(page[off:], r.in[:k])
			r.in = r.in[k:]
		}
		r.harvest(t)
		h := r.value()
		opb, _ := r.byte()
		op := uint64(opb)
		if opb == selRaw {
			op = r.u64()
		}
		var a [abi.MaxArgSlots]uint64
		for i := range a {
			a[i] = r.value()
		}
		if opb == opFault {
			f := machine.Fault{Vector: machine.Vector(a[0]), ErrorCode: uint32(a[1]), Addr: a[2], RIP: a[3]}
			if testing.Verbose() {
				t.Logf("step %d: thread %d: fault %s", step, hdr&1, f)
			}
			if d.raise(f) != nil {
				d.settle(blockGrace)
			}
			continue
		}
		served := servedByGuest(r.f.a, h, op, a)
		if testing.Verbose() {
			t.Logf("step %d: thread %d: %s (%#x) on %d, %#x", step, hdr&1, abi.Op(op), op, h, a)
		}
		if sc := d.issue(h, op, a); sc != nil {
			r.open = append(r.open, seqCall{sc: sc, served: served})
			d.settle(blockGrace)
		}
	}
	r.f.quiesce()
	r.harvest(t)
}

func FuzzHypercallSequence(f *testing.F) {
	for _, s := range sequenceSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		fx := newKernelFixture(t)
		r := &seqRunner{f: fx, in: in}
		r.run(t)
		fx.check()
	})
}

// seqArg is one selector of a seed sequence.
type seqArg struct {
	sel byte
	raw uint64
}

// v is a plain value: a small number as itself, anything else raw.
func v(x uint64) seqArg {
	if x < 0x40 {
		return seqArg{sel: byte(x)}
	}
	return seqArg{sel: selRaw, raw: x}
}

func r0(k int) seqArg { return seqArg{sel: selR0 + byte(k)} }

var (
	msgCallID = seqArg{sel: selCallID}
	msgOffset = seqArg{sel: selOffset}
)

func msgHandle(i int) seqArg { return seqArg{sel: selHandle + byte(i)} }

// seqSeed builds a sequence input.
type seqSeed []byte

func (s seqSeed) arg(a seqArg) seqSeed {
	s = append(s, a.sel)
	if a.sel == selRaw {
		s = binary.LittleEndian.AppendUint64(s, a.raw)
	}
	return s
}

// call appends a step: thread th invokes op on h.
func (s seqSeed) call(th int, h seqArg, op abi.Op, args ...seqArg) seqSeed {
	return s.step(th, nil, 0, h, uint64(op), args...)
}

// poke appends a step that first writes data at offset off of a's data
// page.
func (s seqSeed) poke(th int, off int, data []byte, h seqArg, op abi.Op, args ...seqArg) seqSeed {
	return s.step(th, data, off, h, uint64(op), args...)
}

func (s seqSeed) step(th int, data []byte, off int, h seqArg, op uint64, args ...seqArg) seqSeed {
	hdr := byte(th & 1)
	if data != nil {
		hdr |= 2
	}
	s = append(s, hdr)
	if data != nil {
		s = append(s, byte(off), byte(off>>8), byte(len(data)))
		s = append(s, data...)
	}
	s = s.arg(h)
	if op < selRaw {
		s = append(s, byte(op))
	} else {
		s = binary.LittleEndian.AppendUint64(append(s, selRaw), op)
	}
	for i := 0; i < abi.MaxArgSlots; i++ {
		a := v(0)
		if i < len(args) {
			a = args[i]
		}
		s = s.arg(a)
	}
	return s
}

// sequenceSeeds are scenarios the sequence fuzzer starts from: each of
// the kinds of bad input the kernel must survive, as a guest would try it.
func sequenceSeeds() [][]byte {
	var seeds [][]byte
	add := func(s seqSeed) { seeds = append(seeds, s) }
	msg, buf := v(fixMsg), v(fixBuf)
	msgLen := v(uint64(msgSize))
	st := v(uint64(stateSize))

	// A call, received and answered with a handle.
	add(seqSeed{}.
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, buf, v(64)).
		poke(0, 0x500, []byte("hello"), v(hPortCall), abi.OpPortCall, v(7), v(fixData+0x500), v(5), v(fixBuf+0x100), v(16)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(1), v(2), buf, v(4), v(hConsole)).
		call(0, r0(0), abi.OpHandleInfo).
		call(0, r0(1), abi.OpConsoleWrite, v(fixData), v(8)))

	// Handles passed on without grant: by send, by reply, by insert.
	add(seqSeed{}.
		call(0, v(hPortCall), abi.OpPortSend, v(1), v(0), v(0), v(hRegionRO)).
		call(0, v(hPortCall), abi.OpPortSend, v(1), v(0), v(0), v(hConsoleNG)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hRegionRO), v(uint64(abi.RightsAll))).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsoleNG), v(uint64(abi.RightsAll))).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, buf, v(64)).
		call(0, v(hPortCall), abi.OpPortCall, v(9), buf, v(8), buf, v(8)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(0), v(0), v(0), v(0), v(hConsoleNG)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(0), v(0), v(0), v(0), v(hRegionRO)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(0), v(0), v(0), v(0), v(0)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(0), v(0), v(0), v(0), v(0)))

	// Rights escalation through derive.
	add(seqSeed{}.
		call(0, v(hConsoleNG), abi.OpHandleDerive, v(uint64(abi.RightsAll)), v(0)).
		call(0, v(hRegionRO), abi.OpHandleDerive, v(uint64(abi.RightRead|abi.RightWrite)), v(0)).
		call(0, v(hPortCall), abi.OpHandleDerive, v(uint64(abi.RightCall)), v(0)).
		call(0, v(hConsole), abi.OpHandleDerive, v(uint64(abi.RightWrite|abi.RightDerive)), v(5)).
		call(0, r0(0), abi.OpHandleDerive, v(uint64(abi.RightWrite|abi.RightRead)), v(0)).
		call(0, r0(1), abi.OpHandleDerive, v(uint64(abi.RightWrite)), v(6)).
		call(0, v(hConsole), abi.OpHandleDerive, v(1<<40), v(0)).
		call(0, v(hSpace), abi.OpSpaceMap, v(hRegionRO), v(fixFree), v(0), v(pageSize), v(abi.PermRead|abi.PermWrite)).
		call(0, v(hSpace), abi.OpSpaceMap, v(hRegionRO), v(fixFree), v(0), v(pageSize), v(abi.PermRead)).
		call(0, v(hSpace), abi.OpSpaceProtect, v(fixFree), v(pageSize), v(abi.PermRead|abi.PermWrite)))

	// Revoked while in use: a call queued through a handle, and a receive
	// blocked on a derived handle, when their sources are revoked.
	add(seqSeed{}.
		call(0, v(hPortCall), abi.OpPortCall, v(3), buf, v(8), buf, v(8)).
		call(1, v(hPort), abi.OpHandleRevoke).
		call(1, v(hPortCall), abi.OpHandleInfo).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, v(0), v(0)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(5), v(0), v(0), v(0), v(0)).
		call(0, v(hPort), abi.OpHandleDerive, v(uint64(abi.RightReceive|abi.RightDerive)), v(0)).
		call(1, r0(0), abi.OpPortReceive, msg, msgLen, v(0), v(0)).
		call(0, v(hPort), abi.OpHandleRevoke).
		call(0, v(hPort), abi.OpPortSend, v(4), v(0), v(0), v(0)).
		call(0, v(hPort), abi.OpHandleRevoke).
		call(1, v(hPort), abi.OpHandleClose))

	// A port whose server's space died, before and during a call.
	add(seqSeed{}.
		call(0, v(hChildPort), abi.OpPortCall, v(1), v(0), v(0), v(0), v(0)).
		call(1, v(hChild), abi.OpSpaceKill, v(9)).
		call(0, v(hChildPort), abi.OpPortCall, v(1), v(0), v(0), v(0), v(0)).
		call(0, v(hChildPort), abi.OpPortSend, v(1), v(0), v(0), v(0)).
		call(0, v(hChildPort), abi.OpPortReceive, msg, msgLen, v(0), v(0)).
		call(0, v(hChild), abi.OpSpaceStatus).
		call(0, v(hChild), abi.OpRegionCreate, v(pageSize)).
		call(0, v(hChild), abi.OpSpaceCreate).
		call(0, v(hChild), abi.OpThreadCreate).
		call(0, v(hChild), abi.OpPortCreate).
		call(0, v(hChildThr), abi.OpThreadStart).
		call(0, v(hChildThr), abi.OpThreadGetState, buf, st).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(uint64(abi.RightsAll))))

	// A region of the child, used after the child died.
	add(seqSeed{}.
		call(0, v(hChild), abi.OpRegionCreate, v(4*pageSize)).
		call(0, v(hSpace), abi.OpSpaceMap, r0(0), v(fixFree), v(0), v(4*pageSize), v(abi.PermRead|abi.PermWrite)).
		call(0, v(hChild), abi.OpRegionCreate, v(4*pageSize)).
		call(0, v(hChild), abi.OpSpaceKill, v(1)).
		call(0, r0(1), abi.OpRegionRead, v(0), buf, v(64)).
		call(0, r0(2), abi.OpRegionWrite, v(0), buf, v(64)).
		call(0, r0(3), abi.OpRegionSupply, v(0), v(fixData), v(pageSize)).
		call(0, r0(4), abi.OpRegionDirty, buf, v(8)).
		call(0, r0(4), abi.OpRegionAccessed, buf, v(8)).
		call(0, r0(4), abi.OpRegionEvict, v(0), v(pageSize), buf, v(0)).
		call(0, r0(5), abi.OpRegionSize).
		call(0, v(hSpace), abi.OpSpaceMap, r0(6), v(fixFree+16*pageSize), v(0), v(pageSize), v(abi.PermRead)))

	// The keeper supplies a page a call's buffer needs; then replies
	// without supplying, with a malformed state, and with kill.
	add(seqSeed{}.
		call(0, v(hConsole), abi.OpConsoleWrite, v(fixKept), v(16)).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, v(0), v(0)).
		call(1, v(hKept), abi.OpRegionSupply, msgOffset, v(fixData), v(pageSize)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(abi.FaultResume)).
		call(0, v(hRegion), abi.OpRegionRead, v(0), v(fixKept+pageSize), v(16)).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, v(0), v(0)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(abi.FaultResume)).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, v(0), v(0)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(abi.FaultResume)).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, v(0), v(0)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(abi.FaultResumeState), v(0), buf, v(4)))
	add(seqSeed{}.
		call(0, v(hSpace), abi.OpFutexWait, v(fixKept+pageSize), v(0), v(0)).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, v(0), v(0)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(abi.FaultKill), v(7)))

	// Evictions: into a buffer too small, into the evicted page itself,
	// into read-only and reserved memory, past the end; reference bits
	// with the keeper's pages supplied, evicted and touched again.
	add(seqSeed{}.
		call(1, v(hKept), abi.OpRegionSupply, v(0), v(fixData), v(2*pageSize)).
		call(0, v(hRegion), abi.OpRegionRead, v(0), v(fixKept), v(16)).
		call(0, v(hKept), abi.OpRegionAccessed, buf, v(1)).
		call(0, v(hKept), abi.OpRegionEvict, v(0), v(pageSize), v(fixData), v(pageSize-1)).
		call(0, v(hKept), abi.OpRegionEvict, v(0), v(pageSize), v(fixKept+pageSize), v(pageSize)).
		call(0, v(hKept), abi.OpRegionEvict, v(0), v(2*pageSize), v(fixKept), v(2*pageSize)).
		call(0, v(hKept), abi.OpRegionEvict, v(pageSize), v(pageSize), v(fixData+pageSize), v(pageSize)).
		call(0, v(hKept), abi.OpRegionEvict, v(0), v(pageSize), v(abi.ReservedBase), v(pageSize)).
		call(0, v(hKept), abi.OpRegionEvict, v(pageSize), v(^uint64(0)-pageSize+1), v(0), v(0)).
		call(0, v(hRegion), abi.OpRegionEvict, v(0), v(pageSize), v(fixData), v(pageSize)).
		call(0, v(hKept), abi.OpRegionAccessed, buf, v(0)).
		call(0, v(hKept), abi.OpRegionDirty, buf, v(1)).
		call(0, v(hRegionRO), abi.OpRegionAccessed, buf, v(8)).
		call(0, v(hRegion), abi.OpRegionAccessed, v(abi.ReservedBase), v(8)))

	// Offsets and lengths that overflow, and ranges into the reserved
	// range or across unmapped pages.
	add(seqSeed{}.
		call(0, v(hRegion), abi.OpRegionRead, v(^uint64(0)), buf, v(16)).
		call(0, v(hRegion), abi.OpRegionRead, v(4*pageSize-1), buf, v(16)).
		call(0, v(hRegion), abi.OpRegionWrite, v(^uint64(0)-7), v(fixData), v(16)).
		call(0, v(hRegion), abi.OpRegionWrite, v(4*pageSize-8), v(fixData), v(16)).
		call(0, v(hRegion), abi.OpRegionSupply, v(^uint64(0)-pageSize+1), v(fixData), v(pageSize)).
		call(0, v(hKept), abi.OpRegionSupply, v(pageSize), v(fixData), v(2*pageSize)).
		call(0, v(hRegion), abi.OpRegionWrite, v(0), v(fixData+pageSize-8), v(16)).
		call(0, v(hRegion), abi.OpRegionRead, v(0), v(fixData+pageSize-8), v(16)).
		call(0, v(hRegion), abi.OpRegionRead, v(0), v(abi.ReservedBase), v(16)).
		call(0, v(hSpace), abi.OpSpaceMap, v(hRegion), v(fixFree), v(^uint64(0)-pageSize+1), v(2*pageSize), v(abi.PermRead)).
		call(0, v(hSpace), abi.OpSpaceMap, v(hRegion), v(^uint64(0)-pageSize+1), v(0), v(2*pageSize), v(abi.PermRead)).
		call(0, v(hSpace), abi.OpSpaceMap, v(hRegion), v(abi.ReservedBase), v(0), v(pageSize), v(abi.PermRead)).
		call(0, v(hSpace), abi.OpSpaceMap, v(hRegion), v(abi.UserTop-pageSize), v(0), v(2*pageSize), v(abi.PermRead)).
		call(0, v(hSpace), abi.OpSpaceUnmap, v(abi.ReservedBase), v(pageSize)).
		call(0, v(hSpace), abi.OpSpaceProtect, v(abi.ReservedBase), v(abi.ReservedTop-abi.ReservedBase), v(abi.PermAll)).
		call(0, v(hChild), abi.OpSpaceMap, v(hRegion), v(abi.UserBase), v(0), v(4*pageSize), v(abi.PermAll)).
		call(0, v(hRegion), abi.OpRegionDirty, buf, v(0)).
		call(0, v(hThread1), abi.OpThreadGetState, v(fixData+pageSize-8), st).
		call(0, v(hSpace), abi.OpFutexWait, v(abi.ReservedBase), v(0), v(0)).
		call(0, v(hSpace), abi.OpFutexWait, v(fixData+1), v(0), v(0)).
		call(0, v(hConsole), abi.OpConsoleWrite, v(abi.UserTop-8), v(16)))

	// Every quota of the child.
	add(seqSeed{}.
		call(0, v(hChild), abi.OpRegionCreate, v((childPages+1)*pageSize)).
		call(0, v(hChild), abi.OpRegionCreate, v(childPages*pageSize)).
		call(0, v(hChild), abi.OpRegionCreate, v(pageSize)).
		call(0, v(hChild), abi.OpThreadCreate).
		call(0, v(hChild), abi.OpThreadCreate).
		call(0, v(hChild), abi.OpThreadCreate).
		call(0, v(hChild), abi.OpThreadCreate).
		call(0, v(hChild), abi.OpSpaceCreate, v(0), v(0), v(0), v(0)).
		call(0, v(hChild), abi.OpSpaceCreate, v(0), v(0), v(0), v(0)).
		call(0, v(hChild), abi.OpSpaceCreate, v(0), v(0), v(0), v(0)).
		call(0, v(hChild), abi.OpSpaceCreate, v(childPages+1), v(0), v(0), v(0)).
		call(0, v(hChild), abi.OpSpaceCreate, v(0), v(childThreads+1), v(0), v(0)).
		call(0, v(hChild), abi.OpSpaceCreate, v(0), v(0), v(childHandles+1), v(0)).
		call(0, v(hChild), abi.OpSpaceCreate, v(0), v(0), v(0), v(childChildren+1)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceInsert, v(hConsole), v(2)).
		call(0, v(hChild), abi.OpSpaceRemove, v(1)).
		call(0, v(hChild), abi.OpSpaceRemove, v(1)))

	// Futexes: a wait woken, a wait stopped, bad words.
	add(seqSeed{}.
		call(1, v(hSpace), abi.OpFutexWait, v(fixData), v(0x150e0700), v(0)).
		call(0, v(hSpace), abi.OpFutexWake, v(fixData), v(^uint64(0))).
		call(1, v(hSpace), abi.OpFutexWait, v(fixData), v(0x150e0700), v(1000)).
		call(1, v(hChild), abi.OpFutexWait, v(fixData), v(0), v(0)).
		call(0, v(hSpace), abi.OpFutexWait, v(fixData), v(1<<32), v(0)).
		call(0, v(hSpace), abi.OpFutexWait, v(fixData+pageSize), v(0x150e0700), v(^uint64(0))))

	// Futex waits on the clock: woken, timed out at once, a deadline far
	// ahead stopped, on realtime, and bad clocks, words and selectors.
	add(seqSeed{}.
		call(1, v(hSpace), abi.OpFutexWaitClock, v(fixData), v(0x150e0700), v(hClock), v(abi.ClockMonotonic), v(0)).
		call(0, v(hSpace), abi.OpFutexWake, v(fixData), v(^uint64(0))).
		call(1, v(hSpace), abi.OpFutexWaitClock, v(fixData), v(0x150e0700), v(hClock), v(abi.ClockMonotonic), v(1)).
		call(1, v(hSpace), abi.OpFutexWaitClock, v(fixData), v(0x150e0700), v(hClock), v(abi.ClockRealtime), v(^uint64(0))).
		call(0, v(hThread1), abi.OpThreadStop).
		call(0, v(hThread1), abi.OpThreadStart).
		call(0, v(hSpace), abi.OpFutexWake, v(fixData), v(1)).
		call(0, v(hSpace), abi.OpFutexWaitClock, v(fixData), v(0x150e0700), v(hRegion), v(abi.ClockMonotonic), v(1)).
		call(0, v(hSpace), abi.OpFutexWaitClock, v(fixData), v(0x150e0700), v(abi.NoHandle), v(abi.ClockMonotonic), v(1)).
		call(0, v(hSpace), abi.OpFutexWaitClock, v(fixData), v(0x150e0700), v(hPortCall), v(abi.ClockMonotonic), v(1)).
		call(0, v(hSpace), abi.OpFutexWaitClock, v(fixData), v(0x150e0700), v(hClock), v(^uint64(0)), v(1)).
		call(0, v(hSpace), abi.OpFutexWaitClock, v(fixData+1), v(0), v(hClock), v(abi.ClockMonotonic), v(1)).
		call(0, v(hSpace), abi.OpFutexWaitClock, v(abi.ReservedBase), v(0), v(hClock), v(abi.ClockMonotonic), v(1)))

	// Thread control: stop, read and replace the state with garbage,
	// resume; on itself; on the child's thread.
	garbage := make([]byte, 255)
	for i := range garbage {
		garbage[i] = 0xff
	}
	add(seqSeed{}.
		call(0, v(hThread1), abi.OpThreadStop).
		call(0, v(hThread1), abi.OpThreadGetState, buf, st).
		poke(0, 0x400, garbage, v(hThread1), abi.OpThreadSetState, buf, st).
		call(0, v(hThread1), abi.OpThreadSetState, buf, v(uint64(stateSize)-1)).
		call(0, v(hThread1), abi.OpThreadStart).
		call(0, v(hThread1), abi.OpThreadStart).
		call(1, v(hThread1), abi.OpThreadGetState, buf, st).
		call(1, v(hThread1), abi.OpThreadStop).
		call(0, v(hChildThr), abi.OpThreadStop).
		call(0, v(hChildThr), abi.OpThreadSetState, buf, st).
		call(0, v(hChildThr), abi.OpThreadStart).
		call(0, v(hThread0), abi.OpThreadStatus).
		call(0, v(hThread1), abi.OpThreadExit, v(1)).
		call(0, v(hThread1), abi.OpThreadStart).
		call(0, v(hThread0), abi.OpThreadExit, v(2)).
		call(1, v(hSpace), abi.OpHandleInfo))

	// A stop racing a get_state on a stopped thread.
	add(seqSeed{}.
		call(0, v(hChildThr), abi.OpThreadStop).
		call(1, v(hChildThr), abi.OpThreadGetState, buf, st).
		call(0, v(hChildThr), abi.OpThreadStart).
		call(1, v(hChildThr), abi.OpThreadStop).
		call(0, v(hChild), abi.OpSpaceKill, v(0)).
		call(1, v(hChildThr), abi.OpThreadSetState, buf, st))

	// Exception ports: a host port, a port of a dead space, none.
	add(seqSeed{}.
		call(0, v(hChild), abi.OpSpaceSetExceptionPort, v(hConsole)).
		call(0, v(hChild), abi.OpSpaceSetExceptionPort, v(hRegion)).
		call(0, v(hChild), abi.OpSpaceSetExceptionPort, v(hChildPort)).
		call(0, v(hSpace), abi.OpSpaceSetExceptionPort, v(hChildPort)).
		call(0, v(hChild), abi.OpSpaceKill, v(3)).
		call(0, v(hSpace), abi.OpSpaceSetExceptionPort, v(0)).
		call(0, v(hRegion), abi.OpRegionSetKeeper, v(hConsole)).
		call(0, v(hRegion), abi.OpRegionSetKeeper, v(hChildPort)))

	// Port sets.
	add(seqSeed{}.
		call(0, v(hPortSet), abi.OpPortSetAdd, v(hPort)).
		call(0, v(hPortSet), abi.OpPortSetAdd, v(hPort)).
		call(0, v(hPortSet), abi.OpPortSetAdd, v(hConsole)).
		call(0, v(hPortSet), abi.OpPortSetAdd, v(hPortCall)).
		call(0, v(hPortSet), abi.OpPortSetAdd, v(hChildPort)).
		call(1, v(hPortSet), abi.OpPortReceive, msg, msgLen, buf, v(64)).
		call(0, v(hPortCall), abi.OpPortSend, v(5), v(fixData), v(32), v(hConsole)).
		call(1, v(hPortSet), abi.OpPortReply, v(1), v(0), v(0), v(0), v(0), v(0)).
		call(0, v(hChild), abi.OpSpaceKill, v(0)).
		call(1, v(hPortSet), abi.OpPortReceive, msg, msgLen, buf, v(64)).
		call(0, v(hPortSet), abi.OpPortSend, v(5), v(0), v(0), v(0)))

	// Stale handles: closed, then the number reused.
	add(seqSeed{}.
		call(0, v(hRegion), abi.OpHandleClose).
		call(0, v(hRegion), abi.OpRegionRead, v(0), buf, v(8)).
		call(0, v(hRegion), abi.OpHandleClose).
		call(0, v(hSpace), abi.OpPortCreate).
		call(0, v(hRegion), abi.OpRegionRead, v(0), buf, v(8)).
		call(0, v(hSpace), abi.OpSpaceUnmap, v(fixRegion), v(4*pageSize)).
		call(0, v(1<<40), abi.OpHandleInfo).
		step(0, nil, 0, v(hSpace), 1<<32|uint64(abi.OpHandleInfo)).
		call(0, v(hSpace), abi.OpCount))

	// Create and kill children in a loop.
	loop := seqSeed{}
	for i := 0; i < 12; i++ {
		loop = loop.call(0, v(hSpace), abi.OpSpaceCreate, v(4), v(1), v(4), v(1)).
			call(0, r0(0), abi.OpRegionCreate, v(pageSize)).
			call(0, r0(1), abi.OpSpaceKill, v(0)).
			call(0, r0(2), abi.OpHandleClose)
	}
	add(loop)

	// Faults: a touch of an absent kept page goes to the keeper; others
	// to the exception port, answered with resume, a new state, garbage,
	// kill; with no exception port the space dies.
	pf := func(addr uint64, code uint64) []seqArg {
		return []seqArg{v(uint64(machine.VecPage)), v(code), v(addr), v(abi.UserBase)}
	}
	add(seqSeed{}.
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, v(0), v(0)).
		call(0, v(0), opFault, pf(fixKept+pageSize, machine.PFUser|machine.PFWrite)...).
		call(1, v(hKept), abi.OpRegionSupply, msgOffset, v(0), v(0)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(abi.FaultResume)).
		call(0, v(hSpace), abi.OpSpaceSetExceptionPort, v(hPortCall)).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, buf, st).
		call(0, v(0), opFault, v(uint64(machine.VecGP)), v(0), v(0), v(abi.UserBase)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(abi.FaultResumeState), v(0), buf, st).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, buf, st).
		call(0, v(0), opFault, v(uint64(machine.VecInvalidOp)), v(0), v(0), v(abi.UserBase)).
		call(1, msgHandle(0), abi.OpThreadGetState, buf, st).
		call(1, msgHandle(0), abi.OpThreadStart).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(abi.FaultResumeState), v(0), buf, v(8)))
	add(seqSeed{}.
		call(0, v(hSpace), abi.OpSpaceSetExceptionPort, v(hPortCall)).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, buf, st).
		call(0, v(0), opFault, v(uint64(machine.VecDivide)), v(0), v(0), v(abi.UserBase)).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(99)))
	add(seqSeed{}.
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, buf, st).
		call(0, v(hSpace), abi.OpSpaceSetExceptionPort, v(hPortCall)).
		call(0, v(0), opFault, v(uint64(machine.VecPage)), v(machine.PFUser), v(0), v(abi.UserBase)).
		call(1, v(hPort), abi.OpHandleRevoke).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(abi.FaultKill), v(3)))
	add(seqSeed{}.
		call(0, v(hChild), abi.OpSpaceSetExceptionPort, v(hChildPort)).
		call(1, v(0), opFault, v(uint64(machine.VecBreakpoint)), v(0), v(0), v(0)).
		call(0, v(hSpace), abi.OpHandleInfo))

	// Mappings split by unmap and protect while the other thread runs; a
	// kept region's pieces supplied, evicted and made inaccessible; a
	// fault on a no-access kept page, which goes to the exception port,
	// not the keeper; a no-access map opened in the middle; and the
	// pieces unmapped across their boundaries.
	add(seqSeed{}.
		call(0, v(hSpace), abi.OpSpaceUnmap, v(fixRegion+pageSize), v(pageSize)).
		call(0, v(hSpace), abi.OpSpaceProtect, v(fixRegion+2*pageSize), v(pageSize), v(0)).
		call(0, v(hRegion), abi.OpRegionWrite, v(2*pageSize), v(fixData), v(16)).
		call(0, v(hConsole), abi.OpConsoleWrite, v(fixRegion+2*pageSize), v(16)).
		call(0, v(hSpace), abi.OpSpaceProtect, v(fixKept+pageSize), v(pageSize), v(0)).
		call(0, v(hKept), abi.OpRegionSupply, v(0), v(fixData), v(2*pageSize)).
		call(0, v(hSpace), abi.OpSpaceProtect, v(fixKept), v(2*pageSize), v(abi.PermRead)).
		call(0, v(hKept), abi.OpRegionEvict, v(0), v(2*pageSize), v(0), v(0)).
		call(0, v(hSpace), abi.OpSpaceProtect, v(fixKept), v(pageSize), v(0)).
		call(0, v(hSpace), abi.OpSpaceSetExceptionPort, v(hPortCall)).
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, buf, st).
		call(0, v(0), opFault, pf(fixKept, machine.PFUser)...).
		call(1, v(hPort), abi.OpPortReply, msgCallID, v(abi.FaultResume)).
		call(0, v(hSpace), abi.OpSpaceMap, v(hRegion), v(fixFree), v(0), v(4*pageSize), v(0)).
		call(0, v(hSpace), abi.OpSpaceProtect, v(fixFree+pageSize), v(2*pageSize), v(abi.PermRead|abi.PermWrite)).
		call(0, v(hSpace), abi.OpSpaceUnmap, v(fixFree+2*pageSize), v(4*pageSize)).
		call(0, v(hSpace), abi.OpSpaceUnmap, v(fixRegion), v(4*pageSize)).
		call(0, v(hSpace), abi.OpSpaceUnmap, v(fixKept+pageSize), v(4*pageSize)))

	// Killing its own space from one thread while the other waits.
	add(seqSeed{}.
		call(1, v(hPort), abi.OpPortReceive, msg, msgLen, v(0), v(0)).
		call(0, v(hSpace), abi.OpSpaceKill, v(4)).
		call(1, v(hSpace), abi.OpHandleInfo))
	return seeds
}

// checkResult holds operations to the errors they declare: one outside
// the list fails, one on it passes, and a number that is no operation
// may fail only the first two checks.
func TestCheckResultDeclaredErrors(t *testing.T) {
	for _, tc := range []struct {
		op   uint64
		r0   uint64
		fail bool
	}{
		{uint64(abi.OpHandleInfo), 5, false},
		{uint64(abi.OpHandleInfo), abi.ErrBadHandle.Result(), false},
		{uint64(abi.OpHandleInfo), abi.ErrQuota.Result(), true},
		{uint64(abi.OpSpaceMap), abi.ErrExists.Result(), false},
		{uint64(abi.OpSpaceStatus), abi.ErrTimeout.Result(), true},
		{uint64(abi.OpCount), abi.ErrInvalidOp.Result(), false},
		{1<<32 | uint64(abi.OpHandleInfo), abi.ErrInvalidOp.Result(), false},
		{1<<32 | uint64(abi.OpHandleInfo), abi.ErrRights.Result(), true},
		{uint64(abi.OpHandleInfo), abi.ErrCount.Result(), true},
	} {
		if err := checkResult(tc.op, tc.r0); (err != nil) != tc.fail {
			t.Errorf("checkResult(%#x, %d) = %v, want failure %v", tc.op, int64(tc.r0), err, tc.fail)
		}
	}
}
