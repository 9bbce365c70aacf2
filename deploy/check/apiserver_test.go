package check

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensions "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	kubeapiserver "k8s.io/kubernetes/test/utils/apiserver"
	"sigs.k8s.io/yaml"
)

// moduleDir is where the go command keeps a module this one requires.
func moduleDir(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go list -m %s: %v (run `go mod download` in deploy/check)", path, err)
	}
	return strings.TrimSpace(string(out))
}

// crdFiles lists the CRD manifests the Go modules ship: Istio's (istio.io/api),
// cert-manager's (deploy/crds), the Gateway API's HTTPRoute (config/crd/standard), and prometheus-operator's generated from its monitoring/v1
// Go types by controller-gen, the generator upstream uses (the monitoring module ships the
// types but not the YAML).
func crdFiles(t *testing.T) []string {
	t.Helper()
	files := []string{filepath.Join(moduleDir(t, "istio.io/api"), "kubernetes", "customresourcedefinitions.gen.yaml")}
	cm, err := filepath.Glob(filepath.Join(moduleDir(t, "github.com/cert-manager/cert-manager"), "deploy", "crds", "cert-manager.io_*.yaml"))
	if err != nil || len(cm) == 0 {
		t.Fatalf("cert-manager CRDs not found: %v", err)
	}
	files = append(files, cm...)
	files = append(files, filepath.Join(moduleDir(t, "sigs.k8s.io/gateway-api"), "config", "crd", "standard", "gateway.networking.k8s.io_httproutes.yaml"))
	return append(files, monitoringCRDs(t)...)
}

func monitoringCRDs(t *testing.T) []string {
	t.Helper()
	const pkg = "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring"
	version := strings.TrimPrefix(filepath.Base(moduleDir(t, pkg)), "monitoring@")
	dir := filepath.Join(cacheDir(), "monitoring-crds-"+version)
	if got, _ := filepath.Glob(filepath.Join(dir, "*.yaml")); len(got) > 0 {
		return got
	}
	tmp, err := os.MkdirTemp(cacheDir(), "monitoring-crds-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	cmd := exec.Command("go", "tool", "controller-gen", "crd:crdVersions=v1,allowDangerousTypes=true,maxDescLen=0",
		"paths="+pkg+"/v1", "output:crd:dir="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, out)
	}
	t.Logf("generated prometheus-operator %s CRDs with controller-gen in %v", version, time.Since(start).Round(time.Second))
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	return got
}

// cacheDir is $WIRELOG_CACHE/deploy-check (default ~/.cache/wirelog/deploy-check).
func cacheDir() string {
	base := os.Getenv("WIRELOG_CACHE")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache", "wirelog")
	}
	d := filepath.Join(base, "deploy-check")
	os.MkdirAll(d, 0o755)
	return d
}

func installCRDs(t *testing.T, ctx context.Context, c apiextensions.Interface, files []string) int {
	t.Helper()
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := splitYAML(string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, d := range docs {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.Unmarshal(d, crd); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if crd.Kind != "CustomResourceDefinition" {
				continue
			}
			if _, err := c.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
				t.Fatalf("install CRD %s from %s: %v", crd.Name, f, err)
			}
			name := crd.Name
			err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				got, err := c.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				for _, cond := range got.Status.Conditions {
					if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
						return true, nil
					}
				}
				return false, nil
			})
			if err != nil {
				t.Fatalf("CRD %s not established: %v", name, err)
			}
			n++
		}
	}
	return n
}

// TestServerSideDryRun applies the rendered chart to a real kube-apiserver with etcd, in
// this process, with server-side dry-run and strict field validation: the API server's own
// validation (pod specs, hugepages, resource names, probes, CRD OpenAPI schemas) judges
// every object whose kind it serves; each workload's pod template is also dry-run as a Pod,
// as the controllers would create it, against the real ServiceAccount admission.
func TestServerSideDryRun(t *testing.T) {
	start := time.Now()
	srv := kubeapiserver.StartAPITestServer(t)
	t.Logf("kube-apiserver and etcd started in %v", time.Since(start).Round(100*time.Millisecond))
	cfg, err := clientcmd.BuildConfigFromFlags("", srv.KubeConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	cs := kubernetes.NewForConfigOrDie(cfg)
	for _, ns := range []string{Namespace, "sriov-network-operator"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// No controller-manager runs here to create it.
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	n := installCRDs(t, ctx, apiextensions.NewForConfigOrDie(cfg), crdFiles(t))
	t.Logf("installed %d CRDs shipped by the Go modules", n)

	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)))
	dyn := dynamic.NewForConfigOrDie(cfg)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict}

	notServed := map[string]bool{}
	applied := 0
	for _, r := range renderAll(t) {
		if !(r.Name == "default" || strings.HasPrefix(r.Name, "all-") || strings.HasPrefix(r.Name, "example/")) {
			continue
		}
		for _, o := range r.Objects {
			gvk := o.U.GroupVersionKind()
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if meta.IsNoMatchError(err) {
				if _, mirrored := mirrors[gvk]; !mirrored {
					t.Errorf("%s: %s is neither served nor mirrored", r.Name, o)
				}
				notServed[gvk.String()] = true
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			res := dyn.Resource(m.Resource)
			var ri dynamic.ResourceInterface = res
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				ri = res.Namespace(o.U.GetNamespace())
			}
			if o.U.GetKind() == "ServiceAccount" {
				// Created for real: the pods dry-run below are admitted only if it exists.
				if _, err := ri.Create(ctx, o.U, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict}); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Errorf("%s: %s: %v", r.Name, o, err)
				}
				continue
			}
			if _, err := ri.Create(ctx, o.U, dryRun); err != nil {
				t.Errorf("%s: %s refused: %v", r.Name, o, err)
			}
			applied++
		}
		for _, w := range r.Workloads {
			pod := podFor(w, r)
			if _, err := cs.CoreV1().Pods(Namespace).Create(ctx, pod, dryRun); err != nil {
				t.Errorf("%s: pod of %s refused: %v", r.Name, w, err)
			}
		}
	}
	// The PrometheusRule and dashboard ConfigMap mechanism, with sample files (deploy/prometheus
	// and deploy/grafana may be empty).
	for _, o := range renderWithSampleMonitoring(t) {
		if k := o.U.GetKind(); k != "PrometheusRule" && k != "ConfigMap" {
			continue
		}
		gvk := o.U.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(m.Resource).Namespace(o.U.GetNamespace()).Create(ctx, o.U, dryRun); err != nil {
			t.Errorf("%s refused: %v", o, err)
		}
		applied++
	}
	t.Logf("%d objects accepted by server-side dry-run; kinds no module serves a CRD for (decoded into mirrors instead): %v", applied, keys(notServed))

	// The failing case: the API server itself refuses a pod whose hugepages request differs
	// from its limit.
	w := workload(t, ptr(scenario(t, "dpdk")), "ingest")
	pod := podFor(w, scenario(t, "dpdk"))
	c := &pod.Spec.Containers[0]
	c.Resources.Requests["hugepages-1Gi"] = resource.MustParse("1Gi")
	_, err = cs.CoreV1().Pods(Namespace).Create(ctx, pod, dryRun)
	if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "hugepages") {
		t.Fatalf("pod with hugepages request != limit: want Invalid naming hugepages, got %v", err)
	}
	t.Logf("refused as expected: %v", err)
}

func ptr[T any](v T) *T { return &v }

// podFor is the Pod a controller would create from the workload's template (StatefulSet
// claim templates become PVC volumes, as the StatefulSet controller does).
func podFor(w Workload, r rendered) *corev1.Pod {
	t := w.Pod.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: w.Name + "-dryrun", Namespace: Namespace, Labels: t.Labels, Annotations: t.Annotations},
		Spec:       t.Spec,
	}
	for _, d := range r.Decoded {
		if sts, ok := d.Obj.(*appsv1.StatefulSet); ok && sts.Name == w.Name {
			for _, c := range sts.Spec.VolumeClaimTemplates {
				pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: fmt.Sprintf("%s-%s-0", c.Name, w.Name)}}})
			}
		}
	}
	return pod
}
