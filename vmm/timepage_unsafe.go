package vmm

import (
	"sync/atomic"
	"unsafe"

	"nestvm/abi"
)

// writeTimePage stores rec into the time page page as its readers expect
// (abi.TimePage): Seq odd while the fields change, even again after, each
// store atomic so that no reader sees a torn word or the stores out of
// order.
func writeTimePage(page []byte, rec *abi.TimePage) {
	w := (*[8]uint64)(unsafe.Pointer(&page[0]))
	seq := atomic.LoadUint64(&w[0])
	atomic.StoreUint64(&w[0], seq|1)
	src := (*[8]uint64)(unsafe.Pointer(rec))
	for i := 1; i < len(w); i++ {
		atomic.StoreUint64(&w[i], src[i])
	}
	atomic.StoreUint64(&w[0], (seq|1)+1)
}
