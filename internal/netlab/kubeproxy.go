package netlab

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"strings"
)

// kube-proxy's constants, as its iptables mode writes them.
const (
	kubeMarkMasq   = "0x4000"
	servicePort    = 514              // the ClusterIP port clients send to
	clusterCIDR    = "198.18.2.0/24"  // --cluster-cidr: the pod network behind the bridge
	dummyEndpoints = "198.18.4.%d:%d" // endpoints of the dummy services, never hit
)

// Endpoint is one backend of a service.
type Endpoint struct {
	IP   net.IP
	Port int
}

func (e Endpoint) String() string { return fmt.Sprintf("%s:%d", e.IP, e.Port) }

// KubeProxyRules returns iptables-restore input shaped like kube-proxy's
// iptables mode: `services` dummy UDP services (two endpoints each) and,
// last, the real service at realVIP:514 whose endpoints are given. A packet
// for the real service walks every KUBE-SERVICES rule before it (the cost
// that grows with the service count, paid once per new flow), then
// KUBE-SVC-* picks an endpoint with `-m statistic --mode random`, and
// KUBE-SEP-* DNATs to it. Traffic from outside the cluster CIDR is marked
// and masqueraded, as kube-proxy does with --cluster-cidr set.
func KubeProxyRules(services int, realVIP net.IP, endpoints []Endpoint) string {
	var nat, chains strings.Builder
	chains.WriteString("*nat\n")
	for _, c := range []string{"KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS"} {
		fmt.Fprintf(&chains, ":%s - [0:0]\n", c)
	}
	nat.WriteString(`-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --or-mark ` + kubeMarkMasq + `
-A KUBE-POSTROUTING -m mark ! --mark ` + kubeMarkMasq + `/` + kubeMarkMasq + ` -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark ` + kubeMarkMasq + `
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
`)
	var svcRules strings.Builder
	for i := 0; i <= services; i++ {
		name := fmt.Sprintf("lab/dummy-%d:syslog", i)
		vip := ServiceVIP(i)
		eps := []Endpoint{
			{net.ParseIP(fmt.Sprintf("198.18.4.%d", 2*(i%120)+1)), DefaultPort},
			{net.ParseIP(fmt.Sprintf("198.18.4.%d", 2*(i%120)+2)), DefaultPort},
		}
		if i == services {
			name, vip, eps = "lab/wirelog-syslog:syslog", realVIP, endpoints
		}
		svcChain := "KUBE-SVC-" + chainHash(name+"udp")
		fmt.Fprintf(&chains, ":%s - [0:0]\n", svcChain)
		fmt.Fprintf(&svcRules, "-A KUBE-SERVICES -d %s/32 -p udp -m comment --comment \"%s cluster IP\" -m udp --dport %d -j %s\n",
			vip, name, servicePort, svcChain)
		fmt.Fprintf(&nat, "-A %s ! -s %s -d %s/32 -p udp -m comment --comment \"%s cluster IP\" -m udp --dport %d -j KUBE-MARK-MASQ\n",
			svcChain, clusterCIDR, vip, name, servicePort)
		for j, ep := range eps {
			sepChain := "KUBE-SEP-" + chainHash(name+"udp"+ep.String())
			fmt.Fprintf(&chains, ":%s - [0:0]\n", sepChain)
			if left := len(eps) - j; left > 1 {
				fmt.Fprintf(&nat, "-A %s -m comment --comment \"%s -> %s\" -m statistic --mode random --probability %.11f -j %s\n",
					svcChain, name, ep, 1/float64(left), sepChain)
			} else {
				fmt.Fprintf(&nat, "-A %s -m comment --comment \"%s -> %s\" -j %s\n", svcChain, name, ep, sepChain)
			}
			fmt.Fprintf(&nat, "-A %s -s %s/32 -m comment --comment \"%s\" -j KUBE-MARK-MASQ\n", sepChain, ep.IP, name)
			fmt.Fprintf(&nat, "-A %s -p udp -m comment --comment \"%s\" -m udp -j DNAT --to-destination %s\n", sepChain, name, ep)
		}
	}
	svcRules.WriteString(`-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS` + "\n")
	return chains.String() + nat.String() + svcRules.String() + "COMMIT\n" + `*filter
:KUBE-FORWARD - [0:0]
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark ` + kubeMarkMasq + `/` + kubeMarkMasq + ` -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
`
}

// ServiceVIP is the ClusterIP of service i: 198.19.0.0/16, 250 a /24.
func ServiceVIP(i int) net.IP {
	return net.IPv4(198, 19, byte(i/250), byte(i%250+1)).To4()
}

// chainHash is kube-proxy's chain suffix: the first 16 characters of the
// base32 of the SHA-256 of the service port name and protocol.
func chainHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(h[:])[:16]
}
