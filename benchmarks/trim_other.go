//go:build !cgo || !linux

package benchmarks

// trimMalloc does nothing without cgo: nothing then allocates with malloc.
func trimMalloc() {}
