package machine

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"nestvm/abi"
)

// Memory is a memory object: pages of a memfd, mapped shared into the
// monitor. Mapping it into spaces makes the same pages appear there, so the
// monitor reads and writes guest memory without copies, and two spaces
// mapping one Memory share it. Pages are allocated by the host kernel on
// first touch, so a large, mostly untouched Memory costs little.
type Memory struct {
	name string
	fd   int
	data []byte
	size uint64 // len(data) until freed; kept apart so Size never races with Unref
	refs atomic.Int32
}

// NewMemory creates a zero-filled memory object of size bytes (a multiple
// of the page size). It starts with one reference.
func NewMemory(name string, size uint64) (*Memory, error) {
	if size == 0 || size%abi.PageSize != 0 {
		return nil, fmt.Errorf("new memory %q: size %#x is not a positive multiple of the page size", name, size)
	}
	// A descriptor and a mapping of the process's (see hostbudget.go).
	if !HostFDs.take(1) {
		return nil, fmt.Errorf("new memory %q: %w", name, HostFDs.spent())
	}
	if !HostMaps.take(1) {
		HostFDs.give(1)
		return nil, fmt.Errorf("new memory %q: %w", name, HostMaps.spent())
	}
	fd, err := unix.MemfdCreate("nestvm:"+name, unix.MFD_CLOEXEC)
	if err != nil {
		HostFDs.give(1)
		HostMaps.give(1)
		return nil, fmt.Errorf("new memory %q: memfd_create: %w", name, err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		HostFDs.give(1)
		HostMaps.give(1)
		return nil, fmt.Errorf("new memory %q: size %#x: %w", name, size, err)
	}
	data, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_NORESERVE)
	if err != nil {
		unix.Close(fd)
		HostFDs.give(1)
		HostMaps.give(1)
		return nil, fmt.Errorf("new memory %q: mmap %#x bytes: %w", name, size, err)
	}
	m := &Memory{name: name, fd: fd, data: data, size: size}
	m.refs.Store(1)
	return m, nil
}

// Bytes returns the monitor's view of the memory.
func (m *Memory) Bytes() []byte { return m.data }

// Size returns the size in bytes.
func (m *Memory) Size() uint64 { return m.size }

// Name returns the name given at creation, for diagnostics.
func (m *Memory) Name() string { return m.name }

// Ref takes another reference.
func (m *Memory) Ref() *Memory {
	m.refs.Add(1)
	return m
}

// Unref drops a reference; the last one unmaps and closes the memfd.
func (m *Memory) Unref() error {
	if m.refs.Add(-1) != 0 {
		return nil
	}
	err := unix.Munmap(m.data)
	m.data = nil
	if cerr := unix.Close(m.fd); err == nil {
		err = cerr
	}
	HostFDs.give(1)
	HostMaps.give(1)
	if err != nil {
		return fmt.Errorf("free memory %q: %w", m.name, err)
	}
	return nil
}

// Discard releases the host memory of [off, off+size), which reads as
// zeros after. The hole is punched in the memfd, not in one mapping of it,
// so the pages go from every view at once: the monitor's, the emulator's
// and KVM's memory slots. Where the file system cannot punch holes the
// range is zeroed instead, which keeps the meaning but not the saving.
func (m *Memory) Discard(off, size uint64) error {
	if off > m.size || size > m.size-off || off%abi.PageSize != 0 || size%abi.PageSize != 0 {
		return fmt.Errorf("discard %#x bytes at %#x of memory %q (%#x bytes): out of range or not whole pages", size, off, m.name, m.size)
	}
	if size == 0 {
		return nil
	}
	err := unix.Fallocate(m.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(off), int64(size))
	if err != nil {
		clear(m.data[off : off+size])
		return fmt.Errorf("discard %#x bytes at %#x of memory %q: punch hole: %w", size, off, m.name, err)
	}
	return nil
}

// Allocated returns how many bytes of host memory the memory holds now:
// the pages touched and not discarded since.
func (m *Memory) Allocated() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(m.fd, &st); err != nil {
		return 0, fmt.Errorf("memory %q: fstat: %w", m.name, err)
	}
	return uint64(st.Blocks) * 512, nil
}
