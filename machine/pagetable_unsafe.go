package machine

import (
	"sync/atomic"
	"unsafe"
)

// clearBit clears bit in entry i of the table at guest-physical p with one
// atomic operation, as a CPU sets Accessed and Dirty bits, and returns the
// entry as it was.
func (pt *PageTables) clearBit(p uint64, i int, bit uint64) uint64 {
	b := pt.table(p)[i*8:]
	return atomic.AndUint64((*uint64)(unsafe.Pointer(&b[0])), ^bit)
}
