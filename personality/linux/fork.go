package linux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"nestvm/abi"
	"nestvm/machine"
	"nestvm/vmm"
)

// fork makes a child process: a new space with a copy of the caller's
// memory (written pages copied, read-only areas shared), a copy of its
// descriptor table sharing open file descriptions, its dispositions and
// working directory, and one thread: the caller's, returning 0 on
// childSP (or its own stack). With CLONE_VFORK the caller waits until the
// child execs or ends, as vfork's callers expect.
func (tc *task) fork(flags, childSP, ctid, tls uint64) (uint64, errno) {
	k, p, c := tc.k, tc.p, tc.c
	fpu, err := tc.fc.FPU()
	if err != nil {
		return 0, eAGAIN
	}
	sp, _, err := c.SpaceCreate(k.container, k.memory/abi.PageSize, 0, 0, 0)
	if err != nil {
		return 0, errnoOf(err, eAGAIN)
	}
	k.mu.Lock()
	if k.ended {
		k.mu.Unlock()
		discardSpace(c, sp)
		return 0, eAGAIN
	}
	k.mu.Unlock()
	pid := k.newPID()
	child := &process{k: k, pid: pid, ppid: p.pid, space: sp, exe: p.exeNow(), threads: map[int]*thread{}, pending: map[int]sigInfo{}}
	p.mu.Lock()
	child.cwd, child.umask, child.sig = p.cwd, p.umask, p.sig
	p.mu.Unlock()
	child.fds = p.files().clone()
	fail := func(e errno) (uint64, errno) {
		k.log.Debug("fork failed", "pid", p.pid, "error", e)
		k.disown(c, child.slot)
		discardSpace(c, sp)
		child.closeAll(c)
		return 0, e
	}
	if child.slot, err = k.adopt(c, sp); err != nil {
		return fail(errnoOf(err, eAGAIN))
	}
	if e := k.setExceptionPort(c, sp, pid); e != 0 {
		return fail(e)
	}
	m, e := p.mem().fork(c, sp)
	if e != 0 {
		return fail(e)
	}
	child.mm = m
	r := tc.childRegs(childSP)
	if flags&cloneSetTLS != 0 {
		r.FSBase = tls
	}
	th, num, err := newThread(c, sp, r, fpu)
	if err != nil {
		return fail(errnoOf(err, eAGAIN))
	}
	t := &thread{tid: pid, handle: th, sigmask: tc.t.sigmask}
	if flags&cloneChildClearTID != 0 {
		t.clearTID = ctid
	}
	child.threads[int(num)] = t
	if t.slot, err = k.adopt(c, th); err != nil {
		return fail(errnoOf(err, eAGAIN))
	}
	if flags&cloneChildSetTID != 0 {
		var tidb [4]byte
		binary.LittleEndian.PutUint32(tidb[:], uint32(pid))
		child.mm.writeErr(c, ctid, tidb[:])
	}
	k.mu.Lock()
	k.procs[pid] = child
	k.mu.Unlock()
	if _, _, err := c.ThreadStart(th); err != nil {
		k.mu.Lock()
		delete(k.procs, pid)
		k.mu.Unlock()
		return fail(eAGAIN)
	}
	if flags&cloneVfork != 0 {
		gone := func() bool {
			k.mu.Lock()
			defer k.mu.Unlock()
			return child.exited || child.didExec
		}
		// A signal ends the wait early; it is delivered as the call
		// returns.
		tc.block(gone, noDeadline, &child.ended, &child.execed)
		// Held by a stop, the call is not re-issued (the child exists):
		// it completes with the child's pid when the parent resumes.
		tc.held = false
	}
	return uint64(pid), 0
}

// setExceptionPort makes the personality's port, badged with pid, the
// exception port of space sp.
func (k *kernel) setExceptionPort(c *vmm.Caller, sp uint64, pid int) errno {
	ep, _, err := c.HandleDerive(k.ep, uint64(abi.RightCall|abi.RightGrant|abi.RightDerive), uint64(pid))
	if err != nil {
		return errnoOf(err, eAGAIN)
	}
	defer c.HandleClose(ep)
	if _, _, err := c.SpaceSetExceptionPort(sp, ep); err != nil {
		return errnoOf(err, eAGAIN)
	}
	return 0
}

// clone copies the table for a forked child: the same descriptions.
func (t *fdTable) clone() *fdTable {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := &fdTable{files: make(map[int]*fdEntry, len(t.files))}
	for fd, e := range t.files {
		e.f.ref()
		n.files[fd] = &fdEntry{f: e.f, cloexec: e.cloexec}
	}
	return n
}

// fork copies m into the new space sp. Areas the program cannot write
// share their region (through a handle of their own); writable ones get a
// new region with the pages ever written copied; reservations are
// copied as they are.
func (m *mm) fork(c *vmm.Caller, sp uint64) (*mm, errno) {
	m.mu.Lock()
	vmas := make([]vma, len(m.vmas))
	for i, v := range m.vmas {
		vmas[i] = *v
	}
	n := &mm{space: sp, brkStart: m.brkStart, brk: m.brk, brkMapped: m.brkMapped, vdso: m.vdso, refs: map[uint64]int{}}
	m.mu.Unlock()
	// Regions under several areas (the image) are shared or copied once.
	shared, copies := map[uint64]uint64{}, map[uint64]uint64{}
	for _, v := range vmas {
		nv := v
		switch {
		case v.region == 0:
		case v.prot&protWrite == 0:
			h, ok := shared[v.region]
			if !ok {
				// The copy gets what the handle allows of these: the
				// clock's time page has no exec.
				_, rights, err := c.HandleInfo(v.region)
				if err != nil {
					n.closeAll(c)
					return nil, errnoOf(err, eNOMEM)
				}
				want := uint64(abi.RightRead | abi.RightExec | abi.RightMap | abi.RightDerive | abi.RightGrant)
				d, _, err := c.HandleDerive(v.region, rights&want, 0)
				if err != nil {
					n.closeAll(c)
					return nil, errnoOf(err, eNOMEM)
				}
				h = d
				shared[v.region] = h
			}
			nv.region = h
		default:
			h, ok := copies[v.region]
			if !ok {
				var e errno
				if h, e = copyRegion(c, sp, v.region); e != 0 {
					n.closeAll(c)
					return nil, e
				}
				copies[v.region] = h
			}
			nv.region = h
		}
		if nv.region != 0 {
			if _, _, err := c.SpaceMap(sp, nv.region, v.start, v.off, v.end-v.start, permOf(v.prot)); err != nil {
				n.closeAll(c)
				return nil, errnoOf(err, eNOMEM)
			}
		}
		n.insert(&nv)
	}
	return n, 0
}

// copyRegion makes a new region of sp's with the contents of r: only the
// pages ever written, when the region can say which (else all of it).
func copyRegion(c *vmm.Caller, sp, r uint64) (uint64, errno) {
	size, _, err := c.RegionSize(r)
	if err != nil {
		return 0, errnoOf(err, eNOMEM)
	}
	nr, _, err := c.RegionCreate(sp, size)
	if err != nil {
		return 0, errnoOf(err, eNOMEM)
	}
	pages := size / pageSize
	bitmap := make([]byte, (pages+7)/8)
	if _, _, err := c.RegionDirty(r, bitmap, abi.DirtyEver); err != nil {
		for i := range bitmap {
			bitmap[i] = 0xff // not told: copy every page
		}
	}
	buf := make([]byte, 256<<10)
	for pg := uint64(0); pg < pages; {
		if bitmap[pg/8]&(1<<(pg%8)) == 0 {
			pg++
			continue
		}
		run := uint64(1)
		for pg+run < pages && run < uint64(len(buf))/pageSize && bitmap[(pg+run)/8]&(1<<((pg+run)%8)) != 0 {
			run++
		}
		b := buf[:run*pageSize]
		if _, _, err := c.RegionRead(r, pg*pageSize, b); err != nil {
			c.HandleClose(nr)
			return 0, eFAULT
		}
		if _, _, err := c.RegionWrite(nr, pg*pageSize, b); err != nil {
			c.HandleClose(nr)
			return 0, errnoOf(err, eNOMEM)
		}
		pg += run
	}
	return nr, 0
}

func sysFork(tc *task, _ [6]uint64) (uint64, errno) { return tc.fork(0, 0, 0, 0) }

func sysVfork(tc *task, _ [6]uint64) (uint64, errno) { return tc.fork(cloneVfork, 0, 0, 0) }

// waitChild waits for an ended child of the caller that match accepts
// (blocking unless nohang), and reaps it unless keep. It returns nil with
// no error when nohang and none has ended yet.
func (tc *task) waitChild(match func(q *process) bool, nohang, keep bool) (*process, errno) {
	k, p := tc.k, tc.p
	var found *process
	look := func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		any := false
		for _, q := range k.procs {
			if q.ppid != p.pid || q.reaped || !match(q) {
				continue
			}
			any = true
			if q.exited {
				found = q
				return true
			}
		}
		return !any
	}
	if !look() {
		if nohang {
			return nil, 0
		}
		switch tc.block(look, noDeadline, &p.children) {
		case blockHeld:
			return nil, 0
		case blockInterrupted:
			return nil, eINTR
		}
	}
	if found == nil {
		return nil, eCHILD
	}
	if !keep {
		k.mu.Lock()
		found.reaped = true
		delete(k.procs, found.pid)
		k.mu.Unlock()
	}
	return found, 0
}

// sysWait4 reaps a child: pid > 0 that child, otherwise any.
func sysWait4(tc *task, a [6]uint64) (uint64, errno) {
	pid, statusAddr, options := int(int32(a[0])), a[1], a[2]
	const wNohang = 1
	q, e := tc.waitChild(func(q *process) bool { return pid <= 0 || q.pid == pid }, options&wNohang != 0, false)
	if q == nil || e != 0 {
		return 0, e
	}
	if statusAddr != 0 {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(q.wstatus))
		if e := tc.writeMem(statusAddr, b[:]); e != 0 {
			return 0, e
		}
	}
	return uint64(q.pid), 0
}

// sysWaitid is waitid for ended children (WEXITED), with WNOHANG and
// WNOWAIT.
func sysWaitid(tc *task, a [6]uint64) (uint64, errno) {
	const (
		pAll    = 0
		pPID    = 1
		pPGID   = 2
		wNohang = 1
		wExited = 4
		wNowait = 0x01000000
	)
	idtype, id, infop, options := a[0], int(int32(a[1])), a[2], a[3]
	if options&wExited == 0 || idtype > pPGID {
		return 0, eINVAL
	}
	match := func(q *process) bool { return idtype != pPID || q.pid == id }
	q, e := tc.waitChild(match, options&wNohang != 0, options&wNowait != 0)
	if e != 0 || tc.held {
		return 0, e
	}
	if infop == 0 {
		return 0, 0
	}
	si := make([]byte, 128)
	if q != nil {
		code, status := int32(cldExited), int32(q.wstatus>>8&0xff)
		if sig := q.wstatus & 0x7f; sig != 0 {
			code, status = cldKilled, int32(sig)
		}
		binary.LittleEndian.PutUint32(si[0:], sigCHLD)
		binary.LittleEndian.PutUint32(si[8:], uint32(code))
		binary.LittleEndian.PutUint32(si[16:], uint32(q.pid))
		binary.LittleEndian.PutUint32(si[24:], uint32(status))
	}
	return 0, tc.writeMem(infop, si)
}

// maxExec bounds the size of a program execve reads.
const maxExec = 256 << 20

// sysExecve replaces the process's program: a new space with the new
// image, the same pid, descriptors less those marked close-on-exec, and
// dispositions back to default (ignored ones stay ignored).
func sysExecve(tc *task, a [6]uint64) (uint64, errno) {
	abs, e := tc.pathAt(atFDCWD, a[0])
	if e != 0 {
		return 0, e
	}
	argv, e := tc.stringList(a[1])
	if e != 0 {
		return 0, e
	}
	envp, e := tc.stringList(a[2])
	if e != 0 {
		return 0, e
	}
	img, e := tc.readProgram(abs, &argv)
	if e != 0 {
		return 0, e
	}
	k, p, c := tc.k, tc.p, tc.c
	sp, _, err := c.SpaceCreate(k.container, k.memory/abi.PageSize, 0, 0, 0)
	if err != nil {
		return 0, errnoOf(err, eNOMEM)
	}
	m := newMM(sp)
	var slot, thSlot uint64
	fail := func(e errno) (uint64, errno) {
		k.disown(c, slot)
		k.disown(c, thSlot)
		discardSpace(c, sp)
		m.closeAll(c)
		return 0, e
	}
	if slot, err = k.adopt(c, sp); err != nil {
		return fail(errnoOf(err, eAGAIN))
	}
	if e := k.setExceptionPort(c, sp, p.pid); e != 0 {
		return fail(e)
	}
	if err := m.loadImage(c, img); err != nil {
		return fail(errnoOf(err, eNOMEM))
	}
	k.mapVDSO(c, m)
	rsp, err := m.buildStack(c, img, abs, argv, envp)
	if err != nil {
		return fail(errnoOf(err, e2BIG))
	}
	th, num, err := newThread(c, sp, machine.Regs{RIP: img.Entry, RSP: rsp}, machine.ResetFPU())
	if err != nil {
		return fail(errnoOf(err, eAGAIN))
	}
	if thSlot, err = k.adopt(c, th); err != nil {
		c.HandleClose(th)
		return fail(errnoOf(err, eAGAIN))
	}
	// The point of no return: the old space goes, quietly (no exit
	// notice: the process lives on), and the new one starts.
	p.mu.Lock()
	old, oldSlot, oldMM, oldThreads := p.space, p.slot, p.mm, p.threads
	p.space, p.slot, p.mm, p.exe = sp, slot, m, abs
	p.threads = map[int]*thread{int(num): {tid: p.pid, handle: th, slot: thSlot}}
	for i := range p.sig.actions {
		if p.sig.actions[i].handler != sigIgnore {
			p.sig.actions[i] = sigAction{}
		}
	}
	p.mu.Unlock()
	p.files().closeOnExec(c)
	p.timers.stopAll(true) // POSIX timers end with the program; ITIMER_REAL lives on
	k.disown(c, oldSlot)
	c.SpaceSetExceptionPort(old, 0)
	c.SpaceKill(old, 0)
	oldMM.closeAll(c)
	for _, t := range oldThreads {
		k.disown(c, t.slot)
		c.HandleClose(t.handle)
	}
	c.HandleClose(old)
	k.mu.Lock()
	p.didExec = true
	k.mu.Unlock()
	p.execed.notify()
	tc.held = true // the calling thread is gone with its space
	if _, _, err := c.ThreadStart(th); err != nil {
		k.exit(p, sigKILL, fmt.Sprintf("execve %s: %v", abs, err))
	}
	return 0, 0
}

// closeOnExec closes the descriptors marked close-on-exec.
func (t *fdTable) closeOnExec(c *vmm.Caller) {
	t.mu.Lock()
	var gone []*file
	for fd, e := range t.files {
		if e.cloexec {
			gone = append(gone, e.f)
			delete(t.files, fd)
		}
	}
	t.mu.Unlock()
	for _, f := range gone {
		f.unref(c)
	}
}

// stringList reads a NULL-terminated array of string pointers (argv,
// envp).
func (tc *task) stringList(addr uint64) ([]string, errno) {
	var out []string
	total := 0
	for i := 0; addr != 0; i++ {
		if i > 1<<16 {
			return nil, e2BIG
		}
		var b [8]byte
		if e := tc.readMem(addr+uint64(i)*8, b[:]); e != 0 {
			return nil, e
		}
		ptr := binary.LittleEndian.Uint64(b[:])
		if ptr == 0 {
			break
		}
		s, e := tc.p.mem().readString(tc.c, ptr, maxArgLen)
		if e != 0 {
			if e == eNAMETOOLONG {
				e = e2BIG
			}
			return nil, e
		}
		total += len(s) + 1
		if total > maxArgLen {
			return nil, e2BIG
		}
		out = append(out, s)
	}
	return out, 0
}

// readProgram reads and parses the program at abs. A script ("#!") runs
// its interpreter, with the script's path as an argument, as Linux does.
func (tc *task) readProgram(abs string, argv *[]string) (*vmm.Image, errno) {
	for depth := 0; ; depth++ {
		data, e := tc.readWhole(abs)
		if e != 0 {
			return nil, e
		}
		if bytes.HasPrefix(data, []byte("#!")) && depth < 4 {
			line, _, _ := bytes.Cut(data[2:], []byte("\n"))
			fields := strings.Fields(string(line))
			if len(fields) == 0 {
				return nil, eNOEXEC
			}
			interp := fields[0]
			args := []string{interp}
			if len(fields) > 1 {
				args = append(args, strings.Join(fields[1:], " "))
			}
			args = append(args, abs)
			if len(*argv) > 1 {
				args = append(args, (*argv)[1:]...)
			}
			*argv = args
			abs = resolve(tc.p.cwdNow(), interp)
			continue
		}
		img, err := vmm.ParseELFWith(data, tc.k.memory, vmm.ELFOptions{TLS: true})
		if err == nil && img.Nestvm {
			err = errors.New("a program for nestvm's ABI, not Linux's")
		}
		if err != nil {
			tc.k.log.Debug("execve refused", "path", abs, "error", err)
			return nil, eNOEXEC
		}
		return img, 0
	}
}

// readWhole reads a file under the files root, up to maxExec bytes.
func (tc *task) readWhole(abs string) ([]byte, errno) {
	f, e := tc.open(abs, oRdOnly)
	if e != 0 {
		return nil, e
	}
	defer f.unref(tc.c)
	if f.kind == kindDir {
		return nil, eACCES
	}
	if f.kind != kindFile {
		return nil, eACCES
	}
	size, _, err := tc.c.FileSize(f.handle)
	if err != nil {
		return nil, errnoOf(err, eIO)
	}
	if size > maxExec {
		return nil, eNOMEM
	}
	data := make([]byte, size)
	for off := uint64(0); off < size; {
		n, _, err := tc.c.FileRead(f.handle, off, data[off:min(size, off+1<<20)])
		if err != nil {
			return nil, errnoOf(err, eIO)
		}
		if n == 0 {
			data = data[:off]
			break
		}
		off += n
	}
	return data, 0
}
