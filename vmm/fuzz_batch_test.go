package vmm

import (
	"encoding/binary"
	"testing"

	"nestvm/abi"
)

// fixBatch is where FuzzCallBatch puts the entries, in a's read-write
// data page: fuzzBatchMax of them fit before fixBuf's seeds, and entries
// that name fixBuf or fixMsg may write over what follows.
const (
	fixBatch     = fixData + 0x40
	fuzzBatchMax = 8
)

// batchEntry encodes one nv_batch_entry.
func batchEntry(h uint64, op abi.Op, from uint64, args ...uint64) []byte {
	return batchEntryRaw(h, uint64(op), from, args...)
}

// batchEntryRaw is batchEntry with any operation number, 64 bits wide.
func batchEntryRaw(h, op uint64, from uint64, args ...uint64) []byte {
	b := make([]byte, batchEntrySize)
	binary.LittleEndian.PutUint64(b[0:], h)
	binary.LittleEndian.PutUint64(b[8:], op)
	for i, a := range args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	binary.LittleEndian.PutUint64(b[batchOffFrom:], from)
	return b
}

// fromHandle and fromArg are the SDK's NV_FROM_HANDLE and NV_FROM_ARG.
func fromHandle(entry uint64) uint64     { return entry + 1 }
func fromArg(i int, entry uint64) uint64 { return (entry + 1) << (abi.BatchFromBits * (1 + i)) }

// batchSeeds are batches worth trying: valid ones on the fixture's
// handles, and each way an entry or a batch is refused.
func batchSeeds() [][]byte {
	cat := func(es ...[]byte) []byte {
		var out []byte
		for _, e := range es {
			out = append(out, e...)
		}
		return out
	}
	return [][]byte{
		cat(batchEntry(hRegion, abi.OpRegionSize, 0), batchEntry(hPort, abi.OpHandleInfo, 0)),
		cat(batchEntry(hSpace, abi.OpRegionCreate, 0, pageSize), batchEntry(0, abi.OpRegionWrite, fromHandle(0), 0, fixData, 16),
			batchEntry(hSpace, abi.OpSpaceMap, fromArg(0, 0), 0, fixFree, 0, pageSize, abi.PermRead), batchEntry(0, abi.OpHandleClose, fromHandle(0))),
		cat(batchEntry(hChild, abi.OpThreadCreate, 0, abi.UserBase, 0, 0), batchEntry(0, abi.OpThreadStart, fromHandle(0)),
			batchEntry(0, abi.OpThreadStop, fromHandle(0)), batchEntry(0, abi.OpThreadStatus, fromHandle(0))),
		cat(batchEntry(hPortCall, abi.OpPortSend, 0, 7, fixBuf, 8, hConsole), batchEntry(hPort, abi.OpPortReceive, 0, fixMsg, uint64(msgSize), fixBuf, 64)),
		cat(batchEntry(hPort, abi.OpPortReceive, 0, fixMsg, uint64(msgSize), fixBuf, 64), batchEntry(hRegion, abi.OpRegionSize, 0)),
		cat(batchEntry(hSpace, abi.OpFutexWait, 0, fixData, 0x150e0700, 0), batchEntry(hSpace, abi.OpFutexWake, 0, fixData, 1)),
		cat(batchEntry(hPortCall, abi.OpPortCall, 0, 7, fixBuf, 8, fixBuf+0x100, 64)),
		cat(batchEntry(hKept, abi.OpRegionRead, 0, 0, fixBuf, 8)),
		cat(batchEntry(hThread0, abi.OpThreadExit, 0, 3), batchEntry(hRegion, abi.OpRegionSize, 0)),
		cat(batchEntry(hRegion, abi.OpCallBatch, 0, fixBatch, 1)),
		cat(batchEntry(hRegion, abi.OpRegionSize, 0), batchEntry(hRegion, abi.OpRegionSize, fromHandle(1))),
		cat(batchEntry(hRegion, abi.OpRegionSize, 0), batchEntry(hRegion, abi.OpRegionSize, fromArg(5, 0)|1<<56)),
		cat(batchEntry(hRegion, abi.Op(0xffff), 0), batchEntryRaw(hRegion, 1<<32|uint64(abi.OpHandleInfo), 0)),
		cat(batchEntry(hChild, abi.OpSpaceKill, 0, 5), batchEntry(hChild, abi.OpSpaceStatus, 0)),
		cat(batchEntry(hSpace, abi.OpSpaceUnmap, 0, fixData, pageSize), batchEntry(hRegion, abi.OpRegionSize, 0)),
	}
}

// FuzzCallBatch runs one call_batch from thread 0 of a fresh fixture with
// the fuzzer's entries and count, at an address the fuzzer may move: the
// result must be an error call_batch declares or a count of entries done
// no larger than count, and the fixture's checks must hold. The done
// marks are not checked: an entry may write over the entries, or unmap
// them.
func FuzzCallBatch(f *testing.F) {
	for _, s := range batchSeeds() {
		n := uint64(len(s)) / batchEntrySize
		f.Add(s, n, uint64(0))
		f.Add(s, n+1, uint64(0))
		f.Add(s, n, uint64(8))
	}
	f.Add([]byte{}, uint64(abi.MaxBatch+1), uint64(0))
	f.Add([]byte{}, ^uint64(0), uint64(0))
	f.Add([]byte{}, uint64(1), ^uint64(0)-fixBatch)
	f.Add([]byte{}, uint64(2), uint64(pageSize-0x40-8))
	f.Add([]byte{}, uint64(1), uint64(fixKept-fixBatch))
	f.Fuzz(func(t *testing.T, raw []byte, count, shift uint64) {
		fx := newKernelFixture(t)
		if max := fuzzBatchMax * batchEntrySize; uint64(len(raw)) > max {
			raw = raw[:max]
		}
		copy(fx.data.Bytes()[fixBatch-fixData:], raw)
		at := fixBatch + shift
		sc := fx.d[0].issue(hRegion, uint64(abi.OpCallBatch), [abi.MaxArgSlots]uint64{at, count})
		if sc == nil {
			t.Fatal("thread 0 ended before its first call")
		}
		fx.d[0].finish()
		r0 := sc.c.Ret[0]
		if err := checkResult(uint64(abi.OpCallBatch), r0); err != nil {
			t.Fatal(err)
		}
		if int64(r0) >= 0 && r0 > count {
			t.Fatalf("call_batch of %d entries returned %d", count, r0)
		}
		fx.check()
	})
}
