//go:build !cgo || !linux

package main

// trimMalloc does nothing without cgo: nothing then allocates with malloc.
func trimMalloc() {}
