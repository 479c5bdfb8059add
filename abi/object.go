package abi

// ObjectType is the kind of object a handle names.
type ObjectType uint32

// Object types. Numbers are never reused; new types go before ObjectCount.
const (
	ObjNone     ObjectType = iota // no object: never named by a handle (handle 0 names nothing)
	ObjSpace                      // an address space with its handle table and quotas
	ObjThread                     // a thread: registers, FPU state, status
	ObjRegion                     // a memory object
	ObjPort                       // an IPC endpoint, served by a guest thread or by the monitor
	ObjPortSet                    // a set of ports a server waits on together
	ObjectCount                   // number of object types; not a type
)

var objectNames = [...]string{ObjNone: "none", ObjSpace: "space", ObjThread: "thread", ObjRegion: "region", ObjPort: "port", ObjPortSet: "port_set"}

// ObjectSymbols are the C names of the object types, indexed by ObjectType.
var ObjectSymbols = [...]string{ObjNone: "NV_OBJ_NONE", ObjSpace: "NV_OBJ_SPACE", ObjThread: "NV_OBJ_THREAD", ObjRegion: "NV_OBJ_REGION", ObjPort: "NV_OBJ_PORT", ObjPortSet: "NV_OBJ_PORT_SET"}

// String returns the type's name.
func (t ObjectType) String() string {
	if int(t) < len(objectNames) {
		return objectNames[t]
	}
	return "unknown"
}

// Interface is the protocol an operation belongs to. Kernel objects
// implement the interface of their type; a port's server may implement any
// interface (that is how one layer stands in for another's object). Console,
// clock and files exist only as served interfaces.
type Interface uint32

// Interfaces. Numbers are never reused; new ones go before InterfaceCount.
const (
	IfaceNone      Interface = iota // reserved
	IfaceHandle                     // operations on the handle itself (every object)
	IfaceThread                     // thread operations
	IfaceSpace                      // space operations
	IfaceConsole                    // a byte stream: the program's output (console_write) or input (console_read)
	IfaceClock                      // a time source
	IfaceRegion                     // region operations
	IfacePort                       // port operations: receive, reply, send, call
	IfacePortSet                    // port set operations
	IfaceFiles                      // a directory tree: open and list
	IfaceFile                       // an open file
	InterfaceCount                  // number of interfaces; not an interface
)

var interfaceNames = [...]string{IfaceNone: "none", IfaceHandle: "handle", IfaceThread: "thread", IfaceSpace: "space", IfaceConsole: "console", IfaceClock: "clock", IfaceRegion: "region", IfacePort: "port", IfacePortSet: "port_set", IfaceFiles: "files", IfaceFile: "file"}

// String returns the interface's name.
func (i Interface) String() string {
	if int(i) < len(interfaceNames) {
		return interfaceNames[i]
	}
	return "unknown"
}

// NoHandle is the handle number that never names an object.
const NoHandle = 0
