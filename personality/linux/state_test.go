package linux

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"nestvm/abi"
)

// sampleRecord is the record of a personality with one process (a
// thread, an area, stdout, a pipe holding bytes), built without a
// monitor: snapshot reads only the personality's own state.
func sampleRecord(t testing.TB) []byte {
	k := &kernel{caps: map[string]uint64{"console": 5}, procs: map[int]*process{}, nextPID: 2}
	pp := &pipe{buf: []byte("left in the pipe"), readers: 1, writers: 1}
	out := &file{kind: kindConsole, handle: 5, path: "/dev/stdout", flags: oWrOnly, refs: 1}
	r := &file{kind: kindPipe, pipe: pp, path: "pipe:", flags: oRdOnly, refs: 1}
	w := &file{kind: kindPipe, pipe: pp, path: "pipe:", flags: oWrOnly, refs: 1}
	m := newMM(0)
	m.insert(&vma{start: 0x400000, end: 0x401000, prot: protRead, region: 9})
	m.brkStart, m.brk, m.brkMapped = 0x500000, 0x500000, 0x500000
	p := &process{k: k, pid: 1, slot: 1, exe: "/bin/prog", cwd: "/", umask: 0o22, mm: m,
		threads: map[int]*thread{0: {tid: 1, slot: 2, sigmask: 4, kick: kickState{busy: true, regs: &abi.ThreadRegs{RIP: 0x401234, RSP: 0x7ff000}}}}, pending: map[int]sigInfo{10: {signo: 10}},
		fds: &fdTable{files: map[int]*fdEntry{1: {f: out}, 3: {f: r}, 4: {f: w, cloexec: true}}}}
	p.sig.actions[10] = sigAction{handler: 0x401000, mask: 1}
	k.procs[1] = p
	rec, err := k.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestStateRecord: a record decodes to what was saved, and a damaged one
// is refused with an error, never a panic.
func TestStateRecord(t *testing.T) {
	rec := sampleRecord(t)
	st, err := decodeState(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.procs) != 1 || len(st.files) != 3 || len(st.pipes) != 1 || string(st.pipes[0]) != "left in the pipe" {
		t.Fatalf("decoded %d processes, %d files, pipes %q", len(st.procs), len(st.files), st.pipes)
	}
	p := st.procs[0]
	if p.pid != 1 || p.slot != 1 || len(p.threads) != 1 || p.threads[0].slot != 2 || p.threads[0].sigmask != 4 ||
		len(p.fds) != 3 || !p.fds[2].cloexec || p.sig.actions[10].handler != 0x401000 || len(p.pending) != 1 ||
		len(p.mm.vmas) != 1 || !p.mm.vmas[0].mapped || p.mm.brk != 0x500000 {
		t.Fatalf("decoded process %+v", p)
	}
	// A thread saved on its way to the kick code gets back the
	// registers the kick stopped it with.
	if k := p.threads[0].kicked; k == nil || k.RIP != 0x401234 || k.RSP != 0x7ff000 {
		t.Errorf("decoded kicked registers %+v", k)
	}
	for _, f := range st.files {
		if f.refs != 1 {
			t.Errorf("file %s: %d references, want 1", f.path, f.refs)
		}
	}
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": rec[:len(rec)/2],
		"trailing":  append(append([]byte(nil), rec...), 0),
		"version":   append(append([]byte(stateMagic), 9, 0, 0, 0), rec[len(stateMagic)+4:]...),
		"magic":     append([]byte("NOTLINUX"), rec[len(stateMagic):]...),
	} {
		if _, err := decodeState(bad); err == nil || !strings.Contains(err.Error(), "Linux personality's record") {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
}

// FuzzDecodeState: no record, however hostile, panics decodeState, and one
// it accepts names nothing that does not exist.
func FuzzDecodeState(f *testing.F) {
	f.Add(sampleRecord(f))
	f.Add([]byte(stateMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState(data)
		if err != nil {
			return
		}
		for _, p := range st.procs {
			for _, d := range p.fds {
				if d.file >= len(st.files) {
					t.Fatalf("accepted a descriptor naming file %d of %d", d.file, len(st.files))
				}
			}
		}
	})
}

// TestStateTimers: a process's timers travel in the record: ITIMER_REAL
// and a timer_create timer with its sigev_value, and a pending timer
// signal's value. What an interval timer's expiry changes (its deadline,
// by an interval; the overrun count its pending signal carries) leaves
// the record as it was, so that a save during which it expires is not
// taken again and again; resumed, each expires when it had left to.
func TestStateTimers(t *testing.T) {
	k := &kernel{caps: map[string]uint64{}, procs: map[int]*process{}, nextPID: 2}
	p := &process{k: k, pid: 1, slot: 1, exe: "/bin/prog", cwd: "/", mm: newMM(0),
		threads: map[int]*thread{0: {tid: 1, slot: 2}}, pending: map[int]sigInfo{12: {signo: 12, code: siTimer, value: 42, status: 3}},
		fds: &fdTable{files: map[int]*fdEntry{}}}
	k.procs[1] = p
	now := time.Now()
	// The clock read mono at the save: deadlines on it are the same
	// times from then as on the host's.
	const mono = uint64(5 * time.Second)
	p.timers.real = timer{info: realInfo, deadline: mono + uint64(30*time.Millisecond), host: now.Add(30 * time.Millisecond), interval: 100 * time.Millisecond}
	p.timers.posix = map[int]*timer{3: {clock: 1, notify: true, info: sigInfo{signo: 12, code: siTimer, pid: 3, value: 42}, deadline: mono + uint64(time.Hour), host: now.Add(time.Hour)}}
	rec, err := k.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	p.timers.real.host = p.timers.real.host.Add(2 * p.timers.real.interval)
	p.timers.real.deadline += 2 * uint64(p.timers.real.interval)
	p.pending[12] = sigInfo{signo: 12, code: siTimer, value: 42, status: 5}
	if again, err := k.snapshot(); err != nil || string(again) != string(rec) {
		t.Errorf("an interval timer's expiries changed the record (%v)", err)
	}
	st, err := decodeState(rec)
	if err != nil {
		t.Fatal(err)
	}
	sp := st.procs[0]
	if len(sp.pending) != 1 || sp.pending[0].value != 42 || len(sp.posix) != 1 || sp.posix[0].id != 3 || sp.posix[0].info.value != 42 || !sp.posix[0].notify {
		t.Fatalf("decoded pending %+v, timers %+v", sp.pending, sp.posix)
	}
	if next, ok := sp.real.next(now); !ok || next.Sub(now) < 29*time.Millisecond || next.Sub(now) > 30*time.Millisecond {
		t.Errorf("ITIMER_REAL next expires %v after the save, want 30ms", next.Sub(now))
	}
	if next, ok := sp.real.next(now.Add(time.Second)); !ok || next.Sub(now.Add(time.Second)) > 100*time.Millisecond {
		t.Errorf("ITIMER_REAL next expires %v after a second, want within its interval", next.Sub(now.Add(time.Second)))
	}
	if next, ok := sp.posix[0].next(now); !ok || next.Sub(now) < 59*time.Minute {
		t.Errorf("the one-shot timer expires %v after the save, want an hour", next.Sub(now))
	}
	// On the clock, exactly.
	if next, ok := sp.real.nextOnClock(mono); !ok || next-mono != uint64(30*time.Millisecond) {
		t.Errorf("ITIMER_REAL next expires %v after the save on the clock (%v), want 30ms", time.Duration(next-mono), ok)
	}
	if next, ok := sp.real.nextOnClock(mono + uint64(time.Second)); !ok || next-mono != uint64(1030*time.Millisecond) {
		t.Errorf("ITIMER_REAL next expires %v after the save on the clock a second later (%v), want 1.03s", time.Duration(next-mono), ok)
	}
	if next, ok := sp.posix[0].nextOnClock(mono); !ok || next-mono != uint64(time.Hour) {
		t.Errorf("the one-shot timer expires %v after the save on the clock (%v), want an hour", time.Duration(next-mono), ok)
	}
}

// TestStateVersion1: a record of version 1, which had no timers and no
// sigev_value, still decodes.
func TestStateVersion1(t *testing.T) {
	k := &kernel{caps: map[string]uint64{}, procs: map[int]*process{}, nextPID: 2}
	k.procs[1] = &process{k: k, pid: 1, slot: 1, exe: "/bin/prog", cwd: "/", mm: newMM(0),
		threads: map[int]*thread{0: {tid: 1, slot: 2}}, pending: map[int]sigInfo{}, fds: &fdTable{files: map[int]*fdEntry{}}}
	rec, err := k.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// The process is the record's last; version 2 added its timers at
	// its end (ITIMER_REAL, with version 5 its deadline on the clock too,
	// and a count of none), and to its thread the end
	// of its sleep (version 3 that end on the clock too, version 4 a flag
	// for kicked registers), before its memory map (a flag, brk, no area)
	// and descriptors (none).
	end := len(rec) - savedTimerSize - 4
	sleep := end - 4 - (1 + 3*8 + 4) - 16 - 1
	v1 := append(append([]byte(nil), rec[:sleep]...), rec[sleep+16+1:end]...)
	binary.LittleEndian.PutUint32(v1[len(stateMagic):], 1)
	st, err := decodeState(v1)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.procs) != 1 || st.procs[0].real.deadline != 0 || st.procs[0].posix != nil {
		t.Errorf("decoded %+v", st.procs)
	}
}

// TestStateMidExit: while a process is half way through its exit (ended
// in the record, its space and threads maybe still in the container's
// table), the record is refused as not ready, so that a save asks again
// instead of saving a thread whose space it cannot find; the refusal
// waits for the exits under way, so the next ask finds them done.
func TestStateMidExit(t *testing.T) {
	k := &kernel{caps: map[string]uint64{}, procs: map[int]*process{}, nextPID: 2}
	k.procs[1] = &process{k: k, pid: 1, slot: 1, exe: "/bin/prog", cwd: "/", mm: newMM(0),
		threads: map[int]*thread{0: {tid: 1, slot: 2}}, pending: map[int]sigInfo{}, fds: &fdTable{files: map[int]*fdEntry{}}}
	select {
	case <-k.exitsWait():
	default:
		t.Fatal("exitsWait blocks with no exit begun")
	}
	k.mu.Lock()
	k.beginExitLocked()
	k.beginExitLocked()
	k.mu.Unlock()
	if _, err := k.snapshot(); !errors.Is(err, errExiting) {
		t.Fatalf("snapshot mid-exit: %v, want %v", err, errExiting)
	}
	wait := k.exitsWait()
	k.endExit()
	select {
	case <-wait:
		t.Fatal("exitsWait let go with one of two exits still half done")
	default:
	}
	k.endExit()
	<-wait // a save refused mid-exit waits for this, then asks again
	if _, err := k.snapshot(); err != nil {
		t.Fatalf("snapshot once the exit is done: %v", err)
	}
}
