// Package check checks the Helm chart in deploy/helm/wirelog without a cluster: it renders
// the chart with Helm's Go SDK, lints it, decodes every object strictly into its upstream Go
// type, holds the rendered objects to the deployment's invariants, and applies them with
// server-side dry-run to a real kube-apiserver (with etcd) started in the test process.
//
// It is its own Go module so that k8s.io/kubernetes and its ~300 dependencies stay out of
// the product's module graph; `make test` runs it (see the Makefile's test-chart target).
package check
