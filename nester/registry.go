package nester

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Factory makes a layer from the arguments after "name=" in --layer (empty
// when none were given). It refuses bad arguments with an error that says
// what is wrong, before anything runs.
type Factory func(args string, log hclog.Logger) (Layer, error)

// Kind describes a kind of layer for `nestvm layers` and --layer.
type Kind struct {
	Name    string
	Summary string // one line
	Usage   string // the arguments it takes, one per line
	New     Factory
}

var (
	kindsMu sync.Mutex
	kinds   = map[string]Kind{}
)

// Register makes a kind of layer available to --layer. Layers register
// from their package's init.
func Register(k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic("nester: layer " + k.Name + " registered twice")
	}
	kinds[k.Name] = k
}

// Kinds returns every registered kind of layer, by name.
func Kinds() []Kind {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	out := make([]Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// New makes the layer a --layer value names.
func New(spec string, log hclog.Logger) (Layer, error) {
	name, args := ParseSpec(spec)
	kindsMu.Lock()
	k, ok := kinds[name]
	kindsMu.Unlock()
	if !ok {
		var names []string
		for _, k := range Kinds() {
			names = append(names, k.Name)
		}
		return nil, fmt.Errorf("--layer %s: no layer named %q (there are: %s; see nestvm layers)", spec, name, strings.Join(names, ", "))
	}
	l, err := k.New(args, log.Named(name))
	if err != nil {
		return nil, fmt.Errorf("--layer %s: %w", spec, err)
	}
	return l, nil
}
