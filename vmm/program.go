package vmm

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	"nestvm/abi"
	"nestvm/machine"
)

// Program is a program to start in a new space.
type Program struct {
	// Name names the program in logs and reports (usually its path).
	Name string
	// Image is the parsed executable.
	Image *Image
	// Args are its arguments; Args[0] is conventionally its name.
	Args []string
	// StackSize is the size of the initial thread's stack (DefaultStack
	// when 0).
	StackSize uint64
	// Quota bounds the space; Quota.Memory covers the program's segments,
	// its stack and its heap, which gets whatever the others leave.
	Quota Quota
}

// Env is what the root gives a program: the services behind its handles.
type Env struct {
	// Console receives what the program writes to its console.
	Console io.Writer
	// Stderr, when set, receives what the program writes to its stderr
	// console (its diagnostics).
	Stderr io.Writer
	// Files serves the program's files root (FilesServer: a host
	// directory); nil gives the program none.
	Files Server
	// FilesWritable gives the files handle the write right. The server
	// decides too: a FilesServer opened read-only refuses writes even
	// through a handle that has it.
	FilesWritable bool
	// Stdin, when set, is what the program reads from its input console
	// (StdinServer); nil gives the program none.
	Stdin io.Reader
}

// Limits on a program's arguments, checked before anything runs.
const (
	DefaultStack = 1 << 20
	MaxArgs      = 4096
	MaxArgBytes  = 256 << 10
)

// Root handle numbers: the handles a program started by Launch finds in
// its table, in this order. StartInfo names them too, so programs need not
// rely on the numbers.
const (
	RootHandleSpace = iota + 1
	RootHandleThread
	RootHandleConsole
	RootHandleClock
	RootHandleFiles // only when Env.Files is set
)

// Launch creates a space, loads p into it with the root services of env,
// and starts its first thread. The returned space runs until it ends;
// Wait reports how. It loads inside the kernel, for tests of the kernel
// and the backends that want a program running and nothing between:
// nestvm itself loads every program through the ABI (nester.Launch), so
// that layers see the load.
func (m *Monitor) Launch(p Program, env Env) (*Space, error) {
	return m.LaunchWith(p, env, nil)
}

// LaunchWith is Launch with a hook that runs after the program is loaded
// and before its first thread starts, to configure the space (a fault
// handler, extra handles).
func (m *Monitor) LaunchWith(p Program, env Env, setup func(*Space)) (*Space, error) {
	if p.Quota.Memory == 0 {
		p.Quota = DefaultQuota
	}
	if p.StackSize == 0 {
		p.StackSize = DefaultStack
	}
	if err := checkArgs(p.Args); err != nil {
		return nil, fmt.Errorf("launch %s: %w", p.Name, err)
	}
	s, err := m.NewSpace(p.Name, p.Quota)
	if err != nil {
		return nil, fmt.Errorf("launch %s: %w", p.Name, err)
	}
	t, err := s.load(p, env)
	if err != nil {
		s.Kill("launch failed")
		s.Wait()
		return nil, fmt.Errorf("launch %s: %w", p.Name, err)
	}
	if setup != nil {
		setup(s)
	}
	if err := t.Start(); err != nil {
		s.Kill("launch failed")
		s.Wait()
		return nil, fmt.Errorf("launch %s: %w", p.Name, err)
	}
	return s, nil
}

func checkArgs(args []string) error {
	if len(args) > MaxArgs {
		return fmt.Errorf("%d arguments, more than the limit of %d", len(args), MaxArgs)
	}
	n := 0
	for _, a := range args {
		n += len(a) + 1
	}
	if n > MaxArgBytes {
		return fmt.Errorf("arguments take %d bytes, more than the limit of %d", n, MaxArgBytes)
	}
	return nil
}

// load maps the program's segments, stack and heap, writes its start
// information, installs its root handles and returns its first thread.
func (s *Space) load(p Program, env Env) (*Thread, error) {
	segEnd, err := s.loadSegments(p.Image)
	if err != nil {
		return nil, err
	}
	stackBase := uint64(abi.UserTop) - p.StackSize
	stack, err := s.newMapped("stack", stackBase, p.StackSize, machine.PermRead|machine.PermWrite)
	if err != nil {
		return nil, err
	}
	defer stack.Unref()

	// The heap starts past a guard page after the last segment, on a 2 MiB
	// boundary so that it can use large pages, and gets half the memory
	// the quota has left: the other half is for the child spaces a nester
	// creates, whose pages count against this quota too.
	heapBase := HeapBase(segEnd)
	s.mu.Lock()
	left := (s.quota.Memory - s.memUsed) / 2
	s.mu.Unlock()
	heapSize := pageDown(min(left, stackBase-pageSize-heapBase))
	if heapSize > 0 {
		heap, err := s.newMapped("heap", heapBase, heapSize, machine.PermRead|machine.PermWrite)
		if err != nil {
			return nil, err
		}
		heap.Unref()
	}

	console := NewHostPort("console", ConsoleServer(env.Console))
	clock := NewHostPort("clock", ClockServer())
	t, err := s.NewThread(machine.Regs{})
	if err != nil {
		return nil, err
	}
	type rootHandle struct {
		obj    Object
		rights abi.Rights
	}
	handles := []rootHandle{
		{s, abi.RightsAll},
		{t, abi.RightsAll},
		{console, abi.RightWrite | abi.RightGrant | abi.RightDerive},
		{clock, abi.RightRead | abi.RightGrant | abi.RightDerive},
	}
	filesHandle := uint64(abi.NoHandle)
	if env.Files != nil {
		rights := abi.RightRead | abi.RightGrant | abi.RightDerive
		if env.FilesWritable {
			rights |= abi.RightWrite
		}
		handles = append(handles, rootHandle{NewHostPort("files", env.Files), rights})
		filesHandle = RootHandleFiles
	}
	for i, h := range handles {
		n, err := s.insertHandle(h.obj, h.rights, 0)
		if err != nil {
			return nil, err
		}
		if n != uint64(RootHandleSpace+i) {
			return nil, fmt.Errorf("root handle %d got number %d", RootHandleSpace+i, n)
		}
	}
	stderrHandle := uint64(abi.NoHandle)
	if env.Stderr != nil {
		stderrHandle, err = s.insertHandle(NewHostPort("stderr", ConsoleServer(env.Stderr)), abi.RightWrite|abi.RightGrant|abi.RightDerive, 0)
		if err != nil {
			return nil, err
		}
	}

	stdinHandle := uint64(abi.NoHandle)
	if env.Stdin != nil {
		stdinHandle, err = s.insertHandle(NewHostPort("stdin", StdinServer(env.Stdin)), abi.RightRead|abi.RightGrant|abi.RightDerive, 0)
		if err != nil {
			return nil, err
		}
	}

	info := abi.StartInfo{
		Magic: abi.StartMagic, Size: uint64(binary.Size(abi.StartInfo{})), ABIVersion: abi.Version,
		Space: RootHandleSpace, Thread: RootHandleThread, Console: RootHandleConsole, Clock: RootHandleClock, Files: filesHandle,
		Stderr: stderrHandle, Stdin: stdinHandle,
		HeapBase: heapBase, HeapSize: heapSize, StackBase: stackBase, StackSize: p.StackSize,
	}
	if heapSize == 0 {
		info.HeapBase = 0
	}
	rsp, infoAddr, err := buildStack(stack.Bytes(), stackBase, p.Args, &info, p.Image.Entry)
	if err != nil {
		return nil, err
	}
	t.regs = machine.Regs{RIP: p.Image.Entry, RSP: rsp, RDI: infoAddr}
	return t, nil
}

// newMapped creates a memory object of size bytes and maps it at addr. The
// caller owns one reference.
func (s *Space) newMapped(what string, addr, size uint64, perm machine.Perm) (*machine.Memory, error) {
	mem, err := machine.NewMemory(fmt.Sprintf("space%d-%s", s.id, what), size)
	if err != nil {
		return nil, err
	}
	if err := s.mapMemory(addr, mem, 0, size, perm, true); err != nil {
		mem.Unref()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return mem, nil
}

// loadSegments copies the image's segments into fresh memory and maps
// them. Segments may share a page (ld packs them): such a page gets the
// union of their permissions. It returns the end of the highest segment,
// page-rounded.
func (s *Space) loadSegments(img *Image) (uint64, error) {
	runs, lo, hi := img.Runs()
	mem, err := machine.NewMemory(fmt.Sprintf("space%d-image", s.id), hi-lo)
	if err != nil {
		return 0, err
	}
	defer mem.Unref()
	for _, seg := range img.Segments {
		copy(mem.Bytes()[seg.Addr-lo:], seg.Data)
	}
	for _, r := range runs {
		if err := s.mapMemory(r.Addr, mem, r.Addr-lo, r.Size, r.Perm, true); err != nil {
			return 0, fmt.Errorf("segment at %#x: %w", r.Addr, err)
		}
	}
	return hi, nil
}

// PageRun is a run of pages of an image with one permission.
type PageRun struct {
	Addr, Size uint64
	Perm       machine.Perm
}

// Runs returns the runs of pages the image's segments cover, each with the
// union of the permissions of the segments touching its pages (ld packs
// segments so that they may share a page), and the page-rounded span of
// the image, [lo, hi).
func (img *Image) Runs() (runs []PageRun, lo, hi uint64) {
	// Runs of pages with one permission, from a sweep over segment edges.
	var points []uint64
	for _, seg := range img.Segments {
		end, _ := pageUp(seg.Addr + seg.MemSize)
		points = append(points, pageDown(seg.Addr), end)
		hi = max(hi, end)
	}
	sort.Slice(points, func(i, j int) bool { return points[i] < points[j] })
	if len(points) == 0 {
		return nil, 0, 0
	}
	lo = points[0]
	for i := 0; i+1 < len(points); i++ {
		a, b := points[i], points[i+1]
		if a == b {
			continue
		}
		var perm machine.Perm
		for _, seg := range img.Segments {
			end, _ := pageUp(seg.Addr + seg.MemSize)
			if pageDown(seg.Addr) < b && a < end {
				perm |= seg.Perm
			}
		}
		if perm != 0 { // else a gap between segments
			runs = append(runs, PageRun{Addr: a, Size: b - a, Perm: perm})
		}
	}
	return runs, lo, hi
}

// HeapBase is where the monitor puts a program's heap: past a guard page
// after its image, on a 2 MiB boundary so that it can use large pages.
func HeapBase(imageEnd uint64) uint64 {
	return (imageEnd + pageSize + machine.LargeSize - 1) &^ (machine.LargeSize - 1)
}

// BuildStack lays out a program's initial stack in stack (which the
// program sees at base) as the monitor does: argc, argv, a null envp, the
// auxiliary vector, then info (with Argc and Argv filled in) and the
// argument strings. It returns the initial RSP and the address of info.
func BuildStack(stack []byte, base uint64, args []string, info *abi.StartInfo, entry uint64) (rsp, infoAddr uint64, err error) {
	return buildStack(stack, base, args, info, entry)
}

// buildStack writes the initial stack at the top of stack (which is mapped
// at base), as a Linux program expects it (argc, argv, a null envp, auxv),
// plus the StartInfo record and the argument strings above it. It returns
// the initial RSP and the address of the StartInfo.
func buildStack(stack []byte, base uint64, args []string, info *abi.StartInfo, entry uint64) (rsp, infoAddr uint64, err error) {
	top := base + uint64(len(stack))
	at := func(addr uint64) []byte { return stack[addr-base:] }
	sp := top
	argv := make([]uint64, len(args))
	for i := len(args) - 1; i >= 0; i-- {
		sp -= uint64(len(args[i]) + 1)
		copy(at(sp), args[i])
		at(sp)[len(args[i])] = 0
		argv[i] = sp
	}
	sp &^= 15
	infoSize := uint64(binary.Size(info))
	sp -= (infoSize + 15) &^ 15
	infoAddr = sp

	aux := [][2]uint64{
		{abi.AuxPageSz, pageSize},
		{abi.AuxEntry, entry},
		{abi.AuxStartInfo, infoAddr},
		{abi.AuxNull, 0},
	}
	words := 1 + len(argv) + 1 + 1 + 2*len(aux) // argc, argv, NULL, envp NULL, auxv
	sp -= uint64(8 * words)
	sp &^= 15 // the ABI wants RSP 16-byte aligned at entry
	if sp < base+pageSize {
		return 0, 0, fmt.Errorf("arguments do not fit in the %d-byte stack", len(stack))
	}
	w := sp
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(at(w), v)
		w += 8
	}
	put(uint64(len(args)))
	for _, a := range argv {
		put(a)
	}
	put(0)
	put(0)
	for _, kv := range aux {
		put(kv[0])
		put(kv[1])
	}
	info.Argc = uint64(len(args))
	info.Argv = sp + 8
	rec, err := binary.Append(nil, binary.LittleEndian, info)
	if err != nil {
		return 0, 0, fmt.Errorf("start info: %w", err)
	}
	copy(at(infoAddr), rec)
	return sp, infoAddr, nil
}
