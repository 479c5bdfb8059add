package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

// hostileGroups are the check groups of examples/hostile, in the order it
// runs them. exhaust spends the monitor process's host budget (shared by
// every monitor in the process, as the host's limits are), so it runs only
// where its program has a process to itself.
var hostileGroups = []string{"forged", "stale", "revoke", "derive", "pointers", "lengths", "grant",
	"peergone", "quota", "children", "files", "state", "ipc", "exhaust"}

// hostileWant is hostile's whole output when groups pass.
func hostileWant(groups []string) string {
	var b strings.Builder
	for _, g := range groups {
		if g == "quota" {
			b.WriteString("hostile: a region beyond a child's pages: quota exceeded\n")
		}
		fmt.Fprintf(&b, "PASS %s\n", g)
	}
	return b.String()
}

// kerneltest's areas, in two runs that compose: keeper leaves its keeper
// thread running, fault a thread parked in its recovery, and the others
// want neither (dirty unmaps, which other threads' running refuses).
var (
	kernelAreasA = []string{"derive", "threads", "ipc", "interpose", "restart", "dirty", "quota"}
	kernelAreasB = []string{"keeper", "fault"}
	kernelWantA  = "derived\nPASS derive\nPASS threads\nPASS ipc\n" +
		"[interposed] console through a guest server\nPASS interpose\nPASS restart\nPASS dirty\nPASS quota\n"
	kernelWantB = "PASS keeper\nPASS fault\n"
)

// loadJob is one program the load test runs, and the output it must give.
type loadJob struct {
	path string // the guest's ELF file
	args []string
	want string
}

// exhausts reports whether job runs hostile's exhaust group: all its
// groups when no argument names some.
func exhausts(job loadJob) bool {
	if filepath.Base(job.path) != "hostile.elf" {
		return false
	}
	return len(job.args) == 0 || slices.Contains(job.args, "exhaust")
}

// TestUnderLoad runs the hostile guest and kerneltest several copies at
// once, in one monitor, in monitors of their own and in nestvm processes
// of their own, all at the same time, on every backend: each copy must
// give its full, exact output and exit 0. The copies load the host and
// the monitor as the rest of the tests do not (many spaces killed and
// created, threads blocking and waking, stops, faults), so a result that
// depends on timing shows here, in every `make test`, and not only when
// other jobs happen to share the machine.
func TestUnderLoad(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		tree := testutil.NewFilesTree(t)
		hostilePath, kernelPath := testutil.Guest(t, "hostile"), testutil.Guest(t, "kerneltest")
		inProcess := hostileGroups[:len(hostileGroups)-1] // not exhaust: see hostileGroups
		hostile := loadJob{hostilePath, inProcess, hostileWant(inProcess)}
		kernelA := loadJob{kernelPath, kernelAreasA, kernelWantA}
		kernelB := loadJob{kernelPath, kernelAreasB, kernelWantB}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		shared := vmm.NewMonitor(b, nil)

		var wg sync.WaitGroup
		start := func(how string, f func() (string, int, string)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, status, why := f()
				if why != "" {
					t.Errorf("%s: %s; output:\n%s", how, why, out)
				} else if status != 0 {
					t.Errorf("%s: exit status %d; output:\n%s", how, status, out)
				}
			}()
		}
		for i, j := range []loadJob{hostile, hostile, kernelA, kernelB} {
			start(fmt.Sprintf("%s %v (%d) in one monitor", filepath.Base(j.path), j.args, i), func() (string, int, string) {
				return launchIn(shared, tree.Root, j)
			})
		}
		for i, j := range []loadJob{hostile, kernelA} {
			start(fmt.Sprintf("%s %v (%d) in a monitor of its own", filepath.Base(j.path), j.args, i), func() (string, int, string) {
				return launchIn(vmm.NewMonitor(b, nil), tree.Root, j)
			})
		}
		full := loadJob{hostilePath, nil, hostileWant(hostileGroups)}
		for i, j := range []loadJob{full, kernelB} {
			start(fmt.Sprintf("%s %v (%d) in a process of its own", filepath.Base(j.path), j.args, i), func() (string, int, string) {
				return runProcess(self, b.Name(), tree.Root, j)
			})
		}
		wg.Wait()
		tree.CheckOutside(t)
	})
}

// loadTimeout bounds one program of the load test: far beyond what a
// loaded host needs, it only turns a hang into a failure with the output.
const loadTimeout = 120 * time.Second

// launchIn runs job in mon with files as its files root. It returns the
// program's output and exit status, or why it did not exit.
func launchIn(mon *vmm.Monitor, files string, job loadJob) (string, int, string) {
	data, err := os.ReadFile(job.path)
	if err != nil {
		return "", 0, err.Error()
	}
	img, err := vmm.ParseELF(data, vmm.DefaultQuota.Memory)
	if err != nil {
		return "", 0, err.Error()
	}
	srv, err := vmm.FilesServer(files, false)
	if err != nil {
		return "", 0, err.Error()
	}
	defer srv.Close()
	var console syncBuffer
	name := strings.TrimSuffix(filepath.Base(job.path), ".elf")
	s, err := mon.Launch(vmm.Program{Name: name, Image: img, Args: append([]string{name}, job.args...)},
		vmm.Env{Console: &console, Files: srv})
	if err != nil {
		return "", 0, err.Error()
	}
	select {
	case <-s.Done():
	case <-time.After(loadTimeout):
		s.Kill("test timeout")
		<-s.Done()
		return console.String(), 0, fmt.Sprintf("did not finish in %s", loadTimeout)
	}
	out := console.String()
	r := s.Wait()
	if !r.Exited {
		return out, 0, r.String()
	}
	if out != job.want {
		return out, r.Status, fmt.Sprintf("output differs; want:\n%s", job.want)
	}
	return out, r.Status, ""
}

// runProcess runs job in a nestvm process of its own on backend: self is
// this test binary, which TestMain makes nestvm.
func runProcess(self, backend, files string, job loadJob) (string, int, string) {
	cmd := exec.Command(self, append([]string{"run", "--backend", backend, "--log-level", "warn", "--files", files,
		job.path}, job.args...)...)
	cmd.Env = append(os.Environ(), "NESTVM_TEST_AS_MAIN=1")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return "", 0, err.Error()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(loadTimeout):
		cmd.Process.Kill()
		<-done
		return stdout.String(), 0, fmt.Sprintf("did not finish in %s; stderr:\n%s", loadTimeout, stderr.String())
	}
	out, errs := stdout.String(), stderr.String()
	if exhausts(job) {
		// hostile's exhaust spends the monitor's budget of host
		// mappings: the monitor says so, once, naming the limit.
		const said = "a host limit is reached"
		if n := strings.Count(errs, said); n != 1 {
			return out, 0, fmt.Sprintf("%d log lines saying %q, want 1; stderr:\n%s", n, said, errs)
		}
		var rest []string
		for _, line := range strings.SplitAfter(errs, "\n") {
			if !strings.Contains(line, said) {
				rest = append(rest, line)
			}
		}
		errs = strings.Join(rest, "")
	}
	if status := cmd.ProcessState.ExitCode(); status != 0 || errs != "" {
		return out, status, fmt.Sprintf("exit status %d; stderr:\n%s", status, stderr.String())
	}
	if out != job.want {
		return out, 0, fmt.Sprintf("output differs; want:\n%s", job.want)
	}
	return out, 0, ""
}
