//go:build linux && amd64

package kvm

import (
	"errors"

	"golang.org/x/sys/unix"
)

// The Go runtime signals its threads (SIGURG, for preemption) at any time,
// and an ioctl that sleeps in the kernel (KVM_CREATE_VM, for one, waits
// for an RCU grace period) returns EINTR when that happens. gokvm's Ioctl
// passes EINTR up, so every ioctl except KVM_RUN, whose EINTR the run loop
// must see, goes through retry or retryValue.

// retry calls f until it returns something other than EINTR.
func retry(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// retryValue is retry for calls that return a value.
func retryValue[T any](f func() (T, error)) (T, error) {
	for {
		v, err := f()
		if !errors.Is(err, unix.EINTR) {
			return v, err
		}
	}
}
