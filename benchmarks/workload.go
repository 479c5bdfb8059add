package benchmarks

import (
	"fmt"
	"strconv"
	"strings"
)

// A Workload is a guest program and its arguments, sized to take tens of
// milliseconds on each backend.
type Workload struct {
	Name    string
	Summary string
	Guest   string // GUEST.elf in the guest directory
	// Args returns the program's arguments (argv[0] included) for a
	// backend: PVM's exits cost tens of microseconds where the emulator's
	// cost half of one, so call-heavy workloads are sized per backend.
	Args func(backend string) []string
	// Want is what its output must contain for the run to count.
	Want string
	// Linux is set for a Linux program, run under the Linux personality.
	// The host runs it natively too, each repetition, for the native
	// per-call time its rows show beside nestvm's.
	Linux bool
	// Children, Handles and Threads are the program's quotas (0: the
	// default).
	Children, Handles, Threads int
	// Hold, when set, is what the program prints once its spaces are all
	// live, and then waits for its standard input to end: the runner
	// measures memory in between, once every thread waits and the
	// monitor's memory has settled.
	Hold string
}

// FanoutDefault is how many live spaces the fanout workload holds unless
// SizeFanout says otherwise; FanoutMax is the most the fanout guest
// creates.
const (
	FanoutDefault = 100
	FanoutMax     = 4096
)

// SizeFanout returns the fanout workload w holding n live spaces, with the
// quotas they need: a space handle each in the program's table, and a
// thread each below it.
func SizeFanout(w Workload, n int) Workload {
	w.Args = func(string) []string { return []string{"fanout", strconv.Itoa(n), "hold"} }
	w.Want = fmt.Sprintf("fanout %d torn down in ", n)
	w.Children, w.Handles, w.Threads = n, 4*n+100, n+10
	return w
}

// perBackend returns arguments that differ between emu and the rest.
func perBackend(emu, other []string) func(string) []string {
	return func(b string) []string {
		if b == "emu" {
			return emu
		}
		return other
	}
}

// fixed returns the same arguments on every backend.
func fixed(args ...string) func(string) []string { return func(string) []string { return args } }

var workloads = []Workload{
	{Name: "compute", Summary: "20M rounds of a CPU-bound loop: no calls to interpose on", Guest: "compute",
		Args: fixed("compute", "20000000"), Want: "checksum"},
	{Name: "memtouch", Summary: "writes and reads back 16 MiB of heap: page faults, no calls", Guest: "memtouch",
		Args: fixed("memtouch", "16"), Want: "checksum"},
	{Name: "ipc", Summary: "clock_read calls on the clock handle, which layers wrap (100000 on emu, 1000 on kvm)", Guest: "bench",
		Args: perBackend([]string{"bench", "clock", "100000"}, []string{"bench", "clock", "1000"}), Want: "bench clock "},
	{Name: "hello", Summary: "prints a greeting: launch and exit dominate", Guest: "hello",
		Args: fixed("hello"), Want: "Hello, nestvm!"},
	{Name: "syscall", Summary: "getppid calls of a Linux program, each a fault the Linux personality serves (100000 on emu, 1000 on kvm)", Guest: "lxbench",
		Args: perBackend([]string{"lxbench", "syscall", "100000"}, []string{"lxbench", "syscall", "1000"}), Want: "bench syscall ", Linux: true},
	{Name: "clock", Summary: "clock_gettime(CLOCK_MONOTONIC) calls of a Linux program through its vDSO, which reads the clock's time page with no exit (200000 on emu, 1000000 on kvm)", Guest: "lxbench",
		Args: perBackend([]string{"lxbench", "vdso", "200000"}, []string{"lxbench", "vdso", "1000000"}), Want: "bench vdso ", Linux: true},
	{Name: "spawn", Summary: "child spaces created, started and waited for one at a time, each with a thread that exits at once (20 on emu, 50 on kvm)", Guest: "bench",
		Args: perBackend([]string{"bench", "spawn", "20"}, []string{"bench", "spawn", "50"}), Want: "bench spawn "},
	SizeFanout(Workload{Name: "fanout", Guest: "fanout", Hold: " created in ",
		Summary: "live child spaces (100, or --fanout's count), each with a thread blocked in a call: the rate they are created at, and the monitor's and the host's memory each holds once they all wait and the monitor has settled"},
		FanoutDefault),
}

// Workloads returns every workload, in the order the help lists them.
func Workloads() []Workload { return append([]Workload(nil), workloads...) }

// FindWorkload returns the workload called name.
func FindWorkload(name string) (Workload, bool) {
	for _, w := range workloads {
		if w.Name == name {
			return w, true
		}
	}
	return Workload{}, false
}

// WorkloadNames lists the workloads' names, comma-separated.
func WorkloadNames() string {
	var names []string
	for _, w := range workloads {
		names = append(names, w.Name)
	}
	return strings.Join(names, ", ")
}
