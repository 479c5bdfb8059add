//go:build linux && amd64

package kvm

import "golang.org/x/sys/unix"

var (
	errNoEnt error = unix.ENOENT
	errPerm  error = unix.EACCES
)
