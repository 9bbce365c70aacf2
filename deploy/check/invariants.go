package check

import (
	"fmt"
	"slices"
	"strings"

	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Workload is a pod template the chart renders, with the component it belongs to.
type Workload struct {
	Kind, Name, Component string
	Pod                   *corev1.PodTemplateSpec
}

func (w Workload) String() string { return w.Kind + "/" + w.Name }

// Workloads lists the pod templates of Deployments, StatefulSets and DaemonSets.
func Workloads(ds []Decoded) []Workload {
	var out []Workload
	for _, d := range ds {
		var w Workload
		switch o := d.Obj.(type) {
		case *appsv1.Deployment:
			w = Workload{"Deployment", o.Name, "", &o.Spec.Template}
		case *appsv1.StatefulSet:
			w = Workload{"StatefulSet", o.Name, "", &o.Spec.Template}
		case *appsv1.DaemonSet:
			w = Workload{"DaemonSet", o.Name, "", &o.Spec.Template}
		default:
			continue
		}
		w.Component = w.Pod.Labels["app.kubernetes.io/component"]
		out = append(out, w)
	}
	return out
}

func allContainers(p *corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(p.InitContainers), p.Containers...)
}

// RequestsAndLimits: every container states cpu and memory requests and limits, and every
// extended resource (an SR-IOV VF, hugepages) has requests equal to limits, as the
// scheduler requires of extended resources.
func RequestsAndLimits(ws []Workload) []error {
	var errs []error
	for _, w := range ws {
		for _, c := range allContainers(&w.Pod.Spec) {
			r := c.Resources
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := r.Requests[name]; !ok {
					errs = append(errs, fmt.Errorf("%s container %s: no %s request", w, c.Name, name))
				}
				if _, ok := r.Limits[name]; !ok {
					errs = append(errs, fmt.Errorf("%s container %s: no %s limit", w, c.Name, name))
				}
			}
			for name, q := range r.Limits {
				if !strings.Contains(string(name), "/") && !strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
					continue
				}
				if req, ok := r.Requests[name]; !ok || req.Cmp(q) != 0 {
					errs = append(errs, fmt.Errorf("%s container %s: %s request %s differs from its limit %s", w, c.Name, name, req.String(), q.String()))
				}
			}
		}
	}
	return errs
}

// IsPinned: a pod on the DPDK data path (hugepages or a vhost-user attachment) must get
// exclusive cores.
func IsPinned(w Workload) bool {
	if strings.Contains(w.Pod.Annotations["k8s.v1.cni.cncf.io/networks"], "ovs-dpdk") {
		return true
	}
	for _, c := range allContainers(&w.Pod.Spec) {
		for name := range c.Resources.Limits {
			if strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
				return true
			}
		}
	}
	return false
}

// PinnedGuaranteed: a pinned pod is in the Guaranteed QoS class (every container's requests
// equal its limits for every resource) with whole CPUs, which is what the kubelet's static
// CPU manager needs to give it exclusive cores.
func PinnedGuaranteed(ws []Workload) []error {
	var errs []error
	for _, w := range ws {
		if !IsPinned(w) {
			continue
		}
		for _, c := range allContainers(&w.Pod.Spec) {
			r := c.Resources
			if len(r.Limits) == 0 {
				errs = append(errs, fmt.Errorf("%s container %s: no limits: not Guaranteed", w, c.Name))
			}
			for name, q := range r.Limits {
				if req, ok := r.Requests[name]; ok && req.Cmp(q) != 0 {
					errs = append(errs, fmt.Errorf("%s container %s: %s request %s != limit %s: not Guaranteed", w, c.Name, name, req.String(), q.String()))
				}
			}
			for name := range r.Requests {
				if _, ok := r.Limits[name]; !ok {
					errs = append(errs, fmt.Errorf("%s container %s: %s requested without a limit: not Guaranteed", w, c.Name, name))
				}
			}
			cpu := r.Limits[corev1.ResourceCPU]
			if cpu.MilliValue()%1000 != 0 || cpu.IsZero() {
				errs = append(errs, fmt.Errorf("%s container %s: cpu %s is not a whole number of CPUs: the static CPU manager pins only integer CPUs", w, c.Name, cpu.String()))
			}
		}
	}
	return errs
}

// Hugepages: a container that asks for hugepages asks with requests equal to limits and
// mounts an emptyDir of medium HugePages (or HugePages-<size> of the size it asks for).
func Hugepages(ws []Workload) []error {
	var errs []error
	for _, w := range ws {
		vols := map[string]corev1.StorageMedium{}
		for _, v := range w.Pod.Spec.Volumes {
			if v.EmptyDir != nil && strings.HasPrefix(string(v.EmptyDir.Medium), string(corev1.StorageMediumHugePages)) {
				vols[v.Name] = v.EmptyDir.Medium
			}
		}
		for _, c := range allContainers(&w.Pod.Spec) {
			var sizes []string
			for name, q := range c.Resources.Limits {
				if !strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
					continue
				}
				size := strings.TrimPrefix(string(name), corev1.ResourceHugePagesPrefix)
				sizes = append(sizes, size)
				if req := c.Resources.Requests[name]; req.Cmp(q) != 0 {
					errs = append(errs, fmt.Errorf("%s container %s: %s request %s != limit %s", w, c.Name, name, req.String(), q.String()))
				}
			}
			for name := range c.Resources.Requests {
				if strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
					if _, ok := c.Resources.Limits[name]; !ok {
						errs = append(errs, fmt.Errorf("%s container %s: %s requested without a limit", w, c.Name, name))
					}
				}
			}
			for _, size := range sizes {
				mounted := false
				for _, m := range c.VolumeMounts {
					med, ok := vols[m.Name]
					if ok && (med == corev1.StorageMediumHugePages || string(med) == "HugePages-"+size) {
						mounted = true
					}
				}
				if !mounted {
					errs = append(errs, fmt.Errorf("%s container %s: asks for hugepages-%s but mounts no emptyDir of medium HugePages(-%s)", w, c.Name, size, size))
				}
			}
		}
	}
	return errs
}

// InMesh: the pod gets an Istio sidecar.
func InMesh(w Workload) bool {
	return w.Pod.Labels["sidecar.istio.io/inject"] == "true" && !w.Pod.Spec.HostNetwork
}

// Mesh: every in-mesh workload is selected by a STRICT PeerAuthentication and by an
// allow-nothing AuthorizationPolicy, every policy that selects it is an ALLOW policy whose
// rules name exact principals only, and those principals are the ones it needs
// (need[component]; a component absent from need must be reachable by nobody).
// meshOn says whether the mesh is on for the release: then every pod of the release except
// host-network ones must carry a sidecar.
func Mesh(ds []Decoded, ws []Workload, meshOn bool, need map[string][]string) []error {
	var pas []*istiosecurity.PeerAuthentication
	var aps []*istiosecurity.AuthorizationPolicy
	for _, d := range ds {
		switch o := d.Obj.(type) {
		case *istiosecurity.PeerAuthentication:
			pas = append(pas, o)
		case *istiosecurity.AuthorizationPolicy:
			aps = append(aps, o)
		}
	}
	var errs []error
	for _, w := range ws {
		if !InMesh(w) {
			if meshOn && !w.Pod.Spec.HostNetwork {
				errs = append(errs, fmt.Errorf("%s: not in the mesh although istio.enabled", w))
			}
			continue
		}
		podLabels := labels.Set(w.Pod.Labels)
		strict := false
		for _, pa := range pas {
			sel := pa.Spec.GetSelector().GetMatchLabels()
			if (len(sel) == 0 || labels.SelectorFromSet(sel).Matches(podLabels)) && pa.Spec.GetMtls().GetMode().String() == "STRICT" {
				strict = true
			}
		}
		if !strict {
			errs = append(errs, fmt.Errorf("%s: no STRICT PeerAuthentication selects it", w))
		}
		allowNothing := false
		var got []string
		for _, ap := range aps {
			sel := ap.Spec.GetSelector().GetMatchLabels()
			if len(sel) > 0 && !labels.SelectorFromSet(sel).Matches(podLabels) {
				continue
			}
			if a := ap.Spec.GetAction().String(); a != "ALLOW" {
				if a != "DENY" { // DENY narrows further; CUSTOM/AUDIT are not ours
					errs = append(errs, fmt.Errorf("%s: AuthorizationPolicy %s has action %s", w, ap.Name, a))
				}
				continue
			}
			if len(ap.Spec.GetRules()) == 0 {
				allowNothing = true
				continue
			}
			for _, r := range ap.Spec.GetRules() {
				if len(r.GetFrom()) == 0 {
					errs = append(errs, fmt.Errorf("%s: AuthorizationPolicy %s has a rule without from: anyone may call", w, ap.Name))
				}
				for _, f := range r.GetFrom() {
					s := f.GetSource()
					if len(s.GetNamespaces())+len(s.GetIpBlocks())+len(s.GetRemoteIpBlocks())+len(s.GetRequestPrincipals())+len(s.GetNotPrincipals())+len(s.GetNotNamespaces()) > 0 {
						errs = append(errs, fmt.Errorf("%s: AuthorizationPolicy %s allows by something other than exact principals", w, ap.Name))
					}
					if len(s.GetPrincipals()) == 0 {
						errs = append(errs, fmt.Errorf("%s: AuthorizationPolicy %s has a source without principals", w, ap.Name))
					}
					for _, p := range s.GetPrincipals() {
						if strings.Contains(p, "*") {
							errs = append(errs, fmt.Errorf("%s: AuthorizationPolicy %s allows the wildcard principal %q", w, ap.Name, p))
						}
						got = append(got, p)
					}
				}
			}
		}
		if !allowNothing {
			errs = append(errs, fmt.Errorf("%s: no allow-nothing AuthorizationPolicy selects it: whatever no ALLOW rule names is not denied", w))
		}
		want := need[w.Component]
		for _, p := range got {
			if !slices.Contains(want, p) {
				errs = append(errs, fmt.Errorf("%s: principal %s may call it but does not need to (needed: %v)", w, p, want))
			}
		}
		for _, p := range want {
			if !slices.Contains(got, p) {
				errs = append(errs, fmt.Errorf("%s: principal %s needs to call it but no ALLOW policy names it", w, p))
			}
		}
	}
	return errs
}

// istioProtocols are the port-name prefixes Istio selects a protocol by.
var istioProtocols = []string{"http", "http2", "https", "grpc", "grpc-web", "tcp", "tls", "udp", "mongo", "mysql", "redis"}

// ServicePortNames: every Service port is named <protocol> or <protocol>-<suffix> with a
// protocol Istio knows (or sets appProtocol), and UDP ports say udp.
func ServicePortNames(ds []Decoded) []error {
	var errs []error
	for _, d := range ds {
		svc, ok := d.Obj.(*corev1.Service)
		if !ok {
			continue
		}
		for _, p := range svc.Spec.Ports {
			proto, _, _ := strings.Cut(p.Name, "-")
			if p.Name == "grpc-web" || strings.HasPrefix(p.Name, "grpc-web-") {
				proto = "grpc-web"
			}
			switch {
			case p.AppProtocol != nil:
			case !slices.Contains(istioProtocols, proto):
				errs = append(errs, fmt.Errorf("Service %s port %d is named %q: Istio selects the protocol from a name <protocol>[-suffix] (%s)", svc.Name, p.Port, p.Name, strings.Join(istioProtocols, ", ")))
			case p.Protocol == corev1.ProtocolUDP && proto != "udp":
				errs = append(errs, fmt.Errorf("Service %s UDP port %d is named %q: name it udp-…", svc.Name, p.Port, p.Name))
			}
		}
	}
	return errs
}

// AgentCapabilities are the capabilities the data-plane agent uses: none (it reads sysfs,
// procfs and root-owned unix sockets as uid 0; reading VF info over netlink is unprivileged).
var AgentCapabilities []corev1.Capability

// AgentLeastPrivilege: the agent and its preflight drop every capability and add only
// AgentCapabilities, are not privileged, cannot escalate, mount every host path read-only,
// and share no host PID or IPC namespace.
func AgentLeastPrivilege(ws []Workload) []error {
	var errs []error
	found := false
	for _, w := range ws {
		if w.Component != "agent" {
			continue
		}
		found = true
		s := w.Pod.Spec
		if s.HostPID || s.HostIPC {
			errs = append(errs, fmt.Errorf("%s shares the host's PID or IPC namespace", w))
		}
		hostVols := map[string]bool{}
		for _, v := range s.Volumes {
			if v.HostPath != nil {
				hostVols[v.Name] = true
			}
		}
		for _, c := range allContainers(&s) {
			sc := c.SecurityContext
			if sc == nil || sc.Capabilities == nil {
				errs = append(errs, fmt.Errorf("%s container %s: no capabilities stanza: it keeps the runtime's default set", w, c.Name))
				continue
			}
			if !slices.Contains(sc.Capabilities.Drop, "ALL") {
				errs = append(errs, fmt.Errorf("%s container %s: does not drop ALL capabilities", w, c.Name))
			}
			for _, a := range sc.Capabilities.Add {
				if !slices.Contains(AgentCapabilities, a) {
					errs = append(errs, fmt.Errorf("%s container %s: adds capability %s it does not use", w, c.Name, a))
				}
			}
			if sc.Privileged != nil && *sc.Privileged {
				errs = append(errs, fmt.Errorf("%s container %s: privileged", w, c.Name))
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				errs = append(errs, fmt.Errorf("%s container %s: allowPrivilegeEscalation not false", w, c.Name))
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				errs = append(errs, fmt.Errorf("%s container %s: root filesystem writable", w, c.Name))
			}
			for _, m := range c.VolumeMounts {
				if hostVols[m.Name] && !m.ReadOnly {
					errs = append(errs, fmt.Errorf("%s container %s: host path volume %s mounted read-write", w, c.Name, m.Name))
				}
			}
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("no agent DaemonSet rendered"))
	}
	return errs
}
