package linux

import (
	"debug/elf"
	"encoding/binary"
	"fmt"

	"nestvm/abi"
	"nestvm/nester"
	"nestvm/vmm"
)

// The vDSO: a small shared object the personality maps into every Linux
// process (auxv AT_SYSINFO_EHDR), whose clock_gettime, gettimeofday, time
// and getcpu answer without a system call. Its time comes from the time
// page of the personality's clock capability (clock_time_page), mapped
// read-only one page below the image: the code extrapolates the page's
// record with rdtsc, and makes the real system call where the record
// cannot serve (no page flag, a stale record, a clock it does not know).
// A clock that offers no time page (a layer standing in for the clock
// that keeps time its own way) leaves the program without a vDSO, on
// system calls, as Linux does for a program with vdso=0.

// Where the vDSO goes in a process's space: above mmapTop, which mmap
// never places at, below the stack.
const (
	vdsoData      = mmapTop             // the clock's time page
	vdsoImage     = vdsoData + pageSize // the ELF image
	vdsoSize      = pageSize
	atSysinfoEhdr = 33
)

// The record's fields as the code addresses them (abi.TimePage).
const (
	tpMonoBase = 40
	tpRealBase = 48
)

// vdsoText is the code, position-independent, reading the time page at
// its own address minus vdsoTextOff minus a page (the lea's displacement,
// which build fills in). Entry points are at the vdso*Entry offsets.
//
// read (internal): rdi = the offset of the base field to add (MonoBase or
// RealBase). Returns rax = nanoseconds with CF clear, or CF set when the
// caller must make the system call. Clobbers rax, rcx, rdx, r8, r9.
var vdsoText = []byte{
	// read:
	0x4c, 0x8d, 0x05, 0, 0, 0, 0, // lea r8, [rip+disp32]     r8 = the time page
	// retry:
	0x4d, 0x8b, 0x08, // mov r9, [r8]               r9 = seq
	0x41, 0xf6, 0xc1, 0x01, // test r9b, 1          odd: the clock is rewriting the record
	0x75, 0xf7, // jne retry
	0x41, 0xf6, 0x40, 0x08, 0x01, // test byte [r8+8], 1   flags & TimeTSC
	0x74, 0x3c, // je fail                           no: the system call
	0x0f, 0xae, 0xe8, // lfence                     rdtsc after the loads above
	0x0f, 0x31, // rdtsc                             edx:eax = the counter
	0x48, 0xc1, 0xe2, 0x20, // shl rdx, 32
	0x48, 0x09, 0xd0, // or rax, rdx                rax = the counter
	0x49, 0x2b, 0x40, 0x10, // sub rax, [r8+16]     rax = ticks since tsc_base
	0x73, 0x0d, // jae after                         not before the base
	0x48, 0xf7, 0xd8, // neg rax                    ticks before the base
	0x49, 0x3b, 0x40, 0x38, // cmp rax, [r8+56]
	0x77, 0x21, // ja fail                           far before: not the record's counter
	0x31, 0xc0, // xor eax, eax                     just before (a CPU whose counter lags a little): the base itself
	0xeb, 0x06, // jmp scale
	// after:
	0x49, 0x3b, 0x40, 0x38, // cmp rax, [r8+56]     past max_delta?
	0x77, 0x17, // ja fail                           then the record is stale
	// scale:
	0x49, 0xf7, 0x60, 0x18, // mul qword [r8+24]    rdx:rax = ticks * mult
	0x49, 0x8b, 0x48, 0x20, // mov rcx, [r8+32]     cl = shift
	0x48, 0x0f, 0xad, 0xd0, // shrd rax, rdx, cl    rax = (ticks * mult) >> shift
	0x49, 0x03, 0x04, 0x38, // add rax, [r8+rdi]    + the clock's base
	0x4d, 0x3b, 0x08, // cmp r9, [r8]               seq changed while reading?
	0x75, 0xb6, // jne retry
	0xf8, // clc                                     success
	0xc3, // ret
	// fail:
	0xf9, // stc
	0xc3, // ret

	// clock_gettime(edi = clock, rsi = timespec):
	0x41, 0x89, 0xfa, // mov r10d, edi              keep the clock for the system call
	0x83, 0xff, 0x07, // cmp edi, 7
	0x77, 0x3a, // ja sys                            beyond CLOCK_BOOTTIME: not ours
	0xb8, 0x21, 0x00, 0x00, 0x00, // mov eax, 0x21  REALTIME (0), REALTIME_COARSE (5)
	0x0f, 0xa3, 0xf8, // bt eax, edi
	0xbf, 0x30, 0x00, 0x00, 0x00, // mov edi, 48    RealBase (flags kept)
	0x72, 0x10, // jb have
	0xb8, 0xd2, 0x00, 0x00, 0x00, // mov eax, 0xd2  MONOTONIC (1), MONOTONIC_RAW (4), MONOTONIC_COARSE (6), BOOTTIME (7)
	0x44, 0x0f, 0xa3, 0xd0, // bt eax, r10d
	0x73, 0x20, // jae sys                           CPU-time clocks: the system call
	0xbf, 0x28, 0x00, 0x00, 0x00, // mov edi, 40    MonoBase
	// have:
	0xe8, 0x7f, 0xff, 0xff, 0xff, // call read
	0x72, 0x14, // jb sys
	0x31, 0xd2, // xor edx, edx
	0xb9, 0x00, 0xca, 0x9a, 0x3b, // mov ecx, 1e9
	0x48, 0xf7, 0xf1, // div rcx                    rax = seconds, rdx = nanoseconds
	0x48, 0x89, 0x06, // mov [rsi], rax
	0x48, 0x89, 0x56, 0x08, // mov [rsi+8], rdx
	0x31, 0xc0, // xor eax, eax                     returns 0
	0xc3, // ret
	// sys:
	0x44, 0x89, 0xd7, // mov edi, r10d
	0xb8, 0xe4, 0x00, 0x00, 0x00, // mov eax, 228   SYS_clock_gettime
	0x0f, 0x05, // syscall
	0xc3, // ret

	// gettimeofday(rdi = timeval, rsi = timezone):
	0x48, 0x85, 0xf6, // test rsi, rsi
	0x75, 0x36, // jne sys                           a time zone asked: the system call answers
	0x48, 0x85, 0xff, // test rdi, rdi
	0x74, 0x31, // je sys                            no timeval: likewise
	0x49, 0x89, 0xfa, // mov r10, rdi               keep the timeval
	0xbf, 0x30, 0x00, 0x00, 0x00, // mov edi, 48    RealBase
	0xe8, 0x47, 0xff, 0xff, 0xff, // call read
	0x72, 0x1f, // jb restore
	0x31, 0xd2, // xor edx, edx
	0xb9, 0x00, 0xca, 0x9a, 0x3b, // mov ecx, 1e9
	0x48, 0xf7, 0xf1, // div rcx                    rax = seconds, rdx = nanoseconds
	0x49, 0x89, 0x02, // mov [r10], rax
	0x89, 0xd0, // mov eax, edx
	0x31, 0xd2, // xor edx, edx
	0xb9, 0xe8, 0x03, 0x00, 0x00, // mov ecx, 1000
	0xf7, 0xf1, // div ecx                           eax = microseconds
	0x49, 0x89, 0x42, 0x08, // mov [r10+8], rax
	0x31, 0xc0, // xor eax, eax                     returns 0
	0xc3, // ret
	// restore:
	0x4c, 0x89, 0xd7, // mov rdi, r10               (rsi is still 0)
	// sys:
	0xb8, 0x60, 0x00, 0x00, 0x00, // mov eax, 96    SYS_gettimeofday
	0x0f, 0x05, // syscall
	0xc3, // ret

	// time(rdi = time_t pointer or 0):
	0x49, 0x89, 0xfa, // mov r10, rdi
	0xbf, 0x30, 0x00, 0x00, 0x00, // mov edi, 48    RealBase
	0xe8, 0x0e, 0xff, 0xff, 0xff, // call read
	0x72, 0x13, // jb sys
	0x31, 0xd2, // xor edx, edx
	0xb9, 0x00, 0xca, 0x9a, 0x3b, // mov ecx, 1e9
	0x48, 0xf7, 0xf1, // div rcx                    rax = seconds, the result
	0x4d, 0x85, 0xd2, // test r10, r10
	0x74, 0x03, // je done
	0x49, 0x89, 0x02, // mov [r10], rax
	// done:
	0xc3, // ret
	// sys:
	0x4c, 0x89, 0xd7, // mov rdi, r10
	0xb8, 0xc9, 0x00, 0x00, 0x00, // mov eax, 201   SYS_time
	0x0f, 0x05, // syscall
	0xc3, // ret

	// getcpu(rdi = cpu, rsi = node): always CPU 0 of node 0, as
	// sched_getaffinity's one CPU says.
	0x48, 0x85, 0xff, // test rdi, rdi
	0x74, 0x06, // je 1f
	0xc7, 0x07, 0x00, 0x00, 0x00, 0x00, // mov dword [rdi], 0
	// 1:
	0x48, 0x85, 0xf6, // test rsi, rsi
	0x74, 0x06, // je 2f
	0xc7, 0x06, 0x00, 0x00, 0x00, 0x00, // mov dword [rsi], 0
	// 2:
	0x31, 0xc0, // xor eax, eax
	0xc3, // ret

	// kick (not exported): where the personality sends a thread it
	// stopped in guest code to take a signal (kick.go); the system call
	// puts its registers back.
	0xb8, 0x56, 0x4e, 0x00, 0x00, // mov eax, 0x4e56  kickSyscall
	0x0f, 0x05, // syscall
	0x0f, 0x0b, // ud2                               never reached
}

// Entry points in vdsoText, and where its lea's displacement goes.
const (
	vdsoLeaDisp           = 3
	vdsoLeaEnd            = 7
	vdsoClockGettimeEntry = 0x55
	vdsoGettimeofdayEntry = 0xa2
	vdsoTimeEntry         = 0xe5
	vdsoGetcpuEntry       = 0x112
	vdsoKickEntry         = 0x12b
)

// vdsoSymbols are the functions the image exports, each with version
// LINUX_2.6, as Linux's x86-64 vDSO does.
var vdsoSymbols = []struct {
	name  string
	entry int
}{
	{"__vdso_clock_gettime", vdsoClockGettimeEntry},
	{"__vdso_gettimeofday", vdsoGettimeofdayEntry},
	{"__vdso_time", vdsoTimeEntry},
	{"__vdso_getcpu", vdsoGetcpuEntry},
}

const (
	vdsoSoname  = "linux-vdso.so.1"
	vdsoVersion = "LINUX_2.6"
)

// elfHash is the System V ELF hash (DT_HASH, and each Verdef's vd_hash).
func elfHash(s string) uint32 {
	var h uint32
	for i := 0; i < len(s); i++ {
		h = h<<4 + uint32(s[i])
		if g := h & 0xf0000000; g != 0 {
			h ^= g >> 24
		}
		h &^= 0xf0000000
	}
	return h
}

// buildVDSO lays out the image: an ELF header and two program headers
// (PT_LOAD over the whole image at address 0, PT_DYNAMIC), then the
// dynamic symbol table with its hash table, strings and version tables,
// the dynamic section, and the code. What readers of a vDSO use (Go's
// runtime, musl, glibc) is all reached from the program headers: there
// are no section headers.
func buildVDSO() []byte {
	le := binary.LittleEndian
	img := make([]byte, 0, vdsoSize)
	align := func(n int) {
		for len(img)%n != 0 {
			img = append(img, 0)
		}
	}
	const ehdrSize, phdrSize, nphdr = 64, 56, 2
	img = img[:ehdrSize+nphdr*phdrSize]

	// Strings.
	strtab := []byte{0}
	str := func(s string) uint32 {
		off := uint32(len(strtab))
		strtab = append(append(strtab, s...), 0)
		return off
	}
	sonameOff, versionOff := str(vdsoSoname), str(vdsoVersion)
	names := make([]uint32, len(vdsoSymbols))
	for i, s := range vdsoSymbols {
		names[i] = str(s.name)
	}
	nsym := uint32(len(vdsoSymbols) + 1) // symbol 0 is the null symbol

	// DT_HASH: one bucket holding every symbol in one chain.
	align(8)
	hashOff := len(img)
	img = le.AppendUint32(img, 1)
	img = le.AppendUint32(img, nsym)
	img = le.AppendUint32(img, 1) // bucket 0: symbol 1
	img = le.AppendUint32(img, 0) // chain[0]
	for i := uint32(1); i < nsym; i++ {
		next := i + 1
		if next == nsym {
			next = 0
		}
		img = le.AppendUint32(img, next)
	}

	// Symbols: Elf64_Sym is name, info, other, shndx, value, size. The
	// text follows the tables at textOff, known once they are laid out,
	// so values are filled in below.
	align(8)
	symOff := len(img)
	img = append(img, make([]byte, 24)...)
	for i := range vdsoSymbols {
		img = le.AppendUint32(img, names[i])
		img = append(img, byte(elf.STB_GLOBAL)<<4|byte(elf.STT_FUNC), 0)
		img = le.AppendUint16(img, 1) // any defined section: there are no section headers
		img = le.AppendUint64(img, 0) // value, below
		img = le.AppendUint64(img, 0) // size, below
	}

	strOff := len(img)
	img = append(img, strtab...)

	// DT_VERSYM: the null symbol local (0), the others LINUX_2.6 (2).
	align(2)
	versymOff := len(img)
	img = le.AppendUint16(img, 0)
	for range vdsoSymbols {
		img = le.AppendUint16(img, 2)
	}

	// DT_VERDEF: the object's own version (index 1, VER_FLG_BASE), then
	// LINUX_2.6 (index 2); each Verdef (20 bytes) is followed by its one
	// Verdaux (8 bytes).
	align(8)
	verdefOff := len(img)
	verdef := func(flags, ndx uint16, name uint32, hash uint32, last bool) {
		next := uint32(28)
		if last {
			next = 0
		}
		img = le.AppendUint16(img, 1) // vd_version
		img = le.AppendUint16(img, flags)
		img = le.AppendUint16(img, ndx)
		img = le.AppendUint16(img, 1) // vd_cnt
		img = le.AppendUint32(img, hash)
		img = le.AppendUint32(img, 20) // vd_aux
		img = le.AppendUint32(img, next)
		img = le.AppendUint32(img, name) // vda_name
		img = le.AppendUint32(img, 0)    // vda_next
	}
	verdef(1 /* VER_FLG_BASE */, 1, sonameOff, elfHash(vdsoSoname), false)
	verdef(0, 2, versionOff, elfHash(vdsoVersion), true)

	align(8)
	dynOff := len(img)
	for _, d := range [][2]uint64{
		{uint64(elf.DT_SONAME), uint64(sonameOff)},
		{uint64(elf.DT_HASH), uint64(hashOff)},
		{uint64(elf.DT_STRTAB), uint64(strOff)},
		{uint64(elf.DT_SYMTAB), uint64(symOff)},
		{uint64(elf.DT_STRSZ), uint64(len(strtab))},
		{uint64(elf.DT_SYMENT), 24},
		{uint64(elf.DT_VERSYM), uint64(versymOff)},
		{uint64(elf.DT_VERDEF), uint64(verdefOff)},
		{uint64(elf.DT_VERDEFNUM), 2},
		{uint64(elf.DT_NULL), 0},
	} {
		img = le.AppendUint64(img, d[0])
		img = le.AppendUint64(img, d[1])
	}
	dynSize := len(img) - dynOff

	align(16)
	textOff := len(img)
	img = append(img, vdsoText...)
	// The time page is one page below the image.
	le.PutUint32(img[textOff+vdsoLeaDisp:], uint32(int32(-pageSize-(textOff+vdsoLeaEnd))))
	vdsoKick = vdsoImage + uint64(textOff) + vdsoKickEntry
	for i, s := range vdsoSymbols {
		end := vdsoKickEntry
		if i+1 < len(vdsoSymbols) {
			end = vdsoSymbols[i+1].entry
		}
		sym := img[symOff+24*(i+1):]
		le.PutUint64(sym[8:], uint64(textOff+s.entry))
		le.PutUint64(sym[16:], uint64(end-s.entry))
	}
	if len(img) > vdsoSize {
		panic(fmt.Sprintf("vdso: %d bytes, more than %d", len(img), vdsoSize))
	}

	// The ELF header and the program headers.
	h := img[:ehdrSize]
	copy(h, []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), byte(elf.ELFOSABI_NONE)})
	le.PutUint16(h[16:], uint16(elf.ET_DYN))
	le.PutUint16(h[18:], uint16(elf.EM_X86_64))
	le.PutUint32(h[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(h[32:], ehdrSize) // e_phoff
	le.PutUint16(h[52:], ehdrSize)
	le.PutUint16(h[54:], phdrSize)
	le.PutUint16(h[56:], nphdr)
	le.PutUint16(h[58:], 64) // e_shentsize, though there are none
	phdr := func(i int, typ elf.ProgType, flags elf.ProgFlag, off, size, align uint64) {
		p := img[ehdrSize+i*phdrSize:]
		le.PutUint32(p[0:], uint32(typ))
		le.PutUint32(p[4:], uint32(flags))
		le.PutUint64(p[8:], off)   // p_offset
		le.PutUint64(p[16:], off)  // p_vaddr
		le.PutUint64(p[24:], off)  // p_paddr
		le.PutUint64(p[32:], size) // p_filesz
		le.PutUint64(p[40:], size) // p_memsz
		le.PutUint64(p[48:], align)
	}
	phdr(0, elf.PT_LOAD, elf.PF_R|elf.PF_X, 0, uint64(len(img)), pageSize)
	phdr(1, elf.PT_DYNAMIC, elf.PF_R, uint64(dynOff), uint64(dynSize), 8)
	return img
}

// vdsoKick is the address of the kick code in a process's space, which
// buildVDSO sets.
var vdsoKick uint64

// vdsoImageBytes is the image every process maps.
var vdsoImageBytes = buildVDSO()

// timePage returns the personality's handle to its clock's time page,
// asking the clock once; 0 when the clock offers none.
func (k *kernel) timePage(c *vmm.Caller) uint64 {
	k.timeOnce.Do(func() {
		h, ok := k.caps[nester.CapClock]
		if !ok {
			return
		}
		tp, _, err := c.ClockTimePage(h)
		if err != nil {
			k.log.Debug("the clock offers no time page: programs get no vDSO", "error", err)
			return
		}
		k.timeHandle = tp
	})
	return k.timeHandle
}

// mapVDSO maps the clock's time page and the vDSO image into m's space
// and records them as m's areas, so that fork shares them and execve's
// new map gets its own. It returns the image's address for
// AT_SYSINFO_EHDR, or 0 when the process goes without a vDSO.
func (k *kernel) mapVDSO(c *vmm.Caller, m *mm) uint64 {
	tp := k.timePage(c)
	if tp == 0 {
		return 0
	}
	fail := func(what string, err error) uint64 {
		k.log.Debug("no vDSO for a process", "step", what, "error", err)
		return 0
	}
	page, _, err := c.HandleDerive(tp, uint64(abi.RightRead|abi.RightMap|abi.RightDerive|abi.RightGrant), 0)
	if err != nil {
		return fail("handle_derive", err)
	}
	if _, _, err := c.SpaceMap(m.space, page, vdsoData, 0, pageSize, abi.PermRead); err != nil {
		c.HandleClose(page)
		return fail("space_map time page", err)
	}
	m.mu.Lock()
	m.insert(&vma{start: vdsoData, end: vdsoData + pageSize, prot: protRead, region: page})
	m.mu.Unlock()
	r, _, err := c.RegionCreate(m.space, vdsoSize)
	if err != nil {
		return fail("region_create", err)
	}
	if _, _, err := c.RegionWrite(r, 0, vdsoImageBytes); err != nil {
		c.HandleClose(r)
		return fail("region_write", err)
	}
	if _, _, err := c.SpaceMap(m.space, r, vdsoImage, 0, vdsoSize, abi.PermRead|abi.PermExec); err != nil {
		c.HandleClose(r)
		return fail("space_map image", err)
	}
	m.mu.Lock()
	m.insert(&vma{start: vdsoImage, end: vdsoImage + vdsoSize, prot: protRead | protExec, region: r})
	m.vdso = vdsoImage
	m.mu.Unlock()
	return vdsoImage
}
