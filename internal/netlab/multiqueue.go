package netlab

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// MultiQueueStep is one offered rate of RunMultiQueue: the direct path
// (client veth → the pod's "VF" veth) with the receive work spread over
// ReceiveCores by RPS, one bare recvmmsg receiver per core on one
// SO_REUSEPORT port, and a new flow per packet so flows spread.
type MultiQueueStep struct {
	Queues       int     `json:"queues"`
	ReceiveCores []int   `json:"receive_cores"`
	SenderCore   int     `json:"sender_core"`
	Size         int     `json:"size"`
	OfferedPPS   int     `json:"offered_pps"`
	SentPPS      float64 `json:"sent_pps"`
	DeliveredPPS float64 `json:"delivered_pps"`
	Loss         float64 `json:"loss"`
	// SenderLimited: the generator could not offer the rate (it shares a
	// core with receive work when a receive core is the sender's).
	SenderLimited bool `json:"sender_limited"`
	// ReceiverusPerPkt is the receivers' thread CPU per delivered packet;
	// SoftirqusPerPkt the softirq time of the receive cores (tick-sampled:
	// the receive work of RPS) per delivered packet.
	ReceiverusPerPkt float64  `json:"receiver_us_per_pkt"`
	SoftirqusPerPkt  float64  `json:"softirq_us_per_pkt"`
	PerReceiver      []uint64 `json:"per_receiver"`
	RcvbufErrors     uint64   `json:"udp_rcvbuf_errors"`
	SoftnetDropped   uint64   `json:"softnet_dropped"`
}

// RunMultiQueue measures the direct path once per entry of coreSets (the
// receive cores of that run: one queue and one receiver per core), at
// each size and offered rate for dur. progress, when set, gets a line per
// step. Needs root.
func RunMultiQueue(ctx context.Context, prefix string, coreSets [][]int, sizes, rates []int, dur time.Duration, progress func(string)) ([]MultiQueueStep, error) {
	var out []MultiQueueStep
	step := uint16(0)
	for _, cores := range coreSets {
		lab, err := NewMultiQueueLab(ctx, prefix, cores)
		if err != nil {
			return out, err
		}
		steps, err := runMultiQueueLab(ctx, lab, sizes, rates, dur, &step, progress)
		out = append(out, steps...)
		if cerr := lab.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func runMultiQueueLab(ctx context.Context, lab *Lab, sizes, rates []int, dur time.Duration, step *uint16, progress func(string)) ([]MultiQueueStep, error) {
	var rcvs []*receiver
	defer func() {
		for _, r := range rcvs {
			r.Stop()
		}
	}()
	for _, c := range lab.ReceiverCPUs {
		r, err := startReceiver(lab.Pod.h, DefaultPort, c, DefaultRcvBuf)
		if err != nil {
			return nil, err
		}
		rcvs = append(rcvs, r)
	}
	var out []MultiQueueStep
	for _, size := range sizes {
		snd, err := newSender(lab.Client, size, lab.SenderCPU)
		if err != nil {
			return out, err
		}
		for _, rate := range rates {
			if err := ctx.Err(); err != nil {
				snd.close()
				return out, err
			}
			*step++
			if *step == 0 {
				*step = 1
			}
			if progress != nil {
				progress(fmt.Sprintf("%d receive core(s) %v, %d B, offered %d pps", len(rcvs), lab.ReceiverCPUs, size, rate))
			}
			st, err := multiQueueStep(lab, rcvs, snd, sendSpec{Dst: directPod.IP, DstPort: DefaultPort, Src: directClient.IP,
				Flow: FlowNew, Rate: rate, Duration: dur, Step: *step})
			if err != nil {
				snd.close()
				return out, err
			}
			st.Size = size
			out = append(out, st)
		}
		snd.close()
	}
	return out, nil
}

// mqCounters are what a multi-queue step reads before and after.
type mqCounters struct {
	threads, softirq time.Duration
	softnet          uint64
	udp              udpCounters
}

func readMQ(lab *Lab, rcvs []*receiver) (mqCounters, error) {
	var c mqCounters
	for _, r := range rcvs {
		d, err := r.threadCPU()
		if err != nil {
			return c, err
		}
		c.threads += d
	}
	for _, cpu := range lab.ReceiverCPUs {
		t, err := readCPUTimes(cpu)
		if err != nil {
			return c, err
		}
		c.softirq += ticks(t.softirq)
		n, err := softnetDropped(cpu)
		if err != nil {
			return c, err
		}
		c.softnet += n
	}
	var err error
	c.udp, err = lab.Pod.udpCounters()
	return c, err
}

func multiQueueStep(lab *Lab, rcvs []*receiver, snd *sender, spec sendSpec) (MultiQueueStep, error) {
	st := MultiQueueStep{Queues: lab.RxQueues, ReceiveCores: lab.ReceiverCPUs, SenderCore: lab.SenderCPU, OfferedPPS: spec.Rate}
	before, err := readMQ(lab, rcvs)
	if err != nil {
		return st, err
	}
	stats := make([]*stepStats, len(rcvs))
	for i, r := range rcvs {
		stats[i] = r.begin(spec.Step)
	}
	res, err := snd.run(spec)
	if err != nil {
		for _, r := range rcvs {
			r.end()
		}
		return st, err
	}
	var received uint64
	for i, r := range rcvs {
		drain(&stats[i].received)
		r.end()
		n := stats[i].received.Load()
		st.PerReceiver = append(st.PerReceiver, n)
		received += n
	}
	after, err := readMQ(lab, rcvs)
	if err != nil {
		return st, err
	}
	secs := res.Elapsed.Seconds()
	st.SentPPS = finite(float64(res.Sent) / secs)
	st.DeliveredPPS = finite(float64(received) / secs)
	if res.Sent > 0 {
		st.Loss = max(finite(1-float64(received)/float64(res.Sent)), 0)
	}
	st.SenderLimited = st.SentPPS < senderLimitedRatio*float64(spec.Rate)
	if received > 0 {
		st.ReceiverusPerPkt = finite(float64(after.threads-before.threads) / 1e3 / float64(received))
		st.SoftirqusPerPkt = finite(float64(after.softirq-before.softirq) / 1e3 / float64(received))
	}
	st.RcvbufErrors = after.udp.RcvbufErrors - before.udp.RcvbufErrors
	st.SoftnetDropped = after.softnet - before.softnet
	return st, nil
}

// MultiQueueKnee is the highest rate delivered within the loss objective
// before the first step that lost more (steps of one queue count and size,
// ascending rates): reached says such a step came (false: the knee is past
// the last step), senderBound that the generator could not offer a rate
// below it (on a 2-core machine it shares a core with receive work), so the
// knee is at least pps rather than pps.
func MultiQueueKnee(steps []MultiQueueStep, loss float64) (pps int, reached, senderBound bool) {
	for _, s := range steps {
		if s.Loss > loss {
			return pps, true, senderBound
		}
		pps = max(pps, int(s.DeliveredPPS))
		senderBound = senderBound || s.SenderLimited
	}
	return pps, false, senderBound
}

// Defaults of `netlab queues`.
var (
	// DefaultQueueSizes and DefaultQueueRates are the payload sizes and
	// offered rates of each receive-core set.
	DefaultQueueSizes = []int{64, 1024}
	DefaultQueueRates = []int{50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000}
)

// DefaultCoreSets are the receive-core sets `netlab queues` compares: one
// core, then two. The generator runs on core 0 (senderCPU), so two receive
// cores that leave it alone need three cores; on a 2-core machine the
// second set shares the generator's core, which the report says.
func DefaultCoreSets() [][]int {
	if runtime.NumCPU() >= 3 {
		return [][]int{{1}, {1, 2}}
	}
	return [][]int{{receiverCPU}, {0, 1}}
}

// ParseCoreSets reads receive-core sets: sets separated by commas, the
// cores of a set joined by '+' ("1,1+2" = core 1 alone, then cores 1
// and 2).
func ParseCoreSets(s string) ([][]int, error) {
	var sets [][]int
	for _, set := range strings.Split(s, ",") {
		var cores []int
		seen := map[int]bool{}
		for _, c := range strings.Split(strings.TrimSpace(set), "+") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n < 0 || n >= runtime.NumCPU() {
				return nil, fmt.Errorf("receive core %q in %q: want a core number 0..%d", c, set, runtime.NumCPU()-1)
			}
			if seen[n] {
				return nil, fmt.Errorf("receive core %d twice in %q", n, set)
			}
			seen[n] = true
			cores = append(cores, n)
		}
		sets = append(sets, cores)
	}
	return sets, nil
}
