//go:build !agent

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wirelog/wirelog/internal/netlab"
)

const netlabSummary = `Measure where the Linux kernel receive path stops scaling on this machine, and plan capacity from it.

Subcommands:
  run      build a lab of network namespaces (198.18.0.0/15 only), offer UDP load over the
           kube-proxy, direct (SR-IOV VF stand-in), AF_XDP and DPDK paths, write report.json
           and a self-contained report.html; everything is torn down on exit, also on Ctrl-C
  plan     line-rate arithmetic plus measured (or built-in) cost per packet: which path
           reaches a target rate, with how many cores
  queues   the direct path with one receive core, then several (multi-queue veths, RPS,
           one SO_REUSEPORT receiver per core): where the knee moves with more receive cores
  cleanup  remove lab namespaces (and processes in them) left by an interrupted run

Run "wirelog netlab <subcommand> --help" for its flags.`

// runNetlab dispatches the netlab subcommands.
func runNetlab(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Println("Usage: wirelog netlab <run|plan|queues|cleanup> [flags]\n\n" + netlabSummary)
		if len(args) == 0 {
			return fmt.Errorf("%w: missing subcommand (run, plan or cleanup)", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "run":
		return runNetlabRun(ctx, args[1:])
	case "plan":
		return runNetlabPlan(args[1:])
	case "queues":
		return runNetlabQueues(ctx, args[1:])
	case "cleanup":
		return runNetlabCleanup(args[1:])
	}
	return fmt.Errorf("%w: unknown netlab subcommand %q (run, plan, queues or cleanup)", errUsage, args[0])
}

func runNetlabQueues(ctx context.Context, args []string) error {
	fs := newFlagSet("netlab queues", "The direct path (client veth → the pod's VF stand-in) with one receive core, then several: veths with one\n"+
		"receive and transmit queue per receive core, RPS over those cores, one bare recvmmsg receiver per core on one\n"+
		"SO_REUSEPORT port, a new flow per packet. Prints every step and each set's knee. Needs root.\n"+
		"The generator runs on core 0: a set that includes core 0 shares it, and its knee is then the generator's ceiling.")
	coreSets := fs.String("cores", "", "receive-core sets to compare: sets separated by commas, cores of a set joined by + (default 1,1+2 with 3 or more cores, 1,0+1 with 2)")
	sizes := fs.String("sizes", "", "UDP payload sizes in bytes, comma-separated (default 64,1024)")
	rates := fs.String("rates", "", "offered rates in packets/s, e.g. 50k,100k,200k (default 50k..400k)")
	dur := fs.Duration("duration-per-step", netlab.DefaultDurationPerStep, "how long each offered rate is held")
	prefix := fs.String("prefix", netlab.DefaultPrefix, "namespace name prefix; the lab refuses to reuse a taken name")
	jsonOut := fs.String("json", "", "also write every step as JSON to this `file`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sets := netlab.DefaultCoreSets()
	if *coreSets != "" {
		var err error
		if sets, err = netlab.ParseCoreSets(*coreSets); err != nil {
			return fmt.Errorf("%w: --cores: %v", errUsage, err)
		}
	}
	sz, rt := netlab.DefaultQueueSizes, netlab.DefaultQueueRates
	for _, l := range []struct {
		flag, val string
		dst       *[]int
	}{{"--sizes", *sizes, &sz}, {"--rates", *rates, &rt}} {
		if l.val == "" {
			continue
		}
		v, err := netlab.ParseList(l.val)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", errUsage, l.flag, err)
		}
		*l.dst = v
	}
	if os.Geteuid() != 0 {
		return netlab.ErrNotRoot
	}
	steps, err := netlab.RunMultiQueue(ctx, *prefix, sets, sz, rt, *dur, func(line string) { fmt.Fprintln(os.Stderr, line) })
	fmt.Printf("%-12s %5s %9s %9s %11s %7s %14s %9s %9s  %s\n", "cores", "size", "offered", "sent", "delivered", "loss", "sender-limited", "rx µs/pk", "sirq µs/pk", "per receiver")
	for _, s := range steps {
		fmt.Printf("%-12s %5d %9d %9.0f %11.0f %6.2f%% %14v %9.2f %9.2f  %v\n", fmt.Sprint(s.ReceiveCores), s.Size, s.OfferedPPS,
			s.SentPPS, s.DeliveredPPS, 100*s.Loss, s.SenderLimited, s.ReceiverusPerPkt, s.SoftirqusPerPkt, s.PerReceiver)
	}
	for _, set := range sets {
		for _, size := range sz {
			var group []netlab.MultiQueueStep
			for _, s := range steps {
				if fmt.Sprint(s.ReceiveCores) == fmt.Sprint(set) && s.Size == size {
					group = append(group, s)
				}
			}
			if len(group) == 0 {
				continue
			}
			pps, reached, senderBound := netlab.MultiQueueKnee(group, netlab.DefaultLossObjective)
			note := "a step past it lost more than the objective"
			if !reached {
				note = "no step lost more: the knee is past the last rate"
			}
			if senderBound {
				note += "; the generator could not offer every rate (its ceiling, not the receivers')"
			}
			fmt.Printf("knee, receive cores %v, %d B: %d pps delivered (%s)\n", set, size, pps, note)
		}
	}
	if *jsonOut != "" && len(steps) > 0 {
		b, jerr := json.MarshalIndent(steps, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(*jsonOut, b, 0o644)
		}
		if jerr != nil {
			err = errors.Join(err, fmt.Errorf("--json %s: %w", *jsonOut, jerr))
		}
	}
	return err
}

func runNetlabRun(ctx context.Context, args []string) error {
	fs := newFlagSet("netlab run", "Build the lab, sweep offered rates over every path, write report.json and report.html, tear the lab down.\nNeeds root. Numbers from veth pairs; see docs/NETLAB.md for what they tell about real NICs.")
	quick := fs.Bool("quick", false, "short run: sizes 64,1024, 1000 kube-proxy services, 3 rates, 300ms steps (under a minute)")
	sizes := fs.String("sizes", "", "UDP payload sizes in bytes, comma-separated (default 64,256,1024; --quick 64,1024)")
	services := fs.String("services", "", "kube-proxy service counts to measure, each a separate rule set (default 0,1000,5000; --quick 1000)")
	rates := fs.String("rates", "", "offered rates in packets/s, e.g. 20k,50k,100k (default 20k..400k; --quick 20k,80k,200k)")
	paths := fs.String("paths", "", "paths to run, comma-separated: kube-proxy,direct,af_xdp,dpdk (default all)")
	flows := fs.String("flows", "", "flow patterns: long-lived,new-per-packet (default both)")
	dur := fs.Duration("duration-per-step", 0, "how long each offered rate is held (default 2s; --quick 300ms)")
	slo := fs.Duration("slo-p99", netlab.DefaultSLOP99, "path view's latency objective: p99 of send → a bare receiver's read must be below it to count under the knee")
	ingestSLO := fs.Duration("ingest-slo-p99", netlab.DefaultIngestSLOP99, "wirelog view's latency objective: p99 of send → handed to the log, batching included (wirelog's UDP receiver lingers up to --syslog-udp-linger's default for a batch)")
	lossObj := fs.Float64("loss-objective", netlab.DefaultLossObjective, "largest fraction of sent packets a step may lose and count under the knee")
	cpuObj := fs.Float64("cpu-objective", netlab.DefaultCPUObjective, "largest share of the receive core a path may use and count under the knee (0 to 1)")
	steer := fs.String("steer", string(netlab.SteerNAPI), "how veth receive work reaches the receive core: napi (threaded NAPI pinned + RPS; exact CPU time) or rps (RPS only; tick-sampled softirq time)")
	views := fs.String("views", "", "what receives on each path, comma-separated: path (bare receivers: the path's own cost, like for like) and wirelog (wirelog's syslog ingest on the kernel socket and on AF_XDP) (default both)")
	prefix := fs.String("prefix", netlab.DefaultPrefix, "namespace name prefix; the lab refuses to reuse a taken name")
	out := fs.String("out", "netlab-out", "directory for report.json and report.html (created)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := netlab.Full()
	if *quick {
		cfg = netlab.Quick()
	}
	cfg.Prefix, cfg.SLOP99, cfg.IngestSLOP99, cfg.Steer = *prefix, *slo, *ingestSLO, netlab.Steer(*steer)
	cfg.LossObjective, cfg.CPUObjective = *lossObj, *cpuObj
	if *views != "" {
		cfg.Views = splitList(*views)
	}
	for _, l := range []struct {
		flag string
		val  string
		dst  *[]int
	}{{"--sizes", *sizes, &cfg.Sizes}, {"--services", *services, &cfg.Services}, {"--rates", *rates, &cfg.Rates}} {
		if l.val == "" {
			continue
		}
		v, err := netlab.ParseList(l.val)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", errUsage, l.flag, err)
		}
		*l.dst = v
	}
	if *paths != "" {
		cfg.Paths = splitList(*paths)
	}
	if *flows != "" {
		cfg.Flows = splitList(*flows)
	}
	if *dur != 0 {
		cfg.DurationPerStep = *dur
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if os.Geteuid() != 0 {
		return netlab.ErrNotRoot
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	tty := isTerminal(os.Stderr)
	cfg.Progress = func(line string) {
		if tty {
			fmt.Fprintf(os.Stderr, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(os.Stderr, line)
		}
	}
	start := time.Now()
	rep, err := netlab.Run(ctx, cfg)
	if tty {
		fmt.Fprintln(os.Stderr)
	}
	if rep != nil && len(rep.Series)+len(rep.Paths) > 0 {
		jsonPath, htmlPath := filepath.Join(*out, "report.json"), filepath.Join(*out, "report.html")
		promPath := filepath.Join(*out, netlab.MetricsFile) // the knees for Prometheus (node_exporter textfile collector)
		werr := errors.Join(rep.WriteJSON(jsonPath), rep.WriteHTML(htmlPath), rep.WriteMetrics(promPath))
		if werr == nil {
			fmt.Printf("wrote %s, %s and %s (%s)\n", jsonPath, htmlPath, promPath, time.Since(start).Round(time.Second))
			printKnees(rep)
		}
		err = errors.Join(err, werr)
	}
	return err
}

func printKnees(rep *netlab.Report) {
	for _, p := range rep.Paths {
		if !p.Available {
			fmt.Printf("%-11s unavailable: %s\n", p.Name, p.Reason)
		}
	}
	for _, s := range rep.Series {
		fmt.Printf("%-50s %.2f µs/packet  knee %s\n", s.Label(), s.CostUs(), s.Knee)
	}
}

func runNetlabPlan(args []string) error {
	fs := newFlagSet("netlab plan", "Which receive path carries a target packet rate on a NIC, with how many cores, and where each path's knee lies.\nFrame sizes include the Ethernet header and FCS; preamble, SFD and inter-frame gap (20 B) are added on the wire.")
	nic := fs.String("nic", "10G", "NIC speed: 1G, 10G, 25G, 40G, 50G, 100G, 200G or 400G")
	sizes := fs.String("sizes", "64:0.2,256:0.5,1024:0.3", "frame size distribution, bytes:share (e.g. 64:0.2,256:0.5,1024:0.3; shares are normalised)")
	rate := fs.String("rate", "", "target packet rate, e.g. 500k or 2M (required)")
	slo := fs.Duration("slo-p99", netlab.DefaultSLOP99, "latency objective the plan must meet")
	from := fs.String("from", "", "report.json of `netlab run` to take measured costs from (default: built-in conservative costs, labelled as such)")
	flow := fs.String("flow", netlab.FlowLong, "flow pattern the costs are taken for: long-lived or new-per-packet")
	services := fs.Int("services", -1, "kube-proxy service count (with --from: one measured; default the largest measured, or 1000 built-in)")
	maxCores := fs.Int("max-cores", 64, "most receive cores a path may use")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	htmlOut := fs.String("html", "", "also write the plan with a plot to this HTML file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bps, err := netlab.ParseNIC(*nic)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	dist, err := netlab.ParseDist(*sizes)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *rate == "" {
		return fmt.Errorf("%w: --rate is required (e.g. --rate 500k)", errUsage)
	}
	r, err := netlab.ParseRate(*rate)
	if err != nil {
		return fmt.Errorf("%w: --rate: %v", errUsage, err)
	}
	if *flow != netlab.FlowLong && *flow != netlab.FlowNew {
		return fmt.Errorf("%w: --flow %q: use %s or %s", errUsage, *flow, netlab.FlowLong, netlab.FlowNew)
	}
	if *maxCores < 1 {
		return fmt.Errorf("%w: --max-cores must be at least 1", errUsage)
	}
	req := netlab.PlanRequest{NIC: strings.ToUpper(*nic), NICbps: bps, Dist: dist, Rate: r, SLOP99: *slo, MaxCores: *maxCores, Flow: *flow, Services: *services}
	var costs []netlab.PathCost
	var reportSLO float64
	if *from != "" {
		rep, err := netlab.ReadReport(*from)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		if costs, err = netlab.CostsFromReport(rep, *flow, *services); err != nil {
			return fmt.Errorf("--from %s: %w", *from, err)
		}
		reportSLO = rep.Config.SLOP99us
	} else {
		svc := *services
		if svc < 0 {
			svc = 1000
		}
		costs = netlab.DefaultCosts(*flow, svc)
	}
	plan := netlab.MakePlan(req, costs, reportSLO)
	if *asJSON {
		if err := plan.WriteJSON(os.Stdout); err != nil {
			return err
		}
	} else {
		plan.WriteText(os.Stdout)
	}
	if *htmlOut != "" {
		return plan.WriteHTML(*htmlOut)
	}
	return nil
}

func runNetlabCleanup(args []string) error {
	fs := newFlagSet("netlab cleanup", "Remove every network namespace named <prefix>-* (and end the processes inside them) that an interrupted `netlab run` left behind.")
	prefix := fs.String("prefix", netlab.DefaultPrefix, "namespace name prefix to remove")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	removed, err := netlab.Cleanup(*prefix)
	for _, n := range removed {
		fmt.Println("removed namespace", n)
	}
	if len(removed) == 0 && err == nil {
		fmt.Printf("nothing to clean: no namespace named %s-*\n", *prefix)
	}
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
