package check

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/poller-dev/poller/pkg/cli"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/service"
	"sigs.k8s.io/yaml"
)

const (
	taskDefFile    = "../ecs/task-definition.json"
	serviceDefFile = "../ecs/service-definition.json"
	ecsConfigFile  = "../ecs/poller.yaml"
	dockerfile     = "../Dockerfile"
)

// container is what the checks read of an ECS container definition, in either spelling (the ECS
// API's in the JSON files, CloudFormation's in the template).
type container struct {
	Command     []string
	StopTimeout int
	Environment []struct{ Name, Value string }
	Secrets     []struct {
		Name      string
		ValueFrom any // a string, or an intrinsic function in CloudFormation
	}
	HealthCheck struct{ Command []string }
}

func readJSONDoc(t *testing.T, path string) (map[string]any, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc, data
}

func TestECSFilesMatchTheAPI(t *testing.T) {
	tests := []struct {
		file string
		api  reflect.Type
	}{
		{file: taskDefFile, api: reflect.TypeFor[ecs.RegisterTaskDefinitionInput]()},
		{file: serviceDefFile, api: reflect.TypeFor[ecs.CreateServiceInput]()},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			doc, _ := readJSONDoc(t, tt.file)
			for _, e := range checkShape(doc, tt.api, apiMemberName, false) {
				t.Errorf("%s: %s", tt.file, e)
			}
		})
	}
}

func TestCheckShape(t *testing.T) {
	api := reflect.TypeFor[ecs.RegisterTaskDefinitionInput]()
	tests := []struct {
		name    string
		doc     string
		wantErr string
	}{
		{name: "known keys pass", doc: `{"family": "p", "containerDefinitions": [{"name": "a", "stopTimeout": 30}]}`},
		{name: "a misspelled key fails", doc: `{"family": "p", "containerDefinitions": [{"name": "a", "stopTimeOut": 30}]}`, wantErr: ".containerDefinitions[0].stopTimeOut: no such key"},
		{name: "a wrong kind fails", doc: `{"family": "p", "containerDefinitions": [{"name": "a", "stopTimeout": "30"}]}`, wantErr: "want a int32"},
		{name: "CloudFormation's spelling is not the API's", doc: `{"Family": "p"}`, wantErr: ".Family: no such key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc any
			if err := json.Unmarshal([]byte(tt.doc), &doc); err != nil {
				t.Fatal(err)
			}
			errs := strings.Join(checkShape(doc, api, apiMemberName, false), "\n")
			if tt.wantErr == "" && errs != "" || !strings.Contains(errs, tt.wantErr) {
				t.Errorf("checkShape(%s) = %q, want %q", tt.doc, errs, tt.wantErr)
			}
		})
	}
}

// imageEntrypoint reads the Dockerfile's ENTRYPOINT and CMD (exec form).
func imageEntrypoint(t *testing.T) (entrypoint, cmd []string) {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		instr, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		var into *[]string
		switch instr {
		case "ENTRYPOINT":
			into = &entrypoint
		case "CMD":
			into = &cmd
		default:
			continue
		}
		if err := json.Unmarshal([]byte(arg), into); err != nil {
			t.Fatalf("Dockerfile %s %s: want the exec form (a JSON list): %v", instr, arg, err)
		}
	}
	if len(entrypoint) != 1 {
		t.Fatalf("Dockerfile ENTRYPOINT %q, want the poller binary alone", entrypoint)
	}
	return entrypoint, cmd
}

func taskContainer(t *testing.T) container {
	t.Helper()
	var td struct{ ContainerDefinitions []container }
	_, data := readJSONDoc(t, taskDefFile)
	if err := json.Unmarshal(data, &td); err != nil || len(td.ContainerDefinitions) != 1 {
		t.Fatalf("%s: %v, %d containers, want 1", taskDefFile, err, len(td.ContainerDefinitions))
	}
	return td.ContainerDefinitions[0]
}

// invokeAs runs poller's command line as the container would: with the container's environment, its
// secrets' values given, and nothing else set that poller reads.
func invokeAs(t *testing.T, c container, secrets map[string]string, args []string) (int, string) {
	t.Helper()
	t.Setenv("POLLER_CONFIG", "")
	t.Setenv("POLLER_CONFIG_YAML", "")
	for _, e := range c.Environment {
		t.Setenv(e.Name, e.Value)
	}
	for _, s := range c.Secrets {
		v, ok := secrets[s.Name]
		if !ok {
			t.Fatalf("no test value for the secret %s", s.Name)
		}
		t.Setenv(s.Name, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := cli.Run(ctx, args, &stdout, &stderr)
	return code, stdout.String() + stderr.String()
}

// TestECSCommandLineIsAValidInvocation: the image's entrypoint plus the task's command is `poller
// run` with a config it can load. It is checked with `validate`, which takes run's flags and loads
// the config the same way, so the test starts nothing.
func TestECSCommandLineIsAValidInvocation(t *testing.T) {
	entrypoint, _ := imageEntrypoint(t)
	c := taskContainer(t)
	argv := append(slices.Clone(entrypoint), c.Command...)
	if entrypoint[0] != "/poller" || len(argv) < 2 || argv[1] != "run" {
		t.Fatalf("the container runs %q, want /poller run ...", argv)
	}
	cfgYAML, err := os.ReadFile(ecsConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	validate := append([]string{"validate"}, argv[2:]...)
	code, out := invokeAs(t, c, map[string]string{"POLLER_CONFIG_YAML": string(cfgYAML)}, validate)
	if code != cli.ExitOK {
		t.Fatalf("poller %q in the task's environment = exit %d, want 0:\n%s", validate, code, out)
	}
	code, out = invokeAs(t, c, map[string]string{"POLLER_CONFIG_YAML": ""}, validate)
	if code != cli.ExitUsage {
		t.Errorf("without the config secret, poller %q = exit %d, want %d (the secret is what carries the config):\n%s", validate, code, cli.ExitUsage, out)
	}
}

// TestECSDrainFitsStopTimeout: ECS sends SIGKILL stopTimeout seconds after SIGTERM.
func TestECSDrainFitsStopTimeout(t *testing.T) {
	c := taskContainer(t)
	cfg := loadConfigFile(t, ecsConfigFile)
	stop := time.Duration(c.StopTimeout) * time.Second
	if stop < cfg.ShutdownTimeout+2*time.Second || stop > 120*time.Second {
		t.Errorf("stopTimeout %v, want shutdown_timeout (%v) plus a few seconds, at most Fargate's 120s", stop, cfg.ShutdownTimeout)
	}
}

func loadConfigFile(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path, service.Registries())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg
}

// checkHealthCommand: a health check runs the image's binary (there is no shell) and GETs the
// /healthz of the port the config listens on.
func checkHealthCommand(t *testing.T, cmd []string, listen string) []string {
	t.Helper()
	entrypoint, _ := imageEntrypoint(t)
	if len(cmd) < 3 || cmd[0] != "CMD" || cmd[1] != entrypoint[0] || cmd[2] != "healthcheck" {
		t.Fatalf("health check %q, want [CMD %s healthcheck ...]", cmd, entrypoint[0])
	}
	i := slices.Index(cmd, "--url")
	if i < 0 || i+1 >= len(cmd) {
		t.Fatalf("health check %q: want --url", cmd)
	}
	u, err := url.Parse(cmd[i+1])
	_, port, err2 := net.SplitHostPort(listen)
	if err != nil || err2 != nil || u.Port() != port || u.Path != "/healthz" {
		t.Errorf("health check URL %q, want /healthz on server.listen's port (%q)", cmd[i+1], listen)
	}
	return cmd[2:]
}

// TestECSHealthCheck runs the task's health check command against a healthy and an unhealthy
// /healthz. It needs `poller healthcheck` (the operations work).
func TestECSHealthCheck(t *testing.T) {
	c := taskContainer(t)
	args := checkHealthCommand(t, c.HealthCheck.Command, loadConfigFile(t, ecsConfigFile).Server.Listen)
	cfgYAML, err := os.ReadFile(ecsConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		status   int
		wantCode int
	}{{"a healthy poller passes", http.StatusOK, cli.ExitOK}, {"a wedged poller fails", http.StatusServiceUnavailable, cli.ExitFailure}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/healthz" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			local := slices.Clone(args)
			local[slices.Index(local, "--url")+1] = srv.URL + "/healthz"
			code, out := invokeAs(t, c, map[string]string{"POLLER_CONFIG_YAML": string(cfgYAML)}, local)
			if code != tt.wantCode {
				t.Errorf("poller %q = exit %d, want %d:\n%s", local, code, tt.wantCode, out)
			}
		})
	}
}

func yamlToJSON(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return j
}
