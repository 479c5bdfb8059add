package abi

import "fmt"

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

// Error implements the error interface.
func (e Error) Error() string {
	if e >= 0 && int(e) < len(errorNames) {
		return errorNames[e]
	}
	return fmt.Sprintf("error %d", int32(e))
}

// Result encodes e the way an operation returns it in R0.
func (e Error) Result() uint64 { return uint64(-int64(e)) }

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
