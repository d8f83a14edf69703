// Package config loads a binary's typed configuration from flags whose defaults come from
// PHOENIX_* environment variables, so every setting has both and --help lists them.
package config

import (
	"errors"
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
	usage   string
	out     io.Writer
	errs    []string
	secrets map[string]bool
	envs    map[string]string // flag name → env var
}

// New returns a Set for the named command; getenv reads the environment, and --help prints
// usage followed by every flag to out. Parse errors are returned, never printed.
func New(name string, getenv func(string) string, usage string, out io.Writer) *Set {
	s := &Set{fs: flag.NewFlagSet(name, flag.ContinueOnError), getenv: getenv, usage: usage, out: out,
		secrets: map[string]bool{}, envs: map[string]string{}}
	s.fs.SetOutput(io.Discard)
	s.fs.Usage = func() {} // Parse prints the help itself, and only when asked for
	return s
}

// printUsage writes the usage text and every flag with its variable and default (masked the
// way Values masks them, since a default may come from the environment).
func (s *Set) printUsage() {
	fmt.Fprintf(s.out, "%s\n\nFlags (each also set by the environment variable shown):\n", s.usage)
	s.fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(s.out, "  --%s  [$%s]\n        %s", f.Name, s.envs[f.Name], f.Usage)
		if def := s.masked(f.Name, f.DefValue); def != "" {
			fmt.Fprintf(s.out, " (default %q)", def)
		}
		fmt.Fprintln(s.out)
	})
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

// Parse reads args. For -h/--help it prints the usage to the Set's writer and returns
// flag.ErrHelp.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			s.printUsage()
			return err
		}
		return fmt.Errorf("%w (see --help)", err)
	}
	if len(s.errs) > 0 {
		return fmt.Errorf("configuration: %s", strings.Join(s.errs, "; "))
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v (see --help)", s.fs.Args())
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
		out = append(out, n, s.masked(n, s.fs.Lookup(n).Value.String()))
	}
	return out
}

// masked returns the value v of setting name fit for logs and --help: a secret becomes "****",
// and a URL or connection string loses its password.
func (s *Set) masked(name, v string) string {
	switch {
	case v == "":
		return v
	case s.secrets[name]:
		return "****"
	case strings.Contains(name, "url"):
		return MaskURL(v)
	}
	return v
}

// MaskURL hides the passwords of a connection string in either of the forms lib/pq and
// go-redis accept: a URL (the password of scheme://user:password@host, and password or
// sslpassword query parameters) or a key=value list (host=db password='x y' dbname=app).
// A value that is neither and mentions a password is hidden whole.
func MaskURL(v string) string {
	if strings.Contains(v, "://") {
		return maskURLForm(v)
	}
	return maskKeyValues(v)
}

const mask = "****"

// isPasswordKey reports whether a connection parameter holds a password.
func isPasswordKey(k string) bool {
	k = strings.ToLower(k)
	return k == "password" || k == "sslpassword"
}

// maskURLForm masks a URL's user password and password query parameters. The user
// information ends at the last '@', so a password holding '@', '/' or '?' is hidden whole (at
// worst more than the password is hidden, never less).
func maskURLForm(v string) string {
	start := strings.Index(v, "://") + 3
	if at := strings.LastIndex(v, "@"); at >= start {
		if user, _, ok := strings.Cut(v[start:at], ":"); ok {
			v = v[:start] + user + ":" + mask + v[at:]
		}
	}
	q := strings.Index(v[start:], "?")
	if q < 0 {
		return v
	}
	q += start + 1
	query, frag, hasFrag := strings.Cut(v[q:], "#")
	params := strings.Split(query, "&")
	for i, p := range params {
		if k, _, ok := strings.Cut(p, "="); ok && isPasswordKey(k) {
			params[i] = k + "=" + mask
		}
	}
	out := v[:q] + strings.Join(params, "&")
	if hasFrag {
		out += "#" + frag
	}
	return out
}

// maskKeyValues masks the password values of a key=value connection string, read the way lib/pq
// reads it: pairs separated by spaces, spaces allowed around '=', a value bare or single-quoted,
// with backslash escapes in both.
func maskKeyValues(v string) string {
	var b strings.Builder
	i := 0
	for {
		j := skipSpaces(v, i)
		b.WriteString(v[i:j])
		if i = j; i == len(v) {
			return b.String()
		}
		for j < len(v) && v[j] != '=' && !isSpace(v[j]) {
			j++
		}
		key := v[i:j]
		if j = skipSpaces(v, j); j == len(v) || v[j] != '=' {
			return maskUnreadable(v)
		}
		j = skipSpaces(v, j+1)
		b.WriteString(v[i:j])
		end := valueEnd(v, j)
		if end < 0 {
			return maskUnreadable(v)
		}
		if isPasswordKey(key) && end > j {
			b.WriteString(mask)
		} else {
			b.WriteString(v[j:end])
		}
		i = end
	}
}

// valueEnd returns the index just past the key=value value starting at i, or -1 when a quote is
// not closed.
func valueEnd(v string, i int) int {
	if i < len(v) && v[i] == '\'' {
		for j := i + 1; j < len(v); j++ {
			switch v[j] {
			case '\\':
				j++
			case '\'':
				return j + 1
			}
		}
		return -1
	}
	j := i
	for ; j < len(v) && !isSpace(v[j]); j++ {
		if v[j] == '\\' {
			j++
		}
	}
	return min(j, len(v))
}

// maskUnreadable hides a value that is not a connection string lib/pq can read when it may
// hold a password.
func maskUnreadable(v string) string {
	if strings.Contains(strings.ToLower(v), "password") {
		return mask
	}
	return v
}

func skipSpaces(v string, i int) int {
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
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
