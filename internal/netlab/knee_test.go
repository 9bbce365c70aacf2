package netlab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// step builds a measured step: offered = sent = delivered unless lossy.
func step(offered int, loss, p99us, cpuUs float64) Step {
	sent := uint64(offered)
	st := Step{OfferedPPS: offered, SentPPS: float64(offered), Sent: sent,
		Received: uint64(float64(sent) * (1 - loss)), Loss: loss, CPUusPerPkt: cpuUs}
	st.DeliveredPPS = float64(st.Received)
	if p99us >= 0 {
		st.P99us = &p99us
	}
	return st
}

var pathObjectives = Objectives{Loss: DefaultLossObjective, P99: DefaultSLOP99, CPU: DefaultCPUObjective}

func TestKneeVerdicts(t *testing.T) {
	senderLimited := step(200_000, 0, 40, 2)
	senderLimited.SentPPS = 150_000
	senderLimited.SenderLimited = true
	cases := []struct {
		name     string
		steps    []Step
		obj      Objectives
		pps      int
		reached  bool
		below    bool
		bound    string
		text     string // the knee as printed must start with this
		perLoss  int    // the loss objective's own knee
		failedAt int
	}{
		{
			// The report of issue 20: the direct path delivered every step
			// without loss; with a bare receiver its latency is the path's.
			name:  "every step passes",
			steps: []Step{step(20_000, 0, 35, 2.1), step(80_000, 0, 60, 2.0), step(200_000, 0, 180, 1.9)},
			obj:   pathObjectives, pps: 200_000, bound: "rates", text: "≥ 200k pps (not reached", perLoss: 200_000,
		},
		{
			name:  "a lossy step puts the knee one step below it",
			steps: []Step{step(20_000, 0, 35, 2), step(80_000, 0.0004, 60, 2), step(200_000, 0.31, 900, 2)},
			obj:   pathObjectives, pps: 80_000, reached: true, bound: ObjectiveLoss, text: "80k pps (bound by loss: loss 31.00% > 0.10% at 200k",
			perLoss: 80_000, failedAt: 200_000,
		},
		{
			// Issue 20's kernel series: wirelog's batching put p99 at
			// 2.5 ms from the first step, against a 1 ms objective.
			name:  "the first step fails",
			steps: []Step{step(20_000, 0, 2510, 4), step(80_000, 0, 2600, 4), step(200_000, 0, 2700, 4)},
			obj:   pathObjectives, pps: 0, below: true, bound: ObjectiveLatency, text: "< 20k pps (the lowest offered rate failed: p99 2510 µs > 1000 µs)",
			perLoss: 200_000, failedAt: 20_000,
		},
		{
			name:  "the same steps pass the ingest objective",
			steps: []Step{step(20_000, 0, 2510, 4), step(80_000, 0, 2600, 4), step(200_000, 0, 2700, 4)},
			obj:   Objectives{Loss: DefaultLossObjective, P99: DefaultIngestSLOP99, CPU: DefaultCPUObjective},
			pps:   200_000, bound: "rates", text: "≥ 200k pps", perLoss: 200_000,
		},
		{
			name:  "the generator could not offer the next rate",
			steps: []Step{step(20_000, 0, 30, 2), step(80_000, 0, 40, 2), senderLimited},
			obj:   pathObjectives, pps: 80_000, bound: "sender", text: "≥ 80k pps (not reached: the generator", perLoss: 80_000,
		},
		{
			name:  "latency binds before loss; a noisy pass above does not move it",
			steps: []Step{step(20_000, 0, 30, 2), step(50_000, 0, 1500, 2), step(80_000, 0, 400, 2), step(200_000, 0.2, 9000, 2)},
			obj:   pathObjectives, pps: 20_000, reached: true, bound: ObjectiveLatency, text: "20k pps (bound by latency_p99: p99 1500 µs > 1000 µs at 50k",
			perLoss: 80_000, failedAt: 50_000,
		},
		{
			name:  "cpu binds: 6 µs per packet at 200k is 120% of a core",
			steps: []Step{step(20_000, 0, 30, 6), step(80_000, 0, 40, 6), step(200_000, 0, 60, 6)},
			obj:   pathObjectives, pps: 80_000, reached: true, bound: ObjectiveCPU, text: "80k pps (bound by cpu: receive core 120% used > 90% at 200k",
			perLoss: 200_000, failedAt: 200_000,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Series{Path: PathDirect, View: ViewPath, Size: 64, Flow: FlowLong, Steps: c.steps}
			s.computeKnee(c.obj)
			k := s.Knee
			if k.OfferedPPS != c.pps || k.Reached != c.reached || k.BelowFirst != c.below || k.BoundBy != c.bound {
				t.Errorf("knee %+v, want %d pps reached=%v below=%v bound by %s", k, c.pps, c.reached, c.below, c.bound)
			}
			if got := k.String(); !strings.HasPrefix(got, c.text) {
				t.Errorf("knee reads %q, want it to start with %q", got, c.text)
			}
			if strings.Contains(k.String(), " 0 pps") {
				t.Errorf("knee printed as 0 pps: %q", k.String())
			}
			if c.failedAt != 0 && (k.FailedAt == nil || k.FailedAt.OfferedPPS != c.failedAt) {
				t.Errorf("failed at %+v, want the step at %d", k.FailedAt, c.failedAt)
			}
			var loss *ObjectiveKnee
			for i := range k.PerObjective {
				if k.PerObjective[i].Objective == ObjectiveLoss {
					loss = &k.PerObjective[i]
				}
			}
			if loss == nil || loss.OfferedPPS != c.perLoss {
				t.Errorf("loss objective's knee %+v, want %d", loss, c.perLoss)
			}
			for _, st := range s.Steps {
				if st.Pass == (len(st.Failed) > 0) && !st.SenderLimited {
					t.Errorf("step %d: pass=%v with failures %v", st.OfferedPPS, st.Pass, st.Failed)
				}
			}
		})
	}
}

// TestReportV1Recomputed reads the version-1 report kept in testdata (a real
// run of 2026-11) and
// checks that its knees are recomputed: none is printed as 0 pps.
func TestReportV1Recomputed(t *testing.T) {
	rep, err := ReadReport(filepath.Join("testdata", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Series) == 0 {
		t.Fatal("no series")
	}
	for _, s := range rep.Series {
		if s.Knee.BoundBy == "" || strings.Contains(s.Knee.String(), " 0 pps") {
			t.Errorf("%s: knee %q (bound by %q)", s.Label(), s.Knee, s.Knee.BoundBy)
		}
	}
}

// TestHTMLNamesTheBindingObjective: the report page says, for every knee,
// which objective bound it.
func TestHTMLNamesTheBindingObjective(t *testing.T) {
	rep := &Report{Tool: "wirelog netlab", Version: ReportVersion, Started: time.Now(),
		Config: ReportConfig{SLOP99us: 1000, IngestSLOP99us: 5000, LossObjective: DefaultLossObjective, CPUObjective: DefaultCPUObjective}}
	for _, steps := range [][]Step{
		{step(20_000, 0, 35, 2), step(80_000, 0.3, 60, 2)},
		{step(20_000, 0, 3000, 2), step(80_000, 0, 3000, 2)},
	} {
		s := Series{Path: PathDirect, View: ViewPath, Size: 64, FrameBytes: 110, Flow: FlowLong, Steps: steps}
		s.computeKnee(pathObjectives)
		rep.Series = append(rep.Series, s)
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := rep.WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"<b>loss</b>", "<b>latency_p99</b>", "bound by loss", "&lt; 20k pps"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// TestPlanStatesIngestOverhead: the plan sizes a path from its path view and
// states what wirelog's ingest (the wirelog view) costs on top.
func TestPlanStatesIngestOverhead(t *testing.T) {
	rep := &Report{Tool: "wirelog netlab", Version: ReportVersion, Started: time.Now(),
		Paths: []PathInfo{{Name: PathDirect, Available: true, Receiver: "bare", WirelogReceiver: "syslog"}}}
	for _, v := range []struct {
		view string
		cpu  float64
	}{{ViewPath, 2}, {ViewWirelog, 5}} {
		s := Series{Path: PathDirect, View: v.view, Size: 64, FrameBytes: 110, Flow: FlowLong,
			Steps: []Step{step(20_000, 0, 30, v.cpu), step(80_000, 0, 40, v.cpu), step(200_000, 0.2, 900, v.cpu)}}
		s.computeKnee(Objectives{Loss: DefaultLossObjective, P99: DefaultIngestSLOP99, CPU: DefaultCPUObjective})
		rep.Series = append(rep.Series, s)
	}
	costs, err := CostsFromReport(rep, FlowLong, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(costs) != 1 || len(costs[0].Points) != 1 {
		t.Fatalf("costs %+v: want one path with one point", costs)
	}
	cp := costs[0].Points[0]
	if cp.CPUusPerPkt != 2 || cp.KneePerCore != 80_000 || cp.IngestUsPerPkt != 3 {
		t.Errorf("cost point %+v: want the path view's 2 µs and 80k knee, ingest +3 µs", cp)
	}
	dist, err := ParseDist("110:1")
	if err != nil {
		t.Fatal(err)
	}
	plan := MakePlan(PlanRequest{NIC: "10G", NICbps: 10e9, Dist: dist, Rate: 400_000, SLOP99: DefaultSLOP99, Flow: FlowLong}, costs, 0)
	pp := plan.Paths[0]
	// The path's 80k knee per core at 2 µs/packet; with 3 µs of ingest on
	// the same core it carries 80k × 2/5 = 32k: 400k needs 13 cores.
	if pp.CoresTarget != 5 || pp.IngestCores != 13 {
		t.Errorf("plan %+v: want 5 cores from the 80k knee and 13 with ingest at 5 µs/packet", pp)
	}
	var b strings.Builder
	plan.WriteText(&b)
	if !strings.Contains(b.String(), "wirelog's syslog ingest adds 3.00 µs/packet") {
		t.Errorf("plan text does not state the ingest overhead:\n%s", b.String())
	}
}
