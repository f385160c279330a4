package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
)

// readmeHeredoc returns the text of the README's `cat > NAME <<'YAML'` block, so the commands the
// README gives are the ones tested.
func readmeHeredoc(t *testing.T, name string) string {
	t.Helper()
	readme := readREADME(t)
	start := "cat > " + name + " <<'YAML'\n"
	i := strings.Index(readme, start)
	if i < 0 {
		t.Fatalf("README.md has no %q block", strings.TrimSpace(start))
	}
	body := readme[i+len(start):]
	j := strings.Index(body, "\nYAML\n")
	if j < 0 {
		t.Fatalf("README.md: the %s block does not end", name)
	}
	return body[:j+1]
}

func TestREADMEHelmValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "my-values.yaml")
	if err := os.WriteFile(path, []byte(readmeHeredoc(t, "my-values.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := chartutil.ReadValuesFile(path); err != nil {
		t.Fatalf("the README's my-values.yaml: %v", err)
	}
	objs, err := decodeObjects(renderChart(t, path))
	if err != nil {
		t.Fatal(err)
	}
	checkDeployment(t, objs, true)
	if got := objs.ServiceAccounts[0].Annotations["eks.amazonaws.com/role-arn"]; got == "" {
		t.Error("the README's values give no IRSA role annotation")
	}
}

func TestREADMEKustomizeOverlay(t *testing.T) {
	base, err := filepath.Abs(kustomizeDir)
	if err != nil {
		t.Fatal(err)
	}
	overlay := readmeHeredoc(t, "overlays/prod/kustomization.yaml")
	if !strings.Contains(overlay, "../../deploy/kubernetes") {
		t.Fatalf("the README's overlay does not use the base:\n%s", overlay)
	}
	// The overlay sits in overlays/prod of the repository; here it points at the base from a
	// temporary folder (Kustomize takes relative paths only).
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	overlay = strings.ReplaceAll(overlay, "../../deploy/kubernetes", rel)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := decodeObjects(kustomize(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	checkDeployment(t, objs, true)
	d := objs.Deployments[0]
	if got, want := d.Spec.Template.Spec.Containers[0].Image, "123456789012.dkr.ecr.us-east-1.amazonaws.com/poller:0.1.0"; got != want {
		t.Errorf("image = %q, want the overlay's %q", got, want)
	}
	if d.Namespace != "streams" {
		t.Errorf("namespace = %q, want the overlay's streams", d.Namespace)
	}
}
