package main

import (
	"fmt"
	"strconv"
	"strings"

	"nestvm/abi"
	"nestvm/vmm"
)

// maxQuotaMemory is the most memory a program may be given: what
// space_create itself accepts (the handle, thread and children bounds are
// vmm's), so that a program's space is no larger than a child it could
// make.
const maxQuotaMemory = abi.UserTop

// quotaFlag is --quota: children=N,threads=N,handles=N,memory=SIZE, each
// key optional, the ones not given keeping vmm.DefaultQuota's value.
type quotaFlag struct {
	q   vmm.Quota
	mem bool // memory= was given
}

func (f *quotaFlag) String() string {
	var parts []string
	if f.q.Children != 0 {
		parts = append(parts, fmt.Sprintf("children=%d", f.q.Children))
	}
	if f.q.Threads != 0 {
		parts = append(parts, fmt.Sprintf("threads=%d", f.q.Threads))
	}
	if f.q.Handles != 0 {
		parts = append(parts, fmt.Sprintf("handles=%d", f.q.Handles))
	}
	if f.q.Memory != 0 {
		parts = append(parts, "memory="+formatSize(f.q.Memory))
	}
	return strings.Join(parts, ",")
}

// Set implements flag.Value; a repeated --quota adds to the earlier ones.
func (f *quotaFlag) Set(v string) error {
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || val == "" {
			return fmt.Errorf("%q: want KEY=VALUE (children, threads, handles, memory)", kv)
		}
		count := func(limit int) (int, error) {
			n, err := strconv.ParseUint(val, 10, 64)
			switch {
			case err != nil || n == 0:
				return 0, fmt.Errorf("%s=%s: want a number from 1 to %d", k, val, limit)
			case n > uint64(limit):
				return 0, fmt.Errorf("%s=%s: more than the %d the monitor supports", k, val, limit)
			}
			return int(n), nil
		}
		var err error
		switch k {
		case "children":
			f.q.Children, err = count(vmm.MaxChildrenQuota)
		case "threads":
			f.q.Threads, err = count(vmm.MaxThreadsQuota)
		case "handles":
			f.q.Handles, err = count(vmm.MaxHandlesQuota)
		case "memory":
			var n uint64
			if n, err = parseSize(val); err != nil {
				err = fmt.Errorf("memory=%s: %w", val, err)
			} else if err = checkMemory(n); err != nil {
				err = fmt.Errorf("memory=%w", err)
			}
			f.q.Memory, f.mem = n, true
		default:
			return fmt.Errorf("%q: no such quota (want children, threads, handles or memory)", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkMemory refuses a memory quota no space can have.
func checkMemory(n uint64) error {
	switch {
	case n%abi.PageSize != 0:
		return fmt.Errorf("%s: not a multiple of the %d-byte page", formatSize(n), abi.PageSize)
	case n > maxQuotaMemory:
		return fmt.Errorf("%s: more than the %s a space may map", formatSize(n), formatSize(maxQuotaMemory))
	}
	return nil
}

// quota is the program's quota: --quota's values over the defaults, with
// memory from --mem when --quota has none (mem is --mem's value,
// memSet whether it was given). Both memory forms at once is an error.
func (f *quotaFlag) quota(mem uint64, memSet bool) (vmm.Quota, error) {
	if f.mem && memSet {
		return vmm.Quota{}, fmt.Errorf("--mem and --quota memory= both set the program's memory: give one")
	}
	q := vmm.DefaultQuota
	if f.q.Children != 0 {
		q.Children = f.q.Children
	}
	if f.q.Threads != 0 {
		q.Threads = f.q.Threads
	}
	if f.q.Handles != 0 {
		q.Handles = f.q.Handles
	}
	switch {
	case f.mem:
		q.Memory = f.q.Memory
	case memSet:
		if err := checkMemory(mem); err != nil {
			return vmm.Quota{}, fmt.Errorf("--mem %w", err)
		}
		q.Memory = mem
	}
	return q, nil
}
