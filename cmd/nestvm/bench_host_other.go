//go:build !(linux && amd64)

package main

// hostIsPVM reports whether /dev/kvm is served by PVM: never, here.
func hostIsPVM() bool { return false }
