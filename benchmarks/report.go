package benchmarks

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"nestvm/machine"
)

// Row is one line of the result: a workload under depth copies of a layer.
type Row struct {
	Workload string  `json:"workload"`
	Layer    string  `json:"layer"`
	Depth    int     `json:"depth"`
	Reps     int     `json:"reps"`
	MedianNS int64   `json:"median_ns"`
	MinNS    int64   `json:"min_ns"`
	MaxNS    int64   `json:"max_ns"`
	Slowdown float64 `json:"slowdown"`
	// MinSlowdown is min_ns over min_ns at depth 0: steadier than the
	// median's on a busy host, since noise only ever adds time.
	MinSlowdown float64 `json:"min_slowdown"`
	// PerLevel is slowdown^(1/depth): the cost each level adds (1 at
	// depth 0).
	PerLevel float64 `json:"slowdown_per_level"`
	// For ipc and spawn: the median time of one call (of one child, for
	// spawn) as the guest measured it, and its ratio to the same at depth
	// 0.
	CallNS       float64 `json:"call_ns,omitempty"`
	CallSlowdown float64 `json:"call_slowdown,omitempty"`
	// CallPerLevel is call_slowdown^(1/depth): what each level adds to
	// one interposed call.
	CallPerLevel float64 `json:"call_slowdown_per_level,omitempty"`
	// For fanout: the median rate at which the guest created its live
	// spaces, as it measured it, and the median growth of the monitor's
	// resident memory per live space, from just before the launch to when
	// every thread of the program waited and the memory had settled
	// (see settle), each reading taken after the Go heap and malloc's
	// heaps gave back what they do not use.
	SpacesPerSec float64 `json:"spaces_per_s,omitempty"`
	KiBPerSpace  float64 `json:"kib_per_space,omitempty"`
	// HostKiBPerSpace is, for fanout, the median growth of the host's used
	// memory (MemTotal less MemAvailable) per live space between the same
	// two readings: what the kernel holds for each space (on kvm, its VM
	// and vCPU) as well as the monitor's memory. Other work on the host
	// moves it too, so on a busy host it can come out at or below 0 (a
	// note then says so). Absent where /proc/meminfo cannot be read.
	HostKiBPerSpace *float64 `json:"host_kib_per_space,omitempty"`
	// Spaces is how many live spaces fanout held.
	Spaces int `json:"spaces,omitempty"`
	// For a Linux program: the median time of one call when the host
	// runs it natively, in the same repetitions, and call_ns over it.
	NativeCallNS float64 `json:"native_call_ns,omitempty"`
	CallVsNative float64 `json:"call_vs_native,omitempty"`
}

// Host describes the machine the numbers come from.
type Host struct {
	CPU     string `json:"cpu"`
	CPUs    int    `json:"cpus"`
	OS      string `json:"os"`
	Kernel  string `json:"kernel"`
	KVM     string `json:"kvm"` // "none", "kvm" or "pvm"
	Go      string `json:"go"`
	Summary string `json:"summary"`
	// Load is the 1-minute load average when the runs began and ended:
	// other work on the host makes the numbers noisy.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// Report is the result of a run: where it ran, and its rows.
type Report struct {
	Host    Host     `json:"host"`
	Backend string   `json:"backend"`
	Reps    int      `json:"reps"`
	Time    string   `json:"time"`
	Notes   []string `json:"notes,omitempty"`
	Rows    []Row    `json:"rows"`
}

// BackendLabel names the backend as the numbers should be read: kvm on
// PVM is not kvm on hardware virtualization.
func (rep Report) BackendLabel() string {
	if rep.Backend == "kvm" && rep.Host.KVM == "pvm" {
		return "kvm (PVM)"
	}
	return rep.Backend
}

// loadAverage is the host's 1-minute load average, -1 when unknown.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// DescribeHost reads what the numbers depend on: the CPU, the kernel and
// what serves /dev/kvm. The load averages are left for the run to fill.
func DescribeHost() Host {
	h := Host{CPU: "unknown CPU", CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), KVM: "none"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPU = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(data))
	}
	if _, err := machine.Lookup("kvm"); err == nil {
		h.KVM = "kvm"
		if hostIsPVM() {
			h.KVM = "pvm"
		}
	}
	kvmDesc := map[string]string{"none": "no /dev/kvm", "kvm": "/dev/kvm", "pvm": "/dev/kvm is PVM (paravirtual, inside a VM)"}[h.KVM]
	h.Summary = fmt.Sprintf("%s, %d CPUs, %s %s, %s", h.CPU, h.CPUs, runtime.GOOS, h.Kernel, kvmDesc)
	return h
}
