package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// depChart is the chart directory.
var depChart = filepath.Join(depRoot, "charts", "phoenix")

// depEverythingOn turns every optional feature of the chart on.
var depEverythingOn = filepath.Join("testdata", "everything-on.yaml")

// depHelm finds the helm CLI: $HELM, then ./bin/helm (what scripts/helm.sh installs), then PATH.
// Without it the chart checks are skipped: CI installs it first.
func depHelm(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if h, err := filepath.Abs(filepath.Join(depRoot, "bin", "helm")); err == nil {
		if _, err := os.Stat(h); err == nil {
			return h
		}
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h
	}
	t.Skip("helm not found (set HELM, or run `bash scripts/helm.sh` to build ./bin/helm): chart checks skipped")
	return ""
}

// depRunHelm runs helm and returns its standard output, standard error and exit error.
func depRunHelm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(depHelm(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// No cluster, no user configuration: the checks must not depend on the machine.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home,
		"KUBECONFIG="+filepath.Join(home, "none"))
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// depObject is one rendered Kubernetes object, decoded strictly into its API type.
type depObject struct {
	Kind, Name string
	Source     string // the template it came from
	Obj        any
}

// depManifest is a rendered chart.
type depManifest struct {
	Objects []depObject
}

// depServiceMonitor is the part of the Prometheus Operator's ServiceMonitor the chart uses,
// decoded strictly too so that a misspelt field fails.
type depServiceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// depTypes maps apiVersion/kind to the type a document must decode into.
var depTypes = map[string]func() any{
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Pod":                                  func() any { return &corev1.Pod{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"autoscaling/v2/HorizontalPodAutoscaler":  func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &depServiceMonitor{} },
}

var depDocSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// depDecode splits a multi-document YAML stream and strictly decodes every document.
func depDecode(stream string) (*depManifest, error) {
	m := &depManifest{}
	for _, doc := range depDocSep.Split(stream, -1) {
		source := ""
		empty := true
		for _, line := range strings.Split(doc, "\n") {
			line = strings.TrimSpace(line)
			if s, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = s
			}
			if line != "" && !strings.HasPrefix(line, "#") {
				empty = false
			}
		}
		if empty {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		newObj, ok := depTypes[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("%s: unexpected object %s %s", source, tm.APIVersion, tm.Kind)
		}
		obj := newObj()
		// UnmarshalStrict rejects unknown and duplicate fields.
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", source, tm.Kind, err)
		}
		var name string
		if sm, ok := obj.(*depServiceMonitor); ok {
			name = sm.Metadata.Name
		} else {
			name = obj.(metav1.Object).GetName()
		}
		if name == "" {
			return nil, fmt.Errorf("%s: %s without a name", source, tm.Kind)
		}
		m.Objects = append(m.Objects, depObject{Kind: tm.Kind, Name: name, Source: source, Obj: obj})
	}
	return m, nil
}

// depRender runs `helm template` on the chart with args and decodes the result.
func depRender(t *testing.T, args ...string) *depManifest {
	t.Helper()
	out, stderr, err := depRunHelm(t, append([]string{"template", "rel", depChart, "--namespace", "ns"}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, stderr)
	}
	m, err := depDecode(out)
	if err != nil {
		t.Fatalf("helm template %v: %v", args, err)
	}
	if len(m.Objects) == 0 {
		t.Fatalf("helm template %v rendered nothing", args)
	}
	return m
}

// depAll returns every object of type T.
func depAll[T any](m *depManifest) []T {
	var out []T
	for _, o := range m.Objects {
		if v, ok := o.Obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// depGet returns the object of type T named name, or fails.
func depGet[T any](t *testing.T, m *depManifest, name string) T {
	t.Helper()
	for _, o := range m.Objects {
		if v, ok := o.Obj.(T); ok && o.Name == name {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T named %q was rendered", zero, name)
	return zero
}

// depCount counts objects per kind.
func depCount(m *depManifest) map[string]int {
	out := map[string]int{}
	for _, o := range m.Objects {
		out[o.Kind]++
	}
	return out
}

// depHook parses an object's Helm hook annotations.
func depHook(meta metav1.ObjectMeta) (events, deletePolicy []string, weight string) {
	split := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		slices.Sort(out)
		return out
	}
	a := meta.Annotations
	return split(a["helm.sh/hook"]), split(a["helm.sh/hook-delete-policy"]), a["helm.sh/hook-weight"]
}

// depCase is one way of rendering the chart.
type depCase struct {
	name           string
	args           []string
	existingSecret string
}

var depCases = []depCase{
	{name: "default"},
	{name: "chart-secret", args: []string{
		"--set", "secret.databaseURL=postgres://phoenix:pw@db:5432/phoenix?sslmode=require",
		"--set", "secret.jwtSecret=0123456789abcdef0123456789abcdef01",
		"--set", "secret.addressHashKey=fedcba9876543210fedcba9876543210fe",
		"--set", "secret.redisURL=redis://:pw@cache:6379/0",
	}},
	{name: "everything-on", args: []string{"-f", depEverythingOn}, existingSecret: "phoenix-credentials"},
}

func TestDepHelmLint(t *testing.T) {
	for _, tc := range depCases {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := depRunHelm(t, append([]string{"lint", "--strict", depChart}, tc.args...)...)
			if err != nil {
				t.Fatalf("helm lint --strict: %v\n%s%s", err, out, stderr)
			}
		})
	}
}

func TestDepHelmObjects(t *testing.T) {
	for _, tc := range []struct {
		depCase
		want map[string]int
	}{
		{depCases[0], map[string]int{"Deployment": 2, "Service": 2, "ConfigMap": 1, "Secret": 2, "Job": 1,
			"PodDisruptionBudget": 2, "ServiceAccount": 1, "Pod": 1}},
		{depCases[1], map[string]int{"Deployment": 2, "Service": 2, "ConfigMap": 1, "Secret": 2, "Job": 1,
			"PodDisruptionBudget": 2, "ServiceAccount": 1, "Pod": 1}},
		// An existing Secret replaces both of the chart's; the public key adds a ConfigMap.
		{depCases[2], map[string]int{"Deployment": 2, "Service": 2, "ConfigMap": 2, "Job": 1,
			"PodDisruptionBudget": 2, "ServiceAccount": 1, "Pod": 1, "HorizontalPodAutoscaler": 2,
			"ServiceMonitor": 1, "NetworkPolicy": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := depRender(t, tc.args...)
			got := depCount(m)
			for kind, n := range tc.want {
				if got[kind] != n {
					t.Errorf("%d %s objects, want %d", got[kind], kind, n)
				}
			}
			for kind, n := range got {
				if _, ok := tc.want[kind]; !ok {
					t.Errorf("%d unexpected %s objects", n, kind)
				}
			}
			for _, o := range m.Objects {
				if meta, ok := o.Obj.(metav1.Object); ok {
					if meta.GetNamespace() != "ns" {
						t.Errorf("%s %s: namespace %q, want the release's", o.Kind, o.Name, meta.GetNamespace())
					}
					l := meta.GetLabels()
					for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
						"app.kubernetes.io/managed-by", "helm.sh/chart"} {
						if l[k] == "" {
							t.Errorf("%s %s: no %s label", o.Kind, o.Name, k)
						}
					}
				}
			}
		})
	}
}

// depPodSpecs returns every pod template the chart renders, by owner.
func depPodSpecs(m *depManifest) map[string]corev1.PodSpec {
	out := map[string]corev1.PodSpec{}
	for _, d := range depAll[*appsv1.Deployment](m) {
		out["Deployment/"+d.Name] = d.Spec.Template.Spec
	}
	for _, j := range depAll[*batchv1.Job](m) {
		out["Job/"+j.Name] = j.Spec.Template.Spec
	}
	for _, p := range depAll[*corev1.Pod](m) {
		out["Pod/"+p.Name] = p.Spec
	}
	return out
}

func TestDepHelmSecurityContext(t *testing.T) {
	for _, tc := range depCases {
		t.Run(tc.name, func(t *testing.T) {
			m := depRender(t, tc.args...)
			specs := depPodSpecs(m)
			if len(specs) != 4 {
				t.Fatalf("%d pod templates, want 4 (two gateways, the migration Job, the test pod)", len(specs))
			}
			for owner, spec := range specs {
				psc := spec.SecurityContext
				if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
					psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("%s: pod securityContext %+v, want runAsNonRoot, runAsUser 65532, seccomp RuntimeDefault", owner, psc)
				}
				if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
					t.Errorf("%s: mounts a service account token; nothing here calls the Kubernetes API", owner)
				}
				if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
					t.Errorf("%s: %d containers, %d init containers, want 1 and 0", owner, len(spec.Containers), len(spec.InitContainers))
				}
				for _, c := range spec.Containers {
					sc := c.SecurityContext
					switch {
					case sc == nil:
						t.Errorf("%s/%s: no securityContext", owner, c.Name)
						continue
					case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
						t.Errorf("%s/%s: runAsNonRoot not set", owner, c.Name)
					case sc.RunAsUser == nil || *sc.RunAsUser != 65532:
						t.Errorf("%s/%s: runAsUser %v, want 65532", owner, c.Name, sc.RunAsUser)
					case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
						t.Errorf("%s/%s: root filesystem is writable", owner, c.Name)
					case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
						t.Errorf("%s/%s: allowPrivilegeEscalation not false", owner, c.Name)
					case sc.Privileged != nil && *sc.Privileged:
						t.Errorf("%s/%s: privileged", owner, c.Name)
					case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
						t.Errorf("%s/%s: capabilities %+v, want drop [ALL] and no add", owner, c.Name, sc.Capabilities)
					case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
						t.Errorf("%s/%s: seccompProfile %+v, want RuntimeDefault", owner, c.Name, sc.SeccompProfile)
					}
					if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
						t.Errorf("%s/%s: resources %+v, want cpu and memory requests and a memory limit", owner, c.Name, c.Resources)
					}
				}
			}
		})
	}
}

// depGateways are the two Deployments: name suffix, binary, port.
var depGateways = []struct {
	component, binary string
	port              int32
}{
	{"admin-gateway", "/usr/local/bin/admin-gateway", 8080},
	{"query-gateway", "/usr/local/bin/query-gateway", 8081},
}

func TestDepHelmGateways(t *testing.T) {
	known := depKnownEnv(t)
	for _, tc := range depCases {
		t.Run(tc.name, func(t *testing.T) {
			m := depRender(t, tc.args...)
			cm := depGet[*corev1.ConfigMap](t, m, "rel-phoenix")
			drain, err1 := time.ParseDuration(cm.Data["PHOENIX_DRAIN_DELAY"])
			shutdown, err2 := time.ParseDuration(cm.Data["PHOENIX_SHUTDOWN_TIMEOUT"])
			if err := errors.Join(err1, err2); err != nil {
				t.Fatalf("ConfigMap durations: %v", err)
			}
			for k := range cm.Data {
				if strings.HasPrefix(k, "PHOENIX_") && !known[k] {
					t.Errorf("ConfigMap key %s is read by neither binary", k)
				}
			}
			for _, g := range depGateways {
				name := "rel-phoenix-" + g.component
				d := depGet[*appsv1.Deployment](t, m, name)
				spec := d.Spec.Template.Spec
				c := spec.Containers[0]
				if !slices.Equal(c.Command, []string{g.binary}) || len(c.Args) != 0 {
					t.Errorf("%s: runs %q %q, want %s", name, c.Command, c.Args, g.binary)
				}
				if !strings.HasPrefix(c.Image, "ghcr.io/phoenix-referral/phoenix:") && !strings.HasPrefix(c.Image, "registry.example.com/phoenix@sha256:") {
					t.Errorf("%s: image %q", name, c.Image)
				}

				// The container listens where its port says.
				if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != g.port {
					t.Errorf("%s: ports %+v, want http %d", name, c.Ports, g.port)
				}
				env := map[string]corev1.EnvVar{}
				for _, e := range c.Env {
					if _, dup := env[e.Name]; dup {
						t.Errorf("%s: %s set twice", name, e.Name)
					}
					env[e.Name] = e
					if strings.HasPrefix(e.Name, "PHOENIX_") && !known[e.Name] {
						t.Errorf("%s: %s is read by neither binary", name, e.Name)
					}
				}
				if v := env["PHOENIX_HTTP_ADDR"].Value; v != fmt.Sprintf(":%d", g.port) {
					t.Errorf("%s: PHOENIX_HTTP_ADDR = %q, want :%d", name, v, g.port)
				}

				// Probes: startup and liveness on /healthz, readiness on /readyz, all on the named port.
				for _, p := range []struct {
					kind  string
					probe *corev1.Probe
					path  string
				}{{"startup", c.StartupProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
					if p.probe == nil || p.probe.HTTPGet == nil {
						t.Errorf("%s: no %s HTTP probe", name, p.kind)
						continue
					}
					if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
						t.Errorf("%s: %s probe GET %s on %s, want %s on http", name, p.kind, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
					}
					if p.probe.PeriodSeconds < 1 || p.probe.FailureThreshold < 1 || p.probe.TimeoutSeconds < 1 {
						t.Errorf("%s: %s probe %+v lacks period, timeout or threshold", name, p.kind, p.probe)
					}
				}
				if c.StartupProbe != nil && c.StartupProbe.PeriodSeconds*c.StartupProbe.FailureThreshold < 30 {
					t.Errorf("%s: the startup probe gives up after less than 30s", name)
				}

				// The kubelet must not kill a pod that is draining or finishing requests.
				grace := spec.TerminationGracePeriodSeconds
				if grace == nil || time.Duration(*grace)*time.Second <= drain+shutdown {
					t.Errorf("%s: terminationGracePeriodSeconds %v, want more than drain %s + shutdown %s", name, grace, drain, shutdown)
				}

				// Rolling updates never drop below the desired replicas.
				ru := d.Spec.Strategy.RollingUpdate
				if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
					t.Errorf("%s: rolling update %+v, want maxUnavailable 0", name, ru)
				}

				// The selector picks the pod template's labels, and only this component's.
				sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
				if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
					t.Errorf("%s: selector %v does not match its pod labels %v", name, d.Spec.Selector, d.Spec.Template.Labels)
				}
				if d.Spec.Selector.MatchLabels["app.kubernetes.io/component"] != g.component {
					t.Errorf("%s: selector %v does not name the component", name, d.Spec.Selector)
				}

				// Configuration changes roll the pods.
				if d.Spec.Template.Annotations["checksum/config"] == "" {
					t.Errorf("%s: no checksum/config annotation", name)
				}

				// The Service reaches this Deployment's pods on the named port.
				svc := depGet[*corev1.Service](t, m, name)
				ssel := labels.SelectorFromSet(svc.Spec.Selector)
				if !ssel.Matches(labels.Set(d.Spec.Template.Labels)) {
					t.Errorf("%s: Service selector %v misses the pods %v", name, svc.Spec.Selector, d.Spec.Template.Labels)
				}
				if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" || svc.Spec.Ports[0].Port != g.port {
					t.Errorf("%s: Service ports %+v, want %d → http", name, svc.Spec.Ports, g.port)
				}
				for _, other := range depGateways {
					od := depGet[*appsv1.Deployment](t, m, "rel-phoenix-"+other.component)
					if other.component != g.component && ssel.Matches(labels.Set(od.Spec.Template.Labels)) {
						t.Errorf("%s: Service also selects %s's pods", name, other.component)
					}
				}

				// The Admin Gateway reads the address hash key from the Secret; the Query Gateway,
				// which stores no address, does not get it.
				hk, ok := env["PHOENIX_ADDRESS_HASH_KEY"]
				switch {
				case g.component == "admin-gateway" && (!ok || hk.ValueFrom == nil || hk.ValueFrom.SecretKeyRef == nil):
					t.Errorf("%s: PHOENIX_ADDRESS_HASH_KEY not from a Secret: %+v", name, hk)
				case g.component == "admin-gateway" && tc.existingSecret != "" && hk.ValueFrom.SecretKeyRef.Key != "address-hash-key":
					t.Errorf("%s: address hash key read from key %q, want secret.addressHashKeyKey", name, hk.ValueFrom.SecretKeyRef.Key)
				case g.component == "query-gateway" && ok:
					t.Errorf("%s: has PHOENIX_ADDRESS_HASH_KEY", name)
				}

				// Every reference resolves to something rendered or to the existing Secret.
				depCheckRefs(t, m, name, spec, tc.existingSecret, false)
			}
		})
	}
}

// depCheckRefs checks that a pod's Secret and ConfigMap references resolve. A hook pod (the
// migration Job) runs before the release's ordinary objects exist, so it may only use objects
// created by an earlier hook of its own events, or the existing Secret.
func depCheckRefs(t *testing.T, m *depManifest, owner string, spec corev1.PodSpec, existingSecret string, hook bool) {
	t.Helper()
	var jobWeight string
	if hook {
		for _, j := range depAll[*batchv1.Job](m) {
			_, _, jobWeight = depHook(j.ObjectMeta)
		}
	}
	usable := func(meta metav1.ObjectMeta) error {
		events, _, weight := depHook(meta)
		if !hook {
			if len(events) != 0 {
				return fmt.Errorf("it is a hook (%v), deleted or absent while the pods run", events)
			}
			return nil
		}
		if !slices.Contains(events, "pre-install") || !slices.Contains(events, "pre-upgrade") {
			return fmt.Errorf("it does not exist yet when the pre-install hook runs (hook events %v)", events)
		}
		if depWeight(weight) >= depWeight(jobWeight) {
			return fmt.Errorf("its hook weight %q is not below the Job's %q", weight, jobWeight)
		}
		return nil
	}
	secretKey := func(name, key string, optional bool) {
		if name == existingSecret && existingSecret != "" {
			return
		}
		for _, s := range depAll[*corev1.Secret](m) {
			if s.Name != name {
				continue
			}
			if err := usable(s.ObjectMeta); err != nil {
				t.Errorf("%s: uses Secret %s, but %v", owner, name, err)
			}
			if _, ok := s.Data[key]; !ok && !optional {
				t.Errorf("%s: Secret %s has no key %s", owner, name, key)
			}
			return
		}
		t.Errorf("%s: Secret %s is neither rendered nor the existing Secret", owner, name)
	}
	configMap := func(name string) {
		for _, c := range depAll[*corev1.ConfigMap](m) {
			if c.Name == name {
				if err := usable(c.ObjectMeta); err != nil {
					t.Errorf("%s: uses ConfigMap %s, but %v", owner, name, err)
				}
				return
			}
		}
		t.Errorf("%s: ConfigMap %s is not rendered", owner, name)
	}
	for _, c := range spec.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r := e.ValueFrom.SecretKeyRef
				secretKey(r.Name, r.Key, r.Optional != nil && *r.Optional)
			}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				configMap(e.ValueFrom.ConfigMapKeyRef.Name)
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				configMap(ef.ConfigMapRef.Name)
			}
			if ef.SecretRef != nil {
				secretKey(ef.SecretRef.Name, "", true)
			}
		}
		mounts := map[string]bool{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.Name] = true
		}
		for _, v := range spec.Volumes {
			if !mounts[v.Name] {
				t.Errorf("%s: volume %s is never mounted", owner, v.Name)
			}
			if v.ConfigMap != nil {
				configMap(v.ConfigMap.Name)
			}
			if v.Secret != nil {
				secretKey(v.Secret.SecretName, "", true)
			}
		}
	}
}

// depWeight parses a hook weight ("" is 0).
func depWeight(s string) int {
	var n int
	if s != "" {
		fmt.Sscan(s, &n)
	}
	return n
}

func TestDepHelmMigrationJob(t *testing.T) {
	for _, tc := range depCases {
		t.Run(tc.name, func(t *testing.T) {
			m := depRender(t, tc.args...)
			j := depGet[*batchv1.Job](t, m, "rel-phoenix-migrate")
			events, policy, _ := depHook(j.ObjectMeta)
			if !slices.Equal(events, []string{"pre-install", "pre-upgrade"}) {
				t.Errorf("hook events %v, want pre-install,pre-upgrade", events)
			}
			if !slices.Equal(policy, []string{"before-hook-creation", "hook-succeeded"}) {
				t.Errorf("hook delete policy %v, want before-hook-creation,hook-succeeded", policy)
			}
			spec := j.Spec.Template.Spec
			if spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
				t.Errorf("restartPolicy %q", spec.RestartPolicy)
			}
			if j.Spec.BackoffLimit == nil || j.Spec.ActiveDeadlineSeconds == nil {
				t.Errorf("backoffLimit %v, activeDeadlineSeconds %v: want both bounded", j.Spec.BackoffLimit, j.Spec.ActiveDeadlineSeconds)
			}
			c := spec.Containers[0]
			if got := append(append([]string{}, c.Command...), c.Args...); !slices.Equal(got, []string{"/usr/local/bin/admin-gateway", "migrate"}) {
				t.Errorf("runs %q, want admin-gateway migrate", got)
			}
			// No envFrom: the release's ConfigMap does not exist before a first install.
			if len(c.EnvFrom) != 0 {
				t.Errorf("envFrom %+v: the pre-install hook cannot read the release's objects", c.EnvFrom)
			}
			var db *corev1.EnvVar
			for i, e := range c.Env {
				if e.Name == "PHOENIX_DATABASE_URL" {
					db = &c.Env[i]
				}
			}
			if db == nil || db.ValueFrom == nil || db.ValueFrom.SecretKeyRef == nil {
				t.Fatalf("PHOENIX_DATABASE_URL does not come from a Secret: %+v", db)
			}
			ref := db.ValueFrom.SecretKeyRef
			if tc.existingSecret != "" && ref.Name != tc.existingSecret {
				t.Errorf("reads the database URL from %s, want the existing Secret %s", ref.Name, tc.existingSecret)
			}
			if tc.existingSecret == "" {
				// The hook's copy of the Secret carries the same database URL as the release's.
				hs := depGet[*corev1.Secret](t, m, ref.Name)
				rs := depGet[*corev1.Secret](t, m, "rel-phoenix")
				if !bytes.Equal(hs.Data[ref.Key], rs.Data["PHOENIX_DATABASE_URL"]) {
					t.Errorf("the hook Secret's database URL %q differs from the release Secret's %q", hs.Data[ref.Key], rs.Data["PHOENIX_DATABASE_URL"])
				}
				if !bytes.Equal(hs.Data["PHOENIX_JWT_SECRET"], rs.Data["PHOENIX_JWT_SECRET"]) {
					t.Errorf("the hook Secret's JWT secret differs from the release Secret's")
				}
				if _, policy, _ := depHook(hs.ObjectMeta); !slices.Contains(policy, "hook-succeeded") {
					t.Errorf("the hook Secret outlives a successful migration: delete policy %v", policy)
				}
			}
			depCheckRefs(t, m, "Job/"+j.Name, spec, tc.existingSecret, true)
		})
	}
}

func TestDepHelmTestPod(t *testing.T) {
	m := depRender(t)
	p := depGet[*corev1.Pod](t, m, "rel-phoenix-test-readyz")
	if events, _, _ := depHook(p.ObjectMeta); !slices.Equal(events, []string{"test"}) {
		t.Errorf("hook events %v, want test", events)
	}
	argv := strings.Join(append(append([]string{}, p.Spec.Containers[0].Command...), p.Spec.Containers[0].Args...), " ")
	for _, g := range depGateways {
		svc := depGet[*corev1.Service](t, m, "rel-phoenix-"+g.component)
		url := fmt.Sprintf("http://%s:%d/readyz", svc.Name, svc.Spec.Ports[0].Port)
		if !strings.Contains(argv, url) {
			t.Errorf("the test pod runs %q, which does not check %s", argv, url)
		}
	}
	if !strings.HasPrefix(argv, "curl ") || !strings.Contains(argv, "--fail") || !strings.Contains(argv, "--fail-early") {
		t.Errorf("the test pod runs %q: want curl --fail --fail-early so any failing URL fails the test", argv)
	}
}

func TestDepHelmScaling(t *testing.T) {
	def := depRender(t)
	if n := len(depAll[*autoscalingv2.HorizontalPodAutoscaler](def)); n != 0 {
		t.Errorf("default values render %d HPAs, want none", n)
	}
	for _, g := range depGateways {
		d := depGet[*appsv1.Deployment](t, def, "rel-phoenix-"+g.component)
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("%s: replicas %v, want 2 by default", d.Name, d.Spec.Replicas)
		}
		pdb := depGet[*policyv1.PodDisruptionBudget](t, def, d.Name)
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
			t.Errorf("%s: PDB %+v, want maxUnavailable 1", d.Name, pdb.Spec)
		}
	}

	on := depRender(t, "-f", depEverythingOn)
	for _, g := range depGateways {
		d := depGet[*appsv1.Deployment](t, on, "rel-phoenix-"+g.component)
		// The HPA owns the replica count; a fixed one would fight it on every upgrade.
		if d.Spec.Replicas != nil {
			t.Errorf("%s: replicas %d with autoscaling on, want unset", d.Name, *d.Spec.Replicas)
		}
		h := depGet[*autoscalingv2.HorizontalPodAutoscaler](t, on, d.Name)
		ref := h.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
			t.Errorf("%s: HPA targets %+v", d.Name, ref)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("%s: HPA replicas %v..%d", d.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if len(h.Spec.Metrics) == 0 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("%s: HPA metrics %+v, want CPU first", d.Name, h.Spec.Metrics)
		}
		pdb := depGet[*policyv1.PodDisruptionBudget](t, on, d.Name)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: PDB selector %v misses the pods", d.Name, pdb.Spec.Selector)
		}
	}
	admin := depGet[*autoscalingv2.HorizontalPodAutoscaler](t, on, "rel-phoenix-admin-gateway")
	if len(admin.Spec.Metrics) != 2 || admin.Spec.Behavior == nil || admin.Spec.Behavior.ScaleDown == nil {
		t.Errorf("admin HPA: metrics %+v, behavior %+v, want CPU and memory and the given behavior", admin.Spec.Metrics, admin.Spec.Behavior)
	}
	if pdb := depGet[*policyv1.PodDisruptionBudget](t, on, "rel-phoenix-admin-gateway"); pdb.Spec.MinAvailable == nil || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("admin PDB %+v, want minAvailable only", pdb.Spec)
	}
}

func TestDepHelmMonitoringAndNetworkPolicy(t *testing.T) {
	m := depRender(t, "-f", depEverythingOn)
	sm := depGet[*depServiceMonitor](t, m, "rel-phoenix")
	if sm.Metadata.Labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v lack serviceMonitor.labels", sm.Metadata.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http" || sm.Spec.Endpoints[0].Path != "/metrics" || sm.Spec.Endpoints[0].Interval != "15s" {
		t.Errorf("ServiceMonitor endpoints %+v, want http /metrics every 15s", sm.Spec.Endpoints)
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{"ns"}) {
		t.Errorf("ServiceMonitor namespaces %v, want the release's", sm.Spec.NamespaceSelector.MatchNames)
	}
	smSel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range depAll[*corev1.Service](m) {
		if !smSel.Matches(labels.Set(s.Labels)) {
			t.Errorf("ServiceMonitor does not select Service %s", s.Name)
		}
	}

	np := depGet[*networkingv1.NetworkPolicy](t, m, "rel-phoenix")
	npSel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range depAll[*appsv1.Deployment](m) {
		if !npSel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("NetworkPolicy does not cover %s", d.Name)
		}
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("policy types %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}
	// The configured sources, and the chart's own test pod, may reach the HTTP port.
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.String() != "http" {
		t.Fatalf("ingress rules %+v, want one rule on the http port", np.Spec.Ingress)
	}
	test := depGet[*corev1.Pod](t, m, "rel-phoenix-test-readyz")
	from := np.Spec.Ingress[0].From
	reached := false
	for _, peer := range from {
		if peer.PodSelector != nil && peer.NamespaceSelector == nil {
			if s, err := metav1.LabelSelectorAsSelector(peer.PodSelector); err == nil && s.Matches(labels.Set(test.Labels)) {
				reached = true
			}
		}
	}
	if len(from) != 3 || !reached {
		t.Errorf("ingress from %+v, want the two configured namespaces and the test pod", from)
	}
	// Egress: DNS, then the configured rules (PostgreSQL, Redis, HTTPS by default).
	var ports []string
	for _, r := range np.Spec.Egress {
		for _, p := range r.Ports {
			ports = append(ports, p.Port.String())
		}
	}
	for _, want := range []string{"53", "5432", "6379", "443"} {
		if !slices.Contains(ports, want) {
			t.Errorf("egress ports %v lack %s", ports, want)
		}
	}

	// config.extra reaches the ConfigMap; the public key is mounted where
	// PHOENIX_JWT_PUBLIC_KEY_FILE points.
	cm := depGet[*corev1.ConfigMap](t, m, "rel-phoenix")
	if cm.Data["GOGC"] != "200" {
		t.Errorf("config.extra.GOGC is missing from the ConfigMap: %v", cm.Data)
	}
	keyFile := cm.Data["PHOENIX_JWT_PUBLIC_KEY_FILE"]
	jwt := depGet[*corev1.ConfigMap](t, m, "rel-phoenix-jwt")
	for _, d := range depAll[*appsv1.Deployment](m) {
		found := false
		for _, vm := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == jwt.Name {
					for k := range jwt.Data {
						if filepath.Join(vm.MountPath, k) == keyFile {
							found = true
						}
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: %s is not mounted from ConfigMap %s", d.Name, keyFile, jwt.Name)
		}
	}
}

// TestDepHelmRejectsBadValues: the schema rejects unknown keys (at the top level and below) and
// wrong types, and the templates reject contradictory settings.
func TestDepHelmRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		set, want string
	}{
		{"bogus=1", "bogus"},
		{"adminGateway.replicas=3", "replicas"},
		{"config.logLevel=verbose", "logLevel"},
		{"config.deployment=blue/green", "deployment"},
		{"queryGateway.replicaCount=two", "replicaCount"},
		{"image.digest=latest", "digest"},
		{"terminationGracePeriodSeconds=25", "terminationGracePeriodSeconds"},
		{"secret.jwtSecret=too-short", "at least 32 bytes"},
		{"secret.addressHashKey=too-short", "secret.addressHashKey must be at least 32 bytes"},
		{"config.impressionTTL=30days", "impressionTTL"},
		{"secret.existingSecret=mine,secret.databaseURL=postgres://x", "existingSecret"},
		{"config.autoMigrate=true", "autoMigrate"},
		{"config.extra.PHOENIX_LOG_LEVEL=debug", "config.extra.PHOENIX_LOG_LEVEL"},
		{"config.extra.bad-name=1", "bad-name"},
		{"adminGateway.pdb.minAvailable=1", "only one of minAvailable and maxUnavailable"},
		{"queryGateway.autoscaling.enabled=true,queryGateway.autoscaling.minReplicas=5,queryGateway.autoscaling.maxReplicas=2", "minReplicas"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			out, stderr, err := depRunHelm(t, "template", "rel", depChart, "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template --set %s succeeded:\n%.300s", tc.set, out)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("helm template --set %s failed without naming %q:\n%s", tc.set, tc.want, stderr)
			}
		})
	}
}

// TestDepStrictDecodeRejectsTypos proves the decoder behind these checks is strict.
func TestDepStrictDecodeRejectsTypos(t *testing.T) {
	for _, doc := range []string{
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n    - name: c\n      securityContex: {}\n",
		"apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec:\n  endpoints:\n    - prot: http\n",
		"apiVersion: v1\nkind: Sekret\nmetadata: {name: x}\n",
	} {
		if _, err := depDecode(doc); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
	if m, err := depDecode("---\n# Source: x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n"); err != nil || len(m.Objects) != 1 {
		t.Errorf("a valid stream: %v, %+v", err, m)
	}
}
