package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nestvm/internal/testutil"
)

// TestLayersInvisibleToHandleInfo: a program sees its handles as what
// they name under every layer: abierr checks handle_info of its console,
// thread, space and a region it makes, and a layer that stands in for the
// space or the regions (pager, checkpoint) must report the type of what
// it stands for, not its own port's.
func TestLayersInvisibleToHandleInfo(t *testing.T) {
	abierr := testutil.Guest(t, "abierr")
	dir := t.TempDir()
	policy := filepath.Join(dir, "allow.hcl")
	if err := os.WriteFile(policy, []byte("default = \"allow\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	layers := []string{"null", "trace=" + filepath.Join(dir, "t.jsonl"), "refmon=" + policy,
		"pager=" + filepath.Join(dir, "swap") + ",max-pages=64", "checkpoint=" + filepath.Join(dir, "c.nvck"), "timewarp"}
	for _, backend := range []string{"emu", "kvm"} {
		for _, layer := range layers {
			name := strings.SplitN(layer, "=", 2)[0]
			t.Run(backend+"/"+name, func(t *testing.T) {
				if backend == "kvm" {
					testutil.RequireKVM(t)
				}
				status, out, errs := run(t, "run", "--backend", backend, "--log-level", "warn", "--layer", layer, abierr)
				if status != 0 || !strings.HasSuffix(out, "PASS\n") {
					t.Errorf("abierr under %s: status %d, stdout %q, stderr %q", layer, status, out, errs)
				}
			})
		}
	}
}
