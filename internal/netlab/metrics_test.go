package netlab

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestWriteMetrics: every series of a report becomes one knee sample with
// its labels, readable by Prometheus's own parser.
func TestWriteMetrics(t *testing.T) {
	rep, err := ReadReport(filepath.Join("testdata", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), MetricsFile)
	if err := rep.WriteMetrics(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	knees := mfs["wirelog_netlab_knee_pps"]
	if knees == nil || len(knees.Metric) != len(rep.Series) {
		t.Fatalf("knee samples %v, want %d (one per series)", knees, len(rep.Series))
	}
	for _, m := range knees.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		found := false
		for _, s := range rep.Series {
			if s.Path == got["path"] && s.Flow == got["flow"] && got["size"] != "" && float64(s.Knee.OfferedPPS) == m.Gauge.GetValue() {
				found = true
			}
		}
		if !found {
			t.Errorf("sample %v = %v matches no series", got, m.Gauge.GetValue())
		}
	}
}
