// Package config loads a binary's typed configuration from flags whose defaults come from
// PHOENIX_* environment variables, so every setting has both and --help lists them.
package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Set is a flag set whose every flag is backed by an environment variable.
type Set struct {
	fs      *flag.FlagSet
	getenv  func(string) string
	errs    []string
	secrets map[string]bool
	envs    map[string]string // flag name → env var
}

// New returns a Set for the named command; getenv reads the environment.
func New(name string, getenv func(string) string, usage string, out io.Writer) *Set {
	s := &Set{fs: flag.NewFlagSet(name, flag.ContinueOnError), getenv: getenv, secrets: map[string]bool{}, envs: map[string]string{}}
	s.fs.SetOutput(out)
	s.fs.Usage = func() {
		fmt.Fprintf(out, "%s\n\nFlags (each also set by the environment variable shown):\n", usage)
		s.fs.VisitAll(func(f *flag.Flag) {
			def := f.DefValue
			if s.secrets[f.Name] && def != "" {
				def = "****"
			}
			fmt.Fprintf(out, "  --%s  [$%s]\n        %s", f.Name, s.envs[f.Name], f.Usage)
			if def != "" {
				fmt.Fprintf(out, " (default %q)", def)
			}
			fmt.Fprintln(out)
		})
	}
	return s
}

func (s *Set) env(name, env string) (string, bool) {
	s.envs[name] = env
	v := s.getenv(env)
	return v, v != ""
}

// String defines a string setting.
func (s *Set) String(p *string, name, env, def, usage string) {
	if v, ok := s.env(name, env); ok {
		def = v
	}
	s.fs.StringVar(p, name, def, usage)
}

// Secret defines a string setting that is masked in --help and logs.
func (s *Set) Secret(p *string, name, env, usage string) {
	s.secrets[name] = true
	s.String(p, name, env, "", usage)
}

// Bool defines a boolean setting.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	if v, ok := s.env(name, env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Sprintf("$%s: %q is not a boolean", env, v))
		}
		def = b
	}
	s.fs.BoolVar(p, name, def, usage)
}

// Int defines an integer setting.
func (s *Set) Int(p *int, name, env string, def int, usage string) {
	if v, ok := s.env(name, env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Sprintf("$%s: %q is not an integer", env, v))
		}
		def = n
	}
	s.fs.IntVar(p, name, def, usage)
}

// Duration defines a duration setting ("10s", "5m").
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v, ok := s.env(name, env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Sprintf("$%s: %q is not a duration", env, v))
		}
		def = d
	}
	s.fs.DurationVar(p, name, def, usage)
}

// Parse reads args. It returns flag.ErrHelp after printing usage for -h/--help.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	if len(s.errs) > 0 {
		return fmt.Errorf("configuration: %s", strings.Join(s.errs, "; "))
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", s.fs.Args())
	}
	return nil
}

// Values lists every setting with secrets masked, for the start-up log.
func (s *Set) Values() []any {
	var names []string
	s.fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	out := make([]any, 0, 2*len(names))
	for _, n := range names {
		v := s.fs.Lookup(n).Value.String()
		if s.secrets[n] && v != "" {
			v = "****"
		} else if strings.Contains(n, "url") {
			v = MaskURL(v)
		}
		out = append(out, n, v)
	}
	return out
}

// MaskURL hides the password of a URL-shaped value.
func MaskURL(v string) string {
	at := strings.Index(v, "@")
	scheme := strings.Index(v, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return v
	}
	creds := v[scheme+3 : at]
	if user, _, ok := strings.Cut(creds, ":"); ok {
		return v[:scheme+3] + user + ":****" + v[at:]
	}
	return v
}

// ReadFile reads a file named by a setting, or returns nil for an empty name.
func ReadFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
