package check

import (
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

const (
	chartDir     = "../helm/poller"
	kustomizeDir = "../kubernetes"
)

// renderChart is `helm template` of the chart with a values file ("" for the defaults).
func renderChart(t *testing.T, valuesFile string) []byte {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir, err)
	}
	vals := chartutil.Values{}
	if valuesFile != "" {
		if vals, err = chartutil.ReadValuesFile(valuesFile); err != nil {
			t.Fatalf("read %s: %v", valuesFile, err)
		}
	}
	opts := chartutil.ReleaseOptions{Name: "poller", Namespace: "streams", IsInstall: true}
	rv, err := chartutil.ToRenderValues(chrt, vals, opts, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatalf("values %s: %v", valuesFile, err)
	}
	files, err := engine.Render(chrt, rv)
	if err != nil {
		t.Fatalf("helm template with %q: %v", valuesFile, err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var out strings.Builder
	for _, name := range names {
		if strings.HasSuffix(name, ".yaml") {
			out.WriteString("---\n# " + name + "\n" + files[name] + "\n")
		}
	}
	return []byte(out.String())
}

// valuesFiles are the chart's default values ("") and each file in its ci/ folder.
func valuesFiles(t *testing.T) []string {
	t.Helper()
	ci, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(ci) == 0 {
		t.Fatalf("no values files in %s/ci (%v)", chartDir, err)
	}
	return append([]string{""}, ci...)
}

func TestHelmLint(t *testing.T) {
	for _, vf := range valuesFiles(t) {
		vals := map[string]any{}
		if vf != "" {
			v, err := chartutil.ReadValuesFile(vf)
			if err != nil {
				t.Fatal(err)
			}
			vals = v
		}
		linter := lint.All(chartDir, vals, "streams", false)
		for _, m := range linter.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("helm lint with %q: %s", vf, m)
			}
		}
	}
}

func TestHelmTemplate(t *testing.T) {
	for _, vf := range valuesFiles(t) {
		name := "default values"
		if vf != "" {
			name = filepath.Base(vf)
		}
		t.Run(name, func(t *testing.T) {
			objs, err := decodeObjects(renderChart(t, vf))
			if err != nil {
				t.Fatal(err)
			}
			wantMonitoring := vf != ""
			checkDeployment(t, objs, wantMonitoring)
		})
	}
}

// renderWith renders the chart with vals over the defaults and returns the files or the error.
func renderWith(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := chartutil.ToRenderValues(chrt, vals, chartutil.ReleaseOptions{Name: "poller"}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Render(chrt, rv)
}

func TestHelmRejectsAConflictingShutdownTimeout(t *testing.T) {
	_, err := renderWith(t, map[string]any{"config": map[string]any{"shutdown_timeout": "90s"}})
	if err == nil || !strings.Contains(err.Error(), "shutdownTimeoutSeconds") {
		t.Fatalf("helm template with config.shutdown_timeout = %v, want an error naming shutdownTimeoutSeconds", err)
	}
}

func TestHelmGoMemLimit(t *testing.T) {
	tests := []struct {
		limit   string
		percent int
		want    string // GOMEMLIMIT, or the error
	}{
		{limit: "512Mi", percent: 80, want: `value: "429496729"`},
		{limit: "1Gi", percent: 90, want: `value: "966367641"`},
		{limit: "500M", percent: 80, want: `value: "400000000"`},
		{limit: "0.5Gi", percent: 80, want: "give a whole number"},
		{limit: "512Ti", percent: 80, want: "give a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.limit, func(t *testing.T) {
			files, err := renderWith(t, map[string]any{
				"goMemLimitPercent": tt.percent,
				"resources":         map[string]any{"limits": map[string]any{"memory": tt.limit}},
			})
			got := files["poller/templates/deployment.yaml"]
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("GOMEMLIMIT for a %s limit at %d%%: got %q, want %q in it", tt.limit, tt.percent, got, tt.want)
			}
		})
	}
}

// kustomize is `kubectl kustomize DIR`.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		// A prerequisite of the test command (see the README): a check that cannot run fails.
		t.Fatalf("kubectl (for kubectl kustomize) is required: %v", err)
	}
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr)
	}
	return out
}

func TestKustomize(t *testing.T) {
	tests := []struct {
		name           string
		dir            string
		wantMonitoring bool
		wantImage      string
	}{
		{name: "the base", dir: kustomizeDir, wantImage: "ghcr.io/poller-dev/poller:0.1.0"},
		{name: "an overlay as the README writes one", dir: "testdata/with-monitoring", wantMonitoring: true, wantImage: "registry.example.com/poller:9.9.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := decodeObjects(kustomize(t, tt.dir))
			if err != nil {
				t.Fatal(err)
			}
			checkDeployment(t, objs, tt.wantMonitoring)
			if got := objs.Deployments[0].Spec.Template.Spec.Containers[0].Image; got != tt.wantImage {
				t.Errorf("image = %q, want %q", got, tt.wantImage)
			}
		})
	}
}

// TestAlertsAreTheSameEverywhere: the chart's rule file and the Kustomize component's PrometheusRule
// hold the same groups.
func TestAlertsAreTheSameEverywhere(t *testing.T) {
	helm, err := decodeObjects(renderChart(t, filepath.Join(chartDir, "ci", "all-options-values.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	kust, err := decodeObjects(kustomize(t, "testdata/with-monitoring"))
	if err != nil {
		t.Fatal(err)
	}
	if len(helm.PrometheusRules) != 1 || len(kust.PrometheusRules) != 1 {
		t.Fatalf("PrometheusRules: chart %d, kustomize %d, want 1 each", len(helm.PrometheusRules), len(kust.PrometheusRules))
	}
	if !slices.EqualFunc(helm.PrometheusRules[0].Spec.Groups, kust.PrometheusRules[0].Spec.Groups, groupsEqual) {
		t.Errorf("the chart's files/alerts.yaml and the Kustomize PrometheusRule differ")
	}
}
