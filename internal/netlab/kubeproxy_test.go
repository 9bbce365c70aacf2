package netlab

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestKubeProxyRulesShape(t *testing.T) {
	vip := ServiceVIP(3)
	rules := KubeProxyRules(3, vip, []Endpoint{{podAddr.IP, DefaultPort}, {podAddr2.IP, DefaultPort}})
	var svcJumps []string
	for _, l := range strings.Split(rules, "\n") {
		if strings.HasPrefix(l, "-A KUBE-SERVICES ") {
			svcJumps = append(svcJumps, l)
		}
	}
	// 3 dummies, the real one, then the nodeports catch-all last.
	if len(svcJumps) != 5 {
		t.Fatalf("KUBE-SERVICES has %d rules, want 5:\n%s", len(svcJumps), strings.Join(svcJumps, "\n"))
	}
	if !strings.Contains(svcJumps[3], "-d "+vip.String()+"/32") || !strings.Contains(svcJumps[3], "wirelog-syslog") {
		t.Errorf("the real service is not the last service rule: %s", svcJumps[3])
	}
	if !strings.Contains(svcJumps[4], "KUBE-NODEPORTS") {
		t.Errorf("last KUBE-SERVICES rule is not the nodeports jump: %s", svcJumps[4])
	}
	if n := strings.Count(rules, "--mode random --probability 0.50000000000"); n != 4 {
		t.Errorf("%d statistic rules with probability 1/2, want one per 2-endpoint service (4)", n)
	}
	for _, want := range []string{"-j DNAT --to-destination 198.18.2.2:5514", "-j DNAT --to-destination 198.18.2.3:5514", "MASQUERADE --random-fully", "*filter", "COMMIT"} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q", want)
		}
	}
	if chainHash("a") == chainHash("b") || len(chainHash("a")) != 16 {
		t.Errorf("chain hash %q is not a 16-character digest", chainHash("a"))
	}
}

// TestKubeProxyRulesCarryTrafficToThePod loads the rules into a real node
// namespace with iptables-restore (nft backend) and proves datagrams sent to
// the service VIP reach the pod's receiver, spread over both endpoints.
func TestKubeProxyRulesCarryTrafficToThePod(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skip("iptables-restore not installed (scripts/deps/50-netlab.sh installs it)")
	}
	ctx := context.Background()
	lab, err := NewLab(ctx, testPrefix(t, "kp"), SteerNAPI)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	const services = 200
	vip := ServiceVIP(services)
	rules := KubeProxyRules(services, vip, []Endpoint{{podAddr.IP, DefaultPort}, {podAddr2.IP, DefaultPort}})
	if err := lab.Node.exec(ctx, rules, "iptables-restore", "-w", "5"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "exec", lab.Node.name, "iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(out, []byte("\n:KUBE-SVC-")); n != services+1 {
		t.Fatalf("node has %d KUBE-SVC chains, want %d", n, services+1)
	}
	rcv, err := startReceiver(lab.Pod.h, DefaultPort, lab.ReceiverCPU, DefaultRcvBuf)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Stop()
	snd, err := newSender(lab.Client, 128, lab.SenderCPU)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.close()
	st := rcv.begin(7)
	res, err := snd.run(sendSpec{Dst: vip, DstPort: servicePort, Src: clientNodeClient.IP, Flow: FlowNew,
		Rate: 2000, Duration: 150 * time.Millisecond, Step: 7})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for st.received.Load() < res.Sent && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if res.Sent < 250 || st.received.Load() != res.Sent {
		t.Fatalf("sent %d to %s:%d, the pod received %d", res.Sent, vip, servicePort, st.received.Load())
	}
	// Each datagram was a new flow: conntrack shows which endpoint the
	// statistic rule picked; both must have been used.
	flows, err := lab.Node.nl.ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	byEP := map[string]int{}
	for _, f := range flows {
		if f.Forward.DstIP.Equal(vip) {
			byEP[f.Reverse.SrcIP.String()]++
		}
	}
	if byEP[podAddr.IP.String()] == 0 || byEP[podAddr2.IP.String()] == 0 {
		t.Fatalf("DNAT spread over endpoints %v, want both %s and %s", byEP, podAddr.IP, podAddr2.IP)
	}
}
