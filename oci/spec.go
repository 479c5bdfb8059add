package oci

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"nestvm/nester"
	"nestvm/services/pager"
	"nestvm/services/refmon"
	"nestvm/services/trace"

	// The layers register themselves, so that an annotation naming one
	// that does not exist is refused by the same registry nestvm uses.
	_ "nestvm/services/checkpoint"
	_ "nestvm/services/null"
)

// The annotations a bundle's config.json may carry for nestvm.
const (
	annLayers      = "io.nestvm.layers"
	annBackend     = "io.nestvm.backend"
	annQuota       = "io.nestvm.quota"
	annPassthrough = "io.nestvm.passthrough"
)

// Paths inside the container. /.nestvm is a tmpfs the runtime mounts, so
// nothing is added to the image's own files.
const (
	ctrDir      = "/.nestvm"
	ctrNestvm   = ctrDir + "/nestvm"
	ctrLib      = ctrDir + "/lib"
	ctrCkpt     = ctrDir + "/ckpt"
	ctrCkptFile = ctrCkpt + "/" + ckptName
	ctrRestore  = ctrCkpt + "/" + restoreName
	ctrCtl      = ctrDir + "/ctl"
	ctrCtlSock  = ctrCtl + "/" + ctlName
	ctlName     = "control.sock"
	ckptName    = "ckpt.nvck"
	restoreName = "restore.nvck"
)

// spec is a bundle's config.json as generic JSON, so that fields this
// runtime does not know reach runc as they were.
type spec map[string]any

// readSpec reads bundle/config.json.
func readSpec(bundle string) (spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", bundle, err)
	}
	var s spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	if s == nil {
		return nil, fmt.Errorf("bundle %s: config.json: not a JSON object", bundle)
	}
	return s, nil
}

// obj returns m[key] as an object, making it when create is set.
func obj(m map[string]any, key string, create bool) (map[string]any, error) {
	v, ok := m[key]
	if !ok || v == nil {
		if !create {
			return nil, nil
		}
		o := map[string]any{}
		m[key] = o
		return o, nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("config.json: %s is not an object", key)
	}
	return o, nil
}

// annotations returns the spec's annotations that are strings.
func (s spec) annotations() (map[string]string, error) {
	a, err := obj(s, "annotations", false)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range a {
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("config.json: annotation %s is not a string", k)
		}
		out[k] = str
	}
	return out, nil
}

// passthrough reports whether the bundle is not nestvm's to run: a CRI
// sandbox (the pod's pause process) or one that asks to be left to runc.
func passthrough(ann map[string]string) bool {
	return ann["io.kubernetes.cri.container-type"] == "sandbox" ||
		ann["io.kubernetes.cri-o.ContainerType"] == "sandbox" ||
		ann[annPassthrough] == "true"
}

// choices are what a bundle's annotations ask of nestvm.
type choices struct {
	layers  []string
	backend string // auto, kvm or emu
	quota   string
}

// quotaItem is the syntax of one --quota item, as nestvm parses counts and
// sizes; nestvm itself checks the values against what it supports.
var quotaItem = regexp.MustCompile(`^(children|threads|handles)=[1-9][0-9]*$|^memory=[1-9][0-9]*([KMGkmg]([iI]?[bB])?|[bB])?$`)

// parseChoices reads and checks the io.nestvm.* annotations; policy files
// a layer names are looked for under rootfs, where the monitor will look.
func parseChoices(ann map[string]string, rootfs string) (choices, error) {
	c := choices{backend: "auto"}
	for k, v := range ann {
		if !strings.HasPrefix(k, "io.nestvm.") {
			continue
		}
		switch k {
		case annLayers:
			for _, spec := range strings.Split(v, ";") {
				if spec = strings.TrimSpace(spec); spec == "" {
					continue
				}
				if err := checkLayer(spec, rootfs); err != nil {
					return c, fmt.Errorf("annotation %s: %q: %w", annLayers, spec, err)
				}
				c.layers = append(c.layers, spec)
			}
		case annBackend:
			switch v {
			case "", "auto", "kvm", "emu":
				if v != "" {
					c.backend = v
				}
			default:
				return c, fmt.Errorf("annotation %s=%q: want auto, kvm or emu", annBackend, v)
			}
		case annQuota:
			for _, item := range strings.Split(v, ",") {
				if !quotaItem.MatchString(strings.TrimSpace(item)) {
					return c, fmt.Errorf("annotation %s: %q: want children=N, threads=N, handles=N or memory=SIZE (e.g. 256M), comma-separated", annQuota, item)
				}
			}
			c.quota = v
		case annPassthrough:
			if v != "true" && v != "false" {
				return c, fmt.Errorf("annotation %s=%q: want true or false", annPassthrough, v)
			}
		default:
			return c, fmt.Errorf("annotation %s: unknown (nestvm reads %s, %s, %s and %s)", k, annLayers, annBackend, annQuota, annPassthrough)
		}
	}
	return c, nil
}

// checkLayer checks a --layer spec as nestvm run would parse it, before
// anything runs: its kind must exist, and the arguments of those that
// parse them must parse. A checkpoint layer is the runtime's own.
func checkLayer(spec, rootfs string) error {
	name, args := nester.ParseSpec(spec)
	known := false
	var names []string
	for _, k := range nester.Kinds() {
		names = append(names, k.Name)
		known = known || k.Name == name
	}
	if !known {
		return fmt.Errorf("no layer named %q (there are %s)", name, strings.Join(names, ", "))
	}
	var err error
	switch name {
	case "checkpoint":
		err = errors.New("the runtime stacks its own checkpoint layer: use the engine's checkpoint command")
	case "trace":
		_, err = trace.ParseOptions(args)
	case "pager":
		_, _, err = pager.Parse(args)
	case "refmon":
		var policy, host string
		if policy, _, err = refmon.ParseArgs(args); err != nil {
			break
		}
		if host, err = inRoot(rootfs, policy); err == nil {
			_, err = refmon.LoadPolicy(host)
		}
	}
	return err
}

// inRoot resolves p, a path inside the container, to the host path under
// rootfs it names, following symbolic links as the container would see
// them, never out of rootfs.
func inRoot(rootfs, p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	cur := "/"
	rest := strings.Split(path.Clean("/"+p), "/")
	for hops := 0; len(rest) > 0; {
		part := rest[0]
		rest = rest[1:]
		if part == "" || part == "." {
			continue
		}
		next := path.Join(cur, part)
		fi, err := os.Lstat(filepath.Join(rootfs, next))
		if err != nil {
			return "", fmt.Errorf("%s: not in the container's root filesystem: %w", p, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(rootfs, next))
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return filepath.Join(rootfs, cur), nil
}

// entrypoint finds the program process.args[0] names in the container:
// as given when it holds a slash, else by the PATH of process.env. It
// returns its path in the container and checks that nestvm can run it:
// a static x86-64 ELF program.
func entrypoint(rootfs, arg0 string, env []string) (string, error) {
	var candidates []string
	if strings.Contains(arg0, "/") {
		candidates = []string{path.Join("/", arg0)}
	} else {
		dirs := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				dirs = v
			}
		}
		for _, d := range strings.Split(dirs, ":") {
			if d != "" {
				candidates = append(candidates, path.Join("/", d, arg0))
			}
		}
	}
	for _, c := range candidates {
		host, err := inRoot(rootfs, c)
		if err != nil {
			continue
		}
		fi, err := os.Stat(host)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		f, err := elf.Open(host)
		if err != nil {
			return "", fmt.Errorf("entrypoint %s: not an ELF program nestvm can run: %w", c, err)
		}
		defer f.Close()
		if f.Machine != elf.EM_X86_64 {
			return "", fmt.Errorf("entrypoint %s: for %s, not x86-64", c, f.Machine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return "", fmt.Errorf("entrypoint %s: dynamically linked; nestvm runs static programs", c)
			}
		}
		return c, nil
	}
	return "", fmt.Errorf("entrypoint %q: not found in the container's root filesystem", arg0)
}

// strings returns v, a JSON array of strings, as a slice.
func stringList(v any, what string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("config.json: %s is not an array", what)
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("config.json: %s[%d] is not a string", what, i)
		}
		out[i] = s
	}
	return out, nil
}

// toAny turns a string slice into a JSON array.
func toAny(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

// kvmDevice returns /dev/kvm's device numbers when this host's KVM can be
// opened, for the container to be given it.
func kvmDevice() (major, minor uint32, ok bool) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR {
		return 0, 0, false
	}
	return uint32(st.Rdev >> 8 & 0xfff), uint32(st.Rdev&0xff | st.Rdev>>12&0xfff00), true
}

// bind is a read-only bind mount of a host file into the container.
func bind(src, dst string, rw bool) map[string]any {
	mode := "ro"
	if rw {
		mode = "rw"
	}
	return map[string]any{"destination": dst, "type": "bind", "source": src, "options": toAny([]string{"bind", mode})}
}

// loaderLibs returns the dynamic loader a cgo-built program asks for and
// the shared libraries it needs, all of them, by host path.
func loaderLibs(prog string) (interp string, libs []string, err error) {
	f, err := elf.Open(prog)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", nil, err
			}
			interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if interp == "" {
		return "", nil, nil // static: needs none
	}
	seen := map[string]bool{}
	var walk func(string) error
	walk = func(file string) error {
		g, err := elf.Open(file)
		if err != nil {
			return err
		}
		needed, err := g.ImportedLibraries()
		g.Close()
		if err != nil {
			return err
		}
		for _, n := range needed {
			if seen[n] {
				continue
			}
			seen[n] = true
			p, err := findLib(n)
			if err != nil {
				return err
			}
			libs = append(libs, p)
			if err := walk(p); err != nil {
				return err
			}
		}
		return nil
	}
	return interp, libs, walk(prog)
}

func findLib(name string) (string, error) {
	for _, d := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/usr/local/lib", "/lib", "/usr/lib"} {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("shared library %s not found on this host", name)
}
