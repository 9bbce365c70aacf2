package check

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// rendered is one scenario rendered and decoded.
type rendered struct {
	Scenario
	Objects   []Object
	Decoded   []Decoded
	Workloads []Workload
	Notes     string
}

var (
	renderOnce sync.Once
	renders    []rendered
	renderErr  error
)

// renderAll renders and strictly decodes every scenario once for all tests.
func renderAll(t *testing.T) []rendered {
	t.Helper()
	renderOnce.Do(func() {
		ch, err := LoadChart()
		if err != nil {
			renderErr = err
			return
		}
		dec, err := NewDecoder()
		if err != nil {
			renderErr = err
			return
		}
		scs, err := Scenarios()
		if err != nil {
			renderErr = err
			return
		}
		for _, sc := range scs {
			objs, notes, err := Render(ch, sc.Values)
			if err != nil {
				renderErr = fmt.Errorf("scenario %s: %w", sc.Name, err)
				return
			}
			r := rendered{Scenario: sc, Objects: objs, Notes: notes}
			var errs []error
			for _, o := range objs {
				d, err := dec.Decode(o)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				r.Decoded = append(r.Decoded, d)
			}
			if err := errors.Join(errs...); err != nil {
				renderErr = fmt.Errorf("scenario %s: strict decoding:\n%w", sc.Name, err)
				return
			}
			r.Workloads = Workloads(r.Decoded)
			renders = append(renders, r)
		}
	})
	if renderErr != nil {
		t.Fatal(renderErr)
	}
	return renders
}

func scenario(t *testing.T, name string) rendered {
	t.Helper()
	for _, r := range renderAll(t) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no scenario %s", name)
	return rendered{}
}

// TestRenderAndStrictDecode renders every scenario and decodes every object into its Go
// type with unknown fields refused (renderAll fails on the first problem), and reports
// which kinds were checked against upstream types and which against mirrors.
func TestRenderAndStrictDecode(t *testing.T) {
	typed, mirrored := map[string]bool{}, map[string]bool{}
	for _, r := range renderAll(t) {
		if len(r.Workloads) < 3 {
			t.Errorf("%s: only %d workloads rendered", r.Name, len(r.Workloads))
		}
		if r.Notes == "" {
			t.Errorf("%s: NOTES.txt rendered empty", r.Name)
		}
		for i, d := range r.Decoded {
			k := r.Objects[i].U.GroupVersionKind().String()
			if d.Typed {
				typed[k] = true
			} else {
				mirrored[k] = true
			}
		}
	}
	t.Logf("decoded into upstream Go types: %v", keys(typed))
	t.Logf("decoded into mirrors (no served Go module): %v", keys(mirrored))
	if len(mirrored) != len(mirrors) {
		t.Errorf("not every mirrored kind was rendered by some scenario: %v", keys(mirrored))
	}
}

// TestStrictDecodingRefusesTypos: the decoder is strict for each family of types.
func TestStrictDecodingRefusesTypos(t *testing.T) {
	r := scenario(t, "all-istio")
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Deployment", "PeerAuthentication", "AuthorizationPolicy", "DestinationRule", "PodMonitor", "SriovNetwork", "NetworkAttachmentDefinition", "KafkaNodePool"} {
		var o *Object
		for i := range r.Objects {
			if r.Objects[i].U.GetKind() == kind {
				o = &r.Objects[i]
				break
			}
		}
		if o == nil {
			t.Fatalf("no %s rendered", kind)
		}
		bad := o.U.DeepCopy()
		spec := bad.Object["spec"].(map[string]any)
		spec["replicsa"] = 3
		j, _ := bad.MarshalJSON()
		y, _ := yaml.JSONToYAML(j)
		if _, err := dec.Decode(Object{Template: o.Template, YAML: y, U: bad}); err == nil || !strings.Contains(err.Error(), "replicsa") {
			t.Errorf("%s: a typo in spec was accepted (err=%v)", kind, err)
		}
	}
	// A NAD whose CNI config names an engine the userspace CNI does not have.
	for _, o := range r.Objects {
		if o.U.GetKind() != "NetworkAttachmentDefinition" {
			continue
		}
		bad := o.U.DeepCopy()
		cfg := bad.Object["spec"].(map[string]any)["config"].(string)
		bad.Object["spec"].(map[string]any)["config"] = strings.Replace(cfg, `"engine":"ovs-dpdk"`, `"engine":"dpdk"`, 1)
		if _, err := dec.Decode(Object{Template: o.Template, U: bad}); err == nil || !strings.Contains(err.Error(), "ovs-dpdk or vpp") {
			t.Errorf("NAD with engine dpdk accepted (err=%v)", err)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestHelmLint runs the checks of `helm lint --strict` (Helm's lint package) for the
// defaults and every example: any warning fails.
func TestHelmLint(t *testing.T) {
	scs, err := Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		if sc.Name != "default" && !strings.HasPrefix(sc.Name, "example/") && sc.Name != "all-istio" {
			continue
		}
		l := lint.RunAll(ChartDir, sc.Values, Namespace)
		for _, m := range l.Messages {
			if m.Severity > support.InfoSev {
				t.Errorf("%s: %s", sc.Name, m)
			}
		}
	}
}

// TestSchemaRefusesTypos: values.schema.json refuses an unknown key at any depth and a
// value of the wrong type, naming it, as `helm install` would.
func TestSchemaRefusesTypos(t *testing.T) {
	ch, err := LoadChart()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		values map[string]any
		want   string
	}{
		{set(map[string]any{}, "ingest.replicsa", 3), "replicsa"},
		{set(map[string]any{}, "istoi.enabled", true), "istoi"},
		{set(map[string]any{}, "dpdk.hugepages.pagesize", "1Gi"), "pagesize"},
		{set(map[string]any{}, "dpdk.cpus", 3.5), "cpus"},
		{set(map[string]any{}, "dpdk.hugepages.pageSize", "4Mi"), "pageSize"},
		{set(map[string]any{}, "ingest.resources.limits", nil), "limits"}, // null deletes the default
		{set(map[string]any{}, "istio.ingestClients", []any{"*"}), "ingestClients"},
		{set(map[string]any{}, "sriov.deviceType", "vfio"), "deviceType"},
	} {
		_, _, err := Render(ch, c.values)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("values %v: want a schema error naming %q, got %v", c.values, c.want, err)
		}
	}
	// And the checks the schema cannot express fail with a message naming the values.
	_, _, err = Render(ch, merge(set(map[string]any{}, "istio.enabled", true), set(map[string]any{}, "mtls.enabled", true)))
	if err == nil || !strings.Contains(err.Error(), "istio.enabled and mtls.enabled") {
		t.Errorf("istio with mtls: %v", err)
	}
}

// need is who must be able to call each in-mesh component, from the chart's values.
func need(r rendered) map[string][]string {
	p := func(c string) string {
		return fmt.Sprintf("cluster.local/ns/%s/sa/%s-wirelog-%s", Namespace, Release, c)
	}
	strs := func(path string) []string {
		v := lookup(r.Values, path)
		if v == nil {
			v = lookupDefault(path)
		}
		var out []string
		for _, x := range v.([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	return map[string][]string{
		"ingest":        strs("istio.ingestClients"),
		"serve":         strs("istio.serveClients"),
		"vlogs-front":   {p("process"), p("serve")},
		"vlogs-storage": {p("vlogs-front")},
		"process":       nil,
	}
}

func lookup(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func lookupDefault(path string) any {
	b, err := os.ReadFile(filepath.Join(ChartDir, "values.yaml"))
	if err != nil {
		panic(err)
	}
	v := map[string]any{}
	if err := yaml.Unmarshal(b, &v); err != nil {
		panic(err)
	}
	return lookup(v, path)
}

func meshOn(r rendered) bool { return lookup(r.Values, "istio.enabled") == true }

// invariant runs check on every scenario and expects no violation, then on a broken copy
// made by breakIt and expects the violation want.
func invariant(t *testing.T, check func(r rendered) []error, breakScenario string, breakIt func(r *rendered), want string) {
	t.Helper()
	for _, r := range renderAll(t) {
		for _, err := range check(r) {
			t.Errorf("%s: %v", r.Name, err)
		}
	}
	// The failing case: re-render the scenario so the break does not leak into the cache.
	ch, err := LoadChart()
	if err != nil {
		t.Fatal(err)
	}
	base := scenario(t, breakScenario)
	objs, _, err := Render(ch, base.Values)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := NewDecoder()
	broken := rendered{Scenario: base.Scenario, Objects: objs}
	for _, o := range objs {
		d, err := dec.Decode(o)
		if err != nil {
			t.Fatal(err)
		}
		broken.Decoded = append(broken.Decoded, d)
	}
	broken.Workloads = Workloads(broken.Decoded)
	breakIt(&broken)
	errs := check(broken)
	if len(errs) == 0 || !strings.Contains(errors.Join(errs...).Error(), want) {
		t.Errorf("failing case: want a violation mentioning %q, got %v", want, errs)
	}
}

func workload(t *testing.T, r *rendered, component string) Workload {
	t.Helper()
	for _, w := range r.Workloads {
		if w.Component == component {
			return w
		}
	}
	t.Fatalf("no %s workload", component)
	return Workload{}
}

func TestInvariantRequestsAndLimits(t *testing.T) {
	invariant(t, func(r rendered) []error { return RequestsAndLimits(r.Workloads) }, "default", func(r *rendered) {
		w := workload(t, r, "serve")
		delete(w.Pod.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
	}, "no memory limit")
	invariant(t, func(r rendered) []error { return RequestsAndLimits(r.Workloads) }, "sriov", func(r *rendered) {
		w := workload(t, r, "ingest")
		w.Pod.Spec.Containers[0].Resources.Requests["openshift.io/wirelogvf"] = resource.MustParse("2")
	}, "openshift.io/wirelogvf request")
}

func TestInvariantPinnedPodsGuaranteed(t *testing.T) {
	pinned := 0
	for _, r := range renderAll(t) {
		for _, w := range r.Workloads {
			if IsPinned(w) {
				pinned++
			}
		}
	}
	if pinned == 0 {
		t.Fatal("no scenario renders a pinned pod")
	}
	invariant(t, func(r rendered) []error { return PinnedGuaranteed(r.Workloads) }, "dpdk", func(r *rendered) {
		c := &workload(t, r, "ingest").Pod.Spec.Containers[0]
		c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse("3500m")
		c.Resources.Limits[corev1.ResourceCPU] = resource.MustParse("3500m")
	}, "not a whole number of CPUs")
	invariant(t, func(r rendered) []error { return PinnedGuaranteed(r.Workloads) }, "dpdk", func(r *rendered) {
		c := &workload(t, r, "ingest").Pod.Spec.Containers[0]
		c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse("1Gi")
	}, "not Guaranteed")
}

func TestInvariantHugepages(t *testing.T) {
	invariant(t, func(r rendered) []error { return Hugepages(r.Workloads) }, "dpdk", func(r *rendered) {
		c := &workload(t, r, "ingest").Pod.Spec.Containers[0]
		c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "hugepages" })
	}, "mounts no emptyDir of medium HugePages")
	invariant(t, func(r rendered) []error { return Hugepages(r.Workloads) }, "dpdk", func(r *rendered) {
		c := &workload(t, r, "ingest").Pod.Spec.Containers[0]
		c.Resources.Requests["hugepages-1Gi"] = resource.MustParse("1Gi")
	}, "hugepages-1Gi request")
}

func TestInvariantMeshStrictAndLeastCallers(t *testing.T) {
	check := func(r rendered) []error { return Mesh(r.Decoded, r.Workloads, meshOn(r), need(r)) }
	inMesh := 0
	for _, r := range renderAll(t) {
		for _, w := range r.Workloads {
			if InMesh(w) {
				inMesh++
			}
		}
	}
	if inMesh == 0 {
		t.Fatal("no scenario puts a workload in the mesh")
	}
	// A workload outside every STRICT PeerAuthentication.
	invariant(t, check, "istio", func(r *rendered) {
		r.Decoded = slices.DeleteFunc(r.Decoded, func(d Decoded) bool {
			return reflect.TypeOf(d.Obj).String() == "*v1.PeerAuthentication" && strings.HasSuffix(nameOf(d), "-process")
		})
	}, "no STRICT PeerAuthentication")
	// A caller that does not need the store.
	invariant(t, check, "istio", func(r *rendered) {
		for _, d := range r.Decoded {
			if reflect.TypeOf(d.Obj).String() == "*v1.AuthorizationPolicy" && strings.HasSuffix(nameOf(d), "-vlogs-storage") {
				ap := d.Obj.(*istiosecurity.AuthorizationPolicy)
				src := ap.Spec.Rules[0].From[0].Source
				src.Principals = append(src.Principals, fmt.Sprintf("cluster.local/ns/%s/sa/%s-wirelog-ingest", Namespace, Release))
			}
		}
	}, "may call it but does not need to")
	// A pod left out of the mesh.
	invariant(t, check, "istio", func(r *rendered) {
		delete(workload(t, r, "serve").Pod.Labels, "sidecar.istio.io/inject")
	}, "not in the mesh")
}

func nameOf(d Decoded) string {
	return reflect.ValueOf(d.Obj).Elem().FieldByName("ObjectMeta").FieldByName("Name").String()
}

func TestInvariantServicePortNames(t *testing.T) {
	invariant(t, func(r rendered) []error { return ServicePortNames(r.Decoded) }, "default", func(r *rendered) {
		for _, d := range r.Decoded {
			if s, ok := d.Obj.(*corev1.Service); ok && strings.HasSuffix(s.Name, "-ingest") {
				for i := range s.Spec.Ports {
					if s.Spec.Ports[i].Protocol == corev1.ProtocolUDP {
						s.Spec.Ports[i].Name = "syslog"
					}
				}
			}
		}
	}, `named "syslog"`)
}

func TestInvariantAgentLeastPrivilege(t *testing.T) {
	invariant(t, func(r rendered) []error {
		if lookup(r.Values, "agent.enabled") == false {
			return nil
		}
		return AgentLeastPrivilege(r.Workloads)
	}, "default", func(r *rendered) {
		c := &workload(t, r, "agent").Pod.Spec.Containers[0]
		c.SecurityContext.Capabilities.Add = append(c.SecurityContext.Capabilities.Add, "NET_ADMIN")
	}, "adds capability NET_ADMIN")
	invariant(t, func(r rendered) []error {
		if lookup(r.Values, "agent.enabled") == false {
			return nil
		}
		return AgentLeastPrivilege(r.Workloads)
	}, "default", func(r *rendered) {
		w := workload(t, r, "agent")
		for i := range w.Pod.Spec.Containers[0].VolumeMounts {
			if w.Pod.Spec.Containers[0].VolumeMounts[i].Name == "sys" {
				w.Pod.Spec.Containers[0].VolumeMounts[i].ReadOnly = false
			}
		}
	}, "mounted read-write")
}

// TestBindNetworkWiring: with sriov.enabled, the ingest pod asks Multus for the SR-IOV
// network, tells --bind-network that same network, and projects the network-status
// annotation to the file --network-status-file reads.
func TestBindNetworkWiring(t *testing.T) {
	r := scenario(t, "sriov")
	w := workload(t, &r, "ingest")
	nets := w.Pod.Annotations["k8s.v1.cni.cncf.io/networks"]
	c := w.Pod.Spec.Containers[0]
	arg := func(flag string) string {
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, flag+"="); ok {
				return v
			}
		}
		return ""
	}
	bind, file := arg("--bind-network"), arg("--network-status-file")
	if bind == "" || !slices.Contains(strings.Split(nets, ","), bind) {
		t.Fatalf("--bind-network %q is not among the pod's networks %q", bind, nets)
	}
	var sriovNet *SriovNetwork
	for _, d := range r.Decoded {
		if s, ok := d.Obj.(*SriovNetwork); ok {
			sriovNet = s
		}
	}
	if sriovNet == nil || bind != sriovNet.Spec.NetworkNamespace+"/"+sriovNet.Name {
		t.Fatalf("--bind-network %q does not name the NAD the SriovNetwork %v generates", bind, sriovNet)
	}
	found := false
	for _, v := range w.Pod.Spec.Volumes {
		if v.DownwardAPI == nil {
			continue
		}
		for _, it := range v.DownwardAPI.Items {
			if it.FieldRef == nil || it.FieldRef.FieldPath != "metadata.annotations['k8s.v1.cni.cncf.io/network-status']" {
				continue
			}
			for _, m := range c.VolumeMounts {
				if m.Name == v.Name && filepath.Join(m.MountPath, it.Path) == file {
					found = true
				}
			}
		}
	}
	if !found {
		t.Fatalf("%s is not the downward-API projection of the network-status annotation", file)
	}
	if res := c.Resources.Limits["openshift.io/wirelogvf"]; res.Value() != 1 {
		t.Fatalf("ingest does not request its VF: %v", c.Resources.Limits)
	}
	if w.Pod.Annotations["traffic.sidecar.istio.io/excludeInterfaces"] != "" {
		t.Fatal("excludeInterfaces set without istio")
	}
	ri := scenario(t, "all-istio")
	wi := workload(t, &ri, "ingest")
	if got := wi.Pod.Annotations["traffic.sidecar.istio.io/excludeInterfaces"]; got != "net1,net2" {
		t.Fatalf("under Istio the VF and vhost-user interfaces must bypass the sidecar: excludeInterfaces=%q", got)
	}
}

// sampleRules and sampleDashboard stand in for deploy/prometheus and deploy/grafana while
// those directories hold no files, so the chart's mechanism is exercised either way.
const (
	sampleRules     = "groups:\n  - name: wirelog-sample\n    rules:\n      - alert: WirelogSampleDown\n        expr: up{job=\"wirelog\"} == 0\n        for: 5m\n        labels: {severity: page}\n        annotations: {summary: \"a wirelog target is down\"}\n"
	samplePromtool  = "rule_files: [sample.rules.yml]\ntests: []\n"
	sampleDashboard = `{"title":"wirelog sample","panels":[],"schemaVersion":39}`
)

func renderWithSampleMonitoring(t *testing.T) []Object {
	t.Helper()
	ch, err := LoadChart()
	if err != nil {
		t.Fatal(err)
	}
	ch.Files = append(ch.Files,
		&common.File{Name: "files/prometheus/sample.rules.yml", Data: []byte(sampleRules)},
		&common.File{Name: "files/prometheus/sample_test.yml", Data: []byte(samplePromtool)},
		&common.File{Name: "files/grafana/sample.json", Data: []byte(sampleDashboard)})
	objs, _, err := Render(ch, scenario(t, "monitoring").Values)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestMonitoringMechanism renders the chart with one rule file, one promtool test file and
// one dashboard added under files/: one PrometheusRule with the file's groups (the test
// file skipped) and one labelled ConfigMap come out and decode strictly.
func TestMonitoringMechanism(t *testing.T) {
	objs := renderWithSampleMonitoring(t)
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var rules, dashboards int
	for _, o := range objs {
		d, err := dec.Decode(o)
		if err != nil {
			t.Fatal(err)
		}
		switch x := d.Obj.(type) {
		case *monitoringv1.PrometheusRule:
			// deploy/prometheus's own rule files render too; count the samples'.
			if src := x.Annotations["wirelog.io/source"]; !strings.Contains(src, "/sample") {
				continue
			}
			rules++
			if len(x.Spec.Groups) != 1 || x.Spec.Groups[0].Name != "wirelog-sample" || x.Spec.Groups[0].Rules[0].Alert != "WirelogSampleDown" {
				t.Errorf("PrometheusRule %s: groups %+v", x.Name, x.Spec.Groups)
			}
		case *corev1.ConfigMap:
			if src := x.Annotations["wirelog.io/source"]; !strings.Contains(src, "/sample") {
				continue
			}
			dashboards++
			if x.Data["sample.json"] != sampleDashboard || x.Labels["grafana_dashboard"] != "1" {
				t.Errorf("dashboard ConfigMap %s: %v %v", x.Name, x.Labels, x.Data)
			}
		}
	}
	if rules != 1 || dashboards != 1 {
		t.Fatalf("%d PrometheusRules and %d dashboard ConfigMaps, want 1 and 1 (the promtool test file is not a rule file)", rules, dashboards)
	}
}

// TestMonitoringFromOneSource: PrometheusRules and dashboard ConfigMaps are rendered from the
// files in deploy/prometheus and deploy/grafana, unchanged.
func TestMonitoringFromOneSource(t *testing.T) {
	r := scenario(t, "monitoring")
	ruleFiles, _ := filepath.Glob("../prometheus/*.y*ml")
	wantRules := 0
	for _, f := range ruleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []monitoringv1.RuleGroup `json:"groups"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Groups) == 0 {
			continue // promtool tests and other files
		}
		wantRules++
		found := false
		for _, d := range r.Decoded {
			if pr, ok := d.Obj.(*monitoringv1.PrometheusRule); ok && pr.Annotations["wirelog.io/source"] == "deploy/prometheus/"+filepath.Base(f) {
				found = true
				if !reflect.DeepEqual(pr.Spec.Groups, doc.Groups) {
					t.Errorf("PrometheusRule %s differs from %s", pr.Name, f)
				}
			}
		}
		if !found {
			t.Errorf("no PrometheusRule from %s", f)
		}
	}
	dashboards, _ := filepath.Glob("../grafana/*.json")
	for _, f := range dashboards {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, d := range r.Decoded {
			if cm, ok := d.Obj.(*corev1.ConfigMap); ok && cm.Annotations["wirelog.io/source"] == "deploy/grafana/"+filepath.Base(f) {
				found = true
				if strings.TrimSpace(cm.Data[filepath.Base(f)]) != strings.TrimSpace(string(b)) {
					t.Errorf("ConfigMap %s differs from %s", cm.Name, f)
				}
				if cm.Labels["grafana_dashboard"] != "1" {
					t.Errorf("ConfigMap %s lacks the Grafana sidecar label", cm.Name)
				}
			}
		}
		if !found {
			t.Errorf("no dashboard ConfigMap from %s", f)
		}
	}
	t.Logf("%d rule files and %d dashboards in deploy/ rendered into the chart", wantRules, len(dashboards))
}
