package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// testpmdStart bounds how long dpdk-testpmd may take to reach its
	// prompt (EAL init without hugepages, the AF_XDP socket, the XDP
	// program).
	testpmdStart = 30 * time.Second
	// testpmdCommand bounds one interactive command.
	testpmdCommand = 10 * time.Second
	testpmdPrompt  = "testpmd> "
)

// testpmd is a dpdk-testpmd in interactive rxonly mode on the pod's end of
// the direct veth, driven through its prompt.
type testpmd struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    chan []byte
	buf    bytes.Buffer
	Device string // the vdev it runs on, e.g. net_af_xdp0
	exited chan struct{}
}

// startTestpmd starts dpdk-testpmd in the pod namespace with the given
// vdev driver (net_af_xdp or net_af_packet) on ifPodVF. stdbuf makes its
// stdout line-buffered through the pipe so per-step stats arrive on time.
func startTestpmd(ctx context.Context, l *Lab, driver string) (*testpmd, error) {
	bin, err := exec.LookPath("dpdk-testpmd")
	if err != nil {
		return nil, fmt.Errorf("%w: dpdk-testpmd not found (Debian package dpdk; scripts/deps/50-netlab.sh installs it)", ErrUnavailable)
	}
	vdev := fmt.Sprintf("--vdev=%s0,iface=%s", driver, ifPodVF)
	if driver == "net_af_xdp" {
		vdev += ",start_queue=0,queue_count=1"
	}
	args := []string{"netns", "exec", l.Pod.name, "stdbuf", "-oL", "-eL", bin,
		"-l", fmt.Sprintf("%d,%d", l.SenderCPU, l.ReceiverCPU), // main lcore idles at the prompt; the poll lcore is the receive core
		"--no-huge", "-m", "256", "--no-pci", "--file-prefix", l.ID, vdev, "--log-level=*:error",
		"--", "-i", "--forward-mode=rxonly", "--nb-cores=1", "--total-num-mbufs=16384"}
	cmd := exec.Command("ip", args...)
	// No Pdeathsig: it fires when the forking OS thread exits, and the lab
	// discards threads. Lab.Close ends whatever still runs in the pod.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dpdk-testpmd: %w", err)
	}
	t := &testpmd{cmd: cmd, stdin: stdin, out: make(chan []byte, 64), Device: driver + "0", exited: make(chan struct{})}
	go func() {
		defer close(t.out)
		b := make([]byte, 32<<10)
		for {
			n, err := stdout.Read(b)
			if n > 0 {
				t.out <- bytes.Clone(b[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { cmd.Wait(); close(t.exited) }()
	if _, err := t.until(ctx, testpmdStart); err != nil {
		t.stop()
		return nil, fmt.Errorf("dpdk-testpmd with %s did not reach its prompt: %w", driver, err)
	}
	if _, err := t.command(ctx, "set record-core-cycles on"); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// until reads output up to the next prompt.
func (t *testpmd) until(ctx context.Context, d time.Duration) (string, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		if i := strings.Index(t.buf.String(), testpmdPrompt); i >= 0 {
			s := t.buf.String()[:i]
			rest := t.buf.String()[i+len(testpmdPrompt):]
			t.buf.Reset()
			t.buf.WriteString(rest)
			return s, nil
		}
		select {
		case b, ok := <-t.out:
			if !ok {
				return "", fmt.Errorf("dpdk-testpmd exited: %s", tail(t.buf.String(), 800))
			}
			t.buf.Write(b)
		case <-timer.C:
			return "", fmt.Errorf("no prompt within %v: %s", d, tail(t.buf.String(), 800))
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (t *testpmd) command(ctx context.Context, c string) (string, error) {
	if _, err := io.WriteString(t.stdin, c+"\n"); err != nil {
		return "", fmt.Errorf("dpdk-testpmd %q: %w", c, err)
	}
	out, err := t.until(ctx, testpmdCommand)
	if err != nil {
		return "", fmt.Errorf("dpdk-testpmd %q: %w", c, err)
	}
	return out, nil
}

// stop quits testpmd, and kills its process group if it does not go.
func (t *testpmd) stop() error {
	if t == nil {
		return nil
	}
	io.WriteString(t.stdin, "stop\nquit\n")
	t.stdin.Close()
	select {
	case <-t.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(-t.cmd.Process.Pid, syscall.SIGKILL)
	<-t.exited
	return nil
}

var (
	reFwdRx  = regexp.MustCompile(`Forward statistics for port 0\s+-+\s+RX-packets:\s*(\d+)\s+RX-dropped:\s*(\d+)`)
	reCycles = regexp.MustCompile(`CPU cycles/packet=([\d.]+) \((?:total|busy) cycles=(\d+) / total \w+ packets=(\d+)\) at (\d+) MHz`)
	reMissed = regexp.MustCompile(`RX-packets:\s*(\d+)\s+RX-missed:\s*(\d+)`)
)

// fwdStats is what `stop` prints for one forwarding run.
type fwdStats struct {
	rx, dropped uint64
	busyUs      float64 // busy poll time spent on received packets, µs
}

func parseFwdStats(s string) (fwdStats, error) {
	var f fwdStats
	m := reFwdRx.FindStringSubmatch(s)
	if m == nil {
		return f, fmt.Errorf("no forward statistics in dpdk-testpmd output: %s", tail(s, 400))
	}
	f.rx, _ = strconv.ParseUint(m[1], 10, 64)
	f.dropped, _ = strconv.ParseUint(m[2], 10, 64)
	if c := reCycles.FindStringSubmatch(s); c != nil {
		busy, _ := strconv.ParseFloat(c[2], 64)
		mhz, _ := strconv.ParseFloat(c[4], 64)
		if mhz > 0 {
			f.busyUs = busy / mhz
		}
	}
	return f, nil
}

// dpdkPath measures dpdk-testpmd in rxonly mode on the pod's VF stand-in.
func (r *runner) dpdkPath(ctx context.Context) error {
	info := PathInfo{Name: PathDPDK, Description: "client → veth → pod, received by dpdk-testpmd (rxonly) through its AF_XDP vdev: what a DPDK application gets on this interface"}
	var t *testpmd
	var errs []error
	for _, driver := range []string{"net_af_xdp", "net_af_packet"} {
		var err error
		if t, err = startTestpmd(ctx, r.lab, driver); err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, err)
	}
	if t == nil {
		info.Reason = errors.Join(errs...).Error()
		r.rep.Paths = append(r.rep.Paths, info)
		r.done += len(r.cfg.Sizes) * len(r.cfg.Rates)
		return nil // unavailable is a result, not a failure of the run
	}
	defer t.stop()
	info.Available = true
	info.Receiver = "dpdk-testpmd rxonly, " + t.Device + ", 1 poll lcore on the receive core"
	if t.Device == "net_af_packet0" {
		info.Description = "client → veth → pod, received by dpdk-testpmd (rxonly) through its AF_PACKET vdev (AF_XDP failed: " + errs[0].Error() + "); the kernel stack also sees each packet"
	}
	r.rep.Paths = append(r.rep.Paths, info)
	for _, size := range r.cfg.Sizes {
		snd, err := newSender(r.lab.Client, size, r.lab.SenderCPU)
		if err != nil {
			return err
		}
		// Flow patterns change nothing without netfilter; one is enough.
		s := Series{Path: PathDPDK, View: ViewPath, Size: size, FrameBytes: frameBytes(size), Flow: FlowLong}
		for _, rate := range r.cfg.Rates {
			if err := ctx.Err(); err != nil {
				snd.close()
				return err
			}
			r.progress(fmt.Sprintf("%s offered %d pps", s.Label(), rate))
			st, err := r.dpdkStep(ctx, t, snd, sendSpec{Dst: directPod.IP, DstPort: DefaultPort, Src: directClient.IP,
				Flow: FlowLong, Rate: rate, Duration: r.cfg.DurationPerStep})
			if err != nil {
				snd.close()
				return err
			}
			s.Steps = append(s.Steps, st)
			r.done++
		}
		s.computeKnee(Objectives{Loss: r.cfg.LossObjective, P99: r.cfg.SLOP99, CPU: r.cfg.CPUObjective})
		r.rep.Series = append(r.rep.Series, s)
		snd.close()
	}
	return nil
}

func (r *runner) dpdkStep(ctx context.Context, t *testpmd, snd *sender, spec sendSpec) (Step, error) {
	r.step++
	spec.Step = r.step
	if _, err := t.command(ctx, "start"); err != nil {
		return Step{}, err
	}
	before, err := r.snap(PathDPDK, nil, nil)
	if err != nil {
		return Step{}, err
	}
	res, err := snd.run(spec)
	if err != nil {
		return Step{}, err
	}
	time.Sleep(drainWait)
	after, err := r.snap(PathDPDK, nil, nil)
	if err != nil {
		return Step{}, err
	}
	out, err := t.command(ctx, "stop")
	if err != nil {
		return Step{}, err
	}
	fs, err := parseFwdStats(out)
	if err != nil {
		return Step{}, err
	}
	// The poll lcore spins whether packets come or not; its cost per
	// packet is the busy cycles testpmd counted on received bursts.
	step := measureStep(spec.Rate, res, fs.rx, before, after, r.lab.Steer)
	if fs.rx > 0 {
		step.ReceiverusPerPk = fs.busyUs / float64(fs.rx)
		step.CPUusPerPkt = step.ReceiverusPerPk + step.KernelRxusPerPkt
	}
	step.Kernel.LinkDropped += fs.dropped
	return step, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
