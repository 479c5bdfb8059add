package abi

import "fmt"

// Op is an operation number. Every operation is invoked on a handle; the
// handle's object (or the server of the port it names) performs it.
type Op uint32

// Operation numbers. 0 is reserved; new operations go just before OpCount;
// numbers are never reused. Ops holds each one's description.
const (
	OpNone         Op = iota // reserved: never a valid operation
	OpHandleInfo             // report the type and rights of a handle
	OpHandleClose            // remove a handle from the caller's table
	OpConsoleWrite           // write bytes to a console
	OpClockRead              // read a clock
	OpThreadExit             // end the calling thread with a status
	OpCount                  // number of operations; not an operation
)

// ArgKind says how an argument travels and how the monitor checks it.
type ArgKind uint8

// Argument kinds.
const (
	// ArgValue is a plain 64-bit value, one slot.
	ArgValue ArgKind = iota + 1
	// ArgHandle is a handle number in the caller's table, one slot.
	ArgHandle
	// ArgIn is a guest buffer the operation reads: two slots, address then
	// length. When the operation is delivered to a port, the bytes travel
	// with the message.
	ArgIn
	// ArgOut is a guest buffer the operation fills: two slots, address then
	// capacity. R0 usually returns the length written.
	ArgOut
)

// Slots is how many of the six argument slots an argument of kind k uses.
func (k ArgKind) Slots() int {
	if k == ArgIn || k == ArgOut {
		return 2
	}
	return 1
}

// Arg describes one argument of an operation.
type Arg struct {
	Name string
	Kind ArgKind
	Doc  string
}

// OpInfo describes an operation: what it belongs to, what it needs and
// what it returns. The monitor decodes calls with it, the C header is
// generated from it, and layers use it to decode what they see.
type OpInfo struct {
	// Name is the operation's name in snake case, as in nv_<name>().
	Name string
	// Iface is the interface the operation belongs to.
	Iface Interface
	// Rights are the rights the handle must carry.
	Rights Rights
	// Args are the operation's arguments, in slot order.
	Args []Arg
	// R0 and R1 describe the results; empty when unused.
	R0, R1 string
	// NoReturn is set for operations that do not return on success.
	NoReturn bool
	// Doc says what the operation does.
	Doc string
}

// MaxArgSlots is the number of argument slots an operation may use.
const MaxArgSlots = 6

// Ops describes every operation, indexed by Op.
var Ops = [OpCount]OpInfo{
	OpHandleInfo: {
		Name: "handle_info", Iface: IfaceHandle,
		R0:  "the ObjectType the handle names",
		R1:  "the handle's Rights",
		Doc: "Reports what a handle names and what it allows. Needs no rights.",
	},
	OpHandleClose: {
		Name: "handle_close", Iface: IfaceHandle,
		Doc: "Removes the handle from the caller's table. The object lives on while other handles name it. Needs no rights.",
	},
	OpConsoleWrite: {
		Name: "console_write", Iface: IfaceConsole, Rights: RightWrite,
		Args: []Arg{{"data", ArgIn, "the bytes to write"}},
		R0:   "the number of bytes written",
		Doc:  "Writes bytes to the console: the program's standard output.",
	},
	OpClockRead: {
		Name: "clock_read", Iface: IfaceClock, Rights: RightRead,
		Args: []Arg{{"which", ArgValue, "ClockMonotonic or ClockRealtime"}},
		R0:   "the time in nanoseconds",
		Doc:  "Reads a clock. Monotonic time starts at an arbitrary point; realtime counts from the Unix epoch.",
	},
	OpThreadExit: {
		Name: "thread_exit", Iface: IfaceThread, Rights: RightControl,
		Args:     []Arg{{"status", ArgValue, "the exit status; the low 8 bits are the program's exit status"}},
		NoReturn: true,
		Doc:      "Ends the thread the handle names with a status. When the last thread of a space ends, the space ends with that status.",
	},
}

// Clock selectors for OpClockRead.
const (
	ClockMonotonic = 0 // nanoseconds since an arbitrary point, never going back
	ClockRealtime  = 1 // nanoseconds since the Unix epoch
)

// Info returns the description of op, and false when op is not a valid
// operation.
func (op Op) Info() (*OpInfo, bool) {
	if op == OpNone || op >= OpCount {
		return nil, false
	}
	return &Ops[op], true
}

// String returns the operation's name.
func (op Op) String() string {
	if info, ok := op.Info(); ok {
		return info.Name
	}
	return fmt.Sprintf("op(%d)", uint32(op))
}

// Slots is the number of argument slots the operation uses.
func (info *OpInfo) Slots() int {
	n := 0
	for _, a := range info.Args {
		n += a.Kind.Slots()
	}
	return n
}
