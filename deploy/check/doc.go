// Package check tests poller's deploy kit without a cluster or AWS: it renders the Helm chart
// (default values and every values file in the chart's ci/ folder) and the Kustomize base, decodes
// every object strictly into its Kubernetes (or Prometheus Operator) Go type, parses every alert and
// dashboard query and checks that they name only metrics poller exports, checks the ECS and
// CloudFormation files against the AWS API shapes, runs the ECS command line through poller's own
// command line, checks that the IAM policy grants exactly the AWS calls poller's code makes, and
// cross-compiles the image's binaries.
//
// It is a module of its own, so that Helm, the Kubernetes API types and the PromQL parser stay out of
// poller's go.mod. Run it from this folder: go test -race ./...
package check
