package check

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

const dashboardFile = "../grafana/poller-dashboard.json"

// dashboardJSON is what the checks read of the dashboard: its panels' queries and its variables.
type dashboardJSON struct {
	Panels []struct {
		Title   string
		Type    string
		Targets []struct {
			RefID      string `json:"refId"`
			Expr       string
			Datasource struct{ Type string }
		}
	}
	Templating struct {
		List []struct {
			Name, Type, Definition string
		}
	}
}

// readDashboard decodes the dashboard strictly with Grafana's own schema types (an unknown or
// misspelled field, a wrong type or a missing required field of the dashboard, a panel or its
// plugin options is an error), then returns what the checks read of it.
func readDashboard(t *testing.T) *dashboardJSON {
	t.Helper()
	plugins.RegisterDefaultPlugins()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard.Dashboard
	if err := d.UnmarshalJSONStrict(data); err != nil {
		// The SDK returns an empty BuildErrors, a non-nil error, when all went well.
		var be cog.BuildErrors
		if !errors.As(err, &be) || len(be) > 0 {
			t.Fatalf("%s: %v", dashboardFile, err)
		}
	}
	var dj dashboardJSON
	if err := json.Unmarshal(data, &dj); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &dj
}

// grafanaVars stand for Grafana's interval variables when a query is parsed on its own.
var grafanaVars = regexp.MustCompile(`\$__(rate_interval|interval|range)\b`)

// dashboardQueries lists every PromQL query of the dashboard: panel targets and query variables.
func dashboardQueries(t *testing.T, d *dashboardJSON) map[string]string {
	t.Helper()
	queries := map[string]string{}
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			if target.Datasource.Type != "prometheus" || target.Expr == "" {
				t.Fatalf("panel %q target %s: want a Prometheus query", p.Title, target.RefID)
			}
			queries[fmt.Sprintf("panel %q %s", p.Title, target.RefID)] = target.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		inner, ok := strings.CutPrefix(v.Definition, "label_values(")
		metric, _, ok2 := strings.Cut(inner, ",")
		if !ok || !ok2 {
			t.Fatalf("variable %s: definition %q, want label_values(METRIC, LABEL)", v.Name, v.Definition)
		}
		queries["variable "+v.Name] = metric
	}
	return queries
}

func TestDashboardQueries(t *testing.T) {
	exported := exportedMetrics(t)
	queries := dashboardQueries(t, readDashboard(t))
	if len(queries) < 10 {
		t.Fatalf("%d queries in the dashboard, want its full set", len(queries))
	}
	for where, expr := range queries {
		if err := checkQuery(grafanaVars.ReplaceAllString(expr, "5m"), exported); err != nil {
			t.Errorf("%s: %v\n%s", where, err, expr)
		}
	}
}

// TestDashboardShowsWhatOperatorsAskFor: one panel for each question the README's dashboard answers.
func TestDashboardShowsWhatOperatorsAskFor(t *testing.T) {
	var all strings.Builder
	for _, expr := range dashboardQueries(t, readDashboard(t)) {
		all.WriteString(expr + "\n")
	}
	for _, metric := range []string{"poller_iterator_age_seconds", "poller_records_polled_total", "poller_records_delivered_total",
		"poller_records_filtered_out_total", "poller_records_dropped_total", "poller_sink_duration_seconds_bucket",
		"poller_sink_invocations_total", "poller_leases_owned", "poller_getrecords_total"} {
		if !strings.Contains(all.String(), metric) {
			t.Errorf("no dashboard query reads %s", metric)
		}
	}
}
