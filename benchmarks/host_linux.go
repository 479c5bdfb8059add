//go:build linux && amd64

package benchmarks

import "nestvm/kvm"

// hostIsPVM reports whether /dev/kvm is served by PVM.
func hostIsPVM() bool { return kvm.HostIsPVM() }
