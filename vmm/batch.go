package vmm

import (
	"encoding/binary"
	"unsafe"

	"nestvm/abi"
	"nestvm/machine"
)

// batchEntrySize is the size of an nv_batch_entry record.
const batchEntrySize = uint64(unsafe.Sizeof(abi.BatchEntry{}))

// Offsets of the fields of an nv_batch_entry the monitor reads and writes.
var (
	batchOffFrom = uint64(unsafe.Offsetof(abi.BatchEntry{}.From))
	batchOffR0   = uint64(unsafe.Offsetof(abi.BatchEntry{}.R0))
	batchOffDone = uint64(unsafe.Offsetof(abi.BatchEntry{}.Done))
)

// callBatch performs call_batch: each entry goes through performOn, the
// path of a direct call, so it meets the same checks and reaches the same
// servers (a layer's stand-in sees every entry). Progress lives in the
// entries' done marks, in the caller's memory: a batch stopped between
// entries or in a blocking one is re-issued whole when the thread resumes
// (CallRestart), and skips what it already did. The entries are read and written through
// a fresh view for each access, as separate calls would, so a batch never
// holds a view of memory across an entry that may change the mappings.
func (t *Thread) callBatch(inv *Invocation) result {
	if t.space.hostSpace() {
		return failed(abi.ErrInvalidArg)
	}
	addr, count := inv.Slots[0], inv.Slots[1]
	if count > abi.MaxBatch {
		return failed(abi.ErrTooBig)
	}
	if count == 0 {
		return ok(0, 0)
	}
	// The whole array must be the caller's to write before anything runs,
	// so a batch that cannot record its progress does nothing.
	if _, r, good := t.batchView(addr, count*batchEntrySize); !good {
		return r
	}
	var r0s [abi.MaxBatch]uint64
	performed := false
	act := machine.CallContinue
	for i := uint64(0); i < count; i++ {
		if performed {
			if r, yield := t.batchYield(i); yield {
				return r
			}
		}
		at := addr + i*batchEntrySize
		b, r, good := t.batchView(at, batchEntrySize)
		if !good {
			return r
		}
		var raw [batchEntrySize]byte
		b.Read(raw[:])
		var e abi.BatchEntry
		e.Handle = binary.LittleEndian.Uint64(raw[0:])
		e.Op = binary.LittleEndian.Uint64(raw[8:])
		for k := range e.Args {
			e.Args[k] = binary.LittleEndian.Uint64(raw[16+8*k:])
		}
		e.From = binary.LittleEndian.Uint64(raw[batchOffFrom:])
		if binary.LittleEndian.Uint64(raw[batchOffDone:]) != 0 {
			r0s[i] = binary.LittleEndian.Uint64(raw[batchOffR0:])
			continue
		}
		performed = true
		res := failed(abi.ErrInvalidArg)
		if vals, valid := batchResolve(&e, i, &r0s); valid && e.Op != uint64(abi.OpCallBatch) {
			t.op.Store(uint32(e.Op))
			res = t.performOn(vals[0], e.Op, [abi.MaxArgSlots]uint64(vals[1:]), 0, false)
			t.op.Store(uint32(abi.OpCallBatch))
		}
		if res.act == machine.CallRestart {
			// Stopped before the entry was done: the whole call is
			// issued again on resume, and starts at this entry.
			return res
		}
		var out [4]uint64
		out[0], out[1] = res.r0, res.r1
		failedEntry := abi.ResultError(res.r0) != abi.OK
		if failedEntry {
			out[2] = uint64(abi.ResultError(res.r0))
		} else {
			out[3] = 1
			r0s[i] = res.r0
		}
		var w [32]byte
		for k, v := range out {
			binary.LittleEndian.PutUint64(w[8*k:], v)
		}
		b, r, good = t.batchView(at+batchOffR0, uint64(len(w)))
		if !good {
			return r
		}
		b.Write(w[:])
		done := i
		if !failedEntry {
			done++
		}
		if failedEntry || (res.act == machine.CallStop && t.shouldQuit()) {
			return result{r0: done, act: res.act}
		}
		// Any other CallStop is a thread stopping itself (thread_stop of
		// its own thread): it stops before the next entry (batchYield),
		// as it would after a direct call, and the batch goes on when it
		// is resumed; after the last entry, the call ends with the stop.
		if res.act == machine.CallStop {
			act = machine.CallStop
		}
	}
	return result{r0: count, act: act}
}

// batchYield reports whether the batch gives way before entry i: a thread
// asked to stop stops between entries, as it would between direct calls,
// and re-issues the batch when resumed (the entries done are marked); one
// asked to end ends. A thread holding calls it received stops only once
// it has answered them, as maybePark has it, so it goes on.
func (t *Thread) batchYield(i uint64) (result, bool) {
	t.mu.Lock()
	exit, stop := t.exitReq, t.stopReq
	t.mu.Unlock()
	switch {
	case exit:
		return result{r0: i, act: machine.CallStop}, true
	case stop && !t.holdsCalls():
		return result{act: machine.CallRestart}, true
	}
	return result{}, false
}

// batchResolve returns entry i's handle and argument slots with the
// values its From takes from earlier entries' R0, and false when From
// names an entry that is not earlier or sets its last byte.
func batchResolve(e *abi.BatchEntry, i uint64, r0s *[abi.MaxBatch]uint64) ([1 + abi.MaxArgSlots]uint64, bool) {
	var vals [1 + abi.MaxArgSlots]uint64
	vals[0] = e.Handle
	copy(vals[1:], e.Args[:])
	const mask = 1<<abi.BatchFromBits - 1
	if e.From>>(abi.BatchFromBits*(1+abi.MaxArgSlots)) != 0 {
		return vals, false
	}
	for k := range vals {
		from := e.From >> (abi.BatchFromBits * k) & mask
		if from == 0 {
			continue
		}
		if from > i {
			return vals, false
		}
		vals[k] = r0s[from-1]
	}
	return vals, true
}

// batchView returns a writable view of [addr, addr+n) of the caller's
// space, asking a keeper for an absent page as a touch would. When it
// cannot, it returns false and the result the call ends with.
func (t *Thread) batchView(addr, n uint64) (userBuffer, result, bool) {
	for {
		b, absent, err := t.space.view(addr, n, machine.PermWrite)
		if err != abi.OK {
			return userBuffer{}, failed(err), false
		}
		if absent == nil {
			return b, result{}, true
		}
		if !t.pageIn(absent.at, absent.write) {
			return userBuffer{}, result{act: machine.CallStop}, false
		}
	}
}
