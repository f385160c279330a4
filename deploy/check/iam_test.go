package check

import (
	"encoding/json"
	"go/ast"
	"go/types"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
	"golang.org/x/tools/go/types/typeutil"
)

const (
	policyFile = "../iam/policy.json"
	mainPkg    = "github.com/poller-dev/poller/cmd/poller"
	sdkService = "github.com/aws/aws-sdk-go-v2/service/"
)

// iamPrefix maps an AWS SDK service package to the prefix of its IAM actions.
var iamPrefix = map[string]string{
	"dynamodb": "dynamodb", "dynamodbstreams": "dynamodb", "sqs": "sqs", "sns": "sns", "s3": "s3",
	"lambda": "lambda", "kinesis": "kinesis", "firehose": "firehose", "eventbridge": "events", "sts": "sts",
}

// iamAction maps an operation to the IAM action that allows it, where the two differ (batch calls
// are allowed by their single call's action; a transaction by the actions of its items, and poller's
// one transaction, a take over a heartbeat, is made of two UpdateItems).
var iamAction = map[string]string{
	"lambda:Invoke":               "lambda:InvokeFunction",
	"sns:PublishBatch":            "sns:Publish",
	"sqs:SendMessageBatch":        "sqs:SendMessage",
	"dynamodb:TransactWriteItems": "dynamodb:UpdateItem",
}

// helperCalls are SDK functions that make AWS calls of their own, with no operation input in sight.
var helperCalls = map[string]string{
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds.NewAssumeRoleProvider": "sts:AssumeRole",
}

// sdkCalls lists the AWS API operations the poller binary's own code calls, as IAM actions: every
// call that passes an operation's input (*<service>.<Operation>Input) to a function or method,
// which covers calls on the SDK's clients, on the small interfaces poller declares over them, and
// the SDK's paginators and waiters. Only packages compiled into cmd/poller count, test files not.
func sdkCalls(t *testing.T) map[string][]string {
	t.Helper()
	cfg := &packages.Config{
		Dir:  "../..",
		Mode: packages.NeedName | packages.NeedImports | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo,
	}
	pkgs, err := packages.Load(cfg, "github.com/poller-dev/poller/...")
	if err != nil {
		t.Fatalf("load poller's packages: %v", err)
	}
	byPath := map[string]*packages.Package{}
	for _, p := range pkgs {
		if len(p.Errors) > 0 {
			t.Fatalf("load %s: %v", p.PkgPath, p.Errors)
		}
		byPath[p.PkgPath] = p
	}
	calls := map[string][]string{} // action -> where
	for _, p := range reachable(byPath, mainPkg) {
		for _, f := range p.Syntax {
			ast.Inspect(f, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok {
					for _, a := range operationsOf(p.TypesInfo, call) {
						calls[a] = append(calls[a], p.Fset.Position(call.Pos()).String())
					}
				}
				return true
			})
		}
	}
	return calls
}

// reachable lists the poller packages that root imports, directly or not, and root itself.
func reachable(byPath map[string]*packages.Package, root string) []*packages.Package {
	seen := map[string]bool{}
	var out []*packages.Package
	var visit func(path string)
	visit = func(path string) {
		p, ok := byPath[path]
		if !ok || seen[path] {
			return
		}
		seen[path] = true
		out = append(out, p)
		for imp := range p.Imports {
			visit(imp)
		}
	}
	visit(root)
	return out
}

// operationsOf returns the IAM actions of the operation inputs a call passes, or of the SDK helper
// it calls.
func operationsOf(info *types.Info, call *ast.CallExpr) []string {
	var out []string
	if fn, ok := typeutil.Callee(info, call).(*types.Func); ok && fn.Pkg() != nil {
		if a, ok := helperCalls[fn.Pkg().Path()+"."+fn.Name()]; ok {
			out = append(out, a)
		}
	}
	for _, arg := range call.Args {
		ptr, ok := info.TypeOf(arg).(*types.Pointer)
		if !ok {
			continue
		}
		named, ok := ptr.Elem().(*types.Named)
		if !ok || named.Obj().Pkg() == nil {
			continue
		}
		svc, ok := strings.CutPrefix(named.Obj().Pkg().Path(), sdkService)
		op, isInput := strings.CutSuffix(named.Obj().Name(), "Input")
		if !ok || !isInput || strings.Contains(svc, "/") {
			continue
		}
		prefix, known := iamPrefix[svc]
		if !known {
			prefix = "UNKNOWN-SERVICE-" + svc
		}
		action := prefix + ":" + op
		if a, ok := iamAction[action]; ok {
			action = a
		}
		out = append(out, action)
	}
	return out
}

type policyDoc struct {
	Version   string
	Statement []struct {
		Sid      string
		Effect   string
		Action   []string
		Resource any
	}
}

func readPolicy(t *testing.T, path string) policyDoc {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc policyDoc
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// TestPolicyGrantsExactlyTheCallsTheCodeMakes: a new AWS call without a policy change, or a policy
// action no code needs any more, fails here.
func TestPolicyGrantsExactlyTheCallsTheCodeMakes(t *testing.T) {
	calls := sdkCalls(t)
	if len(calls) == 0 {
		t.Fatal("found no AWS SDK call in poller's code: the analysis is broken")
	}
	doc := readPolicy(t, policyFile)
	granted := map[string]bool{}
	for _, s := range doc.Statement {
		if s.Effect != "Allow" || s.Sid == "" || s.Resource == nil {
			t.Errorf("statement %+v: want Effect Allow, a Sid and a Resource", s)
		}
		if (slices.Contains(s.Action, "dynamodb:CreateTable") || strings.Contains(s.Sid, "OnlyWith")) && len(s.Action) != 1 {
			t.Errorf("statement %s: CreateTable and each sink or on_failure action go in a statement of their own, to be deleted when unused", s.Sid)
		}
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				t.Errorf("statement %s grants %s: least privilege names each action", s.Sid, a)
			}
			granted[a] = true
		}
	}
	for _, a := range sortedKeys(calls) {
		if !granted[a] {
			t.Errorf("the code calls %s (%s) but %s does not grant it", a, strings.Join(calls[a], ", "), policyFile)
		}
	}
	for _, a := range sortedKeys(granted) {
		if _, ok := calls[a]; !ok {
			t.Errorf("%s grants %s but no code calls it", policyFile, a)
		}
	}
}

func TestOperationsOfSeesEveryKindOfCall(t *testing.T) {
	calls := sdkCalls(t)
	// One of each: a client interface method (GetRecords), a conditional write (UpdateItem) and the
	// lease table's creation (CreateTable, guarded by create_table at run time).
	for _, want := range []string{"dynamodb:GetRecords", "dynamodb:UpdateItem", "dynamodb:CreateTable"} {
		if _, ok := calls[want]; !ok {
			t.Errorf("sdkCalls() misses %s; found %v", want, sortedKeys(calls))
		}
	}
	for a := range calls {
		if strings.HasPrefix(a, "UNKNOWN-SERVICE-") {
			t.Errorf("%s: add the service's IAM prefix to iamPrefix", a)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
