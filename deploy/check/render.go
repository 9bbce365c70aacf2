package check

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Where the chart and its neighbours are, relative to this package.
const (
	ChartDir    = "../helm/wirelog"
	ExamplesDir = ChartDir + "/examples"
	// Namespace and Release are what the tests install as.
	Namespace = "wirelog"
	Release   = "wl"
)

// Object is one rendered manifest: its source template, its raw YAML and its generic form.
type Object struct {
	Template string
	YAML     []byte
	U        *unstructured.Unstructured
}

// Kind is "apiVersion/kind name", for messages.
func (o Object) String() string {
	return fmt.Sprintf("%s %s/%s (%s)", o.U.GetAPIVersion(), o.U.GetKind(), o.U.GetName(), o.Template)
}

// LoadChart loads the chart directory (following the files/ links to deploy/prometheus and
// deploy/grafana, as `helm package` does).
func LoadChart() (*chart.Chart, error) {
	return loader.Load(ChartDir)
}

// Render renders the chart for values (merged over values.yaml, validated against
// values.schema.json as `helm install` does) and returns its objects and NOTES.txt.
func Render(ch *chart.Chart, values map[string]any) ([]Object, string, error) {
	opts := common.ReleaseOptions{Name: Release, Namespace: Namespace, Revision: 1, IsInstall: true}
	vals, err := util.ToRenderValuesWithSchemaValidation(ch, values, opts, common.DefaultCapabilities, false)
	if err != nil {
		return nil, "", err
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		return nil, "", err
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	var objs []Object
	var notes string
	for _, n := range names {
		if strings.HasSuffix(n, "NOTES.txt") {
			notes = out[n]
			continue
		}
		if !strings.HasSuffix(n, ".yaml") {
			continue
		}
		docs, err := splitYAML(out[n])
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", n, err)
		}
		for _, d := range docs {
			u := &unstructured.Unstructured{}
			j, err := yaml.YAMLToJSON(d)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", n, err)
			}
			if err := u.UnmarshalJSON(j); err != nil {
				return nil, "", fmt.Errorf("%s: %w\n%s", n, err, d)
			}
			objs = append(objs, Object{Template: n, YAML: d, U: u})
		}
	}
	return objs, notes, nil
}

// splitYAML splits a multi-document stream, dropping empty documents.
func splitYAML(s string) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufioReader(s))
	var docs [][]byte
	for {
		d, err := r.Read()
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(d, &m); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, d)
		}
		if len(m) == 0 {
			continue
		}
		docs = append(docs, bytes.TrimSpace(d))
	}
}

// Scenario is one set of values the chart is rendered with.
type Scenario struct {
	Name   string
	Values map[string]any
}

// Scenarios are the default values, each toggle alone, all compatible toggles together (the
// mesh and the chart's own mTLS exclude each other, so twice), and every example file.
func Scenarios() ([]Scenario, error) {
	on := func(path string) map[string]any { return set(map[string]any{}, path, true) }
	sc := []Scenario{
		{"default", map[string]any{}},
		{"istio", on("istio.enabled")},
		{"sriov", on("sriov.enabled")},
		{"dpdk", set(on("dpdk.enabled"), "ingest.autoscaling.enabled", false)},
		{"strimzi", on("kafka.strimzi.enabled")},
		{"monitoring", merge(on("monitoring.podMonitor.enabled"), on("monitoring.serviceMonitor.enabled"),
			on("monitoring.prometheusRule.enabled"), on("monitoring.grafanaDashboards.enabled"))},
		{"mtls", on("mtls.enabled")},
		{"ingress", on("serve.ingress.enabled")},
		{"httproute", on("serve.httpRoute.enabled")},
		{"no-agent", set(map[string]any{}, "agent.enabled", false)},
		{"external-store", set(set(map[string]any{}, "store.victorialogs.deploy", false), "store.victorialogs.url", "http://vlogs.logging:9428")},
	}
	all := func(mesh string) map[string]any {
		v := merge(on("sriov.enabled"), on("dpdk.enabled"), on("kafka.strimzi.enabled"), on("serve.ingress.enabled"), on("serve.httpRoute.enabled"),
			on("monitoring.podMonitor.enabled"), on("monitoring.serviceMonitor.enabled"),
			on("monitoring.prometheusRule.enabled"), on("monitoring.grafanaDashboards.enabled"), on(mesh))
		set(v, "ingest.autoscaling.enabled", false)
		set(v, "kafka.tls.enabled", true)
		set(v, "kafka.tls.caSecret", "kafka-ca")
		return v
	}
	sc = append(sc, Scenario{"all-istio", set(all("istio.enabled"), "istio.namespaceWideStrict", true)}, Scenario{"all-mtls", all("mtls.enabled")})
	ex, err := filepath.Glob(filepath.Join(ExamplesDir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(ex) == 0 {
		return nil, fmt.Errorf("no example values in %s", ExamplesDir)
	}
	for _, f := range ex {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		v := map[string]any{}
		if err := yaml.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		sc = append(sc, Scenario{"example/" + filepath.Base(f), v})
	}
	return sc, nil
}

// set sets a dotted path in a nested map and returns the map.
func set(m map[string]any, path string, v any) map[string]any {
	keys := strings.Split(path, ".")
	cur := m
	for _, k := range keys[:len(keys)-1] {
		next, ok := cur[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[k] = next
		}
		cur = next
	}
	cur[keys[len(keys)-1]] = v
	return m
}

// merge deep-merges maps, later ones winning.
func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		mergeInto(out, m)
	}
	return out
}

func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeInto(dv, sv)
				continue
			}
			cp := map[string]any{}
			mergeInto(cp, sv)
			dst[k] = cp
			continue
		}
		dst[k] = v
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
