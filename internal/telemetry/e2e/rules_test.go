package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus; run scripts/deps/45-dataplane-node.sh as root): %v", err)
	}
	return p
}

type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval"`
		Rules    []struct {
			Record      string            `json:"record"`
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func readRules(t *testing.T, name string) ruleFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "prometheus", name))
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

// TestPromtoolRules runs `promtool check rules` and `promtool test rules`
// on deploy/prometheus, and checks that a broken expression is caught.
func TestPromtoolRules(t *testing.T) {
	pt := promtool(t)
	dir := filepath.Join(repoRoot(), "deploy", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "recording.rules.yml", "alerts.rules.yml"},
		{"test", "rules", "rules_test.yml"},
	} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The same files with one expression broken must fail both.
	b, err := os.ReadFile(filepath.Join(dir, "recording.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := t.TempDir()
	bad := strings.Replace(string(b), "sum(rate(wirelog_processor_events_stored_total[1m]))", "sum(rate(wirelog_processor_events_stored_total[1m])", 1)
	if bad == string(b) {
		t.Fatal("the expression to break is gone from recording.rules.yml")
	}
	os.WriteFile(filepath.Join(broken, "recording.rules.yml"), []byte(bad), 0o644)
	for _, f := range []string{"alerts.rules.yml", "rules_test.yml"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		os.WriteFile(filepath.Join(broken, f), b, 0o644)
	}
	for _, args := range [][]string{{"check", "rules", "recording.rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = broken
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("promtool %s passed a broken expression:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestRulesCovered checks what promtool does not: every alert has a
// summary, a description and a runbook_url whose anchor is a heading of
// docs/OPERATIONS.md, and rules_test.yml has a firing and a non-firing case
// for every alert, and a case with data and one without (empty or zero)
// for every recording rule.
func TestRulesCovered(t *testing.T) {
	ops, err := os.ReadFile(filepath.Join(repoRoot(), "docs", "OPERATIONS.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(string(ops), -1) {
		a := strings.ToLower(m[1])
		a = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(a, "")
		anchors[strings.ReplaceAll(a, " ", "-")] = true
	}
	var tests struct {
		Tests []struct {
			Name      string `json:"name"`
			AlertTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
			ExprTest []struct {
				Expr       string `json:"expr"`
				ExpSamples []struct {
					Value float64 `json:"value"`
				} `json:"exp_samples"`
			} `json:"promql_expr_test"`
		} `json:"tests"`
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "prometheus", "rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	withData, without := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
		for _, e := range tc.ExprTest {
			name := strings.TrimSuffix(strings.TrimPrefix(e.Expr, "round("), ", 0.0001)")
			nonzero := false
			for _, s := range e.ExpSamples {
				nonzero = nonzero || s.Value != 0
			}
			if nonzero {
				withData[name] = true
			} else {
				without[name] = true
			}
		}
	}
	for _, g := range readRules(t, "alerts.rules.yml").Groups {
		for _, r := range g.Rules {
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[k] == "" {
					t.Errorf("alert %s has no %s", r.Alert, k)
				}
			}
			u := r.Annotations["runbook_url"]
			if i := strings.Index(u, "docs/OPERATIONS.md#"); i < 0 || !anchors[u[i+len("docs/OPERATIONS.md#"):]] {
				t.Errorf("alert %s: runbook_url %s is not a heading of docs/OPERATIONS.md", r.Alert, u)
			}
			if !firing[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alert %s: rules_test.yml has firing case %v, non-firing case %v; want both", r.Alert, firing[r.Alert], quiet[r.Alert])
			}
		}
	}
	for _, g := range readRules(t, "recording.rules.yml").Groups {
		for _, r := range g.Rules {
			if !withData[r.Record] || !without[r.Record] {
				t.Errorf("recording rule %s: rules_test.yml has a case with data %v, without %v; want both", r.Record, withData[r.Record], without[r.Record])
			}
		}
	}
}
