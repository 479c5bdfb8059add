package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// DecodeSpaceState splits what space_get_state wrote into its header and
// entries. The counts are checked against the bytes there are before
// anything is allocated for them.
func DecodeSpaceState(buf []byte) (SpaceState, []SpaceMapEntry, []SpaceHandleEntry, []SpaceThreadEntry, error) {
	var st SpaceState
	r := bytes.NewReader(buf)
	if err := binary.Read(r, binary.LittleEndian, &st); err != nil {
		return st, nil, nil, nil, fmt.Errorf("space state: %w", err)
	}
	sizes := uint64(binary.Size(SpaceMapEntry{}))*st.NMaps + uint64(binary.Size(SpaceHandleEntry{}))*st.NHandles +
		uint64(binary.Size(SpaceThreadEntry{}))*st.NThreads
	if st.NMaps > uint64(len(buf)) || st.NHandles > uint64(len(buf)) || st.NThreads > uint64(len(buf)) || sizes > uint64(r.Len()) {
		return st, nil, nil, nil, errors.New("space state: its counts need more bytes than it holds")
	}
	maps := make([]SpaceMapEntry, st.NMaps)
	handles := make([]SpaceHandleEntry, st.NHandles)
	threads := make([]SpaceThreadEntry, st.NThreads)
	for _, part := range []any{maps, handles, threads} {
		if err := binary.Read(r, binary.LittleEndian, part); err != nil {
			return st, nil, nil, nil, fmt.Errorf("space state: %w", err)
		}
	}
	return st, maps, handles, threads, nil
}
