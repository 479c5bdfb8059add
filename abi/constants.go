package abi

// Constant is a plain constant of the ABI: its Go name in this package,
// the name the C header gives it, its value and what it means. Constants
// is the one list of them; the header and docs/abi.md are generated from
// it, and a test checks it against the constants this package declares.
type Constant struct {
	Name  string // the Go name
	CName string // the C name
	Value uint64
	Doc   string
}

// Constants are the plain constants of the ABI, in the order the header
// defines them.
var Constants = []Constant{
	{"Version", "NESTVM_ABI_VERSION", Version, "bumped on any change a guest could observe"},
	{"PageSize", "NV_PAGE_SIZE", PageSize, "the smallest mapping unit"},
	{"ReservedBase", "NV_RESERVED_BASE", ReservedBase, "start of the monitor's range in every space"},
	{"ReservedTop", "NV_RESERVED_TOP", ReservedTop, "end of the monitor's range"},
	{"ABIPage", "NV_ABI_PAGE", ABIPage, "the read-only ABI page"},
	{"ABIEntry", "NV_ABI_ENTRY", ABIEntry, "the entry point of every operation"},
	{"NullTrapEntry", "NV_NULLTRAP_ENTRY", NullTrapEntry, "a function that only traps and returns (benchmarks)"},
	{"UserBase", "NV_USER_BASE", UserBase, "lowest address a program may load or map at"},
	{"UserTop", "NV_USER_TOP", UserTop, "one past the highest such address"},
	{"MaxBuffer", "NV_MAX_BUFFER", MaxBuffer, "the longest buffer one operation accepts"},
	{"MaxReason", "NV_MAX_REASON", MaxReason, "space_abort: the most of a reason it keeps"},
	{"MaxArgSlots", "NV_MAX_ARG_SLOTS", MaxArgSlots, "argument slots of an operation"},
	{"NoHandle", "NV_NO_HANDLE", NoHandle, "the handle number that names nothing"},
	{"ClockMonotonic", "NV_CLOCK_MONOTONIC", ClockMonotonic, "clock_read: time since an arbitrary point"},
	{"ClockRealtime", "NV_CLOCK_REALTIME", ClockRealtime, "clock_read: time since the Unix epoch"},
	{"TimeTSC", "NV_TIME_TSC", TimeTSC, "nv_time_page.flags: extrapolate the record with rdtsc"},
	{"StartMagic", "NV_START_MAGIC", StartMagic, "nv_start_info.magic"},
	{"AuxStartInfo", "NV_AT_STARTINFO", AuxStartInfo, "auxv type whose value is the nv_start_info address"},
	{"FXSaveSize", "NV_FXSAVE_SIZE", FXSaveSize, "size of the x87/SSE state"},
	{"PermRead", "NV_PERM_READ", PermRead, "space_map: readable"},
	{"PermWrite", "NV_PERM_WRITE", PermWrite, "space_map: writable"},
	{"PermExec", "NV_PERM_EXEC", PermExec, "space_map: executable"},
	{"PermAll", "NV_PERM_ALL", PermAll, "space_map: every permission"},
	{"SpaceRunning", "NV_SPACE_RUNNING", SpaceRunning, "space_status: not ended"},
	{"SpaceExited", "NV_SPACE_EXITED", SpaceExited, "space_status: its last thread exited"},
	{"SpaceKilled", "NV_SPACE_KILLED", SpaceKilled, "space_status: killed"},
	{"ThreadNew", "NV_THREAD_NEW", ThreadNew, "thread_status: never started"},
	{"ThreadRunning", "NV_THREAD_RUNNING", ThreadRunning, "thread_status: running or blocked"},
	{"ThreadStopped", "NV_THREAD_STOPPED", ThreadStopped, "thread_status: stopped"},
	{"ThreadExited", "NV_THREAD_EXITED", ThreadExited, "thread_status: ended"},
	{"OpenRead", "NV_OPEN_READ", OpenRead, "files_open: allow reads"},
	{"OpenWrite", "NV_OPEN_WRITE", OpenWrite, "files_open: allow writes"},
	{"OpenCreate", "NV_OPEN_CREATE", OpenCreate, "files_open: create if missing"},
	{"OpenTruncate", "NV_OPEN_TRUNCATE", OpenTruncate, "files_open: empty the file"},
	{"OpenDir", "NV_OPEN_DIR", OpenDir, "files_open: open a directory (for file_readdir, file_stat)"},
	{"OpenExclusive", "NV_OPEN_EXCL", OpenExclusive, "files_open: with NV_OPEN_CREATE, fail if the name exists"},
	{"StatNoFollow", "NV_STAT_NOFOLLOW", StatNoFollow, "files_stat: describe a symbolic link itself"},
	{"FileTypeOther", "NV_FT_OTHER", FileTypeOther, "nv_stat.type, nv_dirent.type: none of the others, or unknown"},
	{"FileTypeRegular", "NV_FT_REGULAR", FileTypeRegular, "file type: a regular file"},
	{"FileTypeDir", "NV_FT_DIR", FileTypeDir, "file type: a directory"},
	{"FileTypeSymlink", "NV_FT_SYMLINK", FileTypeSymlink, "file type: a symbolic link"},
	{"FileTypeChar", "NV_FT_CHAR", FileTypeChar, "file type: a character device"},
	{"FileTypeBlock", "NV_FT_BLOCK", FileTypeBlock, "file type: a block device"},
	{"FileTypeFIFO", "NV_FT_FIFO", FileTypeFIFO, "file type: a FIFO"},
	{"FileTypeSocket", "NV_FT_SOCKET", FileTypeSocket, "file type: a socket"},
	{"UtimeNow", "NV_UTIME_NOW", UtimeNow, "files_utimes: the current time"},
	{"UtimeOmit", "NV_UTIME_OMIT", UtimeOmit, "files_utimes: leave this time unchanged"},
	{"MsgCall", "NV_MSG_CALL", MsgCall, "nv_msg.kind: an operation invoked on a port"},
	{"MsgSend", "NV_MSG_SEND", MsgSend, "nv_msg.kind: a one-way message"},
	{"MsgFault", "NV_MSG_FAULT", MsgFault, "nv_msg.kind: a thread fault"},
	{"MsgPage", "NV_MSG_PAGE", MsgPage, "nv_msg.kind: a page request"},
	{"MsgExit", "NV_MSG_EXIT", MsgExit, "nv_msg.kind: a space ended"},
	{"FaultWordVector", "NV_FW_VECTOR", FaultWordVector, "nv_msg.words index: exception vector"},
	{"FaultWordError", "NV_FW_ERROR", FaultWordError, "nv_msg.words index: error code"},
	{"FaultWordAddr", "NV_FW_ADDR", FaultWordAddr, "nv_msg.words index: faulting address"},
	{"FaultWordRIP", "NV_FW_RIP", FaultWordRIP, "nv_msg.words index: faulting instruction"},
	{"FaultWordThread", "NV_FW_THREAD", FaultWordThread, "nv_msg.words index: thread number"},
	{"FaultWordOffset", "NV_FW_OFFSET", FaultWordOffset, "nv_msg.words index: page offset in the region"},
	{"VecSyscall", "NV_VEC_SYSCALL", VecSyscall, "nv_msg.words[NV_FW_VECTOR] of a thread that executed syscall"},
	{"FaultResume", "NV_FAULT_RESUME", FaultResume, "fault reply: retry the instruction"},
	{"FaultResumeState", "NV_FAULT_RESUME_STATE", FaultResumeState, "fault reply: resume with the state sent"},
	{"FaultKill", "NV_FAULT_KILL", FaultKill, "fault reply: kill the space"},
	{"MsgHandles", "NV_MSG_HANDLES", MsgHandles, "handles one message carries at most"},
	{"StateOwned", "NV_STATE_OWNED", StateOwned, "nv_space_map, nv_space_handle flags: charged to this space"},
	{"IdentServed", "NV_IDENT_SERVED", IdentServed, "nv_handle_identity flags: a port the monitor's own code serves"},
	{"InsertMove", "NV_INSERT_MOVE", InsertMove, "space_insert_at: move the handle, do not copy it"},
	{"DirtyEver", "NV_DIRTY_EVER", DirtyEver, "region_dirty: every page written since the region was created"},
}
