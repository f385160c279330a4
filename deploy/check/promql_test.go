package check

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/poller-dev/poller/pkg/metrics"
	"github.com/poller-dev/poller/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// targetLabels are the labels Prometheus adds to every series of a scrape target (job, instance)
// and those the Prometheus Operator's ServiceMonitor adds (namespace, pod, service, ...).
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// synthetic are series Prometheus makes itself for each target, not poller.
var synthetic = map[string][]string{"up": nil}

// capture is a Registerer that keeps what is registered.
type capture struct{ collectors []prometheus.Collector }

func (c *capture) Register(col prometheus.Collector) error {
	c.collectors = append(c.collectors, col)
	return nil
}
func (c *capture) MustRegister(cols ...prometheus.Collector) {
	c.collectors = append(c.collectors, cols...)
}
func (c *capture) Unregister(prometheus.Collector) bool { return true }

var descRE = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

// exportedMetrics lists the series names poller serves at /metrics, with their labels: what
// pkg/metrics registers, the readiness gauge, and the Go and process collectors pkg/service adds.
// A histogram h serves h_bucket (with le), h_sum and h_count.
func exportedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	c := &capture{}
	metrics.New(c)
	c.MustRegister((&server.Readiness{}).Collector(), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	out := map[string][]string{}
	for name, l := range synthetic {
		out[name] = l
	}
	for _, col := range c.collectors {
		ch := make(chan *prometheus.Desc, 100)
		go func() { col.Describe(ch); close(ch) }()
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			var ls []string
			if m[2] != "" {
				ls = strings.Split(m[2], ",")
			}
			out[m[1]] = ls
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				out[m[1]+suffix] = append(ls, "le")
			}
		}
	}
	if _, ok := out["poller_iterator_age_seconds"]; !ok || len(out) < 20 {
		t.Fatalf("exportedMetrics() = %v: misses poller's metrics", out)
	}
	return out
}

// checkQuery parses a PromQL expression and checks that every selector names an exported metric and
// matches only labels that metric has (or that the scrape adds).
func checkQuery(expr string, exported map[string][]string) error {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	var errs []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		ls, ok := exported[vs.Name]
		if !ok {
			errs = append(errs, fmt.Sprintf("%q is not a metric poller exports", vs.Name))
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName && !contains(ls, m.Name) && !contains(targetLabels, m.Name) {
				errs = append(errs, fmt.Sprintf("%s has no label %q", vs.Name, m.Name))
			}
		}
		return nil
	})
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Alert       string
			Expr        string
			For         string
			Labels      map[string]string
			Annotations map[string]string
		}
	}
}

func TestAlertExpressions(t *testing.T) {
	exported := exportedMetrics(t)
	data, err := os.ReadFile(chartDir + "/files/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Prometheus's own loader: unknown fields, bad durations, bad templates in annotations.
	if _, errs := rulefmt.Parse(data, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler)); len(errs) > 0 {
		t.Fatalf("alerts.yaml is not a valid Prometheus rule file: %v", errs)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(data, &rf); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	readme := readREADME(t)
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			if err := checkQuery(r.Expr, exported); err != nil {
				t.Errorf("alert %s: %v\n%s", r.Alert, err, r.Expr)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: want a severity label and a summary", r.Alert)
			}
			if !strings.Contains(readme, "`"+r.Alert+"`") {
				t.Errorf("alert %s has no runbook entry in README.md", r.Alert)
			}
		}
	}
	if n < 8 {
		t.Errorf("%d alerts, want the kit's full set", n)
	}
}

func readREADME(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCheckQuery(t *testing.T) {
	exported := exportedMetrics(t)
	tests := []struct {
		name    string
		expr    string
		wantErr string
	}{
		{name: "an exported counter with its label", expr: `rate(poller_getrecords_total{result="ok"}[5m])`},
		{name: "a histogram's buckets", expr: `histogram_quantile(0.99, sum by (le) (rate(poller_sink_duration_seconds_bucket[5m])))`},
		{name: "a target label", expr: `poller_ready{instance="a"} == 0`},
		{name: "a misspelled metric", expr: `poller_iterator_age_second > 1`, wantErr: "not a metric poller exports"},
		{name: "a label the metric lacks", expr: `poller_leases_owned{result="ok"}`, wantErr: `no label "result"`},
		{name: "a syntax error", expr: `sum(rate(poller_records_polled_total[5m])`, wantErr: "parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkQuery(tt.expr, exported)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("checkQuery(%q) = %v, want nil", tt.expr, err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("checkQuery(%q) = %v, want an error containing %q", tt.expr, err, tt.wantErr)
			}
		})
	}
}
