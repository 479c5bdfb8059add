package abi

import (
	"encoding/binary"
	"testing"
)

func TestDecodeSpaceState(t *testing.T) {
	st := SpaceState{NMaps: 1, NHandles: 2, NThreads: 1}
	buf, _ := binary.Append(nil, binary.LittleEndian, &st)
	buf, _ = binary.Append(buf, binary.LittleEndian, []SpaceMapEntry{{Addr: 0x400000}})
	buf, _ = binary.Append(buf, binary.LittleEndian, []SpaceHandleEntry{{Number: 3}, {Number: 4}})
	buf, _ = binary.Append(buf, binary.LittleEndian, []SpaceThreadEntry{{Number: 7}})
	_, maps, handles, threads, err := DecodeSpaceState(buf)
	if err != nil || len(maps) != 1 || maps[0].Addr != 0x400000 || len(handles) != 2 || handles[1].Number != 4 || len(threads) != 1 || threads[0].Number != 7 {
		t.Fatalf("decoded %v %v %v, %v", maps, handles, threads, err)
	}
	// Counts the bytes cannot hold are refused before any allocation.
	for _, bad := range []SpaceState{{NMaps: 1 << 40}, {NHandles: ^uint64(0)}, {NThreads: 2}} {
		b, _ := binary.Append(nil, binary.LittleEndian, &bad)
		if _, _, _, _, err := DecodeSpaceState(b); err == nil {
			t.Errorf("%+v with no entries decoded", bad)
		}
	}
	if _, _, _, _, err := DecodeSpaceState(buf[:10]); err == nil {
		t.Error("a truncated header decoded")
	}
}
