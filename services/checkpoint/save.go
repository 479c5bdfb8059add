package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"nestvm/abi"
	"nestvm/vmm"
)

// StopAll stops every thread of the subtree under the space handle top (in
// c's table), asking again until no new thread appears, and returns
// handles (in c's table) to the threads it stopped, for StartAll. A thread
// stopped in the middle of a blocking call re-issues it when resumed; one
// inside a call a host server is performing stops when that call returns.
func StopAll(c *vmm.Caller, top uint64) ([]uint64, error) {
	stopped := map[uint64]uint64{} // identity -> handle
	for {
		spaces, threads, err := subtreeThreads(c, top)
		for _, h := range spaces {
			c.HandleClose(h)
		}
		if err != nil {
			return handles(stopped), err
		}
		fresh := 0
		for _, th := range threads {
			id, err := c.Identify(th)
			if err != nil {
				return handles(stopped), err
			}
			obj := id.Object
			if _, done := stopped[obj]; done {
				c.HandleClose(th)
				continue
			}
			st, _, err := c.ThreadStatus(th)
			if err != nil || st != abi.ThreadRunning {
				c.HandleClose(th)
				continue
			}
			if _, _, err := c.ThreadStop(th); err != nil {
				c.HandleClose(th)
				return handles(stopped), fmt.Errorf("thread_stop: %w", err)
			}
			stopped[obj] = th
			fresh++
		}
		if fresh == 0 {
			return handles(stopped), nil
		}
	}
}

func handles(m map[uint64]uint64) []uint64 {
	out := make([]uint64, 0, len(m))
	for _, h := range m {
		out = append(out, h)
	}
	return out
}

// StartAll resumes the threads StopAll stopped, and closes their handles.
// A thread that ended meanwhile, or is ending (its process exited while it
// was being stopped: thread_start says busy, or its space is gone), has
// nothing to resume: that is no failure.
func StartAll(c *vmm.Caller, threads []uint64) error {
	var first error
	for _, th := range threads {
		_, _, err := c.ThreadStart(th)
		if errors.Is(err, abi.ErrBusy) || errors.Is(err, abi.ErrPeerGone) {
			err = nil
		}
		if err != nil && first == nil {
			first = fmt.Errorf("thread_start: %w", err)
		}
		c.HandleClose(th)
	}
	return first
}

// subtreeThreads returns handles to every space below and including top,
// found through the space handles their tables hold, and to their threads.
func subtreeThreads(c *vmm.Caller, top uint64) (spaces, threads []uint64, err error) {
	seen := map[uint64]bool{}
	queue := []uint64{top}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		id, lerr := c.Identify(h)
		if lerr != nil {
			return spaces, threads, lerr
		}
		obj := id.Object
		if seen[obj] {
			if h != top {
				c.HandleClose(h)
			}
			continue
		}
		seen[obj] = true
		if h != top {
			spaces = append(spaces, h)
		}
		st, err := c.ReadSpace(h)
		if h != top && (errors.Is(err, abi.ErrBadHandle) || errors.Is(err, abi.ErrPeerGone)) {
			// A space below that went while its threads still ran (a
			// process that exited, which its runner let go of) has no
			// thread left to stop: the next round of StopAll looks again.
			continue
		}
		if err != nil {
			return spaces, threads, err
		}
		for _, th := range st.Threads {
			threads = append(threads, th.Handle)
		}
		for _, e := range st.Handles {
			if e.Type == uint64(abi.ObjSpace) {
				queue = append(queue, e.Handle)
			} else {
				c.HandleClose(e.Handle)
			}
		}
		for _, m := range st.Maps {
			c.HandleClose(m.Region)
		}
		if st.Space.ExceptionPort != abi.NoHandle {
			c.HandleClose(st.Space.ExceptionPort)
		}
	}
	return spaces, threads, nil
}

// runnerState asks the top space's exception port h, which serves the
// subtree from outside it, for the state its server keeps about it
// (server_get_state): a personality answers with its record, which goes
// into the checkpoint; any other server answers NV_EINVALOP, and the
// checkpoint has no runner. Only a server the monitor runs is asked: a
// guest-served port would hold the save until its server answered.
func (s *saver) runnerState(h uint64) error {
	id, err := s.c.Identify(h)
	if err != nil {
		return err
	}
	if id.Type != uint64(abi.ObjPort) || id.Flags&abi.IdentServed == 0 {
		return nil
	}
	buf, err := vmm.GetState(h, 64<<10, s.c.ServerGetState)
	if errors.Is(err, abi.ErrInvalidOp) {
		return nil // a server with no state to give
	}
	if errors.Is(err, abi.ErrBusy) {
		// A server half way through a change of its own (a personality
		// ending a process) has no record that agrees with the subtree
		// yet.
		return fmt.Errorf("%w: server_get_state: %w", ErrRunnerChanged, err)
	}
	if err != nil {
		return fmt.Errorf("server_get_state: %w", err)
	}
	name, rec, ok := bytes.Cut(buf, []byte{0})
	if !ok || len(name) == 0 || len(name) > maxNameLen {
		return fmt.Errorf("server_get_state: the record does not begin with a name")
	}
	s.ck.Runner = &Runner{Name: string(name), Record: rec}
	s.runnerH = h
	return nil
}

// ErrRunnerChanged is Save's error when the subtree's runner changed its
// state while the subtree was read: the runner's own code (a process's
// end it learns of, a timer) can act while every thread below it is
// stopped, so a record and spaces read across such a change need not
// agree. A save that meets it may be tried again.
var ErrRunnerChanged = errors.New("the subtree's runner changed its state while it was saved")

// runnerStill reports whether the runner answers the record the save
// began with: then the subtree read in between is one state of it.
func (s *saver) runnerStill() bool {
	if s.ck.Runner == nil {
		return true
	}
	buf, err := vmm.GetState(s.runnerH, 64<<10, s.c.ServerGetState)
	if err != nil {
		return false
	}
	name, rec, _ := bytes.Cut(buf, []byte{0})
	return string(name) == s.ck.Runner.Name && bytes.Equal(rec, s.ck.Runner.Record)
}

// ErrEnded is Save's error for a subtree that ended before it was saved.
var ErrEnded = errors.New("the program has ended")

// saver reads a subtree into a Checkpoint.
type saver struct {
	c      *vmm.Caller
	ck     *Checkpoint
	refs   map[uint64]Ref    // by object identity
	ext    map[uint64]string // by object identity
	close  []uint64          // copies to close when done
	region map[uint32]uint64 // region index -> a handle to it
	port   map[uint32]uint64 // port index -> a handle with receive
	set    map[uint32]uint64 // port set index -> a handle with receive and control
	owned  map[uint32]bool   // regions whose charged space is known (abi.StateOwned)
	nodes  map[uint64]HandleRef
	tags   []handleTag
	thread map[uint32]uint64 // thread index -> a handle to it
	spaceH []uint64          // space index -> a handle to it
	status map[uint64]bool   // threads the caller stopped (identities): running
	inc    *Incremental      // nil: read every page
	runner uint64            // the identity of the top space's exception port, when outside the subtree
	// runnerH is a handle to the runner's port, while its record is
	// in the checkpoint (see runnerStill).
	runnerH uint64
}

// handleTag is a saved handle's derivation, as space_get_state tells it,
// resolved to a HandleRef once every space has been read.
type handleTag struct {
	space, entry int
	parent       uint64
}

// Save reads the whole subtree under the space handle top (in c's table),
// whose threads must be stopped (StopAll): every space found through the
// space handles their tables hold, with their mappings, handle tables and
// threads, every region they map or hold with its pages, every port they
// hold with its queued messages. external names the objects outside the
// subtree its handles may name (the environment: console, clock, ...);
// a handle to any other outside object is an error. running are the
// threads StopAll stopped: they are started again on restore. parentEP is
// the top space's exception port object (whoever runs the subtree), or nil.
func Save(c *vmm.Caller, top uint64, external map[uint64]string, running []uint64) (ck *Checkpoint, err error) {
	return SaveIncremental(c, top, external, running, nil)
}

// SaveIncremental is Save reading, where inc holds a previous save of the
// same subtree, only the pages written since (see Incremental).
func SaveIncremental(c *vmm.Caller, top uint64, external map[uint64]string, running []uint64, inc *Incremental) (ck *Checkpoint, err error) {
	if inc != nil {
		inc.seen, inc.Read, inc.Reused = map[uint64]bool{}, 0, 0
	}
	s := &saver{inc: inc, c: c, ck: &Checkpoint{}, refs: map[uint64]Ref{}, ext: map[uint64]string{},
		region: map[uint32]uint64{}, port: map[uint32]uint64{}, set: map[uint32]uint64{}, thread: map[uint32]uint64{}, status: map[uint64]bool{},
		owned: map[uint32]bool{}, nodes: map[uint64]HandleRef{}}
	defer func() {
		// Whatever went wrong, a runner that changed meanwhile is the
		// likelier cause, and one a new try may not meet.
		if !s.runnerStill() {
			if err == nil {
				ck, err = nil, ErrRunnerChanged
			} else {
				ck, err = nil, fmt.Errorf("%w (%w)", ErrRunnerChanged, err)
			}
		}
		for _, h := range s.close {
			c.HandleClose(h)
		}
	}()
	names := map[string]uint32{}
	for obj, name := range external {
		if _, ok := names[name]; !ok {
			names[name] = uint32(len(s.ck.Externals))
			s.ck.Externals = append(s.ck.Externals, name)
		}
		s.refs[obj] = Ref{Kind: RefExternal, Index: names[name]}
	}
	for _, th := range running {
		if id, err := c.Identify(th); err == nil {
			s.status[id.Object] = true
		}
	}
	topID, err := c.Identify(top)
	if err != nil {
		return nil, err
	}
	s.refs[topID.Object] = Ref{Kind: RefSpace, Index: 0}
	s.ck.Spaces = append(s.ck.Spaces, Space{Parent: -1})
	s.spaceH = append(s.spaceH, top)
	// Regions' keepers and queued messages can name objects not seen yet:
	// go round until nothing new appears. Threads come last, once every
	// space has said which threads are its own.
	var spaces, regions, ports, sets int
	for spaces < len(s.ck.Spaces) || regions < len(s.ck.Regions) || ports < len(s.ck.Ports) || sets < len(s.ck.PortSets) {
		for ; spaces < len(s.ck.Spaces); spaces++ {
			if err := s.space(spaces); err != nil {
				return nil, err
			}
		}
		for ; regions < len(s.ck.Regions); regions++ {
			if err := s.regionState(uint32(regions)); err != nil {
				return nil, err
			}
		}
		for ; ports < len(s.ck.Ports); ports++ {
			if err := s.portState(uint32(ports)); err != nil {
				return nil, err
			}
		}
		for ; sets < len(s.ck.PortSets); sets++ {
			if err := s.portSetState(uint32(sets)); err != nil {
				return nil, err
			}
		}
	}
	for _, t := range s.tags {
		if ref, ok := s.nodes[t.parent]; ok {
			s.ck.Spaces[t.space].Table[t.entry].Parent = &ref
		}
	}
	for i := range s.ck.Threads {
		if err := s.threadState(uint32(i)); err != nil {
			return nil, err
		}
		if err := s.portable(&s.ck.Threads[i]); err != nil {
			return nil, fmt.Errorf("thread %d: %w", i, err)
		}
	}
	if inc != nil {
		objs := map[uint32]uint64{}
		for i, h := range s.region {
			id, _ := c.Identify(h)
			objs[i] = id.Object
		}
		s.finishIncremental(objs)
	}
	if err := s.ck.Validate(); err != nil {
		return nil, fmt.Errorf("the saved state does not check: %w", err)
	}
	return s.ck, nil
}

// ref returns the Ref for what handle h (in c's table, a copy Save may
// keep) names, adding a record for an object first seen; space is the
// index of the space whose table or mapping it was found in (a new
// region or port is created there on restore).
func (s *saver) ref(h uint64, space int) (Ref, error) {
	id, err := s.c.Identify(h)
	if err != nil {
		return Ref{}, err
	}
	obj := id.Object
	if r, ok := s.refs[obj]; ok {
		if r.Kind == RefThread && s.thread[r.Index] == 0 {
			s.thread[r.Index] = h
		} else {
			s.close = append(s.close, h)
		}
		return r, nil
	}
	var r Ref
	switch {
	case id.Flags&abi.IdentServed != 0:
		return Ref{}, fmt.Errorf("a handle names a %s the monitor serves outside the subtree that is not in the environment (an open file, or the stand-in of a layer that wraps capabilities, such as trace, refmon or pager, on either side of the checkpoint): a checkpoint cannot save it", abi.ObjectType(id.Type))
	case id.Type == uint64(abi.ObjSpace):
		r = Ref{Kind: RefSpace, Index: uint32(len(s.ck.Spaces))}
		s.ck.Spaces = append(s.ck.Spaces, Space{Parent: int32(space)})
		s.spaceH = append(s.spaceH, h)
	case id.Type == uint64(abi.ObjRegion):
		r = Ref{Kind: RefRegion, Index: uint32(len(s.ck.Regions))}
		s.ck.Regions = append(s.ck.Regions, Region{Owner: uint32(space)})
		s.region[r.Index] = h
	case id.Type == uint64(abi.ObjThread):
		r = Ref{Kind: RefThread, Index: uint32(len(s.ck.Threads))}
		s.ck.Threads = append(s.ck.Threads, Thread{Space: ^uint32(0)})
		s.thread[r.Index] = h
	case id.Type == uint64(abi.ObjPort):
		r = Ref{Kind: RefPort, Index: uint32(len(s.ck.Ports))}
		s.ck.Ports = append(s.ck.Ports, Port{Owner: uint32(space)})
		s.port[r.Index] = h
	case id.Type == uint64(abi.ObjPortSet):
		r = Ref{Kind: RefPortSet, Index: uint32(len(s.ck.PortSets))}
		s.ck.PortSets = append(s.ck.PortSets, PortSet{Owner: uint32(space)})
		s.set[r.Index] = h
	default:
		return Ref{}, fmt.Errorf("a handle names a %s, which a checkpoint cannot save yet", abi.ObjectType(id.Type))
	}
	s.refs[obj] = r
	return r, nil
}

// space reads space i's quotas, mappings, table and threads.
func (s *saver) space(i int) error {
	st, err := s.c.ReadSpace(s.spaceH[i])
	if err != nil {
		return fmt.Errorf("space %d: %w", i, err)
	}
	sp := &s.ck.Spaces[i]
	sp.Pages, sp.Threads, sp.Handles, sp.Children = st.Space.Pages, st.Space.Threads, st.Space.Handles, st.Space.Children
	if st.Space.Status != abi.SpaceRunning {
		return fmt.Errorf("space %d: %w", i, ErrEnded)
	}
	if h := st.Space.ExceptionPort; h != abi.NoHandle {
		id, _ := s.c.Identify(h)
		obj, badge := id.Object, id.Badge
		if r, ok := s.refs[obj]; ok && r.Kind == RefPort {
			s.close = append(s.close, h)
			s.ck.Spaces[i].Exception = r
		} else if i == 0 {
			if err := s.runnerState(h); err != nil {
				return fmt.Errorf("the state of the subtree's runner: %w", err)
			}
			s.close = append(s.close, h)
			s.runner = obj
			s.ck.Spaces[i].Exception = Ref{Kind: RefParent}
		} else if s.runner != 0 && obj == s.runner {
			// A personality's process: served, as the top is, by whoever
			// runs the subtree, with a badge of its own.
			s.close = append(s.close, h)
			s.ck.Spaces[i].Exception = Ref{Kind: RefParent}
		} else if r, err := s.ref(h, i); err != nil {
			return fmt.Errorf("space %d's exception port: %w", i, err)
		} else {
			s.ck.Spaces[i].Exception = r
		}
		s.ck.Spaces[i].ExceptionBadge = badge
	}
	for _, m := range st.Maps {
		if m.Region == abi.NoHandle {
			return fmt.Errorf("space %d: memory at %#x that the monitor mapped itself: a checkpoint cannot save it", i, m.Addr)
		}
		r, err := s.ref(m.Region, i)
		if err != nil {
			return fmt.Errorf("space %d mapping at %#x: %w", i, m.Addr, err)
		}
		// A region is rebuilt in the space it is charged to when that
		// space is in the subtree (abi.StateOwned says which); else in
		// the deepest space that maps it (its ancestors are charged
		// too), else in the first space that holds it.
		s.setOwner(r, i, m.Flags)
		if reg := &s.ck.Regions[r.Index]; !s.owned[r.Index] && s.below(i, int(reg.Owner)) {
			reg.Owner = uint32(i)
		}
		s.ck.Spaces[i].Maps = append(s.ck.Spaces[i].Maps, Map{Addr: m.Addr, Size: m.Size, Offset: m.Offset, Perm: m.Perm, Limit: m.Limit, Region: r.Index})
	}
	for _, e := range st.Handles {
		r, err := s.ref(e.Handle, i)
		if err != nil {
			return fmt.Errorf("space %d handle %d: %w", i, e.Number, err)
		}
		s.setOwner(r, i, e.Flags)
		s.nodes[e.Node] = HandleRef{Space: uint32(i), Number: e.Number}
		if e.Parent != 0 {
			s.tags = append(s.tags, handleTag{space: i, entry: len(s.ck.Spaces[i].Table), parent: e.Parent})
		}
		s.ck.Spaces[i].Table = append(s.ck.Spaces[i].Table, Handle{Number: e.Number, Rights: e.Rights, Badge: e.Badge, Object: r})
	}
	for _, th := range st.Threads {
		r, err := s.ref(th.Handle, i)
		if err != nil {
			return fmt.Errorf("space %d thread: %w", i, err)
		}
		s.ck.Threads[r.Index].Space = uint32(i)
	}
	return nil
}

// setOwner records that space i is charged for the object r names, when
// flags (of its space_get_state entry) say so.
func (s *saver) setOwner(r Ref, i int, flags uint64) {
	if flags&abi.StateOwned == 0 {
		return
	}
	switch r.Kind {
	case RefRegion:
		s.ck.Regions[r.Index].Owner = uint32(i)
		s.owned[r.Index] = true
	case RefPort:
		s.ck.Ports[r.Index].Owner = uint32(i)
	case RefPortSet:
		s.ck.PortSets[r.Index].Owner = uint32(i)
	}
}

// Where a thread can stop inside an ABI page stub after its trap has
// returned, about to execute the stub's ret: the trap instruction is 2
// bytes long on backends that trap by PIO (emu, VMX, SVM) and 7 on those
// that trap by MMIO (a PVM KVM), so the same moment has a different RIP on
// each. A thread stopped at TrapAddr itself re-issues its call anywhere.
var afterTrap = map[uint64]bool{
	abi.ABIEntry + 2: true, abi.ABIEntry + 7: true,
	abi.NullTrapEntry + 2: true, abi.NullTrapEntry + 7: true,
}

// portable makes a thread's state mean the same on every backend: a thread
// stopped on the ret of a stub is moved past it (the ret is done here:
// RIP from the top of its stack, RSP 8 higher), so the state names no
// address inside the ABI page but the entry itself.
func (s *saver) portable(t *Thread) error {
	var st abi.ThreadState
	binary.Read(bytes.NewReader(t.State), binary.LittleEndian, &st)
	if !afterTrap[st.Regs.RIP] {
		return nil
	}
	ret, ok := s.peek(t.Space, st.Regs.RSP)
	if !ok {
		return fmt.Errorf("stopped in the ABI stub at %#x with a stack at %#x that is not saved", st.Regs.RIP, st.Regs.RSP)
	}
	st.Regs.RIP, st.Regs.RSP = ret, st.Regs.RSP+8
	t.State, _ = binary.Append(t.State[:0], binary.LittleEndian, &st)
	return nil
}

// peek reads the 8 bytes at addr in saved space sp.
func (s *saver) peek(sp uint32, addr uint64) (uint64, bool) {
	if addr%8 != 0 {
		return 0, false
	}
	for _, m := range s.ck.Spaces[sp].Maps {
		if addr < m.Addr || addr >= m.Addr+m.Size {
			continue
		}
		off := m.Offset + addr - m.Addr
		for _, p := range s.ck.Regions[m.Region].Pages {
			if p.Index == off/abi.PageSize {
				return binary.LittleEndian.Uint64(p.Data[off%abi.PageSize:]), true
			}
		}
		return 0, true // a zero page
	}
	return 0, false
}

// below reports whether space i lies strictly below space anc.
func (s *saver) below(i, anc int) bool {
	for p := int(s.ck.Spaces[i].Parent); p >= 0; p = int(s.ck.Spaces[p].Parent) {
		if p == anc {
			return true
		}
	}
	return false
}

func (s *saver) threadState(i uint32) error {
	t := &s.ck.Threads[i]
	h := s.thread[i]
	if t.Space == ^uint32(0) {
		return fmt.Errorf("thread %d is named by a handle but lives outside the subtree", i)
	}
	s.close = append(s.close, h)
	st, _, err := s.c.ThreadStatus(h)
	if err != nil {
		return fmt.Errorf("thread %d: thread_status: %w", i, err)
	}
	id, _ := s.c.Identify(h)
	obj := id.Object
	switch {
	case st == abi.ThreadNew:
		t.Status = abi.ThreadNew
	case st == abi.ThreadStopped && s.status[obj]:
		t.Status = abi.ThreadRunning
	case st == abi.ThreadStopped && s.ck.Runner == nil:
		t.Status = abi.ThreadStopped
	case s.ck.Runner != nil && (st == abi.ThreadStopped || st == abi.ThreadRunning):
		// A runner stops a thread of its own for a moment to point it
		// somewhere (the Linux personality's kick, to take a signal at
		// once), and starts it again: met stopped by it, or running
		// again after the save stopped it too, the thread is mid-change.
		return fmt.Errorf("%w: thread %d was stopped or started meanwhile (status %d)", ErrRunnerChanged, i, st)
	default:
		return fmt.Errorf("thread %d is not stopped (status %d): stop the subtree first", i, st)
	}
	t.State = make([]byte, threadStateSize)
	if _, _, err := s.c.ThreadGetState(h, t.State); err != nil {
		return fmt.Errorf("thread %d: thread_get_state: %w", i, err)
	}
	return nil
}

func (s *saver) regionState(i uint32) error {
	h := s.region[i]
	s.close = append(s.close, h)
	buf, err := vmm.GetState(h, 64, s.c.RegionGetState)
	if err == abi.ErrRights {
		// Every handle the subtree holds to it lacks control (or read):
		// its size and contents are still readable, and a region no one
		// can control has no keeper it could have set.
		size, _, serr := s.c.RegionSize(h)
		if serr != nil {
			return fmt.Errorf("region %d: region_size: %w", i, serr)
		}
		buf, _ = binary.Append(nil, binary.LittleEndian, &abi.RegionState{Size: size})
	} else if err != nil {
		return fmt.Errorf("region %d: region_get_state: %w", i, err)
	}
	r := bytes.NewReader(buf)
	var st abi.RegionState
	binary.Read(r, binary.LittleEndian, &st)
	bitmap := make([]uint64, st.BitmapWords)
	binary.Read(r, binary.LittleEndian, bitmap)
	reg := &s.ck.Regions[i]
	reg.Size = st.Size
	if st.Keeper != abi.NoHandle {
		if kid, _ := s.c.Identify(st.Keeper); !s.inside(kid.Object) {
			// Kept from outside the subtree (a pager layer above the
			// checkpoint): saved as plain memory, its contents read
			// through the keeper, which has the pages that are out.
			s.close = append(s.close, st.Keeper)
			if err := s.readThroughKeeper(h, st.Keeper, reg); err != nil {
				return fmt.Errorf("region %d: %w", i, err)
			}
			return nil
		}
		ref, err := s.ref(st.Keeper, int(reg.Owner))
		if err != nil {
			return fmt.Errorf("region %d's keeper: %w", i, err)
		}
		if ref.Kind != RefPort {
			return fmt.Errorf("region %d's keeper is a %s, not a port of the subtree", i, ref.Kind)
		}
		reg.Keeper, reg.KeeperBadge = ref, st.KeeperBadge
	}
	if st.Keeper == abi.NoHandle {
		id, _ := s.c.Identify(h)
		if done, err := s.fromDirty(id.Object, h, reg); done || err != nil {
			if err != nil {
				err = fmt.Errorf("region %d: %w", i, err)
			}
			return err
		}
	}
	const chunk = 4 << 20
	data := make([]byte, min(chunk, st.Size))
	for off := uint64(0); off < st.Size; off += chunk {
		part := data[:min(chunk, st.Size-off)]
		if _, _, err := s.c.RegionRead(h, off, part); err != nil {
			return fmt.Errorf("region %d: region_read: %w", i, err)
		}
		for p := uint64(0); p < uint64(len(part)); p += abi.PageSize {
			idx := (off + p) / abi.PageSize
			page := part[p : p+abi.PageSize]
			present := st.Keeper == abi.NoHandle || idx/64 < uint64(len(bitmap)) && bitmap[idx/64]&(1<<(idx%64)) != 0
			if st.Keeper == abi.NoHandle && allZero(page) || !present {
				continue
			}
			reg.Pages = append(reg.Pages, Page{Index: idx, Data: bytes.Clone(page)})
		}
	}
	return nil
}

// inside reports whether obj, a port, is one the subtree serves: a
// handle of its tables names it. Tables are read before regions, so by
// then every such port has its record.
func (s *saver) inside(obj uint64) bool {
	r, ok := s.refs[obj]
	return ok && r.Kind == RefPort
}

// readThroughKeeper fills reg with the contents of a region kept from
// outside the subtree, asking its keeper with region_read on the keeper
// port (a keeper answers it from wherever the pages are, paging nothing
// in: services/pager does), for the pages ever written or supplied
// (NV_DIRTY_EVER on h), all of them where the region keeps no record for
// the saver.
func (s *saver) readThroughKeeper(h, keeper uint64, reg *Region) error {
	pages := reg.Size / abi.PageSize
	bitmap := make([]byte, (pages+7)/8)
	if _, _, err := s.c.RegionDirty(h, bitmap, abi.DirtyEver); err != nil {
		for i := range bitmap {
			bitmap[i] = 0xff
		}
	}
	// 256 pages a call: a keeper's reply is one message.
	read, err := readMarked(bitmap, pages, 256, func(off uint64, run []byte) error {
		n, _, err := s.c.RegionRead(keeper, off, run)
		if err != nil {
			return fmt.Errorf("its keeper is outside the subtree and does not answer region_read on its port (%w): a checkpoint cannot read the pages it keeps", err)
		}
		if n != uint64(len(run)) {
			return fmt.Errorf("its keeper answered region_read of %d bytes at %#x with %d", len(run), off, n)
		}
		return nil
	}, func(p uint64, page []byte) {
		reg.Pages = append(reg.Pages, Page{Index: p, Data: page})
	})
	if s.inc != nil {
		// Read whole each time (a keeper keeps no dirty record for the
		// saver): counted, and not taken for a region read whole by
		// finishIncremental.
		id, _ := s.c.Identify(h)
		s.inc.seen[id.Object], s.inc.pages[id.Object] = true, map[uint64][]byte{}
		s.inc.Read += read
	}
	return err
}

// readMarked reads the pages of a region that bitmap marks (one bit per
// page, page 0 in bit 0 of byte 0), in runs of at most most pages a call
// to read (its offset in the region, and a buffer to fill), and hands
// each page that is not zero to keep, as a copy of its own. It returns how
// many pages it read.
func readMarked(bitmap []byte, pages, most uint64, read func(off uint64, run []byte) error, keep func(p uint64, page []byte)) (int, error) {
	marked := func(idx uint64) bool { return bitmap[idx/8]&(1<<(idx%8)) != 0 }
	buf := make([]byte, most*abi.PageSize)
	n := 0
	for idx := uint64(0); idx < pages; {
		if !marked(idx) {
			idx++
			continue
		}
		end := idx + 1
		for end < pages && end-idx < most && marked(end) {
			end++
		}
		run := buf[:(end-idx)*abi.PageSize]
		if err := read(idx*abi.PageSize, run); err != nil {
			return n, err
		}
		n += int(end - idx)
		for p := idx; p < end; p++ {
			if page := run[(p-idx)*abi.PageSize : (p-idx+1)*abi.PageSize]; !allZero(page) {
				keep(p, bytes.Clone(page))
			}
		}
		idx = end
	}
	return n, nil
}

// Incremental carries what one save read to the next, so that the next
// reads only the pages written since (region_dirty). Each reading space
// has its own dirty record in the kernel, so a program of the subtree that
// asks about its own regions between two saves takes nothing from them.
type Incremental struct {
	pages map[uint64]map[uint64][]byte // non-kept regions by identity: their non-zero pages
	seen  map[uint64]bool
	// Read and Reused count the pages the last save read and took from
	// the one before.
	Read, Reused int
}

// NewIncremental returns an empty Incremental for SaveIncremental.
func NewIncremental() *Incremental {
	return &Incremental{pages: map[uint64]map[uint64][]byte{}}
}

// fromDirty fills reg, a region without a keeper, through its dirty
// record: at first sight (always, without an Incremental) only the pages
// written since the region was created (NV_DIRTY_EVER: the others are
// zero), later the pages written since the last save and the rest from
// it. done is false when the kernel keeps no record for the saver (a
// thread outside the stopped subtree maps it and runs, or too many
// readers): the caller reads the whole region.
func (s *saver) fromDirty(obj, h uint64, reg *Region) (done bool, err error) {
	inc := s.inc
	prev, seen := map[uint64][]byte(nil), false
	if inc != nil {
		inc.seen[obj] = true
		prev, seen = inc.pages[obj]
	}
	flags := uint64(abi.DirtyEver)
	if seen && prev != nil {
		flags = 0
	}
	pages := reg.Size / abi.PageSize
	bitmap := make([]byte, (pages+7)/8)
	if _, _, derr := s.c.RegionDirty(h, bitmap, flags); derr != nil {
		if inc != nil {
			inc.pages[obj] = nil // read whole; finishIncremental keeps it
		}
		return false, nil
	}
	marked := func(idx uint64) bool { return bitmap[idx/8]&(1<<(idx%8)) != 0 }
	next := make(map[uint64][]byte, len(prev))
	for idx, data := range prev {
		if !marked(idx) {
			next[idx] = data
			inc.Reused++
		}
	}
	// Up to 4 MiB a call.
	read, err := readMarked(bitmap, pages, 1024, func(off uint64, run []byte) error {
		if _, _, err := s.c.RegionRead(h, off, run); err != nil {
			return fmt.Errorf("region_read: %w", err)
		}
		return nil
	}, func(p uint64, page []byte) { next[p] = page })
	if err != nil {
		return true, err
	}
	if inc != nil {
		inc.Read += read
		inc.pages[obj] = next
	}
	for idx := uint64(0); idx < pages; idx++ {
		if data, ok := next[idx]; ok {
			reg.Pages = append(reg.Pages, Page{Index: idx, Data: data})
		}
	}
	return true, nil
}

// finishIncremental records what this save read for the next, and forgets
// regions that are gone.
func (s *saver) finishIncremental(regionObj map[uint32]uint64) {
	inc := s.inc
	for i, obj := range regionObj {
		if inc.pages[obj] == nil && s.ck.Regions[i].Keeper.Kind == RefNone {
			m := map[uint64][]byte{}
			for _, p := range s.ck.Regions[i].Pages {
				m[p.Index] = p.Data
			}
			inc.pages[obj] = m
			inc.Read += int(s.ck.Regions[i].Size / abi.PageSize)
		}
	}
	for obj := range inc.pages {
		if !inc.seen[obj] {
			delete(inc.pages, obj)
		}
	}
}

var zeroPage = make([]byte, abi.PageSize)

func allZero(page []byte) bool { return bytes.Equal(page, zeroPage) }

func (s *saver) portState(i uint32) error {
	h := s.port[i]
	s.close = append(s.close, h)
	buf, err := vmm.GetState(h, 64, s.c.PortGetState)
	if errors.Is(err, abi.ErrRights) {
		// No handle the subtree holds to it can receive: its server is
		// outside, as a pager layer above the checkpoint is the keeper
		// of the program's memory.
		return fmt.Errorf("port %d: its server is outside the subtree (a region's keeper, such as a pager layer above the checkpoint?): a checkpoint cannot save it", i)
	}
	if err != nil {
		return fmt.Errorf("port %d: port_get_state: %w", i, err)
	}
	r := bytes.NewReader(buf)
	var ps abi.PortState
	binary.Read(r, binary.LittleEndian, &ps)
	for k := uint64(0); k < ps.NMsgs; k++ {
		var hdr abi.Msg
		if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
			return fmt.Errorf("port %d: %w", i, err)
		}
		data := make([]byte, (hdr.DataLen+7)&^7)
		r.Read(data)
		m := Message{Tag: hdr.Op, Badge: hdr.Badge, Data: data[:hdr.DataLen]}
		if hdr.NHandles > 1 {
			return fmt.Errorf("port %d: a queued message carries %d handles; a checkpoint rebuilds at most one", i, hdr.NHandles)
		}
		if hdr.NHandles == 1 {
			id, err := s.c.Identify(hdr.Handles[0])
			if err != nil {
				return err
			}
			rights := id.Rights
			ref, err := s.ref(hdr.Handles[0], int(s.ck.Ports[i].Owner))
			if err != nil {
				return fmt.Errorf("port %d message %d: %w", i, k, err)
			}
			m.Handle, m.Rights = ref, uint64(rights)
		}
		s.ck.Ports[i].Msgs = append(s.ck.Ports[i].Msgs, m)
	}
	return nil
}

func (s *saver) portSetState(i uint32) error {
	h := s.set[i]
	s.close = append(s.close, h)
	buf, err := vmm.GetState(h, 64, s.c.PortSetGetState)
	if err != nil {
		return fmt.Errorf("port set %d: port_set_get_state: %w", i, err)
	}
	r := bytes.NewReader(buf)
	var st abi.PortSetState
	binary.Read(r, binary.LittleEndian, &st)
	ports := make([]uint64, st.NPorts)
	if err := binary.Read(r, binary.LittleEndian, ports); err != nil {
		return fmt.Errorf("port set %d: %w", i, err)
	}
	for _, ph := range ports {
		ref, err := s.ref(ph, int(s.ck.PortSets[i].Owner))
		if err != nil {
			return fmt.Errorf("port set %d: %w", i, err)
		}
		if ref.Kind != RefPort {
			return fmt.Errorf("port set %d holds a %s, not a port of the subtree", i, ref.Kind)
		}
		s.ck.PortSets[i].Ports = append(s.ck.PortSets[i].Ports, ref.Index)
	}
	return nil
}
