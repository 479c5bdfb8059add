package vmm_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nestvm/internal/backendtest"
	"nestvm/internal/testutil"
	"nestvm/machine"
	"nestvm/vmm"
)

// runGuest runs the built guest name with args on b and returns its
// console output and result.
func runGuest(t *testing.T, b machine.Backend, name string, mem uint64, args ...string) (string, vmm.Result) {
	t.Helper()
	path := testutil.Guest(t, name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if mem == 0 {
		mem = 64 << 20
	}
	img, err := vmm.ParseELF(data, mem)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var console bytes.Buffer
	q := vmm.DefaultQuota
	q.Memory = mem
	s, err := vmm.NewMonitor(b, nil).Launch(vmm.Program{
		Name: name, Image: img, Args: append([]string{name}, args...), Quota: q,
	}, vmm.Env{Console: &console})
	if err != nil {
		t.Fatalf("launch %s: %v", name, err)
	}
	select {
	case <-s.Done():
	case <-time.After(60 * time.Second):
		s.Kill("test timeout")
		t.Fatalf("%s did not finish in 60s; output so far:\n%s", name, console.String())
	}
	return console.String(), s.Wait()
}

// memtouchSum is memtouch's checksum, computed the same way in Go.
func memtouchSum(mib uint64) uint64 {
	words := mib << 20 / 8
	var sum uint64
	for i := uint64(0); i < words; i += 8 {
		v := i*0x9e3779b97f4a7c15 ^ i>>3
		sum = (sum<<1 | sum>>63) ^ v
	}
	return sum
}

// nativeCompute runs the native Linux twin of the compute guest.
func nativeCompute(t *testing.T, n string) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(testutil.GuestDir(t)), "native", "compute")
	out, err := exec.Command(bin, n).Output()
	if err != nil {
		t.Fatalf("native compute (build it with make guests): %v", err)
	}
	return string(out)
}

// exited and faulted describe expected results.
type want struct {
	status int            // exit status, when fault is zero
	fault  machine.Vector // expected fault vector, when faulted
	access machine.Access // for page faults
	prot   bool           // for page faults: a protection fault
	faults bool
}

func TestGuestPrograms(t *testing.T) {
	native := nativeCompute(t, "123456")
	cases := []struct {
		name   string
		args   []string
		mem    uint64
		output string
		want   want
	}{
		{name: "hello", args: []string{"world"}, output: "Hello, world!\n"},
		{name: "hello", output: "Hello, nestvm!\n"},
		{name: "hello", args: []string{"a", "b c", "", "d"}, output: "Hello, a b c  d!\n"},
		{name: "compute", args: []string{"123456"}, output: native},
		{name: "memtouch", args: []string{"4"}, output: fmt.Sprintf("memtouch: 4 MiB, checksum 0x%016x\n", memtouchSum(4))},
		{name: "memtouch", args: []string{"32"}, mem: 16 << 20, want: want{status: 1},
			output: "memtouch: cannot allocate 32 MiB: the heap has 7 MiB left (run with a larger --mem)\n"},
		{name: "memtouch", args: []string{"lots"}, want: want{status: 127}, output: "memtouch: lots is not a positive number of MiB\n"},
		{name: "abierr", output: "read-only data is fine to write from\nPASS\n"},
		{name: "crash-null", output: "crash-null: reading address 0\n",
			want: want{faults: true, fault: machine.VecPage, access: machine.AccessRead}},
		{name: "crash-wtext", output: "crash-wtext: writing to my own text\n",
			want: want{faults: true, fault: machine.VecPage, access: machine.AccessWrite, prot: true}},
		{name: "crash-ud2", output: "crash-ud2: executing ud2\n", want: want{faults: true, fault: machine.VecInvalidOp}},
		{name: "crash-div0", output: "crash-div0: dividing by zero\n", want: want{faults: true, fault: machine.VecDivide}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(append([]string{tc.name}, tc.args...), " "), func(t *testing.T) {
			backendtest.Each(t, func(t *testing.T, b machine.Backend) {
				out, r := runGuest(t, b, tc.name, tc.mem, tc.args...)
				if out != tc.output {
					t.Errorf("output %q, want %q", out, tc.output)
				}
				if !tc.want.faults {
					if !r.Exited || r.Status != tc.want.status {
						t.Errorf("result %s, want exit status %d", r, tc.want.status)
					}
					return
				}
				if r.Fault == nil {
					t.Fatalf("result %s, want a %s", r, tc.want.fault)
				}
				f := r.Fault.Fault
				if f.Vector != tc.want.fault {
					t.Fatalf("fault %s, want %s", f, tc.want.fault)
				}
				if !inText(t, tc.name, f.RIP) {
					t.Errorf("fault at rip %#x, want it in the program's text", f.RIP)
				}
				if f.Vector == machine.VecPage && (f.Access() != tc.want.access || (f.ErrorCode&machine.PFPresent != 0) != tc.want.prot) {
					t.Errorf("fault %s: want a %s, protection=%v", f, tc.want.access, tc.want.prot)
				}
			})
		})
	}
}

func TestBenchGuestReports(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for _, mode := range []string{"nulltrap", "info", "write", "compute"} {
			out, r := runGuest(t, b, "bench", 0, mode, "1000")
			if !r.Exited || r.Status != 0 {
				t.Fatalf("%s: result %s", mode, r)
			}
			// The write mode's x's precede the result on the same line.
			last := out[max(0, strings.LastIndex(out, "bench ")):]
			var m string
			var n, ns uint64
			if _, err := fmt.Sscanf(last, "bench %s %d %d\n", &m, &n, &ns); err != nil || m != mode || n != 1000 || ns == 0 {
				t.Errorf("%s: last line %q", mode, last)
			}
		}
	})
}

// TestStopBetweenInstructions stops and starts a thread that counts in
// memory and in a register over and over (examples/stopcount, whose main
// thread does it with thread_stop and thread_start, as a checkpointing
// parent does) and checks at every stop that the two counts agree: a stop
// lands between two instructions, so resuming runs none of them twice.
// Straight after each start, and after letting the thread run a while.
func TestStopBetweenInstructions(t *testing.T) {
	backendtest.Each(t, func(t *testing.T, b machine.Backend) {
		for _, args := range [][]string{{"2000"}, {"200", "300"}} {
			out, r := runGuest(t, b, "stopcount", 0, args...)
			if want := "stopcount: " + args[0] + " stops, every count exact\n"; out != want || !r.Exited || r.Status != 0 {
				t.Errorf("stopcount %s: output %q, result %s; want %q and exit status 0", strings.Join(args, " "), out, r, want)
			}
		}
	})
}

// inText reports whether addr lies in an executable segment of guest name.
func inText(t *testing.T, name string, addr uint64) bool {
	t.Helper()
	img := guestImage(t, name)
	for _, seg := range img.Segments {
		if seg.Perm&machine.PermExec != 0 && addr >= seg.Addr && addr < seg.Addr+seg.MemSize {
			return true
		}
	}
	return false
}
