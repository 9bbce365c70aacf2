package netlab

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLineRateKnownValues(t *testing.T) {
	for _, c := range []struct {
		bps   float64
		frame int
		want  float64
	}{
		{10e9, 64, 14_880_952},   // the classic 14.88 Mpps
		{10e9, 128, 8_445_946},   // 10e9 / ((128+20)*8)
		{10e9, 1518, 812_744},    // full-size frames
		{25e9, 64, 37_202_381},   // 25G
		{100e9, 64, 148_809_524}, // 100G
	} {
		got := LineRatePPS(c.bps, c.frame)
		if math.Abs(got-c.want) > 1 {
			t.Errorf("LineRatePPS(%g, %d) = %.0f, want %.0f", c.bps, c.frame, got, c.want)
		}
	}
	d, err := ParseDist("64:0.2,256:0.5,1024:0.3")
	if err != nil {
		t.Fatal(err)
	}
	// Mean wire bytes: 0.2*84 + 0.5*276 + 0.3*1044 = 468.
	if got := d.MeanWireBytes(); math.Abs(got-468) > 1e-9 {
		t.Errorf("mean wire bytes %v, want 468", got)
	}
}

func TestParseDist(t *testing.T) {
	d, err := ParseDist("1024:3, 64:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || d[0].Frame != 64 || d[0].Share != 0.25 || d[1].Share != 0.75 {
		t.Fatalf("ParseDist = %+v, want 64:0.25,1024:0.75 sorted", d)
	}
	if d, err := ParseDist("64,128"); err != nil || d[0].Share != 0.5 {
		t.Fatalf("equal shares: %+v %v", d, err)
	}
	for _, bad := range []string{"", "63", "9217", "64:0", "64:-1", "64:x", "x:1", "64,64", "64:NaN", "64:Inf"} {
		if _, err := ParseDist(bad); err == nil || !strings.Contains(err.Error(), "--sizes") {
			t.Errorf("ParseDist(%q) = %v, want an error naming --sizes", bad, err)
		}
	}
}

func TestParseNICAndRate(t *testing.T) {
	for s, want := range map[string]float64{"10G": 10e9, "25g": 25e9, "100G": 100e9, "40Gbps": 40e9} {
		if got, err := ParseNIC(s); err != nil || got != want {
			t.Errorf("ParseNIC(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseNIC("11G"); err == nil {
		t.Error("ParseNIC accepted 11G")
	}
	for s, want := range map[string]float64{"500k": 5e5, "1.5M": 1.5e6, "250000": 250000, "2Mpps": 2e6} {
		if got, err := ParseRate(s); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "0", "k", "1e20", "NaN"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

// TestPlanFromRecordedReport plans from a report recorded on this kind of
// machine (testdata/report.json, a `netlab run --quick`).
func TestPlanFromRecordedReport(t *testing.T) {
	rep, err := ReadReport(filepath.Join("testdata", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	costs, err := CostsFromReport(rep, FlowLong, -1)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range costs {
		names[c.Path] = true
		if !strings.HasPrefix(c.Source, "measured") {
			t.Errorf("%s cost source %q, want it labelled measured", c.Path, c.Source)
		}
	}
	for _, want := range []string{PathKubeProxy, PathDirect} {
		if !names[want] {
			t.Errorf("no cost model for %s from the report (have %v)", want, names)
		}
	}
	dist, _ := ParseDist("64:0.2,256:0.5,1024:0.3")
	req := PlanRequest{NIC: "10G", NICbps: 10e9, Dist: dist, Rate: 50_000, SLOP99: time.Second, MaxCores: 8, Flow: FlowLong}
	p := MakePlan(req, costs, rep.Config.SLOP99us)
	if math.Abs(p.LineRatePPS-10e9/(468*8)) > 1 {
		t.Errorf("line rate %v", p.LineRatePPS)
	}
	withKnee := 0
	for _, pp := range p.Paths {
		if pp.KneePerCore > 0 {
			withKnee++
			if pp.CoresTarget != int(math.Ceil(req.Rate/pp.KneePerCore)) {
				t.Errorf("%s: %d cores for %v pps at %v per core", pp.Path, pp.CoresTarget, req.Rate, pp.KneePerCore)
			}
		}
	}
	if withKnee == 0 {
		t.Errorf("no path of the recorded report has a knee: %+v", p.Paths)
	}
	// The report was taken with a 200 ms SLO (a loaded shared machine);
	// asking for 1 s is looser and needs no warning, 1 ms must warn.
	if len(p.Warnings) != 0 {
		t.Errorf("unexpected warnings %v", p.Warnings)
	}
	req.SLOP99 = time.Millisecond
	if strict := MakePlan(req, costs, rep.Config.SLOP99us); len(strict.Warnings) == 0 {
		t.Error("a plan stricter than the report's SLO did not warn")
	}
	var buf bytes.Buffer
	p.WriteText(&buf)
	if !strings.Contains(buf.String(), "line rate 2.67M pps") || !strings.Contains(buf.String(), "→ ") {
		t.Errorf("text plan:\n%s", buf.String())
	}
	buf.Reset()
	if err := p.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Paths) != len(p.Paths) {
		t.Fatalf("JSON plan does not round-trip: %v", err)
	}
	htmlPath := filepath.Join(t.TempDir(), "plan.html")
	if err := p.WriteHTML(htmlPath); err != nil {
		t.Fatal(err)
	}
	checkHTML(t, htmlPath, 1)
}

func TestPlanBuiltInDefaults(t *testing.T) {
	dist, _ := ParseDist("64")
	// 10G of 64-byte frames is 14.88 Mpps: the kernel paths need tens of
	// cores, DPDK 6: the plan says no path fits in 4.
	p := MakePlan(PlanRequest{NIC: "10G", NICbps: 10e9, Dist: dist, Rate: 14e6, SLOP99: time.Millisecond, MaxCores: 4},
		DefaultCosts(FlowLong, 1000), 0)
	if p.Recommendation != "no path reaches 14M pps within 4 cores" {
		t.Errorf("recommendation %q", p.Recommendation)
	}
	for _, pp := range p.Paths {
		if !strings.HasPrefix(pp.Source, "built-in default") {
			t.Errorf("%s source %q is not labelled built-in", pp.Path, pp.Source)
		}
	}
	// A modest rate: the least invasive path that fits is recommended.
	p = MakePlan(PlanRequest{NIC: "10G", NICbps: 10e9, Dist: dist, Rate: 100e3, SLOP99: time.Millisecond, MaxCores: 8},
		DefaultCosts(FlowLong, 1000), 0)
	if !strings.HasPrefix(p.Recommendation, "kube-proxy reaches 100k pps with 1 ") {
		t.Errorf("recommendation %q, want kube-proxy with 1 core", p.Recommendation)
	}
	// New flows through 5000 services cost far more per packet.
	long := DefaultCosts(FlowLong, 5000)[0].Points[0].CPUusPerPkt
	newf := DefaultCosts(FlowNew, 5000)[0].Points[0].CPUusPerPkt
	if newf < 10*long {
		t.Errorf("kube-proxy new-flow cost %.1f µs at 5000 services, long-lived %.1f: the rule walk is missing", newf, long)
	}
}

func FuzzParseDist(f *testing.F) {
	for _, s := range []string{"64:0.2,256:0.5,1024:0.3", "64", "64,128,1518", "9216:1e-300", "64:1e6,65:1e-6", " 64 : 1 ", "64:0x1p-2", ":", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDist(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--sizes") {
				t.Fatalf("error %q does not name --sizes", err)
			}
			return
		}
		var sum float64
		for i, sh := range d {
			if sh.Frame < minFrame || sh.Frame > maxFrame || !(sh.Share > 0) || math.IsInf(sh.Share, 0) {
				t.Fatalf("ParseDist(%q) gave %+v", s, sh)
			}
			if i > 0 && d[i-1].Frame >= sh.Frame {
				t.Fatalf("ParseDist(%q) not sorted/unique: %+v", s, d)
			}
			sum += sh.Share
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("ParseDist(%q) shares sum to %v", s, sum)
		}
		if m := d.MeanWireBytes(); !(m >= minFrame+wireOverhead-1e-6 && m <= maxFrame+wireOverhead+1e-6) {
			t.Fatalf("mean wire bytes %v out of range", m)
		}
		again, err := ParseDist(d.String())
		if err != nil || len(again) != len(d) {
			t.Fatalf("String() %q does not parse back: %v", d.String(), err)
		}
	})
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{"64,256,1024", "20k,100k,1M", "0", "", "1,,2", "-1", "99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseList(s)
		if err != nil {
			return
		}
		if len(v) == 0 {
			t.Fatalf("ParseList(%q) = empty without an error", s)
		}
		for _, x := range v {
			if x < 0 {
				t.Fatalf("ParseList(%q) gave negative %d", s, x)
			}
		}
	})
}

func TestParsePayloadRoundTrip(t *testing.T) {
	b := make([]byte, 64)
	fillPayload(b)
	putHex16(b[seqOff:], 7<<stepShift|42)
	putHex16(b[tsOff:], 123456789)
	seq, ts, err := ParsePayload(b)
	if err != nil || seq != 7<<stepShift|42 || ts != 123456789 {
		t.Fatalf("ParsePayload = %x, %d, %v", seq, ts, err)
	}
	if !strings.HasPrefix(string(b), "<14>1 ") {
		t.Errorf("payload %q is not an RFC 5424 line", b)
	}
	if _, _, err := ParsePayload(b[:MinPayload-1]); err == nil {
		t.Error("a short payload parsed")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	if _, ok := h.quantile(0.5); ok {
		t.Fatal("empty histogram has a median")
	}
	for i := uint64(1); i <= 1000; i++ {
		h.add(i * 1000) // 1..1000 µs
	}
	p50, _ := h.quantile(0.5)
	p99, _ := h.quantile(0.99)
	if math.Abs(p50-500e3)/500e3 > 0.07 || math.Abs(p99-990e3)/990e3 > 0.07 {
		t.Fatalf("p50 %.0f p99 %.0f ns, want ≈500000 and ≈990000 (within a bucket)", p50, p99)
	}
	for v := uint64(0); v < 1<<20; v = v*3 + 1 {
		if i := histIndex(v); histLower(i) > v || histLower(i+1) <= v {
			t.Fatalf("value %d in bucket %d [%d, %d)", v, i, histLower(i), histLower(i+1))
		}
	}
}
