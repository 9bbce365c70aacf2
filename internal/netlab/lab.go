package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The lab's address plan, all inside 198.18.0.0/15 (RFC 2544 benchmarking
// space) and only ever configured inside the lab's own namespaces.
var (
	clientNodeClient = mustCIDR("198.18.1.1/24") // client kp0
	clientNodeNode   = mustCIDR("198.18.1.2/24") // node kp1
	bridgeAddr       = mustCIDR("198.18.2.1/24") // node br0
	podAddr          = mustCIDR("198.18.2.2/24") // pod eth0, endpoint 1
	podAddr2         = mustCIDR("198.18.2.3/24") // pod eth0, endpoint 2
	directClient     = mustCIDR("198.18.3.1/24") // client vf0c
	directPod        = mustCIDR("198.18.3.2/24") // pod vf0: the "VF"
	blackholeAddr    = mustCIDR("198.18.254.1/24")
	serviceNet       = mustCIDR("198.19.0.0/16") // kube-proxy ClusterIPs
	blackholeDst     = net.IPv4(198, 18, 254, 2)
)

// Interface names inside the lab namespaces (private to them, so fixed).
const (
	ifClientToNode  = "kp0"  // client end of client↔node
	ifNodeFromCli   = "kp1"  // node end of client↔node
	ifBridge        = "br0"  // node bridge
	ifNodeToPod     = "pv0"  // node end of node↔pod, a bridge port
	ifPodEth        = "eth0" // pod end of node↔pod
	ifClientDirect  = "vf0c" // client end of the direct pair
	ifPodVF         = "vf0"  // pod end of the direct pair: the VF stand-in
	ifBlackhole     = "bh0"  // client veth whose peer is down: the generator's black hole
	ifBlackholePeer = "bh1"
)

// Lab is one set of lab namespaces and links. Close removes all of it.
type Lab struct {
	ID                string
	Client, Node, Pod *namespace
	// ReceiverCPU is the core the pod's receive work is steered to.
	ReceiverCPU, SenderCPU int
	// Steer is how the veths' receive work reaches ReceiverCPU.
	Steer Steer
	// RxQueues is the receive (and transmit) queue count of every veth
	// (1 unless built by NewMultiQueueLab), and ReceiverCPUs the cores
	// the receive work is spread over then (RPS), one receiver each.
	RxQueues     int
	ReceiverCPUs []int
	// napi maps a receiving veth ("ns/link") to its NAPI kthread's pid
	// (SteerNAPI only).
	napi    map[string]int
	closers []func() error
}

// setupFault, when set by a test, is called at each setup step and fails
// setup when it returns an error: the way tests prove a half-built lab is
// torn down.
var setupFault func(step string) error

func fault(step string) error {
	if setupFault != nil {
		return setupFault(step)
	}
	return nil
}

// NewLab builds the lab's namespaces, links, addresses, routes, sysctls and
// RPS masks. On any error it removes what it built and returns the error.
func NewLab(ctx context.Context, prefix string, steer Steer) (lab *Lab, err error) {
	return newLab(ctx, prefix, steer, nil)
}

// NewMultiQueueLab builds the lab with len(cpus) receive and transmit
// queues on every veth and the receive work spread over cpus by RPS (a
// multi-queue NIC's RSS plus RPS), for receivers on more than one core.
// Only SteerRPS: threaded NAPI would need one kthread per queue pinned
// to its core, which this lab does not do.
func NewMultiQueueLab(ctx context.Context, prefix string, cpus []int) (*Lab, error) {
	if len(cpus) == 0 {
		return nil, errors.New("netlab: no receive cores given")
	}
	for _, c := range cpus {
		if c < 0 || c >= runtime.NumCPU() {
			return nil, fmt.Errorf("netlab: receive core %d: this machine has cores 0..%d", c, runtime.NumCPU()-1)
		}
	}
	return newLab(ctx, prefix, SteerRPS, cpus)
}

func newLab(ctx context.Context, prefix string, steer Steer, cpus []int) (lab *Lab, err error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	if steer != SteerRPS && steer != SteerNAPI {
		return nil, fmt.Errorf("--steer %q: use %s or %s", steer, SteerNAPI, SteerRPS)
	}
	var b [3]byte
	rand.Read(b[:])
	lab = &Lab{ID: prefix + "-" + hex.EncodeToString(b[:]), Steer: steer, napi: map[string]int{}, RxQueues: 1}
	lab.SenderCPU, lab.ReceiverCPU = senderCPU, receiverCPU
	if runtime.NumCPU() < 2 {
		lab.ReceiverCPU = 0
	}
	lab.ReceiverCPUs = []int{lab.ReceiverCPU}
	if len(cpus) > 0 {
		lab.RxQueues, lab.ReceiverCPUs, lab.ReceiverCPU = len(cpus), cpus, cpus[0]
	}
	defer func() {
		if err != nil {
			if cerr := lab.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("tear down half-built lab: %w", cerr))
			}
			lab = nil
		}
	}()
	for _, ns := range []struct {
		dst  **namespace
		role string
	}{{&lab.Client, "client"}, {&lab.Node, "node"}, {&lab.Pod, "pod"}} {
		if err := fault("namespace-" + ns.role); err != nil {
			return lab, err
		}
		n, err := createNamespace(lab.ID + "-" + ns.role)
		if err != nil {
			return lab, err
		}
		*ns.dst = n
	}
	if err := lab.links(); err != nil {
		return lab, err
	}
	if err := fault("links"); err != nil {
		return lab, err
	}
	if err := lab.addresses(); err != nil {
		return lab, err
	}
	if err := lab.sysctls(); err != nil {
		return lab, err
	}
	if err := fault("sysctls"); err != nil {
		return lab, err
	}
	if err := lab.steer(ctx); err != nil {
		return lab, err
	}
	return lab, nil
}

// Close stops what the lab started and deletes its namespaces (and with
// them every link, address, route, rule and conntrack entry). It is safe to
// call on a half-built lab and more than once.
func (l *Lab) Close() error {
	if l == nil {
		return nil
	}
	var errs []error
	for i := len(l.closers) - 1; i >= 0; i-- {
		errs = append(errs, l.closers[i]())
	}
	l.closers = nil
	for _, n := range []**namespace{&l.Pod, &l.Node, &l.Client} {
		if *n == nil {
			continue
		}
		errs = append(errs, killInNamespace(netnsDir+"/"+(*n).name), (*n).close())
		*n = nil
	}
	return errors.Join(errs...)
}

// onClose registers fn to run at Close, before the namespaces go.
func (l *Lab) onClose(fn func() error) { l.closers = append(l.closers, fn) }

// Namespaces lists the lab's namespace names.
func (l *Lab) Namespaces() []string {
	var s []string
	for _, n := range []*namespace{l.Client, l.Node, l.Pod} {
		if n != nil {
			s = append(s, n.name)
		}
	}
	return s
}

func (l *Lab) links() error {
	veth := func(in *namespace, name string, peerIn *namespace, peer string) error {
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: name, MTU: 1500, TxQLen: 1000, NumTxQueues: l.RxQueues, NumRxQueues: l.RxQueues},
			PeerName:      peer,
			PeerNamespace: netlink.NsFd(peerIn.h),
		}
		if err := in.nl.LinkAdd(v); err != nil {
			return fmt.Errorf("create veth %s (%s) ↔ %s (%s): %w", name, in.name, peer, peerIn.name, err)
		}
		return nil
	}
	if err := veth(l.Client, ifClientToNode, l.Node, ifNodeFromCli); err != nil {
		return err
	}
	if err := veth(l.Node, ifNodeToPod, l.Pod, ifPodEth); err != nil {
		return err
	}
	if err := veth(l.Client, ifClientDirect, l.Pod, ifPodVF); err != nil {
		return err
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: ifBridge}}
	if err := l.Node.nl.LinkAdd(br); err != nil {
		return fmt.Errorf("create bridge %s in %s: %w", ifBridge, l.Node.name, err)
	}
	port, err := l.Node.nl.LinkByName(ifNodeToPod)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", ifNodeToPod, l.Node.name, err)
	}
	if err := l.Node.nl.LinkSetMaster(port, br); err != nil {
		return fmt.Errorf("attach %s to bridge %s: %w", ifNodeToPod, ifBridge, err)
	}
	// The black hole is a veth whose peer stays down: veth_xmit drops
	// at once, after the whole IP output path (a dummy device would be the
	// same, but not every kernel has the module).
	return veth(l.Client, ifBlackhole, l.Client, ifBlackholePeer)
}

func (l *Lab) addresses() error {
	type ifAddrs struct {
		ns    *namespace
		link  string
		addrs []*net.IPNet
	}
	for _, ia := range []ifAddrs{
		{l.Client, "lo", nil}, {l.Node, "lo", nil}, {l.Pod, "lo", nil},
		{l.Client, ifClientToNode, []*net.IPNet{clientNodeClient}},
		{l.Client, ifClientDirect, []*net.IPNet{directClient}},
		{l.Client, ifBlackhole, []*net.IPNet{blackholeAddr}},
		{l.Node, ifNodeFromCli, []*net.IPNet{clientNodeNode}},
		{l.Node, ifBridge, []*net.IPNet{bridgeAddr}},
		{l.Node, ifNodeToPod, nil},
		{l.Pod, ifPodEth, []*net.IPNet{podAddr, podAddr2}},
		{l.Pod, ifPodVF, []*net.IPNet{directPod}},
	} {
		link, err := ia.ns.nl.LinkByName(ia.link)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", ia.link, ia.ns.name, err)
		}
		for _, a := range ia.addrs {
			if err := ia.ns.nl.AddrAdd(link, &netlink.Addr{IPNet: a}); err != nil {
				return fmt.Errorf("add %s to %s in %s: %w", a, ia.link, ia.ns.name, err)
			}
		}
		if err := ia.ns.nl.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up in %s: %w", ia.link, ia.ns.name, err)
		}
	}
	bh, err := l.Client.nl.LinkByName(ifBlackhole)
	if err != nil {
		return err
	}
	// A permanent neighbour: no ARP for a peer that never answers.
	if err := l.Client.nl.NeighSet(&netlink.Neigh{LinkIndex: bh.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: blackholeDst, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, 2}}); err != nil {
		return fmt.Errorf("neighbour %s on %s in %s: %w", blackholeDst, ifBlackhole, l.Client.name, err)
	}
	// The pod's VF address is a permanent neighbour of the client: once an
	// XDP program (AF_XDP, DPDK) takes every frame on vf0, nobody answers
	// ARP there.
	vf, err := l.Pod.nl.LinkByName(ifPodVF)
	if err != nil {
		return err
	}
	vfc, err := l.Client.nl.LinkByName(ifClientDirect)
	if err != nil {
		return err
	}
	if err := l.Client.nl.NeighSet(&netlink.Neigh{LinkIndex: vfc.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: directPod.IP, HardwareAddr: vf.Attrs().HardwareAddr}); err != nil {
		return fmt.Errorf("neighbour %s on %s in %s: %w", directPod.IP, ifClientDirect, l.Client.name, err)
	}
	kp0, err := l.Client.nl.LinkByName(ifClientToNode)
	if err != nil {
		return err
	}
	if err := l.Client.nl.RouteAdd(&netlink.Route{
		LinkIndex: kp0.Attrs().Index, Dst: serviceNet, Gw: clientNodeNode.IP,
	}); err != nil {
		return fmt.Errorf("route %s via %s in %s: %w", serviceNet, clientNodeNode.IP, l.Client.name, err)
	}
	return nil
}

func (l *Lab) sysctls() error {
	for _, s := range []struct {
		ns         *namespace
		key, value string
	}{
		{l.Node, "net.ipv4.ip_forward", "1"},
		// The generator's new-flow pattern uses many source addresses of
		// the client subnet; strict reverse-path filtering would be fine
		// with them, but loose keeps the lab independent of the defaults.
		{l.Node, "net.ipv4.conf.all.rp_filter", "0"},
		{l.Pod, "net.ipv4.conf.all.rp_filter", "0"},
		{l.Node, "net.netfilter.nf_conntrack_udp_timeout", fmt.Sprint(conntrackUDPTimeout)},
		{l.Node, "net.netfilter.nf_conntrack_udp_timeout_stream", fmt.Sprint(conntrackUDPTimeout)},
	} {
		if err := s.ns.writeSysctl(s.key, s.value); err != nil {
			return err
		}
	}
	return nil
}

// receivingLinks are the veth ends that receive lab traffic.
func (l *Lab) receivingLinks() []struct {
	ns    *namespace
	links []string
} {
	return []struct {
		ns    *namespace
		links []string
	}{{l.Node, []string{ifNodeFromCli}}, {l.Pod, []string{ifPodEth, ifPodVF}}}
}

// steer moves the receive work of every veth that receives lab traffic to
// the receiver's core. A veth has no interrupt: without this its receive
// softirq runs on the sender's core. Both modes set the RPS mask (what a
// multi-queue NIC's RSS plus RPS would do); SteerNAPI also switches the
// veth to NAPI (GRO on) in threaded mode and pins the NAPI kthread to the
// receive core, the way a NIC's IRQ affinity puts its poll there, which
// makes the receive work a thread whose CPU time the kernel counts exactly.
func (l *Lab) steer(ctx context.Context) error {
	m := 0
	for _, c := range l.ReceiverCPUs {
		m |= 1 << c
	}
	mask := fmt.Sprintf("%x", m)
	if l.Steer == SteerNAPI {
		if err := l.Client.exec(ctx, "", "sh", "-c", fmt.Sprintf("ethtool -K %s tso off >/dev/null && ethtool -K %s tso off >/dev/null",
			ifClientToNode, ifClientDirect)); err != nil {
			return fmt.Errorf("steer receive work (--steer %s): %w", l.Steer, err)
		}
	}
	for _, s := range l.receivingLinks() {
		var script strings.Builder
		for _, link := range s.links {
			if l.Steer == SteerNAPI {
				fmt.Fprintf(&script, "ethtool -K %s gro on >/dev/null || exit 1\n", link)
				fmt.Fprintf(&script, "echo 1 > /sys/class/net/%s/threaded || exit 1\n", link)
			}
			fmt.Fprintf(&script, "for q in /sys/class/net/%s/queues/rx-*; do echo %s > $q/rps_cpus || exit 1; done\n", link, mask)
		}
		if l.Steer == SteerNAPI {
			// veth hands a datagram to the peer's NAPI ring only when
			// the sending end has TSO off (or the receiving end does UDP
			// GRO forwarding, which would coalesce datagrams); otherwise
			// it falls back to netif_rx and the NAPI thread sees nothing.
			for _, snd := range []struct {
				ns   *namespace
				link string
			}{{l.Client, ifClientToNode}, {l.Client, ifClientDirect}, {l.Node, ifNodeToPod}} {
				if snd.ns != s.ns {
					continue
				}
				fmt.Fprintf(&script, "ethtool -K %s tso off >/dev/null || exit 1\n", snd.link)
			}
		}
		before := napiThreads()
		if err := s.ns.exec(ctx, "", "sh", "-c", script.String()); err != nil {
			return fmt.Errorf("steer receive work to cpu %d (--steer %s): %w", l.ReceiverCPU, l.Steer, err)
		}
		if l.Steer != SteerNAPI {
			continue
		}
		after := napiThreads()
		for _, link := range s.links {
			pid := 0
			for p, comm := range after {
				if _, old := before[p]; !old && strings.HasPrefix(comm, "napi/"+link+"-") {
					pid = p
				}
			}
			if pid == 0 {
				return fmt.Errorf("steer receive work (--steer %s): no NAPI thread appeared for %s in %s; this kernel may not support threaded NAPI on veth, use --steer %s",
					l.Steer, link, s.ns.name, SteerRPS)
			}
			var set unix.CPUSet
			set.Set(l.ReceiverCPU)
			if err := unix.SchedSetaffinity(pid, &set); err != nil {
				return fmt.Errorf("pin NAPI thread %d of %s to cpu %d: %w", pid, link, l.ReceiverCPU, err)
			}
			// A NIC's receive work runs as softirq, which preempts any
			// task; a threaded NAPI poll at normal priority would instead
			// queue behind whatever else runs on the core and overflow
			// veth's 256-entry ring. SCHED_FIFO 50 is the kernel's own
			// default for interrupt threads; the pod's end gets 51 so the
			// downstream hop of the kube-proxy path drains before the node
			// hop refills it (two FIFO threads of one priority never
			// preempt each other). They only run while lab traffic flows.
			prio := uint32(50)
			if s.ns == l.Pod {
				prio = 51
			}
			if err := unix.SchedSetAttr(pid, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: prio}, 0); err != nil {
				return fmt.Errorf("make NAPI thread %d of %s SCHED_FIFO: %w", pid, link, err)
			}
			l.napi[s.ns.name+"/"+link] = pid
		}
	}
	return nil
}

// napiThreads lists the kernel's NAPI kthreads (pid → comm).
func napiThreads() map[int]string {
	m := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil && strings.HasPrefix(string(b), "napi/") {
			m[pid] = strings.TrimSpace(string(b))
		}
	}
	return m
}

func mustCIDR(s string) *net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip.To4()
	return n
}
