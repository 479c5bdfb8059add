package machine

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"nestvm/abi"
)

// WindowChunk is the unit in which a Window reserves host address space
// and hands it to its machine: chunk n stands for guest addresses
// [n*WindowChunk, (n+1)*WindowChunk), clipped to the user range. A space
// whose memory lies in one chunk costs the monitor 1 GiB of address space,
// not the whole user range (64 GiB), so a 47-bit host (128 TiB a process)
// is no longer the bound on how many spaces a monitor holds. It is also
// the size of the emulator's memory regions (emu's pieceSize), so a chunk
// is one region there.
const WindowChunk = 1 << 30

// windowChunks is how many chunks cover the user range.
const windowChunks = (abi.UserTop + WindowChunk - 1) / WindowChunk

// Window is the host view of a space's user range [abi.UserBase,
// abi.UserTop): guest address a of chunk n is host address
// chunks[n]+a-n*WindowChunk. A chunk is reserved (PROT_NONE,
// MAP_NORESERVE: no memory committed) the first time memory is mapped
// into it, and mapped into the machine then, as one mapping of its own;
// mapping a memory object into the space maps its memfd pages at the
// guest address inside the chunks it covers. Chunks stay reserved until
// the window closes, so what a space costs the monitor's address space
// is the chunks its memory ever reached.
//
// A reservation outlives its space when the space's shell is recycled
// (shell.go): reset hands its chunks on in a new window value and
// retires the old one, so that a late unmap by the ended space (an
// operation that raced with its end) can never reach the pages of the
// next.
type Window struct {
	machine Machine
	// translates is the machine's Features().TranslatesCode: whether
	// it hears of code changes at all.
	translates bool
	// Pieces counts the memory mapped into the window as the monitor
	// records it (one per MapMemory, one more per Split), until unmapped
	// or the window closes.
	Pieces atomic.Int64
	// mu orders mappings against reset and close; retired is set by
	// either, after which the window maps and unmaps nothing.
	mu      sync.Mutex
	retired bool
	chunks  [windowChunks]unsafe.Pointer // nil: not reserved
	// charged is what the window holds of the host's mapping budget
	// (hostbudget.go): one per reserved chunk, two per host mapping
	// placed in a chunk (it can split the reservation in two).
	charged int64
}

// AddressSpaceSpent is a chunk reservation the host refused: the
// monitor's address space holds the chunks of every live space's window.
type AddressSpaceSpent struct{ err error }

// Error is the host's refusal.
func (e AddressSpaceSpent) Error() string { return e.err.Error() }

// Unwrap returns the host's refusal.
func (e AddressSpaceSpent) Unwrap() error { return e.err }

// newWindow returns an empty window whose chunks m will be given.
func newWindow(m Machine) *Window {
	return &Window{machine: m, translates: m.Features().TranslatesCode}
}

// ReservedChunks is how many chunks of the window hold host address space.
func (w *Window) ReservedChunks() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, p := range w.chunks {
		if p != nil {
			n++
		}
	}
	return n
}

// checkRange refuses a range that is not page-aligned user memory.
func checkRange(addr, size uint64) error {
	if addr%abi.PageSize != 0 || size%abi.PageSize != 0 || size == 0 || addr+size < addr ||
		addr < abi.UserBase || addr+size > abi.UserTop {
		return fmt.Errorf("range %#x+%#x is not page-aligned inside the user range [%#x, %#x): %w",
			addr, size, uint64(abi.UserBase), uint64(abi.UserTop), abi.ErrInvalidArg)
	}
	return nil
}

// chunkSpan calls f for each chunk [addr, addr+size) reaches, with the
// part of the range inside it.
func chunkSpan(addr, size uint64, f func(n, a, e uint64) error) error {
	for a := addr; a < addr+size; {
		n := a / WindowChunk
		e := min((n+1)*WindowChunk, addr+size)
		if err := f(n, a, e); err != nil {
			return err
		}
		a = e
	}
	return nil
}

// chunkRange is the part of the user range chunk n stands for.
func chunkRange(n uint64) (lo, hi uint64) {
	return max(n*WindowChunk, abi.UserBase), min((n+1)*WindowChunk, abi.UserTop)
}

// host returns the host address of guest address a, in a reserved chunk.
func (w *Window) host(a uint64) unsafe.Pointer {
	n := a / WindowChunk
	return unsafe.Add(w.chunks[n], a-n*WindowChunk)
}

// reserve reserves chunk n and maps it into the machine. The caller holds
// w.mu.
func (w *Window) reserve(n uint64) error {
	if w.chunks[n] != nil {
		return nil
	}
	if !HostMaps.take(1) {
		return fmt.Errorf("reserve a GiB of address space: %w", HostMaps.spent())
	}
	p, err := unix.MmapPtr(-1, 0, nil, WindowChunk, unix.PROT_NONE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		HostMaps.give(1)
		return fmt.Errorf("reserve a GiB of address space: %w", AddressSpaceSpent{err})
	}
	lo, hi := chunkRange(n)
	mem := unsafe.Slice((*byte)(unsafe.Add(p, lo-n*WindowChunk)), hi-lo)
	if err := w.machine.MapMemory(lo, mem, PermRead|PermWrite); err != nil {
		unix.MunmapPtr(p, WindowChunk)
		HostMaps.give(1)
		return fmt.Errorf("map window chunk %#x-%#x: %w", lo, hi, err)
	}
	w.chunks[n] = p
	w.charged++
	return nil
}

// MapMemory maps size bytes of m, from offset off, at guest address addr,
// reserving the chunks the range reaches.
func (w *Window) MapMemory(addr uint64, m *Memory, off, size uint64) error {
	if err := checkRange(addr, size); err != nil {
		return fmt.Errorf("map %s into the window: %w", m.name, err)
	}
	if off+size < off || off+size > m.Size() {
		return fmt.Errorf("map %s into the window: offset %#x size %#x outside its %#x bytes: %w", m.name, off, size, m.Size(), abi.ErrInvalidArg)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retired {
		return fmt.Errorf("map %s into the window at %#x: the space has ended", m.name, addr)
	}
	err := chunkSpan(addr, size, func(n, a, e uint64) error {
		if err := w.reserve(n); err != nil {
			return err
		}
		if !HostMaps.take(2) {
			return HostMaps.spent()
		}
		_, err := unix.MmapPtr(m.fd, int64(off+a-addr), w.host(a), uintptr(e-a),
			unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_FIXED)
		if err != nil {
			HostMaps.give(2)
			return err
		}
		w.charged += 2
		return nil
	})
	if err != nil {
		// What was placed goes back to reserved; the chunks stay.
		w.unmapLocked(addr, size)
		return fmt.Errorf("map %s into the window at %#x: %w", m.name, addr, err)
	}
	w.Pieces.Add(1)
	// Other memory where code may have run before (unmapped since).
	w.codeChangedLocked(addr, size)
	return nil
}

// TranslatesCode reports whether the machine runs code it translated and
// so must hear where code changed (Features.TranslatesCode).
func (w *Window) TranslatesCode() bool { return w.translates }

// CodeChanged tells the machine that the monitor wrote [addr, addr+size),
// which the guest may run as code (see Machine.CodeChanged), from the
// pages' start to their end.
func (w *Window) CodeChanged(addr, size uint64) {
	if !w.translates {
		return
	}
	lo, hi := addr&^(abi.PageSize-1), (addr+size+abi.PageSize-1)&^(abi.PageSize-1)
	if checkRange(lo, hi-lo) != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.retired {
		w.codeChangedLocked(lo, hi-lo)
	}
}

// codeChangedLocked passes the page-aligned [addr, addr+size) on to the
// machine, a chunk at a time. The caller holds w.mu.
func (w *Window) codeChangedLocked(addr, size uint64) {
	if !w.translates {
		return
	}
	chunkSpan(addr, size, func(n, a, e uint64) error {
		if w.chunks[n] != nil {
			w.machine.CodeChanged(a, e-a)
		}
		return nil
	})
}

// unmapLocked returns [addr, addr+size) to the reserved, inaccessible
// state wherever its chunk is reserved, and gives back what each host
// mapping there was charged. The caller holds w.mu.
func (w *Window) unmapLocked(addr, size uint64) error {
	return chunkSpan(addr, size, func(n, a, e uint64) error {
		if w.chunks[n] == nil {
			return nil
		}
		_, err := unix.MmapPtr(-1, 0, w.host(a), uintptr(e-a), unix.PROT_NONE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE|unix.MAP_FIXED)
		if err != nil {
			return fmt.Errorf("unmap window %#x+%#x: %w", a, e-a, err)
		}
		if g := min(2, w.charged-w.reservedLocked()); g > 0 {
			w.charged -= g
			HostMaps.give(g)
		}
		return nil
	})
}

// reservedLocked counts the reserved chunks; the caller holds w.mu.
func (w *Window) reservedLocked() int64 {
	n := int64(0)
	for _, p := range w.chunks {
		if p != nil {
			n++
		}
	}
	return n
}

// Unmap returns [addr, addr+size) to the reserved, inaccessible state.
func (w *Window) Unmap(addr, size uint64) error {
	if err := checkRange(addr, size); err != nil {
		return fmt.Errorf("unmap window: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retired {
		return nil // reset or close took everything out
	}
	if err := w.unmapLocked(addr, size); err != nil {
		return err
	}
	w.Pieces.Add(-1)
	return nil
}

// Protect passes the permission of [addr, addr+size) to the machine
// (Machine.ProtectMemory), chunk by chunk, since each chunk is a mapping
// of its own there. Every chunk the range reaches must hold memory.
func (w *Window) Protect(addr, size uint64, perm Perm) error {
	if err := checkRange(addr, size); err != nil {
		return fmt.Errorf("protect window: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retired {
		return fmt.Errorf("protect %#x+%#x: the space has ended", addr, size)
	}
	return chunkSpan(addr, size, func(n, a, e uint64) error {
		if w.chunks[n] == nil {
			return fmt.Errorf("protect %#x+%#x: nothing is mapped at %#x", addr, size, a)
		}
		return w.machine.ProtectMemory(a, e-a, perm)
	})
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
	w.charged += 2
	w.Pieces.Add(1)
	return nil
}

// detach removes the window's chunks from its machine, which is about to
// close; the reservations stay until close.
func (w *Window) detach() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first error
	for n, p := range w.chunks {
		if p == nil {
			continue
		}
		lo, _ := chunkRange(uint64(n))
		if err := w.machine.UnmapMemory(lo); err != nil && first == nil {
			first = fmt.Errorf("unmap window chunk at %#x: %w", lo, err)
		}
	}
	return first
}

func (w *Window) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retired {
		return nil
	}
	w.retired = true
	var first error
	for n, p := range w.chunks {
		if p == nil {
			continue
		}
		if err := unix.MunmapPtr(p, WindowChunk); err != nil && first == nil {
			first = fmt.Errorf("release window chunk %d: %w", n, err)
		}
		w.chunks[n] = nil
	}
	HostMaps.give(w.charged)
	w.charged = 0
	w.Pieces.Store(0)
	return first
}

// reset takes every piece out of the reservation, which reads as
// inaccessible again, and returns it as a new window over the same
// chunks, which stay mapped in the machine; w is retired.
func (w *Window) reset() (*Window, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.retired {
		return nil, fmt.Errorf("reset window: already retired")
	}
	for n, p := range w.chunks {
		if p == nil {
			continue
		}
		// One mapping over the whole chunk replaces every piece in it.
		_, err := unix.MmapPtr(-1, 0, p, WindowChunk, unix.PROT_NONE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE|unix.MAP_FIXED)
		if err != nil {
			return nil, fmt.Errorf("reset window chunk %d: %w", n, err)
		}
	}
	w.retired = true
	kept := w.reservedLocked()
	HostMaps.give(w.charged - kept)
	w.Pieces.Store(0)
	return &Window{machine: w.machine, translates: w.translates, chunks: w.chunks, charged: kept}, nil
}
