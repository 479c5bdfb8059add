package machine

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// A Backend runs guest code: kvm (/dev/kvm) or emu (a CPU emulator). Both
// implement the same small interface so everything above them (the object
// kernel, layers, the command line) is backend-neutral. Backends register
// themselves with Register from an init function; only the command line,
// tests and benchmarks pick one.
type Backend interface {
	// Name is the name users select the backend by ("kvm", "emu").
	Name() string
	// Available reports whether the backend can run on this host, and if
	// not, why, in words a user can act on (for example "/dev/kvm:
	// permission denied; add yourself to the kvm group or use --backend emu").
	Available() error
	// Describe says more about the backend for nestvm info: a library
	// version, a device.
	Describe() string
	// CPUFeatures are the CPU features its guests are offered (what they
	// read with CPUID); empty when the backend cannot say.
	CPUFeatures() CPUFeatures
	// WithCPU returns the backend offering guests the named CPU model
	// (CPUPortable or CPUHost; see the package function WithCPU, which
	// checks the name first). A backend with one model returns itself.
	WithCPU(model string) (Backend, error)
	// NewMachine creates an empty guest-physical address space: one KVM VM,
	// or one emulator memory map shared by that space's vCPUs.
	NewMachine(cfg MachineConfig) (Machine, error)
}

// MachineConfig configures a new Machine.
type MachineConfig struct {
	// Log receives the backend's diagnostics; nil means no logging.
	Log hclog.Logger
}

// Perm is a set of access permissions of a memory mapping.
type Perm uint8

// Permission bits.
const (
	PermRead Perm = 1 << iota
	PermWrite
	PermExec
)

// String renders p as "rwx" with dashes for missing bits.
func (p Perm) String() string {
	b := []byte("---")
	if p&PermRead != 0 {
		b[0] = 'r'
	}
	if p&PermWrite != 0 {
		b[1] = 'w'
	}
	if p&PermExec != 0 {
		b[2] = 'x'
	}
	return string(b)
}

// A Machine is one guest-physical address space and the vCPUs running in it.
//
// The monitor builds the page tables itself (identity-mapped, in guest
// memory) and maps a space's system memory when it creates the machine,
// and the user window (Window) a chunk at a time, as the space's memory
// first reaches each (WindowChunk): a space costs the monitor's address
// space what its memory reaches, not the whole user range. Later changes
// to what the guest sees happen in host memory (the monitor maps memory
// objects into the window's chunks) and in the page tables, never in the
// Machine's memory map, which only grows, by whole chunks, while the
// space lives.
//
// Read and write permission are always enforced by the page tables. Exec
// permission is enforced by them too where the CPU honours the no-execute
// bit; ProtectMemory passes it to backends that cannot (NoPageTableNX).
//
// Methods other than Close may be called from any goroutine, also while
// vCPUs run.
type Machine interface {
	// MapMemory makes mem appear at guest-physical address gpa. gpa and
	// len(mem) must be page-aligned, mem must stay valid until it is
	// unmapped or the machine is closed, and the range must not overlap an
	// existing mapping. It may be called while vCPUs run: each sees the
	// new mapping before the page tables it runs on can point into it
	// (the monitor writes them after this returns). Host pages inside mem
	// may be replaced (mmap MAP_FIXED) at any time; the guest sees the new
	// pages. Errors wrap ErrNoSlots when the backend has run out of
	// mapping slots.
	MapMemory(gpa uint64, mem []byte, perm Perm) error
	// UnmapMemory removes the mapping that starts at gpa. It is called only
	// when no vCPU runs any more.
	UnmapMemory(gpa uint64) error
	// ProtectMemory sets the permission of the page-aligned range
	// [gpa, gpa+size), which lies inside one mapping, as a hint for
	// backends that enforce exec permission outside the page tables. A
	// backend may apply a grant of exec lazily; a revocation takes effect
	// for each vCPU at its next FlushTLB. The monitor calls it for every
	// range before its page tables first point into it, so a backend may
	// also use it to back a large mapping only where it is used (kvm
	// registers memory slots for such a mapping piece by piece); errors
	// then wrap ErrNoSlots.
	ProtectMemory(gpa, size uint64, perm Perm) error
	// CodeChanged says that the monitor changed what the page-aligned
	// range [gpa, gpa+size) holds through its host view (a write for the
	// guest, other memory mapped in its place) where the guest may have
	// run code: the backend drops what it translated from there before
	// each vCPU next enters guest code. It is called only where Features
	// says TranslatesCode.
	CodeChanged(gpa, size uint64)
	// NewVCPU creates a vCPU. It must be called on the goroutine that will
	// run it, locked to its OS thread (runtime.LockOSThread).
	NewVCPU(cfg VCPUConfig) (VCPU, error)
	// Features says what the machine offers beyond this interface's
	// minimum. It never changes over the machine's life.
	Features() Features
	// Recycle makes the machine serve a new space exactly as a new
	// Machine would, given the same MapMemory calls: nothing the old
	// space left in it may be observable by the new one (cached
	// translations, pending events, vCPU state not overwritten by
	// NewVCPU). Preconditions: every vCPU has been closed, the memory
	// behind every mapping has been replaced (the caller resets it), and
	// the mappings stay. An error means the machine cannot be reused and
	// must be closed. It is called only where Features says Recycle.
	Recycle() error
	// Close releases the machine. Every vCPU must be closed first.
	Close() error
}

// Features are the optional behaviour of a Machine, declared once rather
// than discovered by type assertions.
type Features struct {
	// Recycle: the machine can serve another space once its own has
	// ended (Machine.Recycle). Creating a machine is most of what creating
	// a space costs on kvm (a VM, its memory slots and a vCPU: well over
	// half a millisecond where the VM is itself paravirtual), so the
	// monitor keeps a few machines of ended spaces for the next ones (see
	// ShellPool).
	Recycle bool
	// TranslatesCode: the backend runs guest code it translated, keyed
	// by guest-physical page, and does not see the monitor's writes
	// through the host (the emulator), so the monitor tells it where code
	// changed (Machine.CodeChanged). A CPU fetches what memory holds.
	TranslatesCode bool
	// NoPageTableNX: the CPU treats the page-table no-execute bit as
	// reserved (the emulator ignores EFER.NXE, and a PTE with bit 63 set
	// raises a reserved-bit page fault on every access). The monitor then
	// leaves the bit clear and relies on ProtectMemory's permissions.
	NoPageTableNX bool
}

// ErrNoSlots is wrapped by MapMemory when the backend cannot hold another
// mapping.
var ErrNoSlots = errors.New("no free memory slots")

// VCPUConfig configures a new vCPU.
type VCPUConfig struct {
	// ID numbers the vCPU within its machine, from 0.
	ID int
	// CPU is the system state the vCPU runs under (page tables, descriptor
	// tables, ring-0 stub); the monitor builds it.
	CPU CPUSetup
	// Handler serves hypercalls inline, on the vCPU's goroutine.
	Handler TrapHandler
	// Log receives the vCPU's diagnostics; nil means no logging.
	Log hclog.Logger
}

// A VCPU is one virtual CPU running guest code at CPL3. All methods except
// Stop must be called on the goroutine that created it.
type VCPU interface {
	// SetRegs sets the user-mode integer registers. The next Run resumes at
	// regs.RIP in ring 3.
	SetRegs(regs *Regs) error
	// Regs returns the user-mode integer registers as the last exit left
	// them. After a fault exit they describe the faulting instruction (RIP
	// at it), never the ring-0 stub.
	Regs() (Regs, error)
	// SetFPU sets the x87/SSE state (FXSAVE layout).
	SetFPU(fpu *FPU) error
	// FPU returns the x87/SSE state (FXSAVE layout).
	FPU() (FPU, error)
	// Run runs guest code until an exit the vCPU cannot handle itself:
	// a fault, a hypercall whose handler asked to stop, a Stop from another
	// goroutine, or an error. Hypercalls whose handler returns CallContinue
	// are served without returning. A non-nil error means the vCPU is
	// unusable (the host failed, or the guest shut the CPU down in a way
	// the monitor cannot describe as a fault); the exit is then zero.
	Run() (Exit, error)
	// Stop makes a running (or the next) Run return ExitStopped soon. It
	// may be called from any goroutine, any number of times; stops do not
	// accumulate.
	Stop()
	// FlushTLB makes the next Run discard cached translations, because the
	// monitor changed page-table entries.
	FlushTLB()
	// Close releases the vCPU.
	Close() error
}

// TrapHandler serves hypercalls. Backends call it on the vCPU's goroutine
// while the vCPU is paused in the trap.
type TrapHandler interface {
	// Hypercall serves one call. It reads c.Args and c.RSP and sets c.Ret.
	// Its return value says how the vCPU goes on.
	Hypercall(c *Call) CallAction
}

// Call is one hypercall as the backend hands it to the TrapHandler.
type Call struct {
	// Args holds rdi, rsi, rdx, rcx, r8, r9: handle, op, a0..a3.
	Args [6]uint64
	// RSP is the guest stack pointer at the trap; a4 and a5 are at RSP+8
	// and RSP+16 (above the return address into the caller).
	RSP uint64
	// Ret is written to rax and rdx when the call completes.
	Ret [2]uint64
}

// CallAction tells the backend what to do after a hypercall.
type CallAction uint8

// Call actions.
const (
	// CallContinue writes Ret and resumes the guest without leaving Run.
	CallContinue CallAction = iota
	// CallStop writes Ret, completes the call, and returns ExitStopped
	// from Run. Resuming later continues after the call.
	CallStop
	// CallRestart leaves the call uncompleted and returns ExitStopped from
	// Run with RIP at the trap instruction, so resuming re-issues the call
	// with the same arguments (the restartable-call rule).
	CallRestart
)

var (
	registryMu sync.Mutex
	registry   = map[string]Backend{}
)

// Register makes a backend selectable by name. It panics when the name is
// taken, since that is a programming error in an init function.
func Register(b Backend) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[b.Name()]; dup {
		panic("machine: backend registered twice: " + b.Name())
	}
	registry[b.Name()] = b
}

// Backends lists the registered backends by name.
func Backends() []Backend {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Backend, 0, len(registry))
	for _, b := range registry {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// ErrNoBackend is wrapped by Lookup when no backend can run.
var ErrNoBackend = errors.New("no backend available")

// Preference is the order "auto" tries backends in.
var Preference = []string{"kvm", "emu"}

// Lookup returns the backend named name, or for "auto" (or "") the first
// available backend in Preference order. When a named backend is missing or
// unavailable the error says why and what to do instead.
func Lookup(name string) (Backend, error) {
	registryMu.Lock()
	b, ok := registry[name]
	registryMu.Unlock()
	switch {
	case name == "" || name == "auto":
		var why []string
		for _, n := range Preference {
			b, err := Lookup(n)
			if err == nil {
				return b, nil
			}
			why = append(why, err.Error())
		}
		return nil, fmt.Errorf("%w: %v", ErrNoBackend, why)
	case ok:
		if err := b.Available(); err != nil {
			return nil, fmt.Errorf("backend %s: %w", name, err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("backend %s: %w", name, notBuiltReason(name))
	}
}

// notBuiltReason explains why a backend is not registered in this binary.
func notBuiltReason(name string) error {
	switch name {
	case "emu":
		return errors.New("not built into this binary: the emulator backend needs cgo and libunicorn-dev (apt-get install -y libunicorn-dev, then build with CGO_ENABLED=1)")
	case "kvm":
		return errors.New("not built into this binary: the kvm backend needs linux/amd64")
	default:
		return fmt.Errorf("unknown backend (choose auto, kvm or emu)")
	}
}
