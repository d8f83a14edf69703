package deploy_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// depRoot is the repository root, seen from this package's directory (where `go test` runs).
const depRoot = ".."

// depImage is the image docker-compose.yml builds from the Dockerfile.
const depImage = "phoenix:dev"

// depLoadCompose loads docker-compose.yml with the Compose specification's reference loader,
// which validates it against the specification's JSON schema, interpolates variables (from an
// empty environment, so defaults apply) and resolves merges, anchors and relative paths.
func depLoadCompose(t *testing.T) *types.Project {
	t.Helper()
	root, err := filepath.Abs(depRoot)
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: types.Mapping{},
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName("phoenix", true)
		o.ResolvePaths = true
	})
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// depService returns a service of the project or fails the test.
func depService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

// depEnv returns a service's environment as plain strings ("" for a variable without a value).
func depEnv(s types.ServiceConfig) map[string]string {
	out := make(map[string]string, len(s.Environment))
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		} else {
			out[k] = ""
		}
	}
	return out
}

// depArgv is a service's effective argv: entrypoint then command. The image sets no ENTRYPOINT,
// so a command alone is the whole argv.
func depArgv(s types.ServiceConfig) []string {
	return append(append([]string{}, s.Entrypoint...), s.Command...)
}

func TestDepComposeServices(t *testing.T) {
	p := depLoadCompose(t)
	var names []string
	for name := range p.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	want := []string{"admin-gateway", "migrate", "postgres", "query-gateway", "redis"}
	if !slices.Equal(names, want) {
		t.Fatalf("services = %v, want %v", names, want)
	}
}

func TestDepComposeBackingServicesHaveHealthchecks(t *testing.T) {
	p := depLoadCompose(t)
	for _, tc := range []struct {
		service, image, probe string
	}{
		{"postgres", "postgres:15", "pg_isready"},
		{"redis", "redis:7", "redis-cli ping"},
	} {
		s := depService(t, p, tc.service)
		if s.Image != tc.image {
			t.Errorf("%s: image = %q, want %q", tc.service, s.Image, tc.image)
		}
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("%s: no healthcheck", tc.service)
			continue
		}
		if kind := hc.Test[0]; kind != "CMD" && kind != "CMD-SHELL" {
			t.Errorf("%s: healthcheck test starts with %q, want CMD or CMD-SHELL", tc.service, kind)
		}
		if cmd := strings.Join(hc.Test[1:], " "); !strings.Contains(cmd, tc.probe) {
			t.Errorf("%s: healthcheck runs %q, want %q", tc.service, cmd, tc.probe)
		}
		if hc.Interval == nil || hc.Retries == nil {
			t.Errorf("%s: healthcheck needs an interval and retries", tc.service)
		}
	}
}

func TestDepComposeGatewaysBuildOneImage(t *testing.T) {
	p := depLoadCompose(t)
	root, _ := filepath.Abs(depRoot)
	for _, name := range []string{"migrate", "admin-gateway", "query-gateway"} {
		s := depService(t, p, name)
		if s.Image != depImage {
			t.Errorf("%s: image = %q, want %q", name, s.Image, depImage)
		}
		if s.Build == nil {
			t.Errorf("%s: no build section", name)
			continue
		}
		if s.Build.Context != root {
			t.Errorf("%s: build context = %q, want the repository root %q", name, s.Build.Context, root)
		}
		if df := s.Build.Dockerfile; df != "Dockerfile" && df != filepath.Join(root, "Dockerfile") {
			t.Errorf("%s: dockerfile = %q, want Dockerfile", name, df)
		}
		// The same hardening as the chart's securityContext.
		if s.User != "65532:65532" || !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") ||
			!slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: user=%q read_only=%v cap_drop=%v security_opt=%v, want 65532:65532, true, [ALL], no-new-privileges",
				name, s.User, s.ReadOnly, s.CapDrop, s.SecurityOpt)
		}
	}
}

func TestDepComposeStartOrder(t *testing.T) {
	p := depLoadCompose(t)
	want := map[string]map[string]string{
		"migrate": {"postgres": types.ServiceConditionHealthy},
		"admin-gateway": {
			"migrate":  types.ServiceConditionCompletedSuccessfully,
			"postgres": types.ServiceConditionHealthy,
			"redis":    types.ServiceConditionHealthy,
		},
		"query-gateway": {
			"migrate":  types.ServiceConditionCompletedSuccessfully,
			"postgres": types.ServiceConditionHealthy,
			"redis":    types.ServiceConditionHealthy,
		},
	}
	for name, deps := range want {
		s := depService(t, p, name)
		for dep, cond := range deps {
			got, ok := s.DependsOn[dep]
			if !ok {
				t.Errorf("%s: does not depend on %s", name, dep)
				continue
			}
			if got.Condition != cond {
				t.Errorf("%s: depends on %s with condition %q, want %q", name, dep, got.Condition, cond)
			}
		}
		if len(s.DependsOn) != len(deps) {
			t.Errorf("%s: depends_on has %d services, want %d", name, len(s.DependsOn), len(deps))
		}
	}
	if r := depService(t, p, "migrate").Restart; r != "no" && r != "" {
		t.Errorf("migrate: restart = %q, want no (it is a one-shot job)", r)
	}
}

func TestDepComposeCommandsAndPorts(t *testing.T) {
	p := depLoadCompose(t)
	for _, tc := range []struct {
		service string
		argv    []string
		port    uint32
	}{
		{"migrate", []string{"/usr/local/bin/admin-gateway", "migrate"}, 0},
		{"admin-gateway", []string{"/usr/local/bin/admin-gateway"}, 8080},
		{"query-gateway", []string{"/usr/local/bin/query-gateway"}, 8081},
	} {
		s := depService(t, p, tc.service)
		if got := depArgv(s); !slices.Equal(got, tc.argv) {
			t.Errorf("%s: runs %q, want %q", tc.service, got, tc.argv)
		}
		if tc.port == 0 {
			if len(s.Ports) != 0 {
				t.Errorf("%s: publishes %v, want nothing", tc.service, s.Ports)
			}
			continue
		}
		if len(s.Ports) != 1 {
			t.Errorf("%s: ports = %+v, want exactly %d", tc.service, s.Ports, tc.port)
			continue
		}
		pc := s.Ports[0]
		if pc.Target != tc.port || pc.Published != strconv.Itoa(int(tc.port)) || pc.HostIP != "127.0.0.1" {
			t.Errorf("%s: port = %s:%s->%d, want 127.0.0.1:%d->%d (the development secret must not be reachable from the network)",
				tc.service, pc.HostIP, pc.Published, pc.Target, tc.port, tc.port)
		}
		if addr := depEnv(s)["PHOENIX_HTTP_ADDR"]; addr != ":"+strconv.Itoa(int(tc.port)) {
			t.Errorf("%s: PHOENIX_HTTP_ADDR = %q, want :%d", tc.service, addr, tc.port)
		}
	}
	// Backing services stay on the compose network: a local PostgreSQL or Redis on the host
	// keeps its ports.
	for _, name := range []string{"postgres", "redis"} {
		if ports := depService(t, p, name).Ports; len(ports) != 0 {
			t.Errorf("%s: publishes %v, want nothing", name, ports)
		}
	}
}

func TestDepComposeEnvironment(t *testing.T) {
	p := depLoadCompose(t)
	known := depKnownEnv(t)
	for _, name := range []string{"migrate", "admin-gateway", "query-gateway"} {
		env := depEnv(depService(t, p, name))
		if u := env["PHOENIX_DATABASE_URL"]; !strings.Contains(u, "@postgres:5432/") {
			t.Errorf("%s: PHOENIX_DATABASE_URL = %q, want the postgres service", name, u)
		}
		if u := env["PHOENIX_REDIS_URL"]; !strings.HasPrefix(u, "redis://redis:6379") {
			t.Errorf("%s: PHOENIX_REDIS_URL = %q, want the redis service", name, u)
		}
		// Without PHOENIX_JWT_SECRET in the caller's environment, development mode supplies the
		// (public) development secret; with it, the real secret wins.
		if env["PHOENIX_DEV"] != "true" {
			t.Errorf("%s: PHOENIX_DEV = %q, want true", name, env["PHOENIX_DEV"])
		}
		if v, ok := env["PHOENIX_JWT_SECRET"]; !ok || v != "" {
			t.Errorf("%s: PHOENIX_JWT_SECRET = %q (set %v), want empty by default", name, v, ok)
		}
		// The Admin Gateway's address hash key works the same way; the others store no address.
		if v, ok := env["PHOENIX_ADDRESS_HASH_KEY"]; (name == "admin-gateway") != ok || v != "" {
			t.Errorf("%s: PHOENIX_ADDRESS_HASH_KEY = %q (set %v), want empty by default on the admin gateway only", name, v, ok)
		}
		for k := range env {
			if strings.HasPrefix(k, "PHOENIX_") && !known[k] {
				t.Errorf("%s: %s is read by neither binary", name, k)
			}
		}
	}
}

// TestDepComposeRejectsInvalidFile proves the loader validates: a misspelt key fails.
func TestDepComposeRejectsInvalidFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "docker-compose.yml")
	bad := "services:\n  x:\n    image: redis:7\n    depends_onn: [y]\n  y:\n    image: redis:7\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir: dir, ConfigFiles: []types.ConfigFile{{Filename: path}}, Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("bad", true) })
	if err == nil || !strings.Contains(err.Error(), "depends_onn") {
		t.Fatalf("loading a file with a misspelt key: err = %v, want a schema error naming it", err)
	}
}

// depDockerfile is the Dockerfile as instructions (continuation lines joined, comments dropped).
func depDockerfile(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(depRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDepDockerfile(t *testing.T) {
	ins := depDockerfile(t)
	var froms, users, exposes, runs, copies, cmds []string
	for _, in := range ins {
		op, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(op) {
		case "FROM":
			froms = append(froms, rest)
		case "USER":
			users = append(users, rest)
		case "EXPOSE":
			exposes = append(exposes, rest)
		case "RUN":
			runs = append(runs, rest)
		case "COPY":
			copies = append(copies, rest)
		case "CMD", "ENTRYPOINT":
			cmds = append(cmds, in)
		}
	}
	if len(froms) != 2 {
		t.Fatalf("FROM lines = %q, want a build and a runtime stage", froms)
	}
	if !regexp.MustCompile(`(^|\s)golang:1\.26(\s|$)`).MatchString(froms[0]) || !strings.HasSuffix(froms[0], " AS build") {
		t.Errorf("build stage = %q, want golang:1.26 AS build", froms[0])
	}
	if froms[1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("runtime stage = %q, want gcr.io/distroless/static-debian12:nonroot", froms[1])
	}
	if len(users) == 0 || users[len(users)-1] != "65532:65532" {
		t.Errorf("USER = %q, want 65532:65532 last", users)
	}
	if len(exposes) != 1 || strings.Join(strings.Fields(exposes[0]), " ") != "8080 8081" {
		t.Errorf("EXPOSE = %q, want 8080 8081", exposes)
	}
	var build string
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "./cmd/admin-gateway", "./cmd/query-gateway", "-o /out/"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build step %q lacks %s", build, want)
		}
	}
	installed := false
	for _, c := range copies {
		if strings.HasPrefix(c, "--from=build ") && strings.Contains(c, "/out/admin-gateway") &&
			strings.Contains(c, "/out/query-gateway") && strings.HasSuffix(c, " /usr/local/bin/") {
			installed = true
		}
	}
	if !installed {
		t.Errorf("COPY lines %q: want both binaries copied from the build stage to /usr/local/bin/", copies)
	}
	for _, c := range cmds {
		if strings.HasPrefix(c, "ENTRYPOINT") {
			t.Errorf("%q: the image must not set an ENTRYPOINT (compose and the chart give the whole argv)", c)
		}
	}
	// The builder's Go must be the release go.mod asks for.
	mod, err := os.ReadFile(filepath.Join(depRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^go (1\.\d+)`).FindSubmatch(mod); m == nil || string(m[1]) != "1.26" {
		t.Errorf("go.mod's go line does not match the golang:1.26 builder: %q", m)
	}
	for _, dir := range []string{"cmd/admin-gateway", "cmd/query-gateway"} {
		if _, err := os.Stat(filepath.Join(depRoot, dir, "main.go")); err != nil {
			t.Errorf("the Dockerfile builds %s: %v", dir, err)
		}
	}
}

// TestDepDockerignore checks that the build context keeps what `go build` needs and drops the
// rest. Patterns are matched the way Docker does for the simple forms used here: a path
// pattern, or **/ followed by a name pattern.
func TestDepDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(depRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			if strings.HasPrefix(line, "!") {
				t.Fatalf("exception %q: this check does not model exceptions", line)
			}
			patterns = append(patterns, strings.TrimSuffix(strings.TrimPrefix(line, "/"), "/"))
		}
	}
	ignored := func(path string) bool {
		parts := strings.Split(path, "/")
		for _, p := range patterns {
			if name, ok := strings.CutPrefix(p, "**/"); ok {
				for i := range parts {
					if m, _ := filepath.Match(name, strings.Join(parts[i:], "/")); m {
						return true
					}
				}
				continue
			}
			// A pattern excludes a path and everything under it.
			for i := 1; i <= len(parts); i++ {
				if m, _ := filepath.Match(p, strings.Join(parts[:i], "/")); m {
					return true
				}
			}
		}
		return false
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd/admin-gateway/main.go", "cmd/query-gateway/main.go",
		"pkg/web/server.go", "pkg/postgres/postgres.go", "migrations/migrations.go", "migrations/00001_schema.sql"} {
		if ignored(keep) {
			t.Errorf(".dockerignore drops %s, which the build needs", keep)
		}
	}
	for _, drop := range []string{".git/HEAD", "bin/helm", "charts/phoenix/values.yaml", "pkg/web/server_test.go",
		"deploy/testdata/everything-on.yaml", "docs/deployment.md", ".env", "query-gateway"} {
		if !ignored(drop) {
			t.Errorf(".dockerignore keeps %s in the build context", drop)
		}
	}
}

// depKnownEnv is the set of PHOENIX_* variables the binaries read, taken from their sources.
func depKnownEnv(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`"(PHOENIX_[A-Z0-9_]+)"`)
	known := map[string]bool{}
	for _, dir := range []string{"cmd/admin-gateway", "cmd/query-gateway", "pkg/config"} {
		files, err := filepath.Glob(filepath.Join(depRoot, dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllSubmatch(b, -1) {
				known[string(m[1])] = true
			}
		}
	}
	for _, must := range []string{"PHOENIX_DATABASE_URL", "PHOENIX_JWT_SECRET", "PHOENIX_HTTP_ADDR"} {
		if !known[must] {
			t.Fatalf("found no %s in the binaries' sources: the scan is broken", must)
		}
	}
	return known
}
