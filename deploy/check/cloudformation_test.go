package check

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7/cloudformation/dynamodb"
	"github.com/awslabs/goformation/v7/cloudformation/ecs"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
	"github.com/awslabs/goformation/v7/cloudformation/logs"
	"github.com/awslabs/goformation/v7/cloudformation/ssm"
	"github.com/poller-dev/poller/pkg/cli"
	"github.com/poller-dev/poller/pkg/config"
	"github.com/poller-dev/poller/pkg/service"
)

const cfnFile = "../ecs/cloudformation.yaml"

type cfnTemplate struct {
	Parameters map[string]struct{ Default any }
	Resources  map[string]struct {
		Type       string
		Properties map[string]any
	}
}

var (
	cfnTopKeys      = []string{"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Mappings", "Conditions", "Transform", "Resources", "Outputs"}
	cfnResourceKeys = []string{"Type", "Properties", "DependsOn", "Condition", "DeletionPolicy", "UpdateReplacePolicy", "Metadata"}
	pseudoParams    = []string{"AWS::AccountId", "AWS::NoValue", "AWS::Partition", "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix", "AWS::NotificationARNs"}
	subVar          = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)
)

func readCFN(t *testing.T) (map[string]any, cfnTemplate) {
	t.Helper()
	data := yamlToJSON(t, cfnFile)
	var raw map[string]any
	var tmpl cfnTemplate
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &tmpl); err != nil {
		t.Fatal(err)
	}
	return raw, tmpl
}

// cfnTypes are the CloudFormation resource types the template uses, as goformation (generated from
// CloudFormation's resource specification) describes them. Only these packages are imported: all
// of goformation's would cost minutes of compiling.
var cfnTypes = map[string]any{
	"AWS::DynamoDB::Table":     dynamodb.Table{},
	"AWS::SSM::Parameter":      ssm.Parameter{},
	"AWS::Logs::LogGroup":      logs.LogGroup{},
	"AWS::IAM::Role":           iam.Role{},
	"AWS::ECS::TaskDefinition": ecs.TaskDefinition{},
	"AWS::ECS::Service":        ecs.Service{},
}

// TestCloudFormationTemplate: every section, resource attribute and property is one CloudFormation
// has (goformation's resource types), and every Ref, GetAtt and ${} names a parameter, a resource or
// a pseudo parameter.
func TestCloudFormationTemplate(t *testing.T) {
	raw, tmpl := readCFN(t)
	for k := range raw {
		if !slices.Contains(cfnTopKeys, k) {
			t.Errorf("%s: unknown section %s", cfnFile, k)
		}
	}
	for name, res := range raw["Resources"].(map[string]any) {
		for k := range res.(map[string]any) {
			if !slices.Contains(cfnResourceKeys, k) {
				t.Errorf("resource %s: unknown attribute %s", name, k)
			}
		}
		typ, ok := cfnTypes[tmpl.Resources[name].Type]
		if !ok {
			t.Errorf("resource %s: type %q is not in cfnTypes (add goformation's type for it)", name, tmpl.Resources[name].Type)
			continue
		}
		for _, e := range checkShape(tmpl.Resources[name].Properties, reflect.TypeOf(typ), jsonTagName, true) {
			t.Errorf("resource %s (%s): Properties%s", name, tmpl.Resources[name].Type, e)
		}
	}
	known := slices.Clone(pseudoParams)
	for p := range tmpl.Parameters {
		known = append(known, p)
	}
	for r := range tmpl.Resources {
		known = append(known, r)
	}
	for _, ref := range references(raw) {
		if !slices.Contains(known, ref) {
			t.Errorf("%s refers to %q: no such parameter or resource", cfnFile, ref)
		}
	}
}

// references lists the names a template's Ref, Fn::GetAtt and Fn::Sub name.
func references(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			switch k {
			case "Ref":
				out = append(out, e.(string))
			case "Fn::GetAtt":
				out = append(out, e.([]any)[0].(string))
			case "Fn::Sub":
				s, _ := e.(string)
				for _, m := range subVar.FindAllStringSubmatch(s, -1) {
					name, _, _ := strings.Cut(m[1], ".")
					out = append(out, name)
				}
			}
			out = append(out, references(e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, references(e)...)
		}
	}
	return out
}

// cfnContainer is the template's one container definition, read like the task definition JSON's.
func cfnContainer(t *testing.T, tmpl cfnTemplate) container {
	t.Helper()
	b, err := json.Marshal(tmpl.Resources["TaskDefinition"].Properties["ContainerDefinitions"])
	if err != nil {
		t.Fatal(err)
	}
	var cs []container
	if err := json.Unmarshal(b, &cs); err != nil || len(cs) != 1 {
		t.Fatalf("TaskDefinition ContainerDefinitions: %v, %d containers, want 1", err, len(cs))
	}
	return cs[0]
}

// cfnConfig is the config the template stores in its SSM parameter, with the parameters' defaults
// (and a lease table name) put in.
func cfnConfig(t *testing.T, tmpl cfnTemplate) string {
	t.Helper()
	sub, ok := tmpl.Resources["Config"].Properties["Value"].(map[string]any)["Fn::Sub"].(string)
	if !ok {
		t.Fatal("the Config parameter's Value is not an Fn::Sub string")
	}
	return subVar.ReplaceAllStringFunc(sub, func(m string) string {
		name := m[2 : len(m)-1]
		if name == "LeaseTable" {
			return "poller-stack-LeaseTable-1A2B3C"
		}
		p, ok := tmpl.Parameters[name]
		if !ok || p.Default == nil {
			t.Fatalf("the config names ${%s}: want a parameter with a default", name)
		}
		b, _ := json.Marshal(p.Default)
		return strings.Trim(string(b), `"`)
	})
}

// TestCloudFormationTaskRunsAsTheJSONOne: the template's container is the task definition JSON's
// (command, health check, stop timeout, environment, secrets), its config is valid and its drain
// fits, and its task role grants what every deployment needs (the policy's source and lease table
// statements; the lease table is the template's own, so no CreateTable).
func TestCloudFormationTaskRunsAsTheJSONOne(t *testing.T) {
	_, tmpl := readCFN(t)
	got, want := cfnContainer(t, tmpl), taskContainer(t)
	if !slices.Equal(got.Command, want.Command) || !slices.Equal(got.HealthCheck.Command, want.HealthCheck.Command) ||
		got.StopTimeout != want.StopTimeout || !reflect.DeepEqual(got.Environment, want.Environment) || len(got.Secrets) != len(want.Secrets) {
		t.Errorf("the template's container %+v differs from %s's %+v", got, taskDefFile, want)
	}
	yml := cfnConfig(t, tmpl)
	cfg, err := config.Parse([]byte(yml), "Config", service.Registries())
	if err != nil {
		t.Fatalf("the template's config is invalid: %v\n%s", err, yml)
	}
	if cfg.Leases.CreateTable {
		t.Error("the template creates the lease table: the config must not (create_table: false)")
	}
	checkHealthCommand(t, got.HealthCheck.Command, cfg.Server.Listen)
	if code, out := invokeAs(t, got, map[string]string{"POLLER_CONFIG_YAML": yml}, append([]string{"validate"}, got.Command[1:]...)); code != cli.ExitOK {
		t.Errorf("poller validate with the template's config = exit %d:\n%s", code, out)
	}
	checkTaskRole(t, tmpl)
}

func checkTaskRole(t *testing.T, tmpl cfnTemplate) {
	t.Helper()
	b, _ := json.Marshal(tmpl.Resources["TaskRole"].Properties["Policies"])
	var policies []struct{ PolicyDocument policyDoc }
	if err := json.Unmarshal(b, &policies); err != nil || len(policies) != 1 {
		t.Fatalf("TaskRole Policies: %v, want one policy", err)
	}
	var got, want []string
	for _, s := range policies[0].PolicyDocument.Statement {
		got = append(got, s.Sid+": "+strings.Join(s.Action, " "))
	}
	for _, s := range readPolicy(t, policyFile).Statement {
		if s.Sid == "ReadSourceTable" || s.Sid == "ReadSourceStream" || s.Sid == "LeaseTable" {
			want = append(want, s.Sid+": "+strings.Join(s.Action, " "))
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("TaskRole grants %q, want the policy's %q", got, want)
	}
}
