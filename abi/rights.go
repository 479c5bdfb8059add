package abi

import "strings"

// Rights is the set of operations a handle allows on the object it names.
type Rights uint32

// Rights bits. A handle's rights never grow: derive can only drop bits.
const (
	RightRead    Rights = 1 << iota // read contents or state
	RightWrite                      // write contents
	RightExec                       // map executable
	RightMap                        // map into a space
	RightCall                       // invoke operations that a server answers
	RightReceive                    // serve a port: receive and reply
	RightGrant                      // may be passed to another space
	RightDerive                     // may be copied with fewer rights
	RightControl                    // stop, start, get/set state, destroy
	rightsEnd

	// RightsAll is every right.
	RightsAll = rightsEnd - 1
)

var rightNames = []string{"read", "write", "exec", "map", "call", "receive", "grant", "derive", "control"}

// RightSymbols are the C names of the rights bits, in bit order.
var RightSymbols = []string{"NV_R_READ", "NV_R_WRITE", "NV_R_EXEC", "NV_R_MAP", "NV_R_CALL", "NV_R_RECEIVE", "NV_R_GRANT", "NV_R_DERIVE", "NV_R_CONTROL"}

// String lists the rights by name, joined with "|".
func (r Rights) String() string {
	if r == 0 {
		return "none"
	}
	var parts []string
	for i, n := range rightNames {
		if r&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if r&^RightsAll != 0 {
		parts = append(parts, "unknown")
	}
	return strings.Join(parts, "|")
}

// Has reports whether r includes every right in need.
func (r Rights) Has(need Rights) bool { return r&need == need }
