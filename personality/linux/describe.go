package linux

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nestvm/vmm"
)

// argSpecs say how a tracer shows each system call's arguments, one
// letter an argument: d a signed integer, u unsigned, x hexadecimal, f a
// descriptor, a a directory descriptor (AT_FDCWD by name), s a string
// (a path), o open flags, m a mode in octal, p a pointer.
var argSpecs = map[string]string{
	"read": "fpu", "write": "fpu", "open": "som", "close": "f", "stat": "sp", "fstat": "fp", "lstat": "sp",
	"lseek": "fdd", "mmap": "xxxxfx", "mprotect": "xxx", "munmap": "xx", "brk": "x",
	"rt_sigaction": "dppu", "rt_sigprocmask": "dppu", "ioctl": "fxx", "pread64": "fpud", "pwrite64": "fpud",
	"readv": "fpu", "writev": "fpu", "access": "so", "pipe": "p", "dup": "f", "dup2": "ff", "nanosleep": "pp",
	"getpid": "", "clone": "xpppx", "fork": "", "vfork": "", "execve": "spp", "exit": "d", "wait4": "dpxp",
	"kill": "dd", "uname": "p", "fcntl": "fdx", "getcwd": "pu", "chdir": "s", "fchdir": "f", "readlink": "spu",
	"umask": "m", "getuid": "", "getgid": "", "geteuid": "", "getegid": "", "getppid": "", "arch_prctl": "xx",
	"gettid": "", "futex": "pxdpxd", "set_tid_address": "p", "getdents64": "fpu", "clock_gettime": "dp",
	"exit_group": "d", "tgkill": "ddd", "openat": "aso", "newfstatat": "aspx", "readlinkat": "aspu",
	"faccessat": "asx", "pipe2": "px", "dup3": "ffx", "prlimit64": "ddpp", "getrandom": "pux",
	"epoll_create1": "x", "epoll_ctl": "fdfp", "epoll_wait": "fpdd", "epoll_pwait": "fpddp", "eventfd2": "ux",
	"poll": "pud", "sched_getaffinity": "dup", "sigaltstack": "pp", "rt_sigreturn": "", "madvise": "xxd",
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
		case 'o':
			b.WriteString(openFlags(v))
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
func (k *kernel) DescribeResult(fc *vmm.FaultCall, before vmm.Regs) (string, bool) {
	regs, err := fc.Regs()
	if err != nil || regs.RIP == before.RIP {
		return "?", false
	}
	v := int64(regs.RAX)
	if v < 0 && v >= -4095 {
		e := unix.Errno(-v)
		return fmt.Sprintf("-1 %s (%s)", unix.ErrnoName(e), e.Error()), false
	}
	switch syscallName(before.RAX) {
	case "mmap", "brk":
		return fmt.Sprintf("%#x", regs.RAX), true
	}
	return strconv.FormatInt(v, 10), true
}
