package check

import (
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/service"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const configPath = "/etc/poller/poller.yaml"

func groupsEqual(a, b monitoringv1.RuleGroup) bool { return reflect.DeepEqual(a, b) }

// checkDeployment checks that the objects of one rendering fit together and start as shipped.
func checkDeployment(t *testing.T, o *objects, wantMonitoring bool) {
	t.Helper()
	counts := map[string][2]int{
		"Deployment": {len(o.Deployments), 1}, "ConfigMap": {len(o.ConfigMaps), 1}, "Service": {len(o.Services), 1},
		"ServiceAccount": {len(o.ServiceAccounts), 1}, "PodDisruptionBudget": {len(o.PDBs), 1},
		"ServiceMonitor": {len(o.ServiceMonitors), b2i(wantMonitoring)}, "PrometheusRule": {len(o.PrometheusRules), b2i(wantMonitoring)},
	}
	for kind, c := range counts {
		if c[0] != c[1] {
			t.Fatalf("%d %s object(s), want %d", c[0], kind, c[1])
		}
	}
	d := o.Deployments[0]
	pod := d.Spec.Template
	if got := pod.Spec.ServiceAccountName; got != o.ServiceAccounts[0].Name {
		t.Errorf("serviceAccountName = %q, want the ServiceAccount %q", got, o.ServiceAccounts[0].Name)
	}
	podLabels := labels.Set(pod.Labels)
	checkSelects(t, "Deployment", d.Spec.Selector.MatchLabels, podLabels)
	checkSelects(t, "PodDisruptionBudget", o.PDBs[0].Spec.Selector.MatchLabels, podLabels)
	checkSelects(t, "Service", o.Services[0].Spec.Selector, podLabels)
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	cfg := checkConfig(t, pod.Spec, c, o.ConfigMaps[0])
	checkSecurity(t, pod.Spec, c)
	checkProbesAndPorts(t, c, cfg)
	checkGrace(t, pod.Spec, cfg)
	checkGoMemLimit(t, c)
	if wantMonitoring {
		sm := o.ServiceMonitors[0]
		checkSelects(t, "ServiceMonitor", sm.Spec.Selector.MatchLabels, labels.Set(o.Services[0].Labels))
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != o.Services[0].Spec.Ports[0].Name {
			t.Errorf("ServiceMonitor endpoints %+v, want the Service's port %q", sm.Spec.Endpoints, o.Services[0].Spec.Ports[0].Name)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func checkSelects(t *testing.T, what string, selector map[string]string, set labels.Set) {
	t.Helper()
	if len(selector) == 0 || !labels.SelectorFromSet(selector).Matches(set) {
		t.Errorf("%s selector %v does not select the pods %v", what, selector, set)
	}
}

// checkConfig: the container runs `poller run --config` on the ConfigMap's file, and that file is a
// valid poller config (checked by poller's own loader, with every sink type registered).
func checkConfig(t *testing.T, pod corev1.PodSpec, c corev1.Container, cm *corev1.ConfigMap) *config.Config {
	t.Helper()
	if want := []string{"run", "--config", configPath}; !slices.Equal(c.Args, want) || len(c.Command) != 0 {
		t.Errorf("command %q args %q, want the image's entrypoint with args %q", c.Command, c.Args, want)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && m.MountPath+"/poller.yaml" == configPath && v.ConfigMap != nil && v.ConfigMap.Name == cm.Name {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("the ConfigMap %q is not mounted at %s", cm.Name, configPath)
	}
	for _, e := range c.Env {
		t.Setenv(e.Name, "set-by-the-platform")
	}
	cfg, err := config.Parse([]byte(cm.Data["poller.yaml"]), "poller.yaml", service.Registries())
	if err != nil {
		t.Fatalf("the ConfigMap's poller.yaml is not a valid config: %v\n%s", err, cm.Data["poller.yaml"])
	}
	return cfg
}

func checkSecurity(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	ps, cs := pod.SecurityContext, c.SecurityContext
	if ps == nil || cs == nil {
		t.Fatalf("pod securityContext %v, container securityContext %v: want both", ps, cs)
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"pod runAsNonRoot", ps.RunAsNonRoot != nil && *ps.RunAsNonRoot},
		{"pod runAsUser non-zero", ps.RunAsUser != nil && *ps.RunAsUser != 0},
		{"pod seccompProfile RuntimeDefault", ps.SeccompProfile != nil && ps.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"container allowPrivilegeEscalation false", cs.AllowPrivilegeEscalation != nil && !*cs.AllowPrivilegeEscalation},
		{"container readOnlyRootFilesystem", cs.ReadOnlyRootFilesystem != nil && *cs.ReadOnlyRootFilesystem},
		{"container drops ALL capabilities and adds none", cs.Capabilities != nil && slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(cs.Capabilities.Add) == 0},
		{"container not privileged", cs.Privileged == nil || !*cs.Privileged},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("restricted pod security: want %s", c.what)
		}
	}
}

func checkProbesAndPorts(t *testing.T, c corev1.Container, cfg *config.Config) {
	t.Helper()
	_, port, err := net.SplitHostPort(cfg.Server.Listen)
	if err != nil {
		t.Fatalf("server.listen %q: %v", cfg.Server.Listen, err)
	}
	if len(c.Ports) != 1 || strconv.Itoa(int(c.Ports[0].ContainerPort)) != port || c.Ports[0].Name != "metrics" {
		t.Errorf("container ports %+v, want one named metrics on server.listen's port %s", c.Ports, port)
	}
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"startup", c.StartupProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "metrics" {
			t.Errorf("%s probe %+v, want GET %s on the metrics port", p.name, p.probe, p.path)
		}
	}
}

// checkGrace: Kubernetes sends SIGKILL terminationGracePeriodSeconds after SIGTERM; the drain
// (shutdown_timeout) plus a few seconds to exit must fit in it.
func checkGrace(t *testing.T, pod corev1.PodSpec, cfg *config.Config) {
	t.Helper()
	const exitMargin = 2 * time.Second
	if pod.TerminationGracePeriodSeconds == nil {
		t.Fatalf("terminationGracePeriodSeconds unset, want shutdown_timeout (%v) plus a margin", cfg.ShutdownTimeout)
	}
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	if grace < cfg.ShutdownTimeout+exitMargin || grace > cfg.ShutdownTimeout+30*time.Second {
		t.Errorf("terminationGracePeriodSeconds = %v, want shutdown_timeout (%v) plus %v..30s", grace, cfg.ShutdownTimeout, exitMargin)
	}
}

// checkGoMemLimit: GOMEMLIMIT is set below the memory limit, with room for what Go does not count.
func checkGoMemLimit(t *testing.T, c corev1.Container) {
	t.Helper()
	limit := c.Resources.Limits.Memory().Value()
	if limit == 0 {
		t.Fatal("no memory limit")
	}
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			n, err := parseGoMemLimit(e.Value)
			if err != nil || n < limit/2 || n > limit*95/100 {
				t.Errorf("GOMEMLIMIT = %q (%v), want 50%%..95%% of the memory limit %d", e.Value, err, limit)
			}
			return
		}
	}
	t.Error("GOMEMLIMIT is not set")
}

// parseGoMemLimit reads GOMEMLIMIT as the Go runtime does: bytes with an optional B, KiB, MiB, GiB
// or TiB suffix.
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if len(s) > len(u.suffix) && s[len(s)-len(u.suffix):] == u.suffix {
			s, mult = s[:len(s)-len(u.suffix)], u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("GOMEMLIMIT %q: %w", s, err)
	}
	return n * mult, nil
}
