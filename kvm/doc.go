// Package kvm is the KVM backend: guest code runs on /dev/kvm through
// gokvm's kvm package plus the ioctls it lacks.
package kvm
