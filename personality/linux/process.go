package linux

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"nestvm/abi"
	"nestvm/machine"
	"nestvm/vmm"
)

// process is one Linux process: a child space of the personality's space
// capability, its threads, and what Linux keeps for it.
type process struct {
	k         *kernel
	pid, ppid int
	space     uint64 // handle to its space, in the personality's table
	slot      uint64 // its space's number in the container's table
	exe       string

	mu      sync.Mutex
	threads map[int]*thread // by thread number in the space
	mm      *mm
	fds     *fdTable
	cwd     string // absolute, cleaned
	umask   uint32
	sig     sigState
	pending map[int]sigInfo // signals posted to the process, by number
	signals waitq           // told when a signal is posted
	timers  timerSet        // alarm, setitimer and timer_create's

	// Guarded by kernel.mu.
	exited  bool
	wstatus int // once exited: what wait4 reports
	reaped  bool
	didExec bool

	children waitq // told when a child ends
	ended    waitq // told when it ends (a vfork parent waits here)
	execed   waitq // told when it execs (a vfork parent waits here too)
}

// thread is one Linux thread: a nestvm thread of the process's space.
type thread struct {
	tid      int
	handle   uint64 // in the personality's table
	slot     uint64 // its number in the container's table
	clearTID uint64 // set_tid_address / CLONE_CHILD_CLEARTID
	sigmask  uint64
	altstack [3]uint64
	kick     kickState
	// sleepUntil is when the sleep the thread is in, or was held in and
	// will re-issue, ends on the wall clock (zero: none), for a
	// checkpoint, and sleepDL the same end as the wait keeps it;
	// resumeSleep, set by a restore, is what the sleep it re-issues has
	// left. Guarded by the process's mu.
	sleepUntil  time.Time
	sleepDL     deadline
	resumeSleep *time.Duration
}

// files is the process's descriptor table, which its end replaces.
func (p *process) files() *fdTable {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fds
}

// slotNow is the number of the process's space in the container's
// table, which execve replaces.
func (p *process) slotNow() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slot
}

// spaceNow is the handle of the process's space, which execve replaces.
func (p *process) spaceNow() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.space
}

// mem is the process's memory map, which execve replaces.
func (p *process) mem() *mm {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mm
}

// cwdNow is the working directory; setCwd changes it.
func (p *process) cwdNow() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cwd
}

func (p *process) setCwd(abs string) {
	p.mu.Lock()
	p.cwd = abs
	p.mu.Unlock()
}

// exeNow is the path of the program the process runs, which execve
// changes.
func (p *process) exeNow() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exe
}

func (p *process) thread(num int) *thread {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.threads[num]
}

// closeAll drops every handle the process's descriptors and memory hold.
func (p *process) closeAll(c *vmm.Caller) {
	p.timers.stopAll(false)
	p.mu.Lock()
	fds := p.fds
	p.fds = &fdTable{files: map[int]*fdEntry{}} // a late call of another thread finds none
	m := p.mm
	threads := p.threads
	p.threads = map[int]*thread{}
	p.mu.Unlock()
	if fds != nil {
		fds.closeAll(c)
	}
	if m != nil {
		m.closeAll(c)
	}
	for _, t := range threads {
		p.k.disown(c, t.slot)
		c.HandleClose(t.handle)
	}
}

// Layout of a Linux process's space.
const (
	stackSize = 8 << 20                       // RLIMIT_STACK's usual soft limit
	stackTop  = abi.UserTop                   // the stack's top, as high as the user range goes
	mmapTop   = stackTop - stackSize - 64<<20 // mmap places downwards from here
	brkChunk  = 1 << 20                       // brk maps memory in steps of this
	maxArgLen = 256 << 10                     // argument and environment bytes, at most
	pageSize  = abi.PageSize
)

// spawn creates a process running img with argv and envp, the first one
// (pid 1) when the personality starts.
func (k *kernel) spawn(c *vmm.Caller, img *vmm.Image, exe string, argv, envp []string) (*process, error) {
	pid := k.newPID()
	step := func(what string) func(r0, _ uint64, err error) (uint64, error) {
		return func(r0, _ uint64, err error) (uint64, error) {
			if err != nil {
				return 0, fmt.Errorf("%s: %w", what, err)
			}
			return r0, nil
		}
	}
	sp, err := step("space_create")(c.SpaceCreate(k.container, k.memory/abi.PageSize, 0, 0, 0))
	if err != nil {
		return nil, err
	}
	p := &process{k: k, pid: pid, ppid: 0, space: sp, exe: exe, threads: map[int]*thread{}, cwd: "/", umask: 0o022, pending: map[int]sigInfo{}}
	p.mm = newMM(sp)
	p.fds = k.stdFDs()
	fail := func(err error) (*process, error) {
		k.disown(c, p.slot)
		discardSpace(c, sp)
		p.closeAll(c)
		return nil, err
	}
	if p.slot, err = k.adopt(c, sp); err != nil {
		return fail(err)
	}
	ep, err := step("handle_derive")(c.HandleDerive(k.ep, uint64(abi.RightCall|abi.RightGrant|abi.RightDerive), uint64(pid)))
	if err != nil {
		return fail(err)
	}
	_, err = step("space_set_exception_port")(c.SpaceSetExceptionPort(sp, ep))
	c.HandleClose(ep)
	if err != nil {
		return fail(err)
	}
	if err := p.mm.loadImage(c, img); err != nil {
		return fail(err)
	}
	k.mapVDSO(c, p.mm)
	rsp, err := p.mm.buildStack(c, img, exe, argv, envp)
	if err != nil {
		return fail(err)
	}
	// Linux starts a process with every register zero but RSP and RIP
	// (RDX, in particular, is the rtld_fini that _start passes on), and
	// the FPU as after FNINIT.
	th, num, err := newThread(c, sp, machine.Regs{RIP: img.Entry, RSP: rsp}, machine.ResetFPU())
	if err != nil {
		return fail(err)
	}
	t := &thread{tid: pid, handle: th}
	p.threads[int(num)] = t
	if t.slot, err = k.adopt(c, th); err != nil {
		return fail(err)
	}
	k.mu.Lock()
	k.procs[pid] = p
	k.mu.Unlock()
	if _, err := step("thread_start")(c.ThreadStart(th)); err != nil {
		k.mu.Lock()
		delete(k.procs, pid)
		k.mu.Unlock()
		return fail(err)
	}
	return p, nil
}

// newPID numbers a new process or thread: they share one sequence, as
// Linux's pids and tids do.
func (k *kernel) newPID() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.nextPID++
	return k.nextPID
}

// newThread creates a stopped thread in space sp with registers r and FPU
// state f, and returns its handle and its number in the space.
func newThread(c *vmm.Caller, sp uint64, r machine.Regs, f machine.FPU) (th, num uint64, err error) {
	th, num, err = c.ThreadCreate(sp, 0, 0, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("thread_create: %w", err)
	}
	st := abi.ThreadState{Regs: r, FPU: [abi.FXSaveSize]byte(f)}
	b, _ := binary.Append(nil, binary.LittleEndian, &st)
	if _, _, err := c.ThreadSetState(th, b); err != nil {
		c.HandleClose(th)
		return 0, 0, fmt.Errorf("thread_set_state: %w", err)
	}
	return th, num, nil
}

// childRegs are the caller's registers as a thread or process it clones
// starts with them: returning 0 just past the syscall, on sp when given.
func (tc *task) childRegs(sp uint64) machine.Regs {
	r := tc.regs
	r.RAX = 0
	r.RIP += 2
	r.RCX, r.R11 = r.RIP, r.RFLAGS
	if sp != 0 {
		r.RSP = sp
	}
	return r
}

// discardSpace ends a space the personality made and no process runs in
// (a fork or execve that failed half way), quietly: with no exception
// port, its end is nobody's exit notice.
func discardSpace(c *vmm.Caller, sp uint64) {
	c.SpaceSetExceptionPort(sp, 0)
	c.SpaceKill(sp, 0)
	c.HandleClose(sp)
}

// Auxiliary vector entries (include/uapi/linux/auxvec.h).
const (
	atNull     = 0
	atPhdr     = 3
	atPhent    = 4
	atPhnum    = 5
	atPagesz   = 6
	atBase     = 7
	atFlags    = 8
	atEntry    = 9
	atUID      = 11
	atEUID     = 12
	atGID      = 13
	atEGID     = 14
	atPlatform = 15
	atHwcap    = 16
	atClktck   = 17
	atSecure   = 23
	atRandom   = 25
	atHwcap2   = 26
	atExecfn   = 31
)

// hwcap is what AT_HWCAP reports: CPUID.1:EDX of a baseline x86-64 CPU
// (fpu ... sse2), the same on every backend so that a program checkpointed
// on one resumes on the other with the choices its C library made.
const hwcap = 0x078bfbff

// buildStack writes the initial stack of a Linux process (as binfmt_elf
// lays it out: argc, argv, NULL, envp, NULL, auxv, then the strings and
// AT_RANDOM's bytes above) and returns the initial RSP.
func (m *mm) buildStack(c *vmm.Caller, img *vmm.Image, exe string, argv, envp []string) (uint64, error) {
	total := len(exe) + 1 + 16 + len("x86_64") + 1
	for _, s := range argv {
		total += len(s) + 1
	}
	for _, s := range envp {
		total += len(s) + 1
	}
	if total > maxArgLen {
		return 0, fmt.Errorf("arguments and environment: %d bytes, more than %d: %w", total, maxArgLen, abi.ErrTooBig)
	}
	m.mapStack()
	// Strings go at the top, pointers below them; the block is written
	// with one region_write.
	words := 1 + len(argv) + 1 + len(envp) + 1 + 2*20
	size := (uint64(total) + uint64(words)*8 + 64 + 15) &^ 15
	base := (stackTop - size - 16) &^ 15
	buf := make([]byte, stackTop-base)
	str := uint64(len(buf)) // strings fill downwards from the top
	put := func(b []byte) uint64 {
		str -= uint64(len(b))
		copy(buf[str:], b)
		return base + str
	}
	cstr := func(s string) uint64 { return put(append([]byte(s), 0)) }
	var random [16]byte
	rand.Read(random[:])
	randAddr := put(random[:])
	execfn := cstr(exe)
	platform := cstr("x86_64")
	envAddrs := make([]uint64, len(envp))
	for i := len(envp) - 1; i >= 0; i-- {
		envAddrs[i] = cstr(envp[i])
	}
	argAddrs := make([]uint64, len(argv))
	for i := len(argv) - 1; i >= 0; i-- {
		argAddrs[i] = cstr(argv[i])
	}
	auxv := [][2]uint64{
		{atPhdr, img.Phdr}, {atPhent, 56}, {atPhnum, uint64(img.Phnum)}, {atPagesz, pageSize},
		{atBase, 0}, {atFlags, 0}, {atEntry, img.Entry},
		{atUID, 0}, {atEUID, 0}, {atGID, 0}, {atEGID, 0},
		{atPlatform, platform}, {atHwcap, hwcap}, {atClktck, 100}, {atSecure, 0},
		{atRandom, randAddr}, {atHwcap2, 0}, {atExecfn, execfn},
	}
	if m.vdso != 0 {
		auxv = append(auxv, [2]uint64{atSysinfoEhdr, m.vdso})
	}
	auxv = append(auxv, [2]uint64{atNull, 0})
	vec := []uint64{uint64(len(argv))}
	vec = append(vec, argAddrs...)
	vec = append(vec, 0)
	vec = append(vec, envAddrs...)
	vec = append(vec, 0)
	for _, a := range auxv {
		vec = append(vec, a[0], a[1])
	}
	rsp := (base + str - uint64(len(vec))*8) &^ 15
	if rsp < base {
		return 0, fmt.Errorf("initial stack: %w", abi.ErrTooBig)
	}
	for i, w := range vec {
		binary.LittleEndian.PutUint64(buf[rsp-base+uint64(i)*8:], w)
	}
	if err := m.write(c, base, buf); err != nil {
		return 0, fmt.Errorf("initial stack: %w", err)
	}
	return rsp, nil
}
