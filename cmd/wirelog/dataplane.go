package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"

	"github.com/wirelog/wirelog/internal/dataplane"
	"github.com/wirelog/wirelog/internal/dataplane/agent"
	"github.com/wirelog/wirelog/internal/dataplane/dpdk"
	"github.com/wirelog/wirelog/internal/dataplane/ovs"
	"github.com/wirelog/wirelog/internal/tlsconf"
)

// Defaults of `wirelog dataplane`.
const (
	// dataplaneListen is the agent's port: 9810 is free in Prometheus's
	// exporter port list neighbourhood and clear of node_exporter (9100).
	dataplaneListen = ":9810"
)

// runDataplane is the data-plane agent: one DaemonSet pod per node serving
// DPDK, OVS-DPDK and the node collectors' metrics on /metrics.
func runDataplane(ctx context.Context, args []string) error {
	fs := newFlagSet("dataplane", "Data-plane agent: serves DPDK telemetry, OVS-DPDK PMD and interface, SR-IOV VF,\n"+
		"hugepage and CPU-isolation metrics on /metrics for Prometheus (and /healthz).\n"+
		"Each collector runs in parallel on every scrape, bounded by --scrape-timeout; a failing one\n"+
		"shows as wirelog_dataplane_collector_success{collector=...} 0 instead of failing the scrape.")
	hostname, _ := os.Hostname()
	listen := fs.String("listen", dataplaneListen, "`address` to serve /metrics and /healthz on")
	timeout := fs.Duration("scrape-timeout", agent.DefaultTimeout, "how long each collector may take in one scrape; keep it below Prometheus's scrape_timeout")
	node := fs.String("node", hostname, "node `name` put as the node label on every data-plane series that has none (in Kubernetes: spec.nodeName via the downward API); empty for none")
	withDPDK := fs.Bool("collector.dpdk", true, "read every DPDK process's telemetry v2 socket under --dpdk-runtime-dir")
	withOVS := fs.Bool("collector.ovs", true, "read OVS-DPDK PMD statistics from ovs-vswitchd and interface statistics from OVSDB (set false on nodes without OVS)")
	dpdkDirs := fs.String("dpdk-runtime-dir", dpdk.DefaultRuntimeDir, "DPDK runtime `dirs`, comma-separated, each holding <file-prefix>/dpdk_telemetry.v2[:N] (non-root processes use $XDG_RUNTIME_DIR/dpdk)")
	dpdkXstats := fs.String("dpdk-xstats", "", "export only the DPDK extended stats whose name matches this `regexp` (default all)")
	ovsRunDir := fs.String("ovs-rundir", ovs.DefaultRunDir, "OVS run `dir` holding ovs-vswitchd.pid, ovs-vswitchd.<pid>.ctl and db.sock")
	ovsdbSock := fs.String("ovsdb-socket", "", "OVSDB unix socket `path` (default <ovs-rundir>/db.sock)")
	buildNodeCollectors := nodeCollectors(fs)
	var tlsOpts tlsconf.Options
	tlsOpts.RegisterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: --scrape-timeout must be positive, got %v", errUsage, *timeout)
	}

	log := slog.Default()
	var cs []dataplane.Collector
	if *withDPDK {
		opts := dpdk.Options{
			RuntimeDirs: splitDataplaneList(*dpdkDirs),
			// A hung process must not eat the whole scrape budget: the
			// others are read in parallel and answer within milliseconds.
			SocketTimeout: min(dpdk.DefaultSocketTimeout, *timeout/2),
			Logger:        log,
		}
		if *dpdkXstats != "" {
			re, err := regexp.Compile(*dpdkXstats)
			if err != nil {
				return fmt.Errorf("%w: --dpdk-xstats: %v", errUsage, err)
			}
			opts.Xstats = re
		}
		cs = append(cs, dpdk.New(opts))
	}
	if *withOVS {
		cs = append(cs, ovs.New(ovs.Options{RunDir: *ovsRunDir, DBSocket: *ovsdbSock}))
	}
	nodeCs, err := buildNodeCollectors()
	if err != nil {
		return err
	}
	cs = append(cs, nodeCs...)

	exp, err := agent.New(cs, agent.Options{Timeout: *timeout, Logger: log, Node: *node})
	if err != nil {
		return err
	}
	reg, err := agent.NewRegistry(exp)
	if err != nil {
		return err
	}
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name()
	}
	h := agent.Handler(reg, *timeout, log)
	if !tlsOpts.Enabled() {
		if err := tlsOpts.Validate(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return agent.Serve(ctx, *listen, h, func(a net.Addr) {
			log.Info("data-plane agent listening", "addr", a.String(), "collectors", strings.Join(names, ","),
				"node", *node, "scrape_timeout", timeout.String())
		})
	}
	// --tls-cert: /metrics over (mutual) TLS, the metrics role for
	// --allow-spiffe-id, and optionally a plaintext scrape port.
	ts, err := tlsconf.NewServer(ctx, tlsOpts, log)
	if err != nil {
		return err
	}
	if err := reg.Register(ts.Collector()); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s (set --listen): %w", *listen, err)
	}
	if addr := tlsOpts.MetricsPlaintext; addr != "" {
		pln, err := net.Listen("tcp", addr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (--metrics-plaintext): %w", addr, err)
		}
		go agent.ServeListener(ctx, pln, h, nil)
		log.Info("data-plane agent serving /metrics without TLS", "metrics_plaintext", pln.Addr().String())
	}
	log.Info("data-plane agent listening", "addr", "https://"+ln.Addr().String(), "mutual_tls", ts.MutualTLS(),
		"collectors", strings.Join(names, ","), "node", *node, "scrape_timeout", timeout.String())
	return agent.ServeListener(ctx, tls.NewListener(ln, ts.HTTPConfig("dataplane")), ts.Authorize(h), ts.ErrorLog("dataplane"))
}

// splitDataplaneList splits a comma-separated flag value, dropping empty items.
func splitDataplaneList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
