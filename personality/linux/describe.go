package linux

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nestvm/machine"
	"nestvm/vmm"
)

// argSpecs say how a tracer shows each system call's arguments, one
// letter an argument: d a C int (signed, 32 bits), D a signed 64-bit
// value (an offset, a length), u unsigned, x hexadecimal, f a
// descriptor, a a directory descriptor (AT_FDCWD by name), s a string
// (a path), b the bytes of an input buffer whose length is the next
// argument, o open flags, m a mode in octal, S a signal, P mmap's and
// mprotect's protection, M mmap's flags, c clone's flags, p a pointer.
var argSpecs = map[string]string{
	"read": "fpu", "write": "fbu", "open": "som", "close": "f", "stat": "sp", "fstat": "fp", "lstat": "sp",
	"lseek": "fDd", "mmap": "xxPMfx", "mprotect": "xxP", "munmap": "xx", "brk": "x",
	"rt_sigaction": "Sppu", "rt_sigprocmask": "dppu", "ioctl": "fxx", "pread64": "fpuD", "pwrite64": "fbuD",
	"readv": "fpu", "writev": "fpu", "access": "so", "pipe": "p", "dup": "f", "dup2": "ff", "nanosleep": "pp",
	"getpid": "", "clone": "cpppx", "fork": "", "vfork": "", "execve": "spp", "exit": "d", "wait4": "dpxp",
	"kill": "dS", "uname": "p", "fcntl": "fdx", "getcwd": "pu", "chdir": "s", "fchdir": "f", "readlink": "spu",
	"umask": "m", "getuid": "", "getgid": "", "geteuid": "", "getegid": "", "getppid": "", "arch_prctl": "xx",
	"gettid": "", "futex": "pxdpxd", "set_tid_address": "p", "getdents64": "fpu", "clock_gettime": "dp",
	"exit_group": "d", "tgkill": "ddS", "openat": "aso", "newfstatat": "aspx", "readlinkat": "aspu",
	"faccessat": "asx", "pipe2": "px", "dup3": "ffx", "prlimit64": "ddpp", "getrandom": "pux",
	"epoll_create1": "x", "epoll_ctl": "fdfp", "epoll_wait": "fpdd", "epoll_pwait": "fpddp", "eventfd2": "ux",
	"poll": "pud", "sched_getaffinity": "dup", "sigaltstack": "pp", "rt_sigreturn": "", "madvise": "xxd",
	"pause": "", "rt_sigsuspend": "pu", "sched_yield": "", "getrlimit": "dp", "sysinfo": "p", "getgroups": "dp",
	"setgroups": "dp", "setuid": "d", "setgid": "d", "setpgid": "dd", "getpgrp": "", "setsid": "", "getpgid": "d",
	"getsid": "d", "prctl": "dxxxx", "tkill": "dS", "time": "p", "clock_getres": "dp", "clock_nanosleep": "dxpp",
	"gettimeofday": "pp", "faccessat2": "asxx", "set_robust_list": "pu", "eventfd": "u", "epoll_create": "d",
	"ppoll": "puppu", "getrusage": "dp", "times": "p", "setrlimit": "dp", "fsync": "f", "fdatasync": "f", "sync": "",
	"select": "dpppp", "pselect6": "dppppp", "sched_setaffinity": "dup", "getpriority": "dd", "setpriority": "ddd",
	"mremap": "xxxxx", "statx": "asxxp", "clone3": "pu", "waitid": "ddpxp", "pidfd_open": "dx",
	"unlink": "s", "unlinkat": "asx", "rmdir": "s", "mkdir": "sm", "mkdirat": "asm", "rename": "ss",
	"renameat": "asas", "renameat2": "asasx", "symlink": "ss", "symlinkat": "sas", "link": "ss", "linkat": "asasx",
	"chmod": "sm", "fchmod": "fm", "fchmodat": "asm", "truncate": "sD", "ftruncate": "fD", "utimensat": "aspx",
	"chown": "sdd", "fchown": "fdd", "lchown": "sdd", "fchownat": "asddx", "rseq": "pudx", "sendfile": "ffpu",
	"alarm": "u", "setitimer": "dpp", "getitimer": "dp", "timer_create": "dpp", "timer_settime": "dxpp",
	"timer_gettime": "dp", "timer_getoverrun": "d", "timer_delete": "d",
}

// DescribeSyscall says, for a tracing layer above the personality, which
// system call fc is and with which arguments, as strace shows them.
func (k *kernel) DescribeSyscall(fc *vmm.FaultCall) (name, call string) {
	regs, err := fc.Regs()
	if err != nil {
		return "?", "?"
	}
	name = syscallName(regs.RAX)
	args := [6]uint64{regs.RDI, regs.RSI, regs.RDX, regs.R10, regs.R8, regs.R9}
	spec, ok := argSpecs[name]
	if !ok {
		spec = "xxx"
	}
	k.mu.Lock()
	p := k.procs[int(fc.Badge)]
	k.mu.Unlock()
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('(')
	for i, kind := range spec {
		if i > 0 {
			b.WriteString(", ")
		}
		v := args[i]
		switch kind {
		case 'd', 'f':
			b.WriteString(strconv.FormatInt(int64(int32(v)), 10))
		case 'D':
			b.WriteString(strconv.FormatInt(int64(v), 10))
		case 'u':
			b.WriteString(strconv.FormatUint(v, 10))
		case 'a':
			if int32(v) == unix.AT_FDCWD {
				b.WriteString("AT_FDCWD")
			} else {
				b.WriteString(strconv.FormatInt(int64(int32(v)), 10))
			}
		case 's':
			b.WriteString(k.describeString(p, v))
		case 'b':
			n := uint64(0)
			if i+1 < len(args) {
				n = args[i+1]
			}
			b.WriteString(k.describeBytes(p, v, n))
		case 'o':
			b.WriteString(openFlags(v))
		case 'S':
			b.WriteString(signalName(v))
		case 'P':
			b.WriteString(bitNames(v, protNames, "PROT_NONE"))
		case 'M':
			b.WriteString(bitNames(v, mapNames, "0"))
		case 'c':
			b.WriteString(cloneFlags(v))
		case 'm':
			fmt.Fprintf(&b, "%#o", v)
		default:
			fmt.Fprintf(&b, "%#x", v)
		}
	}
	b.WriteByte(')')
	return name, b.String()
}

// describeString reads a path argument for a trace line.
func (k *kernel) describeString(p *process, addr uint64) string {
	if p == nil {
		return fmt.Sprintf("%#x", addr)
	}
	c := k.caller()
	defer k.release(c)
	s, e := p.mem().readString(c, addr, 256)
	if e != 0 {
		return fmt.Sprintf("%#x", addr)
	}
	return strconv.Quote(s)
}

// traceBytes is how many bytes of a buffer a trace line shows.
const traceBytes = 32

// describeBytes reads the first bytes of an input buffer of n bytes for
// a trace line, quoted as strace shows them, "..." after when cut.
func (k *kernel) describeBytes(p *process, addr, n uint64) string {
	if p == nil || n == 0 {
		return fmt.Sprintf("%#x", addr)
	}
	c := k.caller()
	defer k.release(c)
	buf := make([]byte, min(n, traceBytes))
	if e := p.mem().read(c, addr, buf); e != 0 {
		return fmt.Sprintf("%#x", addr)
	}
	s := strconv.Quote(string(buf))
	if n > traceBytes {
		s += "..."
	}
	return s
}

// signalName names a signal number (SIGCHLD), or gives the number.
func signalName(v uint64) string {
	if n := unix.SignalName(unix.Signal(int32(v))); n != "" {
		return n
	}
	return strconv.FormatInt(int64(int32(v)), 10)
}

// bitName names one bit of a flags argument.
type bitName struct {
	bit  uint64
	name string
}

var (
	protNames = []bitName{{unix.PROT_READ, "PROT_READ"}, {unix.PROT_WRITE, "PROT_WRITE"}, {unix.PROT_EXEC, "PROT_EXEC"}}
	mapNames  = []bitName{{unix.MAP_SHARED, "MAP_SHARED"}, {unix.MAP_PRIVATE, "MAP_PRIVATE"}, {unix.MAP_FIXED, "MAP_FIXED"},
		{unix.MAP_ANONYMOUS, "MAP_ANONYMOUS"}, {unix.MAP_GROWSDOWN, "MAP_GROWSDOWN"}, {unix.MAP_NORESERVE, "MAP_NORESERVE"},
		{unix.MAP_POPULATE, "MAP_POPULATE"}, {unix.MAP_STACK, "MAP_STACK"}, {unix.MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"}}
	cloneNames = []bitName{{unix.CLONE_VM, "CLONE_VM"}, {unix.CLONE_FS, "CLONE_FS"}, {unix.CLONE_FILES, "CLONE_FILES"},
		{unix.CLONE_SIGHAND, "CLONE_SIGHAND"}, {unix.CLONE_PIDFD, "CLONE_PIDFD"}, {unix.CLONE_PTRACE, "CLONE_PTRACE"},
		{unix.CLONE_VFORK, "CLONE_VFORK"}, {unix.CLONE_PARENT, "CLONE_PARENT"}, {unix.CLONE_THREAD, "CLONE_THREAD"},
		{unix.CLONE_NEWNS, "CLONE_NEWNS"}, {unix.CLONE_SYSVSEM, "CLONE_SYSVSEM"}, {unix.CLONE_SETTLS, "CLONE_SETTLS"},
		{unix.CLONE_PARENT_SETTID, "CLONE_PARENT_SETTID"}, {unix.CLONE_CHILD_CLEARTID, "CLONE_CHILD_CLEARTID"},
		{unix.CLONE_CHILD_SETTID, "CLONE_CHILD_SETTID"}}
)

// bitNames names the bits of v, with what no name covers in hex; none
// when v is 0.
func bitNames(v uint64, names []bitName, none string) string {
	if v == 0 {
		return none
	}
	var parts []string
	for _, n := range names {
		if v&n.bit != 0 {
			parts = append(parts, n.name)
			v &^= n.bit
		}
	}
	if v != 0 {
		parts = append(parts, fmt.Sprintf("%#x", v))
	}
	return strings.Join(parts, "|")
}

// cloneFlags names clone's flags, the signal sent at the child's end
// (the low byte) by name, as strace shows them.
func cloneFlags(v uint64) string {
	parts := bitNames(v&^0xff, cloneNames, "")
	if sig := v & 0xff; sig != 0 {
		if parts != "" {
			parts += "|"
		}
		parts += signalName(sig)
	}
	if parts == "" {
		return "0"
	}
	return parts
}

// openFlags names open(2) flags.
func openFlags(v uint64) string {
	names := []string{"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"}
	parts := []string{names[v&oAccMode]}
	for _, f := range []struct {
		bit  uint64
		name string
	}{{oCreat, "O_CREAT"}, {oExcl, "O_EXCL"}, {oTrunc, "O_TRUNC"}, {oAppend, "O_APPEND"}, {oNonblock, "O_NONBLOCK"},
		{oDirectory, "O_DIRECTORY"}, {oNofollow, "O_NOFOLLOW"}, {oCloexec, "O_CLOEXEC"}, {oPath, "O_PATH"}} {
		if v&f.bit != 0 {
			parts = append(parts, f.name)
			v &^= f.bit
		}
	}
	if rest := v &^ (oAccMode | 0x8000 /* O_LARGEFILE */); rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", rest))
	}
	return strings.Join(parts, "|")
}

// DescribeResult says how the system call DescribeSyscall described
// ended: its value, or -1 and the errno's name, or "?" when it did not
// return (the thread was stopped and will issue it again, or exited).
// A call that returned into a signal handler ended with what the
// handler's frame saved, which rt_sigreturn gives back.
func (k *kernel) DescribeResult(fc *vmm.FaultCall, before machine.Regs) (string, bool) {
	name := syscallName(before.RAX)
	regs, err := fc.Regs()
	if err != nil || regs.RIP == before.RIP {
		if name == "execve" || name == "execveat" {
			// A program replaced: the thread that called is gone, and
			// the process lives on in the new one. Linux says 0.
			k.mu.Lock()
			p := k.procs[int(fc.Badge)]
			ok := p != nil && !p.exited && p.didExec
			k.mu.Unlock()
			if ok {
				return "0", true
			}
		}
		return "?", false
	}
	if saved, _, ok := k.handlerFrame(fc, before, regs); ok {
		if name != "rt_sigreturn" && saved.RIP == before.RIP {
			return "? (to be issued again after the handler)", false
		}
		regs = saved
	}
	v := int64(regs.RAX)
	if v < 0 && v >= -4095 {
		e := unix.Errno(-v)
		return fmt.Sprintf("-1 %s (%s)", unix.ErrnoName(e), e.Error()), false
	}
	switch name {
	case "mmap", "brk":
		return fmt.Sprintf("%#x", regs.RAX), true
	}
	return strconv.FormatInt(v, 10), true
}

// DescribeSignal says which signal's handler the thread runs now that
// the system call DescribeSyscall described has returned, as strace
// shows a delivery: SIGCHLD {si_signo=SIGCHLD, si_code=1, si_pid=2,
// si_status=0}. ok is false when it returned to the program itself.
func (k *kernel) DescribeSignal(fc *vmm.FaultCall, before machine.Regs) (string, bool) {
	regs, err := fc.Regs()
	if err != nil {
		return "", false
	}
	_, info, ok := k.handlerFrame(fc, before, regs)
	if !ok {
		return "", false
	}
	le := binary.LittleEndian
	sig := signalName(uint64(le.Uint32(info[0:])))
	return fmt.Sprintf("%s {si_signo=%s, si_code=%d, si_pid=%d, si_status=%d}", sig, sig,
		int32(le.Uint32(info[8:])), int32(le.Uint32(info[16:])), int32(le.Uint32(info[24:]))), true
}

// handlerFrame reads the signal frame deliver built, when the thread,
// whose registers were before at its system call and are regs now, was
// sent into a handler as the call returned: the registers the frame
// saved, and its siginfo.
func (k *kernel) handlerFrame(fc *vmm.FaultCall, before, regs machine.Regs) (saved machine.Regs, info []byte, ok bool) {
	if regs.RIP == before.RIP+2 || regs.RDI == 0 || regs.RDI > 64 ||
		regs.RSI != regs.RSP+frameInfo || regs.RDX != regs.RSP+frameUC {
		return saved, nil, false
	}
	k.mu.Lock()
	p := k.procs[int(fc.Badge)]
	k.mu.Unlock()
	if p == nil {
		return saved, nil, false
	}
	c := k.caller()
	defer k.release(c)
	b := make([]byte, frameSize)
	if p.mem().read(c, regs.RSP, b) != 0 || binary.LittleEndian.Uint32(b[frameInfo:]) != uint32(regs.RDI) {
		return saved, nil, false
	}
	mc := b[frameUC+ucMcontext:]
	for i, r := range sigcontextRegs(&saved) {
		*r = binary.LittleEndian.Uint64(mc[i*8:])
	}
	return saved, b[frameInfo:], true
}
