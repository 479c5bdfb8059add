package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nestvm/internal/testutil"
	"nestvm/nester"
)

// TestRunRefmon: --layer refmon=POLICY,audit=FILE denies what the policy
// does not allow (the program sees the error, the write does not happen)
// and writes who, what and why to the audit file; with no audit= the
// record goes to stderr.
func TestRunRefmon(t *testing.T) {
	hello := testutil.Guest(t, "hello")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.hcl")
	if err := os.WriteFile(policy, []byte(`
rule "short writes" {
  op        = ["console_write"]
  cap       = ["console"]
  max_bytes = 6
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(dir, "audit.log")
	// hello writes "Hello, " (7 bytes), "world" and "!\n".
	status, out, errs := run(t, "run", "--log-level", "warn", "--layer", "refmon="+policy+",audit="+audit, hello, "world")
	if status != 0 || out != "world!\n" || errs != "" {
		t.Fatalf("status %d, stdout %q, stderr %q", status, out, errs)
	}
	data, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`refmon: deny time=`,
		` who="thread 0 of space root/child" cap=console type=port op=console_write args="data=7 bytes" error=NV_EDENIED rule="short writes"`,
		` why="rule \"short writes\" (line 2): 7 bytes in one call, more than max_bytes = 6"`,
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the audit log lacks %q:\n%s", want, data)
		}
	}
	if n := strings.Count(string(data), "\n"); n != 1 {
		t.Errorf("%d audit records, want 1:\n%s", n, data)
	}

	status, out, errs = run(t, "run", "--log-level", "warn", "--layer", "refmon="+policy, hello, "world")
	if status != 0 || out != "world!\n" || !strings.HasPrefix(errs, "refmon: deny ") || !strings.Contains(errs, `rule="short writes"`) {
		t.Fatalf("audit on stderr: status %d, stdout %q, stderr %q", status, out, errs)
	}
}

// TestRunRefmonRefusesBadPolicy: a malformed policy, a missing one and an
// audit file that cannot be opened stop nestvm with status 2 before the
// program runs, naming the layer, the file and line, and the problem.
func TestRunRefmonRefusesBadPolicy(t *testing.T) {
	hello := testutil.Guest(t, "hello")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(bad, []byte("default = \"allow\"\nrule \"no spaces\" {\n  op = [\"space_create\"]\n  action = \"refuse\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.hcl")
	if err := os.WriteFile(good, []byte("default = \"allow\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		spec string
		want []string
	}{
		{"refmon=" + bad, []string{"--layer refmon=" + bad, "malformed policy", bad + ":4,12-20: Invalid action", `"refuse" is not an action`}},
		{"refmon=" + filepath.Join(dir, "missing.hcl"), []string{"refmon", "missing.hcl: no such file or directory"}},
		{"refmon", []string{"refmon needs a policy file"}},
		{"refmon=" + good + ",audit=" + filepath.Join(dir, "nodir", "audit.log"), []string{"refmon: audit log: open", "nodir/audit.log"}},
	} {
		status, out, errs := run(t, "run", "--layer", c.spec, hello, "world")
		if status != nester.StatusUsage || out != "" {
			t.Errorf("--layer %s: status %d, stdout %q; want %d and the program not run", c.spec, status, out, nester.StatusUsage)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("--layer %s: stderr lacks %q:\n%s", c.spec, w, errs)
			}
		}
		if strings.Contains(errs, "using backend") {
			t.Errorf("--layer %s: the monitor started before the policy was refused:\n%s", c.spec, errs)
		}
	}
}

// TestRunRefmonNest: under a policy that denies the program child spaces,
// nest cannot make one for the program it runs: it says so and exits 125,
// and the audit record on stderr names nest's space and the rule. The
// same policy one level down lets nest run hello and denies hello's
// children only.
func TestRunRefmonNest(t *testing.T) {
	nest := testutil.Guest(t, "nest")
	dir := t.TempDir()
	for name, cap := range map[string]string{"none.hcl": "space.*", "below.hcl": "space.space_create.*"} {
		src := "rule \"no child spaces\" {\n  op     = [\"space_create\"]\n  cap    = [\"" + cap + "\"]\n  action = \"deny\"\n}\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files := testutil.GuestDir(t)
	status, out, errs := run(t, "run", "--log-level", "warn", "--files", files, "--layer", "refmon="+filepath.Join(dir, "none.hcl"), nest, "hello.elf", "world")
	if status != 125 || out != "" {
		t.Errorf("nest under no child spaces: status %d, stdout %q, stderr %q", status, out, errs)
	}
	for _, want := range []string{
		`refmon: deny time=`,
		` who="thread 0 of space root/child" cap=space.space_create type=space op=space_create args="pages=0 threads=0 handles=0 children=0" error=NV_EDENIED rule="no child spaces"`,
		"nest: space_create: denied\n",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	status, out, errs = run(t, "run", "--log-level", "warn", "--files", files, "--layer", "refmon="+filepath.Join(dir, "below.hcl"), nest, "hello.elf", "world")
	if status != 0 || out != "Hello, world!\n" || errs != "" {
		t.Errorf("nest hello under no grandchildren: status %d, stdout %q, stderr %q", status, out, errs)
	}
}
