// Command nestvm-oci is an OCI runtime with runc's command line that runs
// each container's program under a nestvm monitor, for podman, containerd
// and Kubernetes. See package nestvm/oci and docs/oci.md.
//
//	nestvm-oci [global flags] create|start|state|kill|delete|run|checkpoint|restore|... ID
//
// It finds runc on PATH ($NESTVM_OCI_RUNC overrides), and the monitors
// beside its own executable: nestvm-static (built with CGO_ENABLED=0) and
// nestvm.
package main

import (
	"os"
	"os/exec"
	"path/filepath"

	"nestvm/oci"
)

func main() {
	r := &oci.Runtime{Runc: "runc", StateTop: "/run/nestvm-oci", Stdout: os.Stdout, Stderr: os.Stderr}
	if v := os.Getenv("NESTVM_OCI_RUNC"); v != "" {
		r.Runc = v
	} else {
		r.Runc = findRunc()
	}
	if v := os.Getenv("NESTVM_OCI_STATE"); v != "" {
		r.StateTop = v
	} else if os.Getuid() != 0 && os.Getenv("XDG_RUNTIME_DIR") != "" {
		r.StateTop = filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "nestvm-oci")
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			dir := filepath.Dir(exe)
			if p := filepath.Join(dir, "nestvm-static"); isFile(p) {
				r.Nestvm = p
			}
			if p := filepath.Join(dir, "nestvm"); isFile(p) {
				r.NestvmCgo = p
			}
		}
	}
	os.Exit(r.Main(os.Args[1:]))
}

// findRunc looks for runc on PATH, then where Debian and runc's releases
// put it: engines do not always pass the runtime a PATH.
func findRunc() string {
	if p, err := exec.LookPath("runc"); err == nil {
		return p
	}
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if p := filepath.Join(d, "runc"); isFile(p) {
			return p
		}
	}
	return "runc"
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
