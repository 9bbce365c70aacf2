// Package netlab measures where the Linux kernel's receive path stops
// scaling on this machine, and turns the measurement into a capacity plan.
//
// A lab is three network namespaces (client, node, pod) joined by veth pairs,
// addressed only from 198.18.0.0/15 (RFC 2544 benchmarking space). A paced
// UDP generator in the client namespace offers load over each path to a
// receiver in the pod namespace:
//
//   - kube-proxy: client → veth → node (iptables-nft NAT rules shaped like
//     kube-proxy's, conntrack, a bridge) → veth → pod;
//   - direct: client → veth → pod, the stand-in for an SR-IOV VF moved into
//     the pod: no bridge, no netfilter;
//   - dpdk: dpdk-testpmd in rxonly mode on the pod end of the direct veth,
//     the "what a DPDK application gets here" reference.
//
// For every path, payload size, flow pattern and offered rate it records the
// delivered rate, loss (receiver and kernel counters), latency from
// timestamps carried in the payload, and CPU time per packet on the receive
// core; the knee is the highest offered rate that still meets the loss and
// latency objectives. See docs/NETLAB.md for the method and its limits.
package netlab

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wirelog/wirelog/internal/ingest/syslog"
)

// Defaults, in one place.
const (
	// DefaultPrefix starts every namespace name the lab creates, so
	// `wirelog netlab cleanup` can find leftovers without touching anything
	// else. A run adds a random suffix and refuses to reuse a taken name.
	DefaultPrefix = "wlnl"
	// DefaultPort is the UDP port the pod receiver listens on (the syslog
	// port wirelog uses unprivileged).
	DefaultPort = 5514
	// DefaultDurationPerStep is how long each offered rate is held. Two
	// seconds gives 500 scheduler ticks of CPU accounting at HZ=250.
	DefaultDurationPerStep = 2 * time.Second
	// QuickDurationPerStep keeps a --quick run under a minute on 2 cores.
	QuickDurationPerStep = 300 * time.Millisecond
	// DefaultSLOP99 is the path view's latency objective: p99 of send →
	// the bare receiver's read (recvmmsg return, AF_XDP ring read). Those
	// receivers hand each datagram over as soon as the kernel does, so
	// this measures the path: one veth hop, NAT and the socket queue, where
	// 1 ms of one-way delay is generous and queueing past it means the
	// receive core is saturated.
	DefaultSLOP99 = time.Millisecond
	// DefaultIngestSLOP99 is the wirelog view's latency objective: p99 of
	// send → the record handed to the log. wirelog's UDP receiver lingers
	// up to syslog.DefaultUDPLinger (10 ms since issue 17's fourth pass; 2
	// ms before, when this was 5 ms) for more datagrams to fill a batch, so
	// a 1 ms objective cannot pass at any rate; the objective is the path
	// objective plus that linger plus 2 ms for the hand-over to a producer
	// goroutine on a busy core. It excludes the durable append, which the
	// lab replaces with a counter.
	DefaultIngestSLOP99 = DefaultSLOP99 + syslog.DefaultUDPLinger + 2*time.Millisecond
	// DefaultCPUObjective is the share of the receive core a path may use
	// and still count below the knee: past 90 % a burst has nowhere to go.
	DefaultCPUObjective = 0.9
	// DefaultLossObjective is the loss a step may have and still count
	// below the knee (0.1 %).
	DefaultLossObjective = 0.001
	// DefaultRcvBuf is the receiver's socket buffer: large enough that a
	// scheduler hiccup of a few milliseconds is not reported as loss.
	DefaultRcvBuf = 8 << 20
	// drainWait is how long the receiver keeps reading after the sender
	// stops, so packets in flight are not counted as lost.
	drainWait = 150 * time.Millisecond
	// drainMax bounds that wait when the receiver is still catching up.
	drainMax = 2 * time.Second
	// conntrackUDPTimeout is the UDP conntrack timeout in the node
	// namespace: short, so the new-flow-per-packet pattern does not fill
	// the table (the default is 30 s).
	conntrackUDPTimeout = 1
	// senderCPU and receiverCPU are the cores the generator and the
	// receiver (and, through RPS, the receive softirq) are pinned to.
	senderCPU   = 0
	receiverCPU = 1
)

// DefaultSizes are the UDP payload sizes of a full run (bytes).
var DefaultSizes = []int{64, 256, 1024}

// DefaultServices are the kube-proxy service counts of a full run.
var DefaultServices = []int{0, 1000, 5000}

// DefaultRates are the offered rates of a full run (packets/s).
var DefaultRates = []int{20_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000}

// Quick-run defaults: every path and two sizes, few rates, short steps.
var (
	QuickSizes    = []int{64, 1024}
	QuickServices = []int{1000}
	QuickRates    = []int{20_000, 80_000, 200_000}
)

// Sentinel errors.
var (
	// ErrNameTaken means a namespace the lab needs already exists; the lab
	// never adopts or deletes what it did not create. Run
	// `wirelog netlab cleanup` if it is a leftover of an earlier run.
	ErrNameTaken = errors.New("netlab: a lab namespace name is already taken")
	// ErrNotRoot means the lab needs CAP_NET_ADMIN and CAP_SYS_ADMIN to
	// create namespaces and load rules: run it as root.
	ErrNotRoot = errors.New("netlab: creating network namespaces needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)")
	// ErrUnavailable marks a path that cannot run on this machine (no
	// dpdk-testpmd, no AF_XDP); the report names it with the reason.
	ErrUnavailable = errors.New("netlab: path unavailable on this machine")
)

// Path names, as they appear in the report.
const (
	PathKubeProxy = "kube-proxy"
	PathDirect    = "direct"
	PathAFXDP     = "af_xdp"
	PathDPDK      = "dpdk"
)

// Views: what receives on a path.
const (
	// ViewPath is a bare receiver on each path (recvmmsg on the kernel
	// socket, an AF_XDP socket, DPDK rxonly) with latency taken at the
	// socket or ring: the path's own cost, like for like across paths.
	ViewPath = "path"
	// ViewWirelog is wirelog's syslog UDP ingest on the path (kernel
	// socket, or AF_XDP through --syslog-xdp), parsing and batching
	// included, with its batching latency reported apart from the path's.
	ViewWirelog = "wirelog"
)

// AllViews lists the views in report order.
var AllViews = []string{ViewPath, ViewWirelog}

// Flow patterns.
const (
	// FlowLong is a few long-lived flows: conntrack hits, NAT rules walked
	// once per flow.
	FlowLong = "long-lived"
	// FlowNew is a new flow per packet (source address and port cycle):
	// every packet walks kube-proxy's rules and creates a conntrack entry.
	FlowNew = "new-per-packet"
)

// Steer is how a veth's receive work is moved to the receive core.
type Steer string

const (
	// SteerNAPI: veth in NAPI mode (GRO on), threaded, its kthread pinned
	// to the receive core, plus the RPS mask. CPU time is exact per thread.
	SteerNAPI Steer = "napi"
	// SteerRPS: plain veth, RPS mask only; the receive softirq runs on the
	// receive core in whatever task is current there, so its CPU time is
	// read from the core's tick-sampled softirq counter.
	SteerRPS Steer = "rps"
)

// Config is one `netlab run`.
type Config struct {
	Prefix   string
	Paths    []string // subset of the Path* names; empty = all
	Sizes    []int    // UDP payload bytes
	Services []int    // kube-proxy services before the real one
	Rates    []int    // offered packets/s, ascending
	Flows    []string // FlowLong, FlowNew
	Steer    Steer    // SteerNAPI (default) or SteerRPS
	// Views are what receives on each path: ViewPath (bare receivers, the
	// path's own cost) and ViewWirelog (wirelog's syslog ingest on the
	// kernel socket and on AF_XDP). Empty = both.
	Views           []string
	DurationPerStep time.Duration
	SLOP99          time.Duration // the path view's latency objective
	IngestSLOP99    time.Duration // the wirelog view's latency objective
	LossObjective   float64
	CPUObjective    float64 // share of the receive core; 0 = DefaultCPUObjective
	// shapeRate, when set, rate-limits the client's direct veth with a
	// token bucket (tc tbf, e.g. "20mbit"): tests force loss above a known
	// rate with it.
	shapeRate string
	OutDir    string
	// Progress, when set, is called before each step with a one-line
	// description (the CLI prints it as a live line).
	Progress func(line string)
}

// Quick returns the configuration of `netlab run --quick`.
func Quick() Config {
	return Config{
		Prefix:          DefaultPrefix,
		Sizes:           QuickSizes,
		Services:        QuickServices,
		Rates:           QuickRates,
		Flows:           []string{FlowLong, FlowNew},
		Steer:           SteerNAPI,
		DurationPerStep: QuickDurationPerStep,
		SLOP99:          DefaultSLOP99,
		IngestSLOP99:    DefaultIngestSLOP99,
		LossObjective:   DefaultLossObjective,
		CPUObjective:    DefaultCPUObjective,
	}
}

// Full returns the configuration of a default `netlab run`.
func Full() Config {
	return Config{
		Prefix:          DefaultPrefix,
		Sizes:           DefaultSizes,
		Services:        DefaultServices,
		Rates:           DefaultRates,
		Flows:           []string{FlowLong, FlowNew},
		Steer:           SteerNAPI,
		DurationPerStep: DefaultDurationPerStep,
		SLOP99:          DefaultSLOP99,
		IngestSLOP99:    DefaultIngestSLOP99,
		LossObjective:   DefaultLossObjective,
		CPUObjective:    DefaultCPUObjective,
	}
}

// ParseList reads a comma-separated list of non-negative integers with
// optional k/M suffixes ("64,256,1024", "20k,100k,1M"), for --sizes,
// --services and --rates.
func ParseList(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(part, "k"), strings.HasSuffix(part, "K"):
			mult, part = 1000, part[:len(part)-1]
		case strings.HasSuffix(part, "M"):
			mult, part = 1_000_000, part[:len(part)-1]
		}
		v, err := strconv.Atoi(part)
		if err != nil || v < 0 || v > math.MaxInt32/mult {
			return nil, fmt.Errorf("%q is not a non-negative whole number", part)
		}
		out = append(out, v*mult)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}
