//go:build linux && amd64

package kvm

import "fmt"

// KVM exit reasons the backend names (include/uapi/linux/kvm.h).
const (
	exitUnknown       = 0
	exitException     = 1
	exitIO            = 2
	exitHypercall     = 3
	exitDebug         = 4
	exitHLT           = 5
	exitMMIO          = 6
	exitIRQWindowOpen = 7
	exitShutdown      = 8
	exitFailEntry     = 9
	exitIntr          = 10
	exitNMI           = 16
	exitInternalError = 17
	exitSystemEvent   = 24
	exitMemoryFault   = 39
)

var exitNames = map[uint32]string{
	exitUnknown: "unknown", exitException: "exception", exitIO: "io", exitHypercall: "hypercall",
	exitDebug: "debug", exitHLT: "hlt", exitMMIO: "mmio", exitIRQWindowOpen: "irq window open",
	exitShutdown: "shutdown", exitFailEntry: "fail entry", exitIntr: "intr", exitNMI: "nmi",
	exitInternalError: "internal error", exitSystemEvent: "system event", exitMemoryFault: "memory fault",
}

// ExitError is a KVM exit the backend cannot turn into a machine.Exit: the
// vCPU is unusable afterwards.
type ExitError struct {
	Reason uint32 // KVM_EXIT_*
	Detail string
}

func (e *ExitError) Error() string {
	name, ok := exitNames[e.Reason]
	if !ok {
		name = "unknown to nestvm"
	}
	return fmt.Sprintf("kvm exit %d (%s): %s", e.Reason, name, e.Detail)
}

// ioExit is the decoded io member of struct kvm_run.
type ioExit struct {
	out    bool
	size   uint8
	port   uint16
	count  uint32
	offset uint64
}

// decodeIO decodes the first two words of kvm_run's exit union.
func decodeIO(w0, w1 uint64) ioExit {
	return ioExit{
		out:    w0&0xff == 1,
		size:   uint8(w0 >> 8),
		port:   uint16(w0 >> 16),
		count:  uint32(w0 >> 32),
		offset: w1,
	}
}

// mmioExit is the decoded mmio member of struct kvm_run.
type mmioExit struct {
	addr  uint64 // guest-physical address
	len   uint32
	write bool
}

// decodeMMIO decodes words 0 and 2 of kvm_run's exit union: phys_addr,
// then (after the 8 data bytes) len and is_write.
func decodeMMIO(w0, w2 uint64) mmioExit {
	return mmioExit{addr: w0, len: uint32(w2), write: byte(w2>>32) != 0}
}
