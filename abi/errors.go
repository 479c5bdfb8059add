package abi

import (
	"errors"
	"fmt"
)

// Error is a result code at the guest boundary. Operations return it
// negated in R0; 0 means success. Inside the monitor it is an ordinary Go
// error, matched with errors.Is.
type Error int32

// Error codes. Numbers are never reused; new codes go just before ErrCount.
const (
	OK            Error = iota // success
	ErrInvalidOp               // the operation number is unknown, or (for a port's server) not one it answers
	ErrBadHandle               // the handle number names nothing in the caller's table
	ErrRights                  // the handle lacks a right the operation needs
	ErrInvalidArg              // an argument is out of range or malformed
	ErrBadAddress              // a guest address is unmapped, reserved, or lacks the access needed
	ErrNoMemory                // the monitor could not allocate memory for the operation
	ErrQuota                   // the operation would exceed one of the space's quotas
	ErrTooBig                  // a length or count is beyond what the operation accepts
	ErrWrongType               // the operation is valid but the handle's object does not implement its interface
	ErrPeerGone                // the other end (a port's server, a region's keeper) is gone
	ErrDenied                  // a reference monitor or the files root refused the operation
	ErrNotFound                // the named thing (a file, an entry) does not exist
	ErrExists                  // the named thing already exists
	ErrIO                      // the host failed to perform the I/O behind the operation
	ErrWouldBlock              // a non-blocking operation would have to wait
	ErrBusy                    // the object is in a state that does not allow the operation
	ErrTimeout                 // the time limit of a wait ran out
	ErrNotEmpty                // a directory to remove, or to rename over, is not empty
	ErrNotDir                  // a path names something that is not a directory where one is needed
	ErrIsDir                   // a path names a directory where one is not allowed
	ErrLoop                    // a path leads through too many symbolic links, or (no-follow) ends in one
	ErrCrossDev                // a rename would move an entry to another file system
	ErrNoSpace                 // the host file system is full
	ErrCount                   // number of error codes; not an error
)

var errorNames = [...]string{
	OK:            "ok",
	ErrInvalidOp:  "invalid operation",
	ErrBadHandle:  "bad handle",
	ErrRights:     "insufficient rights",
	ErrInvalidArg: "invalid argument",
	ErrBadAddress: "bad address",
	ErrNoMemory:   "out of memory",
	ErrQuota:      "quota exceeded",
	ErrTooBig:     "too big",
	ErrWrongType:  "wrong object type",
	ErrPeerGone:   "peer gone",
	ErrDenied:     "denied",
	ErrNotFound:   "not found",
	ErrExists:     "already exists",
	ErrIO:         "i/o error",
	ErrWouldBlock: "would block",
	ErrBusy:       "busy",
	ErrTimeout:    "timed out",
	ErrNotEmpty:   "directory not empty",
	ErrNotDir:     "not a directory",
	ErrIsDir:      "is a directory",
	ErrLoop:       "too many symbolic links",
	ErrCrossDev:   "cross-device link",
	ErrNoSpace:    "no space left",
}

// ErrorSymbols are the C names of the error codes, indexed by Error.
var ErrorSymbols = [...]string{
	OK:            "NV_OK",
	ErrInvalidOp:  "NV_EINVALOP",
	ErrBadHandle:  "NV_EBADHANDLE",
	ErrRights:     "NV_ERIGHTS",
	ErrInvalidArg: "NV_EINVAL",
	ErrBadAddress: "NV_EFAULT",
	ErrNoMemory:   "NV_ENOMEM",
	ErrQuota:      "NV_EQUOTA",
	ErrTooBig:     "NV_ETOOBIG",
	ErrWrongType:  "NV_EWRONGTYPE",
	ErrPeerGone:   "NV_EPEERGONE",
	ErrDenied:     "NV_EDENIED",
	ErrNotFound:   "NV_ENOTFOUND",
	ErrExists:     "NV_EEXISTS",
	ErrIO:         "NV_EIO",
	ErrWouldBlock: "NV_EWOULDBLOCK",
	ErrBusy:       "NV_EBUSY",
	ErrTimeout:    "NV_ETIMEOUT",
	ErrNotEmpty:   "NV_ENOTEMPTY",
	ErrNotDir:     "NV_ENOTDIR",
	ErrIsDir:      "NV_EISDIR",
	ErrLoop:       "NV_ELOOP",
	ErrCrossDev:   "NV_EXDEV",
	ErrNoSpace:    "NV_ENOSPC",
}

// OpError is an error an operation can return, with what it means for
// that operation where the code's own meaning does not say it.
type OpError struct {
	Code Error
	Doc  string // "" where the code's meaning says it all
}

// The checks every call passes before its operation runs, in the fixed
// order the monitor makes them; they give the common errors below, and
// OpInfo.AllErrors adds those that apply to an operation to its own.
var (
	errBadHandle = OpError{ErrBadHandle, "the handle names nothing in the caller's table"}
	errInvalidOp = OpError{ErrInvalidOp, "the handle names a port whose server does not answer this operation"}
	errWrongType = OpError{ErrWrongType, "the handle's object does not implement the operation's interface"}
	errRights    = OpError{ErrRights, "the handle lacks a right the operation needs"}
	errBadAddr   = OpError{ErrBadAddress, "a buffer is not mapped with the access needed"}
	errBadStack  = OpError{ErrBadAddress, "the stack words holding a4 and a5 are not mapped readable"}
	errTooBig    = OpError{ErrTooBig, "a buffer is longer than NV_MAX_BUFFER"}
)

// CommonErrors are the errors of the checks every call passes, in the
// order they are made: the handle, the operation (an unknown number gets
// NV_EINVALOP), the interface, the rights, then the stack words of a4 and
// a5 and the buffers. Only those that apply to an operation are declared
// for it (OpInfo.AllErrors).
var CommonErrors = []OpError{errBadHandle, errInvalidOp, errWrongType, errRights, errBadStack, errBadAddr, errTooBig}

// AllErrors returns every error the operation can return, when the
// handle names a kernel object or a port the monitor serves: the common
// errors that apply to it, then its own Errors. A port served by a guest
// answers with whatever its server replies.
func (info *OpInfo) AllErrors() []OpError {
	var out []OpError
	out = append(out, errBadHandle)
	if info.Iface != IfaceHandle {
		// Handle operations never reach a port's server.
		out = append(out, errInvalidOp, errWrongType)
	}
	if info.Rights != 0 {
		out = append(out, errRights)
	}
	buffers := false
	for _, a := range info.Args {
		buffers = buffers || a.Kind == ArgIn || a.Kind == ArgOut
	}
	switch {
	case buffers && info.Slots() > 4:
		out = append(out, OpError{ErrBadAddress, errBadStack.Doc + ", or " + errBadAddr.Doc})
	case buffers:
		out = append(out, errBadAddr)
	case info.Slots() > 4:
		out = append(out, errBadStack)
	}
	if buffers {
		out = append(out, errTooBig)
	}
	common := len(out)
	for _, e := range info.Errors {
		switch i := indexError(out, e.Code); {
		case i < 0:
			out = append(out, e)
		case i < common:
			// The check's error, and the operation's own for the same
			// code (an argument's handle, say).
			out[i].Doc += "; or " + e.Doc
		}
	}
	return out
}

// Declares reports whether e is among the errors the operation can
// return (AllErrors).
func (info *OpInfo) Declares(e Error) bool { return indexError(info.AllErrors(), e) >= 0 }

func indexError(list []OpError, e Error) int {
	for i, x := range list {
		if x.Code == e {
			return i
		}
	}
	return -1
}

// Error implements the error interface.
func (e Error) Error() string {
	if e >= 0 && int(e) < len(errorNames) {
		return errorNames[e]
	}
	return fmt.Sprintf("error %d", int32(e))
}

// Result encodes e the way an operation returns it in R0.
func (e Error) Result() uint64 { return uint64(-int64(e)) }

// ErrorOf is the Error err carries (through wrapping), or def when it
// carries none: how a Go error becomes a result code, in the kernel and in
// every layer alike.
func ErrorOf(err error, def Error) Error {
	var e Error
	if errors.As(err, &e) {
		return e
	}
	return def
}

// ResultError decodes R0: it returns the Error carried by a negative R0,
// or OK.
func ResultError(r0 uint64) Error {
	if v := int64(r0); v < 0 && v > -int64(ErrCount) {
		return Error(-v)
	} else if v < 0 {
		return ErrInvalidArg
	}
	return OK
}

// Errors several operations share, with what they mean there.
var (
	// errTableFull and errCallerEnding: an operation that gives the
	// caller a new handle fails when it cannot hold one.
	errTableFull    = OpError{ErrQuota, "the caller's handle table is full"}
	errCallerEnding = OpError{ErrPeerGone, "the caller's space is ending"}
	errSpaceEnding  = OpError{ErrPeerGone, "the space is ending"}
	errRegionGone   = OpError{ErrPeerGone, "the region's memory was released: its owner ended"}
	errHostMemory   = OpError{ErrNoMemory, "the monitor's host memory or mapping budget is spent"}
	// The state operations write nothing, and copy no handle, when the
	// buffer is too small, and undo their copies when one fails.
	errStateTooBig = OpError{ErrTooBig, "the buffer is too small for the whole state; R1 is the size needed"}
	errStateCopies = OpError{ErrQuota, "the caller's handle table cannot hold the copies"}
)
