// Package preflight says whether a node is ready for SR-IOV and DPDK pods:
// IOMMU on, VFs created and bound, huge pages on the NIC's NUMA node,
// isolated CPUs there, the kubelet's CPU and topology managers set for
// NUMA-aligned pods, vfio-pci loaded. Each check passes, warns or fails with
// a one-line fix. It only reads files; it changes nothing.
package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/wirelog/wirelog/internal/dataplane/cpuiso"
	"github.com/wirelog/wirelog/internal/dataplane/hugepages"
	"github.com/wirelog/wirelog/internal/dataplane/sriov"
	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// Status is a check's outcome.
type Status string

// Outcomes, from good to bad.
const (
	Pass Status = "pass" // ready
	Warn Status = "warn" // works, but not as well as it could, or could not be checked
	Fail Status = "fail" // SR-IOV or DPDK pods will not run, or not as intended
)

// Check ids, in report order.
const (
	CheckIOMMUCmdline    = "iommu-cmdline"
	CheckIOMMUGroups     = "iommu-groups"
	CheckSRIOVVFs        = "sriov-vfs"
	CheckVFDrivers       = "vf-drivers"
	CheckHugepages       = "hugepages"
	CheckHugetlbfs       = "hugetlbfs"
	CheckIsolatedCPUs    = "isolated-cpus"
	CheckCPUManager      = "cpu-manager-policy"
	CheckTopologyManager = "topology-manager-policy"
	CheckVFIO            = "vfio-pci"
)

// Result is one check on one subject (the kernel, a PF, a NUMA node…).
type Result struct {
	Check   string `json:"check"`
	Subject string `json:"subject"`
	Status  Status `json:"status"`
	Detail  string `json:"detail"`
	Fix     string `json:"fix,omitempty"` // one line; empty on pass
}

// Options say where to look.
type Options struct {
	Sys, Proc       string // "" means /sys and /proc
	KubeletConfig   string // "" skips the config file (topology manager then warns "not checked")
	CPUManagerState string // "" means cpuiso.DefaultCPUManagerState
}

// Report is the outcome of every check.
type Report struct {
	Results []Result       `json:"results"`
	Summary map[Status]int `json:"summary"`
}

// Failed is the number of failed checks.
func (r Report) Failed() int { return r.Summary[Fail] }

// Run runs every check. It never stops early: a node with three problems
// gets three lines, not one at a time.
func Run(o Options) Report {
	if o.Sys == "" {
		o.Sys = sysfs.DefaultSys
	}
	if o.Proc == "" {
		o.Proc = sysfs.DefaultProc
	}
	if o.CPUManagerState == "" {
		o.CPUManagerState = cpuiso.DefaultCPUManagerState
	}
	r := &runner{o: o}
	r.pfs, r.pfErr = sriov.Discover(o.Sys)
	r.cmdline, r.cmdlineErr = cpuiso.ReadCmdline(o.Proc)

	r.iommuCmdline()
	r.iommuGroups()
	r.sriovVFs()
	r.vfDrivers()
	r.hugepages()
	r.hugetlbfs()
	r.isolatedCPUs()
	kc, kcErr := r.kubeletConfig()
	r.cpuManager(kc)
	r.topologyManager(kc, kcErr)
	r.vfio()

	rep := Report{Results: r.results, Summary: map[Status]int{Pass: 0, Warn: 0, Fail: 0}}
	for _, res := range r.results {
		rep.Summary[res.Status]++
	}
	return rep
}

type runner struct {
	o          Options
	results    []Result
	pfs        []sriov.PF
	pfErr      error
	cmdline    map[string]string
	cmdlineErr error
}

func (r *runner) add(check, subject string, st Status, detail, fix string) {
	if st == Pass {
		fix = ""
	}
	r.results = append(r.results, Result{Check: check, Subject: subject, Status: st, Detail: detail, Fix: fix})
}

const fixIOMMU = "add intel_iommu=on iommu=pt (Intel) or iommu=pt (AMD) to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub, reboot; enable VT-d/AMD-Vi in the BIOS"

func (r *runner) iommuCmdline() {
	if r.cmdlineErr != nil {
		r.add(CheckIOMMUCmdline, "kernel", Fail, r.cmdlineErr.Error(), "check --procfs points at the host's /proc")
		return
	}
	var on, off []string
	for _, p := range []string{"intel_iommu", "amd_iommu", "iommu"} {
		v, ok := r.cmdline[p]
		if !ok {
			continue
		}
		for opt := range strings.SplitSeq(v, ",") {
			switch opt {
			case "off":
				off = append(off, p+"="+v)
			case "on", "pt", "force", "nopt":
				on = append(on, p+"="+v)
			}
		}
	}
	on, off = slices.Compact(on), slices.Compact(off)
	switch {
	case len(off) > 0:
		r.add(CheckIOMMUCmdline, "kernel", Fail, "IOMMU switched off on the kernel command line: "+strings.Join(off, " "), "remove "+strings.Join(off, " ")+" and "+fixIOMMU)
	case len(on) > 0:
		r.add(CheckIOMMUCmdline, "kernel", Pass, "kernel command line has "+strings.Join(on, " "), "")
	default:
		r.add(CheckIOMMUCmdline, "kernel", Warn, "no intel_iommu=, amd_iommu= or iommu= on the kernel command line: the IOMMU is on only if the kernel's build default says so", fixIOMMU)
	}
}

func (r *runner) iommuGroups() {
	dir := filepath.Join(r.o.Sys, "kernel", "iommu_groups")
	entries, err := os.ReadDir(dir)
	if err != nil && !sysfs.IsNotExist(err) {
		r.add(CheckIOMMUGroups, "kernel", Fail, fmt.Sprintf("cannot list %s: %v", dir, err), "check --sysfs points at the host's /sys")
		return
	}
	if len(entries) == 0 {
		r.add(CheckIOMMUGroups, "kernel", Fail, "no IOMMU groups under "+dir+": vfio-pci cannot give devices to DPDK pods", fixIOMMU)
		return
	}
	r.add(CheckIOMMUGroups, "kernel", Pass, fmt.Sprintf("%d IOMMU groups", len(entries)), "")
}

func (r *runner) sriovVFs() {
	if r.pfErr != nil {
		r.add(CheckSRIOVVFs, "node", Fail, r.pfErr.Error(), "check the named sysfs files; a PF whose files cannot be read is left out below")
	}
	if len(r.pfs) == 0 {
		if r.pfErr == nil {
			r.add(CheckSRIOVVFs, "node", Warn, "no SR-IOV capable interface under "+filepath.Join(r.o.Sys, "class", "net"),
				"enable SR-IOV and VT-d in the BIOS and NIC firmware; DPDK pods without SR-IOV need no VFs")
		}
		return
	}
	for _, pf := range r.pfs {
		detail := fmt.Sprintf("%d of %d VFs created (PCI %s, driver %s, NUMA node %d)", pf.NumVFs, pf.TotalVFs, pf.PCIAddress, orNone(pf.Driver), pf.NUMANode)
		switch {
		case pf.NumVFs == 0:
			r.add(CheckSRIOVVFs, pf.Name, Warn, detail,
				fmt.Sprintf("echo %d > /sys/class/net/%s/device/sriov_numvfs (or an SriovNetworkNodePolicy)", min(pf.TotalVFs, 8), pf.Name))
		case uint64(len(pf.VFs)) != pf.NumVFs:
			r.add(CheckSRIOVVFs, pf.Name, Warn, fmt.Sprintf("%s, but %d virtfn links", detail, len(pf.VFs)),
				"VFs are being created or removed: run preflight again in a minute")
		default:
			r.add(CheckSRIOVVFs, pf.Name, Pass, detail, "")
		}
	}
}

func (r *runner) vfDrivers() {
	for _, pf := range r.pfs {
		if len(pf.VFs) == 0 {
			continue
		}
		count := map[string]int{}
		var unbound []string
		for _, vf := range pf.VFs {
			if vf.Driver == "" {
				unbound = append(unbound, vf.PCIAddress)
				count["unbound"]++
				continue
			}
			count[vf.Driver]++
		}
		names := make([]string, 0, len(count))
		for d := range count {
			names = append(names, d)
		}
		slices.Sort(names)
		parts := make([]string, len(names))
		for i, d := range names {
			parts[i] = fmt.Sprintf("%d %s", count[d], d)
		}
		detail := "VFs bound to: " + strings.Join(parts, ", ")
		if len(unbound) > 0 {
			r.add(CheckVFDrivers, pf.Name, Warn, detail+" ("+strings.Join(clipList(unbound, 4), " ")+")",
				"bind each VF: driverctl set-override <pci> vfio-pci (DPDK) or iavf/mlx5_core (kernel netdevice)")
			continue
		}
		r.add(CheckVFDrivers, pf.Name, Pass, detail, "")
	}
}

// nicNodes returns the NUMA nodes that host an SR-IOV PF, and the PF names
// on each.
func (r *runner) nicNodes() map[int][]string {
	m := map[int][]string{}
	for _, pf := range r.pfs {
		if pf.NUMANode >= 0 {
			m[pf.NUMANode] = append(m[pf.NUMANode], pf.Name)
		}
	}
	return m
}

const fixHugepages = "reserve at boot with default_hugepagesz=1G hugepagesz=1G hugepages=N on the kernel command line, or now: echo N > /sys/devices/system/node/nodeX/hugepages/hugepages-2048kB/nr_hugepages"

func (r *runner) hugepages() {
	system, perNode, err := hugepages.Read(r.o.Sys)
	if err != nil {
		r.add(CheckHugepages, "node", Fail, err.Error(), "check the named sysfs files (and --sysfs)")
	}
	var anyPages bool
	for _, p := range system {
		anyPages = anyPages || p.Total > 0
	}
	if len(perNode) == 0 { // no NUMA in this kernel: judge the system-wide pools
		st, detail := judgePools(system)
		if st == Fail && !anyPages {
			detail = "no huge pages reserved"
		}
		r.add(CheckHugepages, "system", st, detail, fixHugepages)
		return
	}
	nics := r.nicNodes()
	byNode := map[int][]hugepages.Pool{}
	var nodes []int
	for _, p := range perNode {
		if _, ok := byNode[p.NUMANode]; !ok {
			nodes = append(nodes, p.NUMANode)
		}
		byNode[p.NUMANode] = append(byNode[p.NUMANode], p)
	}
	for _, n := range nodes {
		st, detail := judgePools(byNode[n])
		subject := "numa" + strconv.Itoa(n)
		if st == Fail && len(nics[n]) == 0 && anyPages {
			// Pages elsewhere and no NIC here: pods on this node's CPUs
			// are unlikely to be the data plane.
			st = Warn
		}
		if len(nics[n]) > 0 {
			detail += " (NIC " + strings.Join(nics[n], ", ") + ")"
		}
		r.add(CheckHugepages, subject, st, detail, fixHugepages)
	}
}

// judgePools rates one node's (or the system's) pools: pages free → pass,
// all used → warn, none reserved → fail.
func judgePools(pools []hugepages.Pool) (Status, string) {
	var total, free uint64
	var parts []string
	for _, p := range pools {
		total += p.Total
		free += p.Free
		parts = append(parts, fmt.Sprintf("%s: %d total, %d free", sizeName(p.SizeBytes), p.Total, p.Free))
	}
	detail := strings.Join(parts, "; ")
	if detail == "" {
		detail = "no huge page pools"
	}
	switch {
	case total == 0:
		return Fail, detail
	case free == 0:
		return Warn, detail + ": all in use"
	default:
		return Pass, detail
	}
}

func sizeName(b uint64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return strconv.FormatUint(b>>30, 10) + "Gi"
	case b >= 1<<20 && b%(1<<20) == 0:
		return strconv.FormatUint(b>>20, 10) + "Mi"
	default:
		return strconv.FormatUint(b>>10, 10) + "Ki"
	}
}

func (r *runner) hugetlbfs() {
	path := filepath.Join(r.o.Proc, "mounts")
	data, err := os.ReadFile(path)
	if err != nil {
		r.add(CheckHugetlbfs, "host", Fail, fmt.Sprintf("cannot read %s: %v", path, err), "check --procfs points at the host's /proc")
		return
	}
	mounts := ParseMounts(data)
	var found []string
	for _, m := range mounts {
		if m.FSType == "hugetlbfs" {
			desc := m.Point
			if ps := m.Option("pagesize"); ps != "" {
				desc += " (pagesize=" + ps + ")"
			}
			found = append(found, desc)
		}
	}
	if len(found) == 0 {
		r.add(CheckHugetlbfs, "host", Warn, "no hugetlbfs mounted: host DPDK processes (OVS-DPDK, testpmd) cannot map huge pages; pods mount their own (emptyDir medium: HugePages)",
			"mount -t hugetlbfs nodev /dev/hugepages (systemd: systemctl enable --now dev-hugepages.mount)")
		return
	}
	r.add(CheckHugetlbfs, "host", Pass, "hugetlbfs mounted at "+strings.Join(found, ", "), "")
}

const fixIsolation = "isolate data-plane CPUs with isolcpus=… nohz_full=… rcu_nocbs=… on the kernel command line (or a tuned cpu-partitioning profile), on the NIC's NUMA node, and keep them out of reservedSystemCPUs"

func (r *runner) isolatedCPUs() {
	iso, err := cpuiso.ReadIsolation(r.o.Sys)
	if err != nil {
		r.add(CheckIsolatedCPUs, "node", Fail, err.Error(), "check the named sysfs file (and --sysfs)")
		if len(iso.Online) == 0 {
			return
		}
	}
	nics := r.nicNodes()
	if len(nics) == 0 { // no NIC NUMA affinity known: judge the whole node
		if len(iso.Isolated) == 0 {
			r.add(CheckIsolatedCPUs, "node", Warn, "no isolated CPUs: DPDK poll-mode threads share their CPUs with the kernel's housekeeping", fixIsolation)
			return
		}
		r.add(CheckIsolatedCPUs, "node", Pass, "isolated CPUs "+sysfs.FormatCPUList(iso.Isolated)+nohzNote(iso, iso.Isolated), "")
		return
	}
	nodes := make([]int, 0, len(nics))
	for n := range nics {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	for _, n := range nodes {
		var here []int
		for _, c := range iso.Isolated {
			if iso.NodeOf(c) == n {
				here = append(here, c)
			}
		}
		subject := "numa" + strconv.Itoa(n)
		nic := " (NIC " + strings.Join(nics[n], ", ") + ")"
		if len(here) == 0 {
			detail := "no isolated CPUs on the NIC's NUMA node" + nic
			if len(iso.Isolated) > 0 {
				detail += "; isolated CPUs " + sysfs.FormatCPUList(iso.Isolated) + " are on other nodes"
			}
			r.add(CheckIsolatedCPUs, subject, Warn, detail, fixIsolation)
			continue
		}
		r.add(CheckIsolatedCPUs, subject, Pass, "isolated CPUs "+sysfs.FormatCPUList(here)+nic+nohzNote(iso, here), "")
	}
}

func nohzNote(iso cpuiso.Isolation, cpus []int) string {
	var n []int
	for _, c := range cpus {
		if slices.Contains(iso.NohzFull, c) {
			n = append(n, c)
		}
	}
	if len(n) == 0 {
		return "; none nohz_full"
	}
	return "; nohz_full " + sysfs.FormatCPUList(n)
}

func (r *runner) kubeletConfig() (*KubeletConfig, error) {
	if r.o.KubeletConfig == "" {
		return nil, nil
	}
	kc, err := ReadKubeletConfig(r.o.KubeletConfig)
	if err != nil {
		return nil, err
	}
	return &kc, nil
}

const fixCPUManager = "set cpuManagerPolicy: static and reservedSystemCPUs in the kubelet config, drain the node, remove /var/lib/kubelet/cpu_manager_state, restart the kubelet"

func (r *runner) cpuManager(kc *KubeletConfig) {
	st, ok, err := cpuiso.ReadCPUManagerState(r.o.CPUManagerState)
	configured := ""
	if kc != nil {
		configured = kc.CPUManagerPolicy
		if configured == "" {
			configured = "none" // the kubelet's default
		}
	}
	switch {
	case err != nil:
		r.add(CheckCPUManager, "kubelet", Fail, err.Error(), "the kubelet refuses a corrupt state file too: "+fixCPUManager)
	case !ok && configured == "static":
		r.add(CheckCPUManager, "kubelet", Warn, "kubelet config says static, but there is no state file at "+r.o.CPUManagerState+": the kubelet has not started with it",
			"start the kubelet, or pass --cpu-manager-state if its --root-dir is not /var/lib/kubelet")
	case !ok:
		r.add(CheckCPUManager, "kubelet", Warn, "no CPU manager state file at "+r.o.CPUManagerState+": no kubelet on this node, or another --root-dir",
			"pass --cpu-manager-state <root-dir>/cpu_manager_state")
	case st.Policy != "static":
		r.add(CheckCPUManager, "kubelet", Fail, "CPU manager policy is "+st.Policy+": pods get no exclusive CPUs, so DPDK poll-mode threads are time-shared", fixCPUManager)
	case configured != "" && configured != st.Policy:
		r.add(CheckCPUManager, "kubelet", Warn, "running kubelet uses "+st.Policy+" but its config says "+configured, fixCPUManager)
	default:
		detail := "static; shared pool CPUs " + orNone(sysfs.FormatCPUList(st.DefaultSet))
		if ex := st.ExclusiveCPUs(); len(ex) > 0 {
			detail += "; exclusive CPUs " + sysfs.FormatCPUList(ex)
		}
		r.add(CheckCPUManager, "kubelet", Pass, detail, "")
	}
}

const fixTopology = "set topologyManagerPolicy: single-numa-node (and topologyManagerScope: pod) in the kubelet config and restart the kubelet"

func (r *runner) topologyManager(kc *KubeletConfig, kcErr error) {
	switch {
	case kcErr != nil:
		r.add(CheckTopologyManager, "kubelet", Fail, kcErr.Error(), "pass the kubelet's --config file (usually /var/lib/kubelet/config.yaml) to --kubelet-config")
		return
	case kc == nil:
		r.add(CheckTopologyManager, "kubelet", Warn, "not checked: the policy is only in the kubelet config file", "pass --kubelet-config /var/lib/kubelet/config.yaml")
		return
	}
	p := kc.TopologyManagerPolicy
	if p == "" {
		p = "none"
	}
	scope := kc.TopologyManagerScope
	if scope == "" {
		scope = "container"
	}
	detail := "topology manager policy " + p + ", scope " + scope
	switch p {
	case "single-numa-node", "restricted":
		r.add(CheckTopologyManager, "kubelet", Pass, detail, "")
	case "best-effort", "none":
		r.add(CheckTopologyManager, "kubelet", Warn, detail+": a pod's VF, CPUs and huge pages may land on different NUMA nodes", fixTopology)
	default:
		r.add(CheckTopologyManager, "kubelet", Fail, detail+": not a policy the kubelet knows", fixTopology)
	}
}

func (r *runner) vfio() {
	drv := filepath.Join(r.o.Sys, "bus", "pci", "drivers", "vfio-pci")
	loaded := sysfs.Exists(drv) || sysfs.Exists(filepath.Join(r.o.Sys, "module", "vfio_pci"))
	if !loaded {
		if data, err := os.ReadFile(filepath.Join(r.o.Proc, "modules")); err == nil {
			for line := range strings.SplitSeq(string(data), "\n") {
				if name, _, _ := strings.Cut(line, " "); name == "vfio_pci" {
					loaded = true
				}
			}
		}
	}
	if !loaded {
		r.add(CheckVFIO, "kernel", Fail, "vfio-pci is not loaded ("+drv+" missing): VFs cannot be handed to DPDK pods",
			"modprobe vfio-pci && echo vfio-pci > /etc/modules-load.d/vfio-pci.conf")
		return
	}
	noiommu, _ := sysfs.ReadString(filepath.Join(r.o.Sys, "module", "vfio", "parameters", "enable_unsafe_noiommu_mode"))
	if noiommu == "Y" || noiommu == "1" {
		r.add(CheckVFIO, "kernel", Warn, "vfio-pci loaded in unsafe no-IOMMU mode: a DPDK pod can DMA anywhere in host memory",
			"turn the IOMMU on (see iommu-groups) and load vfio without enable_unsafe_noiommu_mode=1")
		return
	}
	r.add(CheckVFIO, "kernel", Pass, "vfio-pci loaded", "")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func clipList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("and %d more", len(s)-n))
}

// WriteTable writes the report for a person: one line per check, then the
// fixes, then the counts.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCHECK\tSUBJECT\tDETAIL")
	for _, res := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.ToUpper(string(res.Status)), res.Check, res.Subject, res.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first := true
	for _, res := range r.Results {
		if res.Fix == "" {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nTo fix:")
			first = false
		}
		fmt.Fprintf(w, "  %s %s (%s): %s\n", strings.ToUpper(string(res.Status)), res.Check, res.Subject, res.Fix)
	}
	_, err := fmt.Fprintf(w, "\n%d pass, %d warn, %d fail\n", r.Summary[Pass], r.Summary[Warn], r.Summary[Fail])
	return err
}

// WriteJSON writes the report as one indented JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
