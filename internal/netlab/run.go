package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const (
	// senderLimitedRatio: a step whose generator achieved less than this
	// share of the offered rate measures the generator, not the receiver.
	senderLimitedRatio = 0.97
	// maxServices keeps the ClusterIP plan inside 198.19.0.0/16.
	maxServices = 50_000
	// ceilingQuick and ceilingFull are how long the generator's ceiling is
	// measured per size and flow pattern.
	ceilingQuick = 200 * time.Millisecond
	ceilingFull  = time.Second
)

// AllPaths lists the paths in report order.
var AllPaths = []string{PathKubeProxy, PathDirect, PathAFXDP, PathDPDK}

// Validate checks cfg and fills defaults; errors name the flag to fix.
func (c *Config) Validate() error {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if err := checkPrefix(c.Prefix); err != nil {
		return err
	}
	if len(c.Paths) == 0 {
		c.Paths = AllPaths
	}
	for _, p := range c.Paths {
		if !slices.Contains(AllPaths, p) {
			return fmt.Errorf("--paths: unknown path %q (use %v)", p, AllPaths)
		}
	}
	if len(c.Sizes) == 0 {
		return errors.New("--sizes: give at least one payload size")
	}
	for _, s := range c.Sizes {
		if s < MinPayload || s > MaxPayload {
			return fmt.Errorf("--sizes: payload %d must be %d to %d bytes (the lab payload carries a sequence and a timestamp; larger would fragment)", s, MinPayload, MaxPayload)
		}
	}
	for _, n := range c.Services {
		if n < 0 || n > maxServices {
			return fmt.Errorf("--services: %d must be 0 to %d", n, maxServices)
		}
	}
	if slices.Contains(c.Paths, PathKubeProxy) && len(c.Services) == 0 {
		return errors.New("--services: the kube-proxy path needs at least one service count (0 is fine)")
	}
	if len(c.Rates) == 0 {
		return errors.New("--rates: give at least one offered rate")
	}
	for _, r := range c.Rates {
		if r <= 0 || r > 20_000_000 {
			return fmt.Errorf("--rates: %d packets/s must be 1 to 20000000", r)
		}
	}
	slices.Sort(c.Rates)
	if len(c.Flows) == 0 {
		c.Flows = []string{FlowLong, FlowNew}
	}
	for _, f := range c.Flows {
		if f != FlowLong && f != FlowNew {
			return fmt.Errorf("--flows: unknown flow pattern %q (use %s or %s)", f, FlowLong, FlowNew)
		}
	}
	if c.DurationPerStep < 50*time.Millisecond || c.DurationPerStep > time.Minute {
		return fmt.Errorf("--duration-per-step %v: must be 50ms to 1m", c.DurationPerStep)
	}
	if c.SLOP99 <= 0 {
		return fmt.Errorf("--slo-p99 %v: must be positive", c.SLOP99)
	}
	if c.Steer == "" {
		c.Steer = SteerNAPI
	}
	if c.Steer != SteerNAPI && c.Steer != SteerRPS {
		return fmt.Errorf("--steer %q: use %s or %s", c.Steer, SteerNAPI, SteerRPS)
	}
	if len(c.Views) == 0 {
		c.Views = AllViews
	}
	for _, v := range c.Views {
		if !slices.Contains(AllViews, v) {
			return fmt.Errorf("--views: unknown view %q (use %v)", v, AllViews)
		}
	}
	if c.IngestSLOP99 <= 0 {
		c.IngestSLOP99 = DefaultIngestSLOP99
	}
	if c.LossObjective <= 0 {
		c.LossObjective = DefaultLossObjective
	}
	if c.CPUObjective <= 0 {
		c.CPUObjective = DefaultCPUObjective
	}
	if c.CPUObjective > 1 {
		return fmt.Errorf("--cpu-objective %v: a share of one core, 0 to 1", c.CPUObjective)
	}
	return nil
}

// runner is the state of one Run.
type runner struct {
	cfg   Config
	lab   *Lab
	rep   *Report
	step  uint16
	total int
	done  int
	// senderCPU is the generator's CPU time so far, for receivers that
	// share the process's accounting with it.
	senderCPU time.Duration
}

// Run builds a lab, measures every requested path and tears the lab down,
// also when ctx is cancelled or a step fails. The report holds what was
// measured even when Run returns an error.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep = &Report{
		Tool: "wirelog netlab", Version: ReportVersion, Started: time.Now().UTC(),
		Config: ReportConfig{
			Sizes: cfg.Sizes, Services: cfg.Services, Rates: cfg.Rates, Flows: cfg.Flows,
			DurationPerStep: cfg.DurationPerStep.Seconds(), SLOP99us: float64(cfg.SLOP99) / 1e3,
			IngestSLOP99us: float64(cfg.IngestSLOP99) / 1e3, LossObjective: cfg.LossObjective,
			CPUObjective: cfg.CPUObjective, Steer: string(cfg.Steer), Views: cfg.Views,
		},
	}
	defer func() { rep.Seconds = time.Since(rep.Started).Seconds() }()
	lab, err := NewLab(ctx, cfg.Prefix, cfg.Steer)
	if err != nil {
		return rep, err
	}
	defer func() {
		if cerr := lab.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("tear down lab %s: %w", lab.ID, cerr))
		}
	}()
	rep.Host = hostInfo(lab)
	if cfg.shapeRate != "" {
		// A deeper queue (256 KB, ~2,400 of these packets) absorbs the catch-up burst of a generator
		// that was descheduled on a busy machine, so only a rate above
		// the shaper's loses, not a late burst at a low one.
		if err := lab.Client.exec(ctx, "", "tc", "qdisc", "replace", "dev", ifClientDirect, "root",
			"tbf", "rate", cfg.shapeRate, "burst", "64kb", "limit", "256kb"); err != nil {
			return rep, fmt.Errorf("shape %s to %s: %w", ifClientDirect, cfg.shapeRate, err)
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("The client's direct veth was rate-limited to %s (tc tbf): loss above that rate is forced.", cfg.shapeRate))
	}
	r := &runner{cfg: cfg, lab: lab, rep: rep}
	r.total = r.countSteps()
	rep.Notes = append(rep.Notes,
		"Numbers come from veth pairs between network namespaces on one machine; see docs/NETLAB.md for what that can and cannot tell about a NIC.",
		fmt.Sprintf("Generator pinned to cpu %d; receiver and the veths' receive work (steer=%s) on cpu %d.", lab.SenderCPU, lab.Steer, lab.ReceiverCPU),
		"This machine may be shared: a step's receive_core_busy shows how busy the receive core was, whoever used it.")
	if err := r.ceilings(ctx); err != nil {
		return rep, err
	}
	for _, p := range cfg.Paths {
		if err := ctx.Err(); err != nil {
			rep.Interrupted = err.Error()
			return rep, err
		}
		var perr error
		if p == PathDPDK {
			perr = r.dpdkPath(ctx)
		} else {
			info := r.pathInfo(p)
			for _, v := range cfg.Views {
				if perr = r.kernelPath(ctx, &info, v); perr != nil {
					break
				}
			}
			r.rep.Paths = append(r.rep.Paths, info)
		}
		if perr != nil {
			if ctx.Err() != nil {
				rep.Interrupted = ctx.Err().Error()
				return rep, ctx.Err()
			}
			return rep, fmt.Errorf("path %s: %w", p, perr)
		}
	}
	return rep, nil
}

func (r *runner) countSteps() int {
	n := 0
	per := len(r.cfg.Sizes) * len(r.cfg.Rates)
	views := len(r.cfg.Views)
	for _, p := range r.cfg.Paths {
		switch p {
		case PathKubeProxy:
			n += per * len(r.cfg.Flows) * len(r.cfg.Services) * views
		case PathDirect, PathAFXDP:
			n += per * len(r.cfg.Flows) * views
		case PathDPDK:
			n += per
		}
	}
	return n
}

func (r *runner) progress(s string) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(fmt.Sprintf("[%d/%d] %s", r.done+1, r.total, s))
	}
}

// ceilings measures the generator alone: unpaced into the client's dummy
// interface, per size and flow pattern.
func (r *runner) ceilings(ctx context.Context) error {
	d := ceilingFull
	if r.cfg.DurationPerStep < time.Second {
		d = ceilingQuick
	}
	for _, size := range r.cfg.Sizes {
		snd, err := newSender(r.lab.Client, size, r.lab.SenderCPU)
		if err != nil {
			return err
		}
		for _, flow := range r.cfg.Flows {
			if ctx.Err() != nil {
				snd.close()
				return ctx.Err()
			}
			if r.cfg.Progress != nil {
				r.cfg.Progress(fmt.Sprintf("generator ceiling: %dB %s", size, flow))
			}
			res, err := snd.run(sendSpec{Dst: blackholeDst, DstPort: DefaultPort, Src: blackholeAddr.IP,
				Flow: flow, Duration: d, Step: 0})
			if err != nil {
				snd.close()
				return err
			}
			r.rep.Generator = append(r.rep.Generator, Ceiling{Size: size, Flow: flow,
				PPS: finite(float64(res.Sent) / res.Elapsed.Seconds())})
		}
		snd.close()
	}
	return nil
}

// pathInfo describes a path the kernel receives on (or AF_XDP beside it).
func (r *runner) pathInfo(path string) PathInfo {
	info := PathInfo{Name: path, Available: true}
	switch path {
	case PathDirect:
		info.Description = "client → veth → pod: the SR-IOV VF stand-in; no bridge, no netfilter"
	case PathKubeProxy:
		info.Description = "client → veth → node (kube-proxy-shaped iptables-nft NAT, conntrack, bridge) → veth → pod"
	case PathAFXDP:
		info.Description = "client → veth → pod, where an XDP program redirects the syslog port to an AF_XDP socket; everything else goes to the kernel"
	}
	return info
}

// kernelPath measures one view of a path: direct, kube-proxy at each
// service count, or AF_XDP. An AF_XDP path this machine cannot run is
// recorded as unavailable with the kernel's reason, not as a failure.
func (r *runner) kernelPath(ctx context.Context, info *PathInfo, view string) error {
	path := info.Name
	skip := func(err error) error {
		if view == ViewWirelog && info.Available {
			info.WirelogReceiver = "unavailable: " + err.Error()
		} else {
			info.Available, info.Reason = false, err.Error()
		}
		r.done += len(r.cfg.Sizes) * len(r.cfg.Rates) * len(r.cfg.Flows)
		return nil // unavailable is a result, not a failure of the run
	}
	if !info.Available {
		return skip(errors.New(info.Reason))
	}
	var rcv rxMeter
	switch {
	case view == ViewWirelog:
		// The syslog server's goroutines run on any thread of the
		// process: keep them all on the receive core for this view (the
		// generator's thread pins itself to its own core).
		pinProcess(r.lab.ReceiverCPU)
		defer pinProcess(-1)
		xdpIface := ""
		if path == PathAFXDP {
			xdpIface = ifPodVF
		}
		srv, err := startSyslogReceiver(r.lab.Pod.h, DefaultPort, xdpIface)
		// The kernel frees the path view's AF_XDP buffer pool from a
		// workqueue after its socket closed; until then the queue is
		// taken (EBUSY). Wait for it rather than call the path unavailable.
		for deadline := time.Now().Add(xskStopWait); errors.Is(err, unix.EBUSY) && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			srv, err = startSyslogReceiver(r.lab.Pod.h, DefaultPort, xdpIface)
		}
		if path == PathAFXDP && err != nil {
			return skip(fmt.Errorf("%w: %v", ErrUnavailable, err))
		}
		if err != nil {
			return err
		}
		rcv = srv
		info.WirelogReceiver = srv.describe()
	case path == PathAFXDP:
		x, err := startXSKReceiver(r.lab.Pod, DefaultPort, r.lab.ReceiverCPU)
		if errors.Is(err, ErrUnavailable) {
			return skip(err)
		}
		if err != nil {
			return err
		}
		rcv = x
		info.Receiver = x.describe()
	default:
		bare, err := startReceiver(r.lab.Pod.h, DefaultPort, r.lab.ReceiverCPU, DefaultRcvBuf)
		if err != nil {
			return err
		}
		rcv = bare
		info.Receiver = bare.describe()
	}
	defer rcv.Stop()
	obj := Objectives{Loss: r.cfg.LossObjective, P99: r.cfg.SLOP99, CPU: r.cfg.CPUObjective}
	if view == ViewWirelog {
		obj.P99 = r.cfg.IngestSLOP99
	}

	services := []int{-1}
	if path == PathKubeProxy {
		services = r.cfg.Services
	}
	for _, svc := range services {
		if path == PathKubeProxy {
			rules := KubeProxyRules(svc, ServiceVIP(svc), []Endpoint{{podAddr.IP, DefaultPort}, {podAddr2.IP, DefaultPort}})
			if r.cfg.Progress != nil {
				r.cfg.Progress(fmt.Sprintf("kube-proxy: loading rules for %d services", svc))
			}
			if err := r.lab.Node.exec(ctx, rules, "iptables-restore", "-w", "5"); err != nil {
				return fmt.Errorf("load kube-proxy rules (%d services): %w", svc, err)
			}
		}
		for _, size := range r.cfg.Sizes {
			snd, err := newSender(r.lab.Client, size, r.lab.SenderCPU)
			if err != nil {
				return err
			}
			for _, flow := range r.cfg.Flows {
				s := Series{Path: path, View: view, Size: size, FrameBytes: frameBytes(size), Flow: flow}
				spec := sendSpec{Dst: directPod.IP, DstPort: DefaultPort, Src: directClient.IP, Flow: flow}
				if path == PathKubeProxy {
					n := svc
					s.Services = &n
					spec = sendSpec{Dst: ServiceVIP(svc), DstPort: servicePort, Src: clientNodeClient.IP, Flow: flow}
				}
				for _, rate := range r.cfg.Rates {
					if err := ctx.Err(); err != nil {
						snd.close()
						return err
					}
					r.progress(fmt.Sprintf("%s offered %d pps", s.Label(), rate))
					spec.Rate, spec.Duration = rate, r.cfg.DurationPerStep
					st, err := r.kernelStep(path, rcv, snd, spec)
					if err != nil {
						snd.close()
						return err
					}
					s.Steps = append(s.Steps, st)
					r.done++
				}
				s.computeKnee(obj)
				r.rep.Series = append(r.rep.Series, s)
			}
			snd.close()
		}
	}
	return nil
}

// snapshot is every counter a step reads before and after.
type snapshot struct {
	at       time.Time
	core     cpuTimes
	thread   time.Duration
	kernel   time.Duration // NAPI kthreads + ksoftirqd of the receive core (SteerNAPI)
	softnet  uint64
	udp      udpCounters
	linkDrop uint64
	rxDrop   uint64 // the receiver's own drop counter (AF_XDP rings)
}

func (r *runner) snap(path string, thread func() (time.Duration, error), rx rxMeter) (snapshot, error) {
	var s snapshot
	var err error
	s.at = time.Now()
	if x, ok := rx.(*xskReceiver); ok {
		s.rxDrop = x.drops()
	}
	if s.core, err = readCPUTimes(r.lab.ReceiverCPU); err != nil {
		return s, err
	}
	if thread != nil {
		if s.thread, err = thread(); err != nil {
			return s, err
		}
	}
	if r.lab.Steer == SteerNAPI {
		if s.kernel, err = r.kernelRxCPU(path); err != nil {
			return s, err
		}
	}
	if s.softnet, err = softnetDropped(r.lab.ReceiverCPU); err != nil {
		return s, err
	}
	if s.udp, err = r.lab.Pod.udpCounters(); err != nil {
		return s, err
	}
	links := []struct {
		ns   *namespace
		name string
	}{{r.lab.Pod, ifPodVF}, {r.lab.Client, ifClientDirect}}
	if path == PathKubeProxy {
		links = []struct {
			ns   *namespace
			name string
		}{{r.lab.Client, ifClientToNode}, {r.lab.Node, ifNodeFromCli}, {r.lab.Node, ifNodeToPod}, {r.lab.Pod, ifPodEth}}
	}
	for _, l := range links {
		rx, tx, err := l.ns.linkDrops(l.name)
		if err != nil {
			return s, err
		}
		s.linkDrop += rx + tx
	}
	return s, nil
}

// kernelStep offers one rate and reads every counter around it.
func (r *runner) kernelStep(path string, rcv rxMeter, snd *sender, spec sendSpec) (Step, error) {
	r.step++
	if r.step == 0 {
		r.step = 1
	}
	spec.Step = r.step
	if path == PathKubeProxy {
		// Every step starts from an empty conntrack table, so the
		// long-lived pattern's first packets pay the rule walk once and
		// the new-flow pattern never finds an old entry.
		if err := r.lab.Node.nl.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
			return Step{}, fmt.Errorf("flush conntrack in %s: %w", r.lab.Node.name, err)
		}
	}
	rcvCPU := func() (time.Duration, error) { return rcv.cpu(r.senderCPU) }
	before, err := r.snap(path, rcvCPU, rcv)
	if err != nil {
		return Step{}, err
	}
	st := rcv.begin(r.step)
	res, err := snd.run(spec)
	if err != nil {
		rcv.end()
		return Step{}, err
	}
	r.senderCPU += res.CPU
	drain(&st.received)
	rcv.end()
	after, err := r.snap(path, rcvCPU, rcv)
	if err != nil {
		return Step{}, err
	}
	step := measureStep(spec.Rate, res, st.received.Load(), before, after, r.lab.Steer)
	if p, ok := st.hist.quantile(0.5); ok {
		v := p / 1e3
		step.P50us = &v
	}
	if p, ok := st.hist.quantile(0.99); ok {
		v := p / 1e3
		step.P99us = &v
	}
	if p, ok := st.recvHist.quantile(0.99); ok {
		v := p / 1e3
		step.ReceiveP99us = &v
	}
	if p, ok := st.batchHist.quantile(0.99); ok {
		v := p / 1e3
		step.BatchingP99us = &v
	}
	return step, nil
}

// measureStep turns the counters around a step into its figures.
func measureStep(rate int, res sendResult, received uint64, before, after snapshot, steer Steer) Step {
	secs := res.Elapsed.Seconds()
	st := Step{
		OfferedPPS:   rate,
		Sent:         res.Sent,
		Received:     received,
		SentPPS:      finite(float64(res.Sent) / secs),
		DeliveredPPS: finite(float64(received) / secs),
	}
	if res.Sent > 0 {
		st.Loss = finite(1 - float64(received)/float64(res.Sent))
		if st.Loss < 0 {
			st.Loss = 0
		}
	}
	st.SenderLimited = st.SentPPS < senderLimitedRatio*float64(rate)
	threadT := after.thread - before.thread
	kernelT := after.kernel - before.kernel
	if steer == SteerRPS {
		kernelT = ticks(after.core.softirq - before.core.softirq)
	}
	if received > 0 {
		st.ReceiverusPerPk = finite(float64(threadT) / 1e3 / float64(received))
		st.KernelRxusPerPkt = finite(float64(kernelT) / 1e3 / float64(received))
		st.CPUusPerPkt = st.ReceiverusPerPk + st.KernelRxusPerPkt
	}
	busy := func(c cpuTimes) uint64 { return c.user + c.nice + c.system + c.irq + c.softirq }
	all := func(c cpuTimes) uint64 { return busy(c) + c.idle + c.iowait + c.steal }
	if d := all(after.core) - all(before.core); d > 0 {
		st.ReceiveCoreBusy = finite(float64(busy(after.core)-busy(before.core)) / float64(d))
	}
	st.Kernel = KernelCounters{
		UDPInDatagrams:  after.udp.InDatagrams - before.udp.InDatagrams,
		UDPRcvbufErrors: after.udp.RcvbufErrors - before.udp.RcvbufErrors,
		UDPInErrors:     after.udp.InErrors - before.udp.InErrors,
		UDPNoPorts:      after.udp.NoPorts - before.udp.NoPorts,
		SoftnetDropped:  after.softnet - before.softnet,
		LinkDropped:     after.linkDrop - before.linkDrop + after.rxDrop - before.rxDrop,
		SenderErrors:    res.Errors,
	}
	return st
}

// kernelRxCPU is the exact CPU time of the kernel's receive work for path
// under SteerNAPI: the NAPI kthreads of its receiving veths (which also run
// the RPS backlog softirq they raise on the same core) and the receive
// core's ksoftirqd, which takes softirq work over under sustained load.
func (r *runner) kernelRxCPU(path string) (time.Duration, error) {
	links := []string{r.lab.Pod.name + "/" + ifPodVF}
	if path == PathKubeProxy {
		links = []string{r.lab.Node.name + "/" + ifNodeFromCli, r.lab.Pod.name + "/" + ifPodEth}
	}
	var total time.Duration
	for _, l := range links {
		pid, ok := r.lab.napi[l]
		if !ok {
			return 0, fmt.Errorf("no NAPI thread recorded for %s", l)
		}
		d, err := threadCPU(pid, pid)
		if err != nil {
			return 0, fmt.Errorf("NAPI thread of %s: %w", l, err)
		}
		total += d
	}
	if pid := ksoftirqd(r.lab.ReceiverCPU); pid > 0 {
		if d, err := threadCPU(pid, pid); err == nil {
			total += d
		}
	}
	return total, nil
}

// pinProcess sets the CPU affinity of every thread of this process to
// cpu, or to every CPU when cpu < 0. Threads started later inherit it.
func pinProcess(cpu int) {
	var set unix.CPUSet
	if cpu < 0 {
		for i := 0; i < runtime.NumCPU(); i++ {
			set.Set(i)
		}
	} else {
		set.Set(cpu)
	}
	ents, _ := os.ReadDir("/proc/self/task")
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			unix.SchedSetaffinity(tid, &set)
		}
	}
}

// drain waits until the receiver has stopped counting — packets still in
// a ring, a socket buffer or a descheduled receiver's hands are not lost —
// for at least drainWait and at most drainMax.
func drain(received *atomic.Uint64) {
	start := time.Now()
	time.Sleep(drainWait)
	prev, stable := received.Load(), 0
	for stable < 3 && time.Since(start) < drainMax {
		time.Sleep(50 * time.Millisecond)
		if n := received.Load(); n != prev {
			prev, stable = n, 0
		} else {
			stable++
		}
	}
}
