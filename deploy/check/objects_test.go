package check

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	yamlutil "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// objects are the rendered objects of one deployment, decoded into their API types.
type objects struct {
	Deployments     []*appsv1.Deployment
	ConfigMaps      []*corev1.ConfigMap
	Services        []*corev1.Service
	ServiceAccounts []*corev1.ServiceAccount
	PDBs            []*policyv1.PodDisruptionBudget
	ServiceMonitors []*monitoringv1.ServiceMonitor
	PrometheusRules []*monitoringv1.PrometheusRule
}

// decodeObjects splits a multi-document YAML stream and decodes each object strictly: a kind poller
// does not ship, an unknown field or a duplicate field is an error.
func decodeObjects(manifests []byte) (*objects, error) {
	objs := &objects{}
	r := yamlutil.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifests)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if err == io.EOF {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		if err := objs.add(doc); err != nil {
			return nil, fmt.Errorf("document %d: %w\n%s", i, err, doc)
		}
	}
}

func (o *objects) add(doc []byte) error {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return fmt.Errorf("read apiVersion and kind: %w", err)
	}
	switch meta.APIVersion + " " + meta.Kind {
	case "apps/v1 Deployment":
		return strictAppend(doc, &o.Deployments)
	case "v1 ConfigMap":
		return strictAppend(doc, &o.ConfigMaps)
	case "v1 Service":
		return strictAppend(doc, &o.Services)
	case "v1 ServiceAccount":
		return strictAppend(doc, &o.ServiceAccounts)
	case "policy/v1 PodDisruptionBudget":
		return strictAppend(doc, &o.PDBs)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return strictAppend(doc, &o.ServiceMonitors)
	case "monitoring.coreos.com/v1 PrometheusRule":
		return strictAppend(doc, &o.PrometheusRules)
	}
	return fmt.Errorf("unexpected object %s %s", meta.APIVersion, meta.Kind)
}

// strictAppend decodes doc into a new T, failing on unknown or duplicate fields, and appends it.
func strictAppend[T any](doc []byte, list *[]*T) error {
	v := new(T)
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return fmt.Errorf("strict decode into %T: %w", v, err)
	}
	*list = append(*list, v)
	return nil
}

func stripComments(doc []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

func TestDecodeObjectsIsStrict(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string
	}{
		{name: "a known object decodes", doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n"},
		{name: "an unknown field is an error", doc: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndatta: {a: b}\n", wantErr: "unknown field"},
		{name: "a misplaced field is an error", doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: a, image: b, probe: {}}]}}}\n", wantErr: "unknown field"},
		{name: "a kind the kit does not ship is an error", doc: "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n", wantErr: "unexpected object"},
		{name: "a wrong type is an error", doc: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n", wantErr: "strict decode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeObjects([]byte(tt.doc))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("decodeObjects() = %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("decodeObjects() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
