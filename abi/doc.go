// Package abi defines the nestvm guest ABI once, as Go data: the fixed
// addresses every space shares, operation numbers and their argument
// conventions, rights, object types, error codes and the records that cross
// the guest boundary. The C header guests compile against is generated from
// this package (go generate), and a test fails when the two disagree.
//
// Numbering rules, which keep old guests working: operation 0 and error 0
// are reserved (0 is "no error"); every enum ends with a count; numbers are
// never reused or renumbered; records only grow at the end, and carry their
// own size so a reader can tell which fields are present.
//
// This package imports only the standard library.
package abi

//go:generate go run ./gen -o ../examples/sdk/nestvm_abi.h -md ../docs/abi.md

// Version is the ABI version, bumped on any change a guest could observe
// (a new operation, a new field, a changed meaning). Guests find it in
// StartInfo.ABIVersion.
const Version = 11
