package linux

import (
	"errors"

	"golang.org/x/sys/unix"

	"nestvm/abi"
)

// errno is a Linux error number; a system call returns it negated.
type errno uint64

// Error implements error.
func (e errno) Error() string { return unix.Errno(e).Error() }

// The error numbers the personality returns.
const (
	ePERM        = errno(unix.EPERM)
	eNOENT       = errno(unix.ENOENT)
	eSRCH        = errno(unix.ESRCH)
	eINTR        = errno(unix.EINTR)
	eIO          = errno(unix.EIO)
	eBADF        = errno(unix.EBADF)
	eCHILD       = errno(unix.ECHILD)
	eAGAIN       = errno(unix.EAGAIN)
	eNOMEM       = errno(unix.ENOMEM)
	eACCES       = errno(unix.EACCES)
	eFAULT       = errno(unix.EFAULT)
	eEXIST       = errno(unix.EEXIST)
	eNOTDIR      = errno(unix.ENOTDIR)
	eISDIR       = errno(unix.EISDIR)
	eINVAL       = errno(unix.EINVAL)
	eMFILE       = errno(unix.EMFILE)
	eNOTTY       = errno(unix.ENOTTY)
	eSPIPE       = errno(unix.ESPIPE)
	eROFS        = errno(unix.EROFS)
	ePIPE        = errno(unix.EPIPE)
	eRANGE       = errno(unix.ERANGE)
	eNAMETOOLONG = errno(unix.ENAMETOOLONG)
	eNOSYS       = errno(unix.ENOSYS)
	eNOTEMPTY    = errno(unix.ENOTEMPTY)
	eTIMEDOUT    = errno(unix.ETIMEDOUT)
	eNXIO        = errno(unix.ENXIO)
	eXDEV        = errno(unix.EXDEV)
	eNOEXEC      = errno(unix.ENOEXEC)
	eLOOP        = errno(unix.ELOOP)
	eNOSPC       = errno(unix.ENOSPC)
	e2BIG        = errno(unix.E2BIG)
)

// errnoOf turns an ABI error into the error number Linux gives for the
// same cause; other errors become def.
func errnoOf(err error, def errno) errno {
	var e abi.Error
	if !errors.As(err, &e) {
		return def
	}
	switch e {
	case abi.ErrNotFound:
		return eNOENT
	case abi.ErrExists:
		return eEXIST
	case abi.ErrDenied, abi.ErrRights:
		return eACCES
	case abi.ErrBadAddress:
		return eFAULT
	case abi.ErrNoMemory, abi.ErrQuota:
		return eNOMEM
	case abi.ErrIO:
		return eIO
	case abi.ErrWouldBlock:
		return eAGAIN
	case abi.ErrTimeout:
		return eTIMEDOUT
	case abi.ErrTooBig:
		return eRANGE
	case abi.ErrInvalidArg:
		return eINVAL
	case abi.ErrNotEmpty:
		return eNOTEMPTY
	case abi.ErrNotDir:
		return eNOTDIR
	case abi.ErrIsDir:
		return eISDIR
	case abi.ErrLoop:
		return eLOOP
	case abi.ErrCrossDev:
		return eXDEV
	case abi.ErrNoSpace:
		return eNOSPC
	}
	return def
}
