package linux

import (
	"fmt"
	"time"

	"nestvm/abi"
	"nestvm/nester"
	"nestvm/vmm"
)

func init() { nester.RegisterRunner(RunnerName, newResumer) }

// resumer rebuilds a personality from its record (nester.Resumer).
type resumer struct {
	k         *kernel
	st        *savedState
	savedAt   time.Time // when the checkpoint was taken; zero: unknown
	savedMono uint64    // what the subtree's clock read then; 0: unknown
}

// SavedAt implements nester.SaveTimed.
func (r *resumer) SavedAt(t time.Time, monotonic uint64) {
	r.savedAt, r.savedMono = t, monotonic
}

// newResumer checks a saved record and makes the kernel that will serve
// the restored processes, with its port; Resume then fills it in.
func newResumer(c *vmm.Caller, caps map[string]uint64, env nester.Env, record []byte) (nester.Resumer, error) {
	st, err := decodeState(record)
	if err != nil {
		return nil, err
	}
	k, err := newKernel(c, caps, env, env.Log)
	if err != nil {
		return nil, err
	}
	return &resumer{k: k, st: st}, nil
}

// Port implements nester.Resumer.
func (r *resumer) Port() uint64 { return r.k.ep }

// Resume implements nester.Resumer: top is the restored container. Each
// process's space and threads are found at their numbers in its table;
// the areas of its memory map find their regions in the space's
// mappings; files are opened again by path through this run's files
// capability.
func (r *resumer) Resume(c *vmm.Caller, top uint64) (nester.Started, error) {
	k, st := r.k, r.st
	savedAt := r.savedAt
	if savedAt.IsZero() {
		savedAt = time.Now()
	}
	k.container = top
	cst, err := c.ReadSpace(top)
	if err != nil {
		return nil, fmt.Errorf("the processes' container: %w", err)
	}
	bySlot := map[uint64]abi.SpaceHandleEntry{}
	keep := map[uint64]bool{}
	for _, e := range cst.Handles {
		bySlot[e.Number] = e
	}
	defer func() {
		for _, e := range cst.Handles {
			if !keep[e.Handle] {
				c.HandleClose(e.Handle)
			}
		}
	}()
	files, err := k.reopen(c, st)
	if err != nil {
		return nil, err
	}
	for _, sp := range st.procs {
		p := &process{k: k, pid: sp.pid, ppid: sp.ppid, exe: sp.exe, cwd: sp.cwd, umask: sp.umask, sig: sp.sig,
			threads: map[int]*thread{}, pending: map[int]sigInfo{}, exited: sp.exited, wstatus: sp.wstatus, didExec: sp.didExec}
		for _, in := range sp.pending {
			p.pending[int(in.signo)] = in
		}
		if !sp.exited {
			e, ok := bySlot[sp.slot]
			if !ok || e.Type != uint64(abi.ObjSpace) {
				return nil, fmt.Errorf("process %d: the container holds no space at %d", sp.pid, sp.slot)
			}
			keep[e.Handle] = true
			p.space, p.slot = e.Handle, sp.slot
			if err := k.resumeProcess(c, p, &sp, bySlot, keep, files, savedAt, r.savedMono); err != nil {
				return nil, fmt.Errorf("process %d: %w", sp.pid, err)
			}
		}
		k.procs[p.pid] = p
	}
	k.nextPID = st.nextPID
	return k, nil
}

// resumeProcess finds p's threads and regions in its restored space, and
// rebuilds its memory map and descriptor table.
func (k *kernel) resumeProcess(c *vmm.Caller, p *process, sp *savedProc, bySlot map[uint64]abi.SpaceHandleEntry, keep map[uint64]bool, files []*file, savedAt time.Time, savedMono uint64) error {
	pst, err := c.ReadSpace(p.space)
	if err != nil {
		return err
	}
	kept := map[uint64]bool{}
	defer func() {
		for _, m := range pst.Maps {
			if !kept[m.Region] {
				c.HandleClose(m.Region)
			}
		}
		for _, t := range pst.Threads {
			c.HandleClose(t.Handle)
		}
		if pst.Space.ExceptionPort != abi.NoHandle {
			c.HandleClose(pst.Space.ExceptionPort)
		}
		for _, e := range pst.Handles {
			c.HandleClose(e.Handle)
		}
	}()
	if id, err := c.Identify(pst.Space.ExceptionPort); err != nil || id.Badge != uint64(p.pid) {
		return fmt.Errorf("its space's exception port is not the personality's for pid %d", p.pid)
	}
	// The Object tags of two space_get_state records are not comparable:
	// a thread is matched to its number through its identity.
	number := map[uint64]uint64{}
	for _, t := range pst.Threads {
		if id, err := c.Identify(t.Handle); err == nil {
			number[id.Object] = t.Number
		}
	}
	for _, t := range sp.threads {
		e, ok := bySlot[t.slot]
		var num uint64
		in := false
		if ok {
			if id, err := c.Identify(e.Handle); err == nil {
				num, in = number[id.Object]
			}
		}
		if !ok || e.Type != uint64(abi.ObjThread) || !in {
			return fmt.Errorf("thread %d: the container holds no thread of the process's space at %d", t.tid, t.slot)
		}
		keep[e.Handle] = true
		th := &thread{tid: t.tid, handle: e.Handle, slot: t.slot, clearTID: t.clearTID, sigmask: t.sigmask, altstack: t.altstack}
		switch {
		case t.sleepClock != 0 && savedMono != 0:
			// On the clock the sleep was counted on, which a layer
			// owning time (timewarp) may run at its own pace.
			left := time.Duration(max(int64(t.sleepClock-savedMono), 0))
			th.resumeSleep = &left
		case t.sleepUntil != 0:
			left := max(time.Unix(0, t.sleepUntil).Sub(savedAt), 0)
			th.resumeSleep = &left
		}
		if t.kicked != nil && kickedAt(c, e.Handle) {
			th.kick.regs, th.kick.busy = t.kicked, true
		}
		p.threads[int(num)] = th
	}
	m := newMM(p.space)
	m.brkStart, m.brk, m.brkMapped = sp.mm.brkStart, sp.mm.brk, sp.mm.brkMapped
	region := map[uint64]uint64{} // region object -> the handle its areas share
	for _, v := range sp.mm.vmas {
		nv := &vma{start: v.start, end: v.end, prot: v.prot, off: v.off}
		if v.mapped {
			var found *abi.SpaceMapEntry
			for i := range pst.Maps {
				if mp := &pst.Maps[i]; mp.Addr <= v.start && v.end <= mp.Addr+mp.Size {
					found = mp
				}
			}
			if found == nil || found.Region == abi.NoHandle || found.Offset+(v.start-found.Addr) != v.off {
				m.closeAll(c)
				return fmt.Errorf("area [%#x, %#x): its space maps no region there", v.start, v.end)
			}
			h, ok := region[found.Object]
			if !ok {
				h = found.Region
				region[found.Object], kept[h] = h, true
			}
			nv.region = h
		}
		m.insert(nv)
	}
	fds := &fdTable{files: map[int]*fdEntry{}}
	for _, d := range sp.fds {
		fds.files[d.fd] = &fdEntry{f: files[d.file], cloexec: d.cloexec}
	}
	k.resumeVDSO(c, m)
	p.mm, p.fds = m, fds
	k.resumeTimers(c, p, sp, savedAt, savedMono)
	return nil
}

// resumeVDSO finds the vDSO of a restored memory map (kicks need it) and
// maps this run's time page in place of the saved copy, whose record
// stopped when it was saved: the vDSO would find it stale and make the
// system call every time. A clock that offers no page leaves the copy,
// and the program on system calls, as it would a new process.
func (k *kernel) resumeVDSO(c *vmm.Caller, m *mm) {
	m.mu.Lock()
	defer m.mu.Unlock()
	img, data := m.find(vdsoImage), m.find(vdsoData)
	if img == nil || img.start != vdsoImage || img.region == 0 || data == nil || data.start != vdsoData || data.end != vdsoData+pageSize || data.region == 0 || m.refs[data.region] != 1 {
		return
	}
	m.vdso = vdsoImage
	tp := k.timePage(c)
	if tp == 0 {
		return
	}
	page, _, err := c.HandleDerive(tp, uint64(abi.RightRead|abi.RightMap|abi.RightDerive|abi.RightGrant), 0)
	if err != nil {
		k.log.Debug("the restored vDSO keeps its saved time page", "step", "handle_derive", "error", err)
		return
	}
	// No thread runs yet (Resume comes before any starts): none reads
	// the page while it is swapped.
	if _, _, err := c.SpaceUnmap(m.space, vdsoData, pageSize); err != nil {
		c.HandleClose(page)
		k.log.Debug("the restored vDSO keeps its saved time page", "step", "space_unmap", "error", err)
		return
	}
	if _, _, err := c.SpaceMap(m.space, page, vdsoData, 0, pageSize, abi.PermRead); err != nil {
		c.HandleClose(page)
		if _, _, err2 := c.SpaceMap(m.space, data.region, vdsoData, data.off, pageSize, abi.PermRead); err2 != nil {
			k.log.Warn("a restored process has no time page: its vDSO faults", "error", err, "saved page", err2)
			return
		}
		k.log.Debug("the restored vDSO keeps its saved time page", "step", "space_map", "error", err)
		return
	}
	delete(m.refs, data.region)
	c.HandleClose(data.region)
	data.region = page
	m.refs[page] = 1
}

// resumeTimers arms p's timers as they were saved: each expires after the
// time it had left when the checkpoint was taken, then every interval; one
// already due expires at once. What it had left is counted on the clock
// its deadline was on, which the checkpoint read as savedMono (0: unknown,
// and a record without deadlines on the clock: on the host's, at
// savedAt).
func (k *kernel) resumeTimers(c *vmm.Caller, p *process, sp *savedProc, savedAt time.Time, savedMono uint64) {
	s := &p.timers
	now := k.now(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	arm := func(tm *timer, t savedTimer) {
		tm.clock, tm.info, tm.notify = t.clock, t.info, t.notify
		var left time.Duration
		if next, ok := t.nextOnClock(savedMono); ok && savedMono != 0 {
			left = time.Nanosecond // already due
			if next > savedMono {
				left = time.Duration(next - savedMono)
			}
		} else if next, ok := t.next(savedAt); ok {
			left = max(next.Sub(savedAt), time.Nanosecond)
		}
		s.set(k, p, tm, now, left, t.interval)
	}
	arm(&s.real, sp.real)
	for _, t := range sp.posix {
		if s.posix == nil {
			s.posix = map[int]*timer{}
		}
		tm := &timer{}
		s.posix[t.id] = tm
		arm(tm, t)
	}
}

// reopen rebuilds the open file descriptions: files and directories are
// opened again by path, consoles reconnected to this run's capabilities
// of the same name, pipes, eventfds and epoll instances made with their
// contents.
func (k *kernel) reopen(c *vmm.Caller, st *savedState) ([]*file, error) {
	pipes := make([]*pipe, len(st.pipes))
	for i, b := range st.pipes {
		pipes[i] = &pipe{buf: b}
	}
	files := make([]*file, len(st.files))
	for i, sf := range st.files {
		f := &file{kind: sf.kind, path: sf.path, flags: sf.flags, off: sf.off, refs: sf.refs}
		switch sf.kind {
		case kindFile, kindDir:
			fc, ok := k.caps[nester.CapFiles]
			if !ok {
				return nil, fmt.Errorf("%s was open, and this run has no files", sf.path)
			}
			of := uint64(abi.OpenRead)
			switch {
			case sf.kind == kindDir:
				of |= abi.OpenDir
			case sf.flags&oAccMode == oWrOnly:
				of = abi.OpenWrite
			case sf.flags&oAccMode == oRdWr:
				of |= abi.OpenWrite
			}
			h, _, err := c.FilesOpen(fc, []byte(rootRelative(sf.path)), of)
			if err != nil {
				return nil, fmt.Errorf("open %s again: %w", sf.path, err)
			}
			f.handle, f.owned = h, true
		case kindConsole, kindStdin:
			h, ok := k.caps[sf.cap]
			if !ok {
				return nil, fmt.Errorf("%s named %s, which this run does not offer", sf.path, sf.cap)
			}
			f.handle = h
		case kindPipe:
			f.pipe = pipes[sf.pipe]
			if sf.refs > 0 {
				if sf.flags&oAccMode == oWrOnly {
					f.pipe.writers++
				} else {
					f.pipe.readers++
				}
			}
		case kindEventfd:
			f.event = &eventfd{count: sf.count, semaphore: sf.sem}
		case kindEpoll:
			f.epoll = &epoll{items: map[int]*epitem{}}
		}
		files[i] = f
	}
	for i, sf := range st.files {
		for _, it := range sf.items {
			files[i].epoll.items[it.fd] = &epitem{fd: it.fd, f: files[it.file], events: it.events, data: it.data, seen: it.seen}
		}
	}
	return files, nil
}

// kickedAt reports whether the thread h is at the vDSO's kick code, where
// a kick sends it: only then do the registers a record saved for it put
// it back. A save can read the thread's registers before a kick moved it
// and the record after (the save takes it again only when the record
// changed), and a thread left believing a kick under way would take no
// later one.
func kickedAt(c *vmm.Caller, h uint64) bool {
	st, err := threadState(c, h)
	return err == nil && st.Regs.RIP == vdsoKick
}
