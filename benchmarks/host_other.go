//go:build !(linux && amd64)

package benchmarks

// hostIsPVM reports whether /dev/kvm is served by PVM: never, here.
func hostIsPVM() bool { return false }
