package netlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMultiQueueLab: a lab built for two receive cores has two receive
// queues on the pod's veth, each steering to both cores, and a new flow
// per packet reaches both SO_REUSEPORT receivers with nothing lost at a
// low rate.
func TestMultiQueueLab(t *testing.T) {
	needRoot(t)
	if runtime.NumCPU() < 2 {
		t.Fatalf("needs 2 cores, this machine has %d", runtime.NumCPU())
	}
	prefix := testPrefix(t, "mq")
	lab, err := NewMultiQueueLab(context.Background(), prefix, []int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	for _, q := range []string{"rx-0", "rx-1"} {
		// /sys shows the namespace's own devices only from inside it.
		out, err := exec.Command("ip", "netns", "exec", lab.Pod.name, "cat", "/sys/class/net/"+ifPodVF+"/queues/"+q+"/rps_cpus").CombinedOutput()
		if err != nil {
			t.Fatalf("%s of %s: %v: %s", q, ifPodVF, err, out)
		}
		if m := strings.TrimLeft(strings.TrimSpace(string(out)), "0,"); m != "3" {
			t.Errorf("%s rps_cpus %q, want cores 0 and 1 (3)", q, out)
		}
	}
	var step uint16
	steps, err := runMultiQueueLab(context.Background(), lab, []int{256}, []int{5000}, 500*time.Millisecond, &step, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := steps[0]
	if s.Loss > 0.01 || len(s.PerReceiver) != 2 || s.PerReceiver[0] == 0 || s.PerReceiver[1] == 0 {
		t.Fatalf("step %+v: want both receivers to get datagrams and (almost) none lost at 5,000 pps", s)
	}
}

// BenchmarkMultiQueueKnee measures the direct path's knee with one receive
// core (1 queue) and two (2 queues, RPS over both, a receiver on each),
// printing every step. On a 2-core machine the second receive core is the
// generator's: see docs/bench/netlab.md. Run as root:
//
//	go test -run '^$' -bench MultiQueueKnee -benchtime 1x ./internal/netlab/
func BenchmarkMultiQueueKnee(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Fatal("needs root: creates network namespaces")
	}
	rates := []int{50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000}
	for i := 0; i < b.N; i++ {
		steps, err := RunMultiQueue(context.Background(), "wlbmq", [][]int{{1}, {0, 1}}, []int{64, 1024}, rates, 2*time.Second,
			func(s string) { b.Log(s) })
		if err != nil {
			b.Fatal(err)
		}
		groups := map[string][]MultiQueueStep{}
		var order []string
		for _, s := range steps {
			k := fmt.Sprintf("cores=%v size=%d", s.ReceiveCores, s.Size)
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], s)
			fmt.Printf("%s offered %d sent %.0f delivered %.0f loss %.4f sender-limited %v rx-us/pkt %.2f softirq-us/pkt %.2f per-receiver %v rcvbuf-err %d softnet-drop %d\n",
				k, s.OfferedPPS, s.SentPPS, s.DeliveredPPS, s.Loss, s.SenderLimited, s.ReceiverusPerPkt, s.SoftirqusPerPkt, s.PerReceiver, s.RcvbufErrors, s.SoftnetDropped)
		}
		for _, k := range order {
			pps, reached, senderBound := MultiQueueKnee(groups[k], DefaultLossObjective)
			fmt.Printf("knee %s: %d pps delivered (a lossy step came: %v; the generator set the ceiling: %v)\n", k, pps, reached, senderBound)
		}
	}
}

func TestParseCoreSets(t *testing.T) {
	got, err := ParseCoreSets("1, 0+1")
	if err != nil || fmt.Sprint(got) != "[[1] [0 1]]" {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range []string{"", "x", "1+1", "-1", fmt.Sprint(runtime.NumCPU()), "0+"} {
		if _, err := ParseCoreSets(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMultiQueueKnee(t *testing.T) {
	steps := []MultiQueueStep{{OfferedPPS: 50_000, DeliveredPPS: 49_000}, {OfferedPPS: 100_000, DeliveredPPS: 90_000, SenderLimited: true},
		{OfferedPPS: 200_000, DeliveredPPS: 95_000, Loss: 0.05}, {OfferedPPS: 400_000, DeliveredPPS: 150_000}}
	if pps, reached, sender := MultiQueueKnee(steps, DefaultLossObjective); pps != 90_000 || !reached || !sender {
		t.Fatalf("knee %d reached %v sender-bound %v, want 90000 true true", pps, reached, sender)
	}
	if pps, reached, _ := MultiQueueKnee(steps[:2], DefaultLossObjective); pps != 90_000 || reached {
		t.Fatalf("no lossy step: knee %d reached %v", pps, reached)
	}
}
