package abi

import "encoding/binary"

// The files service's operations beyond open, list, read, write and size:
// what a POSIX personality needs for stat, the namespace (unlink, mkdir,
// rename, links), metadata (chmod, truncate, times) and directories read
// through a handle. Paths are as files_open takes them: relative,
// '/'-separated, resolved beneath the root one component at a time, so no
// path, however many links deep, reaches a host file outside it.
var fileOps = map[Op]OpInfo{
	OpFilesStat: {
		Name: "files_stat", Iface: IfaceFiles, Rights: RightRead,

		Errors: append([]OpError{{ErrInvalidArg, "flags has unknown bits, or the path is malformed"}}, filesHost...),
		Args: []Arg{
			{"path", ArgIn, "a path under the root; empty for the root itself"},
			{"flags", ArgValue, "NV_STAT_NOFOLLOW to describe a symbolic link itself, not what it leads to"},
			{"buf", ArgOut, "receives an nv_stat record"},
		},
		R0:  "the size of the whole record (a shorter buffer gets its first bytes: records only grow at the end)",
		Doc: "Describes a file under a files root as an nv_stat record: its type, permission bits, size, links, owner, inode, device, blocks and times. A symbolic link is followed, within the root only (NV_EDENIED for one leading out), unless NV_STAT_NOFOLLOW is given.",
	},
	OpFileStat: {
		Name: "file_stat", Iface: IfaceFile,

		Errors: filesHost,
		Args:   []Arg{{"buf", ArgOut, "receives an nv_stat record"}},
		R0:     "the size of the whole record (a shorter buffer gets its first bytes)",
		Doc:    "Describes an open file or directory as files_stat does its name. Needs no rights, so a file open only for writing can be described too.",
	},
	OpFilesUnlink: {
		Name: "files_unlink", Iface: IfaceFiles, Rights: RightWrite,

		Errors: append([]OpError{filesWrite}, filesHost...),
		Args:   []Arg{{"path", ArgIn, "the name to remove"}},
		Doc:    "Removes a name that is not a directory (NV_EISDIR for one). A symbolic link is removed itself, never what it leads to. Needs a writable root.",
	},
	OpFilesMkdir: {
		Name: "files_mkdir", Iface: IfaceFiles, Rights: RightWrite,

		Errors: append([]OpError{{ErrInvalidArg, "mode is beyond 07777, or the path is malformed"}, filesWrite}, filesHost...),
		Args:   []Arg{{"path", ArgIn, "the directory to create"}, {"mode", ArgValue, "its permission bits (at most 07777), less the monitor's umask"}},
		Doc:    "Creates a directory (NV_EEXISTS if the name exists, even as a dangling link). Needs a writable root.",
	},
	OpFilesRmdir: {
		Name: "files_rmdir", Iface: IfaceFiles, Rights: RightWrite,

		Errors: append([]OpError{filesWrite}, filesHost...),
		Args:   []Arg{{"path", ArgIn, "the directory to remove"}},
		Doc:    "Removes an empty directory: NV_ENOTEMPTY when it holds entries, NV_ENOTDIR for anything else (a link to a directory included). Needs a writable root.",
	},
	OpFilesRename: {
		Name: "files_rename", Iface: IfaceFiles, Rights: RightWrite,

		Errors: append([]OpError{filesWrite}, filesHost...),
		Args:   []Arg{{"paths", ArgIn, "the old path, a NUL byte, then the new path"}},
		Doc:    "Renames an entry within the root, replacing what the new name held (a non-directory, or an empty directory when the entry is one). A link as the last component of either path is not followed: the link itself moves or is replaced. Both paths travel in one buffer, so the call reaches a port's server whole. Needs a writable root.",
	},
	OpFilesSymlink: {
		Name: "files_symlink", Iface: IfaceFiles, Rights: RightWrite,

		Errors: append([]OpError{filesWrite}, filesHost...),
		Args:   []Arg{{"paths", ArgIn, "the link's target text, a NUL byte, then the path of the link to create"}},
		Doc:    "Creates a symbolic link holding the target text as given, which may name anything: following the link later is confined like any path (NV_EDENIED where it leads out of the root). Needs a writable root.",
	},
	OpFilesReadlink: {
		Name: "files_readlink", Iface: IfaceFiles, Rights: RightRead,

		Errors: append([]OpError{{ErrInvalidArg, "the path names no symbolic link, or is malformed"}}, filesHost...),
		Args:   []Arg{{"path", ArgIn, "a symbolic link"}, {"buf", ArgOut, "receives the target text, with no NUL byte"}},
		R0:     "the length of the whole target (more than the buffer means it was cut)",
		Doc:    "Reads the target text of a symbolic link (NV_EINVAL for anything else): the text as stored, whether or not it leads inside the root.",
	},
	OpFilesChmod: {
		Name: "files_chmod", Iface: IfaceFiles, Rights: RightWrite,

		Errors: append([]OpError{{ErrInvalidArg, "mode is beyond 07777, or the path is malformed"}, filesWrite}, filesHost...),
		Args:   []Arg{{"path", ArgIn, "a file or directory (a link is followed, within the root)"}, {"mode", ArgValue, "the permission bits, at most 07777"}},
		Doc:    "Sets a file's permission bits. Needs a writable root.",
	},
	OpFilesTruncate: {
		Name: "files_truncate", Iface: IfaceFiles, Rights: RightWrite,

		Errors: append([]OpError{{ErrInvalidArg, "the path names no regular file, or is malformed"}, filesWrite}, filesHost...),
		Args:   []Arg{{"path", ArgIn, "a regular file (a link is followed, within the root)"}, {"size", ArgValue, "its new size: shorter cuts it, longer adds zeros"}},
		Doc:    "Sets a regular file's size (NV_EISDIR for a directory, NV_EINVAL for another kind). Needs a writable root.",
	},
	OpFilesUtimes: {
		Name: "files_utimes", Iface: IfaceFiles, Rights: RightWrite,

		Errors: append([]OpError{filesWrite}, filesHost...),
		Args: []Arg{
			{"path", ArgIn, "a file or directory (a link is followed, within the root)"},
			{"atime_ns", ArgValue, "the access time in nanoseconds since the Unix epoch (as int64), NV_UTIME_NOW or NV_UTIME_OMIT"},
			{"mtime_ns", ArgValue, "the modification time, likewise"},
		},
		Doc: "Sets a file's access and modification times. Needs a writable root.",
	},
	OpFileReaddir: {
		Name: "file_readdir", Iface: IfaceFile, Rights: RightRead,

		Errors: append([]OpError{{ErrTooBig, "the buffer cannot hold the first entry"}, {ErrNotDir, "the handle was not opened with NV_OPEN_DIR"}}, filesHost...),
		Args: []Arg{
			{"offset", ArgValue, "the index of the first entry to report: 0 at first, then R1 of the last call"},
			{"buf", ArgOut, "receives nv_dirent records, each followed by its name, a NUL byte, and zeros up to a multiple of 8 bytes"},
		},
		R0:  "the bytes written; 0 past the last entry",
		R1:  "the offset of the entry after the last one written",
		Doc: "Reads the entries of a directory opened with NV_OPEN_DIR, sorted by name, without '.' and '..', each with the type and inode the directory holds for it (no stat per entry). Only whole entries are written: a buffer too small for the first gets NV_ETOOBIG. Offsets index the sorted list, so a directory changed between calls may show an entry twice or skip one.",
	},
}

// Flags of files_stat.
const (
	StatNoFollow = 1 << 0 // describe a symbolic link itself (lstat)
)

// File types, in Stat.Type and DirEntry.Type.
const (
	FileTypeOther   = 0 // none of the others, or unknown
	FileTypeRegular = 1
	FileTypeDir     = 2
	FileTypeSymlink = 3
	FileTypeChar    = 4 // a character device
	FileTypeBlock   = 5 // a block device
	FileTypeFIFO    = 6
	FileTypeSocket  = 7
)

// Special times of files_utimes.
const (
	UtimeNow  = ^uint64(0)     // the host's current time
	UtimeOmit = ^uint64(0) - 1 // leave this time as it is
)

// PathPair is the paths argument of files_rename and files_symlink: a, a
// NUL byte, then b.
func PathPair(a, b string) []byte {
	return append(append(append(make([]byte, 0, len(a)+1+len(b)), a...), 0), b...)
}

// NextDirEntry decodes the first entry of b, laid out as file_readdir
// writes entries: the DirEntry, its name, a NUL byte and zeros up to a
// multiple of 8. It returns the entry, its name and the rest of b; ok is
// false when b does not start with a whole, well-formed entry.
func NextDirEntry(b []byte) (ent DirEntry, name string, rest []byte, ok bool) {
	const hdr = 16 // the size of DirEntry
	if len(b) < hdr {
		return ent, "", b, false
	}
	ent.Inode = binary.LittleEndian.Uint64(b)
	ent.Type = binary.LittleEndian.Uint32(b[8:])
	ent.NameLen = binary.LittleEndian.Uint32(b[12:])
	size := (uint64(hdr) + uint64(ent.NameLen) + 1 + 7) &^ 7
	if size > uint64(len(b)) || b[hdr+int(ent.NameLen)] != 0 {
		return ent, "", b, false
	}
	return ent, string(b[hdr : hdr+int(ent.NameLen)]), b[size:], true
}

func init() {
	for op, info := range fileOps {
		Ops[op] = info
	}
}

// Errors of the files service. filesHost are the host file system's
// failures as the service maps them (so a POSIX personality can turn them
// back into errno values); any operation reaching a host file can get
// them.
var (
	filesTableFull = OpError{ErrQuota, "the caller's handle table is full"}
	filesWrite     = OpError{ErrDenied, "the root handle lacks write, the root is read-only, or the path leads out of the root"}
	filesHost      = []OpError{
		{ErrDenied, "the host refused access, or a path or link leads out of the root"},
		{ErrNotFound, "a path names nothing"},
		{ErrNotDir, "a path component is not a directory"},
		{ErrIsDir, "a path names a directory where the operation needs another kind"},
		{ErrNotEmpty, "a directory to remove or replace holds entries"},
		{ErrExists, "a name to create exists"},
		{ErrLoop, "a path leads through too many symbolic links"},
		{ErrCrossDev, "a rename would cross host file systems"},
		{ErrNoSpace, "the host file system or quota is full"},
		{ErrInvalidArg, "a path is empty where a name is needed, absolute, or holds a NUL byte; or the host refused an argument"},
		{ErrTooBig, "a path is longer than the service accepts, or a name or file is beyond the host's limits"},
		{ErrPeerGone, "the files service was closed"},
		{ErrIO, "any other host failure"},
	}
)
