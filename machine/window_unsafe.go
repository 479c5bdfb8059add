package machine

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Window is a host address range standing for a space's guest-physical
// addresses [0, size): guest address a is host address base+a. It starts
// inaccessible (reserved, no memory committed); mapping a memory object
// into the space maps its memfd pages at the guest address inside the
// Window. The machine maps the user part of the window once, so the guest
// sees whatever the window holds.
//
// A reservation outlives its space when the space's shell is recycled
// (shell.go): reset hands it on in a new window value and retires the
// old one, so that a late unmap by the ended space (an operation that
// raced with its end) can never reach the pages of the next.
type Window struct {
	base unsafe.Pointer
	mem  []byte
	// Pieces counts the memory mapped into the window, each charged to
	// the host's mapping budget (hostbudget.go) for the two mappings it
	// can split the reservation into, until unmapped or the window closes.
	Pieces atomic.Int64
	// mu orders mappings against reset and close; retired is set by
	// either, after which the window maps and unmaps nothing.
	mu      sync.Mutex
	retired bool
}

// AddressSpaceSpent is a window reservation the host refused: each space
// reserves its whole user range in the monitor's address space, so a
// 47-bit host (128 TiB for a process) holds about 2,000 spaces at once.
type AddressSpaceSpent struct{ err error }

// Error is the host's refusal.
func (e AddressSpaceSpent) Error() string { return e.err.Error() }

// Unwrap returns the host's refusal.
func (e AddressSpaceSpent) Unwrap() error { return e.err }

func newWindow(size uint64) (*Window, error) {
	if !HostMaps.take(1) {
		return nil, fmt.Errorf("reserve %#x bytes of address space: %w", size, HostMaps.spent())
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_NONE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		HostMaps.give(1)
		return nil, fmt.Errorf("reserve %#x bytes of address space: %w", size, AddressSpaceSpent{err})
	}
	return &Window{base: p, mem: unsafe.Slice((*byte)(p), size)}, nil
}

// bytes returns the window's view of guest addresses [addr, addr+n).
func (w *Window) bytes(addr, n uint64) []byte { return w.mem[addr : addr+n : addr+n] }

// MapMemory maps size bytes of m, from offset off, at guest address addr.
func (w *Window) MapMemory(addr uint64, m *Memory, off, size uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retired {
		return fmt.Errorf("map %s into the window at %#x: the space has ended", m.name, addr)
	}
	if !HostMaps.take(2) {
		return fmt.Errorf("map %s into the window at %#x: %w", m.name, addr, HostMaps.spent())
	}
	_, err := unix.MmapPtr(m.fd, int64(off), unsafe.Add(w.base, addr), uintptr(size),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_FIXED)
	if err != nil {
		HostMaps.give(2)
		return fmt.Errorf("map %s into the window at %#x: %w", m.name, addr, err)
	}
	w.Pieces.Add(1)
	return nil
}

// Unmap returns [addr, addr+size) to the reserved, inaccessible state.
func (w *Window) Unmap(addr, size uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retired {
		return nil // reset or close took everything out
	}
	_, err := unix.MmapPtr(-1, 0, unsafe.Add(w.base, addr), uintptr(size), unix.PROT_NONE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE|unix.MAP_FIXED)
	if err != nil {
		return fmt.Errorf("unmap window %#x+%#x: %w", addr, size, err)
	}
	w.Pieces.Add(-1)
	HostMaps.give(2)
	return nil
}

// Split counts one piece more where a piece becomes two (a mapping split
// in the monitor's records, its host mapping unchanged): unmapping one of
// them cuts the host mapping in two, so each is charged to the budget.
func (w *Window) Split() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retired {
		return fmt.Errorf("split a piece of the window: the space has ended")
	}
	if !HostMaps.take(2) {
		return fmt.Errorf("split a piece of the window: %w", HostMaps.spent())
	}
	w.Pieces.Add(1)
	return nil
}

func (w *Window) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retired {
		return nil
	}
	w.retired = true
	err := unix.MunmapPtr(w.base, uintptr(len(w.mem)))
	HostMaps.give(1 + 2*w.Pieces.Swap(0))
	return err
}

// reset takes every piece out of the reservation, which reads as
// inaccessible again, and returns it as a new window; w is retired.
func (w *Window) reset() (*Window, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retired {
		return nil, fmt.Errorf("reset window: already retired")
	}
	// One mapping over the whole range replaces every piece at once.
	_, err := unix.MmapPtr(-1, 0, w.base, uintptr(len(w.mem)), unix.PROT_NONE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE|unix.MAP_FIXED)
	if err != nil {
		return nil, fmt.Errorf("reset window: %w", err)
	}
	w.retired = true
	HostMaps.give(2 * w.Pieces.Swap(0))
	return &Window{base: w.base, mem: w.mem}, nil
}
