// Package cheader writes the C header guests compile against, from the Go
// definition of the ABI in package abi. The header is generated, never
// edited: abi is the one definition, and a test fails when the committed
// header differs from what Generate returns.
package cheader

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"nestvm/abi"
)

// Records are the record types the header declares, in order, with their C
// names. A new record is added here.
var Records = []struct {
	Name string
	Type reflect.Type
}{
	{"nv_start_info", reflect.TypeOf(abi.StartInfo{})},
	{"nv_thread_regs", reflect.TypeOf(abi.ThreadRegs{})},
	{"nv_thread_state", reflect.TypeOf(abi.ThreadState{})},
	{"nv_msg", reflect.TypeOf(abi.Msg{})},
	{"nv_space_state", reflect.TypeOf(abi.SpaceState{})},
	{"nv_space_map", reflect.TypeOf(abi.SpaceMapEntry{})},
	{"nv_space_handle", reflect.TypeOf(abi.SpaceHandleEntry{})},
	{"nv_space_thread", reflect.TypeOf(abi.SpaceThreadEntry{})},
	{"nv_region_state", reflect.TypeOf(abi.RegionState{})},
	{"nv_port_state", reflect.TypeOf(abi.PortState{})},
	{"nv_port_set_state", reflect.TypeOf(abi.PortSetState{})},
	{"nv_stat", reflect.TypeOf(abi.Stat{})},
	{"nv_dirent", reflect.TypeOf(abi.DirEntry{})},
	{"nv_time_page", reflect.TypeOf(abi.TimePage{})},
}

// Constants are the plain constants the header defines, in order.
var Constants = []struct {
	Name  string
	Value uint64
	Doc   string
}{
	{"NESTVM_ABI_VERSION", abi.Version, "bumped on any change a guest could observe"},
	{"NV_PAGE_SIZE", abi.PageSize, "the smallest mapping unit"},
	{"NV_RESERVED_BASE", abi.ReservedBase, "start of the monitor's range in every space"},
	{"NV_RESERVED_TOP", abi.ReservedTop, "end of the monitor's range"},
	{"NV_ABI_PAGE", abi.ABIPage, "the read-only ABI page"},
	{"NV_ABI_ENTRY", abi.ABIEntry, "the entry point of every operation"},
	{"NV_NULLTRAP_ENTRY", abi.NullTrapEntry, "a function that only traps and returns (benchmarks)"},
	{"NV_USER_BASE", abi.UserBase, "lowest address a program may load or map at"},
	{"NV_USER_TOP", abi.UserTop, "one past the highest such address"},
	{"NV_MAX_BUFFER", abi.MaxBuffer, "the longest buffer one operation accepts"},
	{"NV_MAX_ARG_SLOTS", abi.MaxArgSlots, "argument slots of an operation"},
	{"NV_NO_HANDLE", abi.NoHandle, "the handle number that names nothing"},
	{"NV_CLOCK_MONOTONIC", abi.ClockMonotonic, "clock_read: time since an arbitrary point"},
	{"NV_CLOCK_REALTIME", abi.ClockRealtime, "clock_read: time since the Unix epoch"},
	{"NV_TIME_TSC", abi.TimeTSC, "nv_time_page.flags: extrapolate the record with rdtsc"},
	{"NV_START_MAGIC", abi.StartMagic, "nv_start_info.magic"},
	{"NV_AT_STARTINFO", abi.AuxStartInfo, "auxv type whose value is the nv_start_info address"},
	{"NV_FXSAVE_SIZE", abi.FXSaveSize, "size of the x87/SSE state"},
	{"NV_PERM_READ", abi.PermRead, "space_map: readable"},
	{"NV_PERM_WRITE", abi.PermWrite, "space_map: writable"},
	{"NV_PERM_EXEC", abi.PermExec, "space_map: executable"},
	{"NV_SPACE_RUNNING", abi.SpaceRunning, "space_status: not ended"},
	{"NV_SPACE_EXITED", abi.SpaceExited, "space_status: its last thread exited"},
	{"NV_SPACE_KILLED", abi.SpaceKilled, "space_status: killed"},
	{"NV_THREAD_NEW", abi.ThreadNew, "thread_status: never started"},
	{"NV_THREAD_RUNNING", abi.ThreadRunning, "thread_status: running or blocked"},
	{"NV_THREAD_STOPPED", abi.ThreadStopped, "thread_status: stopped"},
	{"NV_THREAD_EXITED", abi.ThreadExited, "thread_status: ended"},
	{"NV_OPEN_READ", abi.OpenRead, "files_open: allow reads"},
	{"NV_OPEN_WRITE", abi.OpenWrite, "files_open: allow writes"},
	{"NV_OPEN_CREATE", abi.OpenCreate, "files_open: create if missing"},
	{"NV_OPEN_TRUNCATE", abi.OpenTruncate, "files_open: empty the file"},
	{"NV_OPEN_DIR", abi.OpenDir, "files_open: open a directory (for file_readdir, file_stat)"},
	{"NV_OPEN_EXCL", abi.OpenExclusive, "files_open: with NV_OPEN_CREATE, fail if the name exists"},
	{"NV_STAT_NOFOLLOW", abi.StatNoFollow, "files_stat: describe a symbolic link itself"},
	{"NV_FT_OTHER", abi.FileTypeOther, "nv_stat.type, nv_dirent.type: none of the others, or unknown"},
	{"NV_FT_REGULAR", abi.FileTypeRegular, "file type: a regular file"},
	{"NV_FT_DIR", abi.FileTypeDir, "file type: a directory"},
	{"NV_FT_SYMLINK", abi.FileTypeSymlink, "file type: a symbolic link"},
	{"NV_FT_CHAR", abi.FileTypeChar, "file type: a character device"},
	{"NV_FT_BLOCK", abi.FileTypeBlock, "file type: a block device"},
	{"NV_FT_FIFO", abi.FileTypeFIFO, "file type: a FIFO"},
	{"NV_FT_SOCKET", abi.FileTypeSocket, "file type: a socket"},
	{"NV_UTIME_NOW", abi.UtimeNow, "files_utimes: the current time"},
	{"NV_UTIME_OMIT", abi.UtimeOmit, "files_utimes: leave this time unchanged"},
	{"NV_MSG_CALL", abi.MsgCall, "nv_msg.kind: an operation invoked on a port"},
	{"NV_MSG_SEND", abi.MsgSend, "nv_msg.kind: a one-way message"},
	{"NV_MSG_FAULT", abi.MsgFault, "nv_msg.kind: a thread fault"},
	{"NV_MSG_PAGE", abi.MsgPage, "nv_msg.kind: a page request"},
	{"NV_MSG_EXIT", abi.MsgExit, "nv_msg.kind: a space ended"},
	{"NV_FW_VECTOR", abi.FaultWordVector, "nv_msg.words index: exception vector"},
	{"NV_FW_ERROR", abi.FaultWordError, "nv_msg.words index: error code"},
	{"NV_FW_ADDR", abi.FaultWordAddr, "nv_msg.words index: faulting address"},
	{"NV_FW_RIP", abi.FaultWordRIP, "nv_msg.words index: faulting instruction"},
	{"NV_FW_THREAD", abi.FaultWordThread, "nv_msg.words index: thread number"},
	{"NV_FW_OFFSET", abi.FaultWordOffset, "nv_msg.words index: page offset in the region"},
	{"NV_VEC_SYSCALL", abi.VecSyscall, "nv_msg.words[NV_FW_VECTOR] of a thread that executed syscall"},
	{"NV_FAULT_RESUME", abi.FaultResume, "fault reply: retry the instruction"},
	{"NV_FAULT_RESUME_STATE", abi.FaultResumeState, "fault reply: resume with the state sent"},
	{"NV_FAULT_KILL", abi.FaultKill, "fault reply: kill the space"},
	{"NV_MSG_HANDLES", abi.MsgHandles, "handles one message carries at most"},
	{"NV_STATE_OWNED", abi.StateOwned, "nv_space_map, nv_space_handle flags: charged to this space"},
	{"NV_INSERT_MOVE", abi.InsertMove, "space_insert_at: move the handle, do not copy it"},
	{"NV_DIRTY_EVER", abi.DirtyEver, "region_dirty: every page written since the region was created"},
}

// Generate returns the header.
func Generate() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`/* nestvm_abi.h: the nestvm guest ABI.
 *
 * Generated from package nestvm/abi by "go generate ./abi"; do not edit.
 *
 * Every operation is invoked on a handle (a small integer naming an object
 * in the caller's own handle table) by calling NV_ABI_ENTRY with the System
 * V calling convention: handle and operation in rdi and rsi, arguments
 * a0..a3 in rdx, rcx, r8, r9, a4 and a5 on the stack. R0 comes back in rax:
 * a value >= 0, or a negated error code (NV_E...). Some operations also
 * return R1 in rdx. Guest addresses in records are plain integers
 * (nv_addr_t), never pointers.
 */
#ifndef NESTVM_ABI_H
#define NESTVM_ABI_H

#include <stdint.h>

`)
	for _, c := range Constants {
		p("#define %-20s %#xull /* %s */\n", c.Name, c.Value, c.Doc)
	}

	p("\n/* Error codes: operations return them negated in R0. */\nenum nv_error {\n")
	for e := abi.OK; e < abi.ErrCount; e++ {
		p("\t%s = %d, /* %s */\n", abi.ErrorSymbols[e], e, e.Error())
	}
	p("\tNV_ERR_COUNT = %d\n};\n", abi.ErrCount)

	p("\n/* Rights: what a handle allows. Derived handles only lose rights. */\n")
	for i, name := range abi.RightSymbols {
		p("#define %-14s %#xu /* %s */\n", name, 1<<i, abi.Rights(1<<i))
	}
	p("#define %-14s %#xu\n", "NV_R_ALL", uint32(abi.RightsAll))

	p("\n/* Object types, as handle_info reports them. */\nenum nv_object_type {\n")
	for o := abi.ObjNone; o < abi.ObjectCount; o++ {
		p("\t%s = %d,\n", abi.ObjectSymbols[o], o)
	}
	p("\tNV_OBJ_COUNT = %d\n};\n", abi.ObjectCount)

	p("\n/* Operations. 0 is reserved; numbers are never reused. */\nenum nv_op {\n\tNV_OP_NONE = 0,\n")
	for op := abi.Op(1); op < abi.OpCount; op++ {
		info := abi.Ops[op]
		p("\t%s = %d, /* %s: %s */\n", opSymbol(op), op, info.Iface, firstSentence(info.Doc))
	}
	p("\tNV_OP_COUNT = %d\n};\n", abi.OpCount)

	p(`
typedef uint64_t nv_handle_t;
typedef uint64_t nv_addr_t;

/* What every operation returns: R0 in rax, R1 in rdx. */
typedef struct nv_result {
	int64_t r0;
	uint64_t r1;
} nv_result_t;

typedef nv_result_t (*nv_entry_fn)(uint64_t h, uint64_t op, uint64_t a0, uint64_t a1,
				   uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5);

/* nv_invoke performs operation op on handle h. */
static inline nv_result_t nv_invoke(nv_handle_t h, uint64_t op, uint64_t a0, uint64_t a1,
				    uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5)
{
	return ((nv_entry_fn)NV_ABI_ENTRY)(h, op, a0, a1, a2, a3, a4, a5);
}
`)
	for op := abi.Op(1); op < abi.OpCount; op++ {
		writeWrapper(&b, op)
	}

	p("\n/* Records. Fields are fixed-width; records only grow at the end. */\n")
	for _, r := range Records {
		writeRecord(&b, r.Name, r.Type)
	}
	p("\n#endif /* NESTVM_ABI_H */\n")
	return b.Bytes()
}

// opSymbol is the C name of op's number.
func opSymbol(op abi.Op) string { return "NV_OP_" + strings.ToUpper(abi.Ops[op].Name) }

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// writeWrapper writes nv_<name>() and nv_<name>_r() for op.
func writeWrapper(b *bytes.Buffer, op abi.Op) {
	info := abi.Ops[op]
	var params, slots, docs []string
	params = append(params, "nv_handle_t h")
	for _, a := range info.Args {
		switch a.Kind {
		case abi.ArgValue:
			params = append(params, "uint64_t "+a.Name)
			slots = append(slots, a.Name)
			docs = append(docs, fmt.Sprintf(" *   %s (IN): %s", a.Name, a.Doc))
		case abi.ArgHandle:
			params = append(params, "nv_handle_t "+a.Name)
			slots = append(slots, a.Name)
			docs = append(docs, fmt.Sprintf(" *   %s (IN, handle): %s", a.Name, a.Doc))
		case abi.ArgIn:
			params = append(params, "nv_addr_t "+a.Name, "uint64_t "+a.Name+"_len")
			slots = append(slots, a.Name, a.Name+"_len")
			docs = append(docs, fmt.Sprintf(" *   %s, %s_len (IN buffer): %s", a.Name, a.Name, a.Doc))
		case abi.ArgOut:
			params = append(params, "nv_addr_t "+a.Name, "uint64_t "+a.Name+"_cap")
			slots = append(slots, a.Name, a.Name+"_cap")
			docs = append(docs, fmt.Sprintf(" *   %s, %s_cap (OUT buffer): %s", a.Name, a.Name, a.Doc))
		}
	}
	for len(slots) < abi.MaxArgSlots {
		slots = append(slots, "0")
	}
	fmt.Fprintf(b, "\n/* nv_%s: %s\n", info.Name, info.Doc)
	fmt.Fprintf(b, " * Interface: %s. Rights needed: %s.\n", info.Iface, info.Rights)
	for _, d := range docs {
		fmt.Fprintln(b, d)
	}
	if info.R0 != "" {
		fmt.Fprintf(b, " * R0: %s.\n", info.R0)
	}
	if info.R1 != "" {
		fmt.Fprintf(b, " * R1: %s.\n", info.R1)
	}
	if info.NoReturn {
		fmt.Fprintln(b, " * Does not return on success; returns a negated error code otherwise.")
	}
	fmt.Fprintln(b, " */")
	sig := strings.Join(params, ", ")
	fmt.Fprintf(b, "static inline nv_result_t nv_%s_r(%s)\n{\n\treturn nv_invoke(h, %s, %s);\n}\n", info.Name, sig, opSymbol(op), strings.Join(slots, ", "))
	fmt.Fprintf(b, "static inline int64_t nv_%s(%s)\n{\n\treturn nv_%s_r(%s).r0;\n}\n", info.Name, sig, info.Name, strings.Join(argNames(params), ", "))
}

func argNames(params []string) []string {
	out := make([]string, len(params))
	for i, p := range params {
		out[i] = p[strings.LastIndex(p, " ")+1:]
	}
	return out
}

// CName returns the C name of a Go field: snake case.
func CName(goName string) string {
	var out []rune
	rs := []rune(goName)
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]))) && !unicode.IsDigit(rs[i-1]) {
			out = append(out, '_')
		}
		out = append(out, unicode.ToLower(r))
	}
	return string(out)
}

func recordName(t reflect.Type) string {
	for _, r := range Records {
		if r.Type == t {
			return r.Name
		}
	}
	panic("cheader: record type " + t.Name() + " is not in Records")
}

// cType returns the C type of t and the array suffix of a field of that type.
func cType(t reflect.Type) (string, string) {
	switch t.Kind() {
	case reflect.Uint64:
		return "uint64_t", ""
	case reflect.Uint32:
		return "uint32_t", ""
	case reflect.Uint16:
		return "uint16_t", ""
	case reflect.Uint8:
		return "uint8_t", ""
	case reflect.Int64:
		return "int64_t", ""
	case reflect.Int32:
		return "int32_t", ""
	case reflect.Array:
		et, _ := cType(t.Elem())
		return et, fmt.Sprintf("[%d]", t.Len())
	case reflect.Struct:
		return "struct " + recordName(t), ""
	}
	panic("cheader: unsupported field type " + t.String())
}

func writeRecord(b *bytes.Buffer, name string, t reflect.Type) {
	fmt.Fprintf(b, "\nstruct %s {\n", name)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		ct, suffix := cType(f.Type)
		fmt.Fprintf(b, "\t%s %s%s;\n", ct, CName(f.Name), suffix)
	}
	fmt.Fprintf(b, "};\n_Static_assert(sizeof(struct %s) == %d, \"struct %s size\");\n", name, t.Size(), name)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fmt.Fprintf(b, "_Static_assert(__builtin_offsetof(struct %s, %s) == %d, \"%s.%s offset\");\n",
			name, CName(f.Name), f.Offset, name, CName(f.Name))
	}
}
