package check

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the chart README's values table from values.yaml (make chart-docs)")

// TestEveryValueDocumented: every value in values.yaml has a `# --` comment, and the
// README's table is the one those comments generate.
func TestEveryValueDocumented(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(ChartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, undocumented, err := ParseValuesDocs(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(undocumented) > 0 {
		t.Errorf("values without a `# --` comment: %s", strings.Join(undocumented, ", "))
	}
	if len(docs) < 100 {
		t.Errorf("only %d documented values found: is the parser reading values.yaml?", len(docs))
	}
	readmePath := filepath.Join(ChartDir, "README.md")
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReplaceTable(string(readme), ValuesTable(docs))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want != string(readme) {
		t.Errorf("%s's values table is stale: run `make chart-docs`", readmePath)
	}
}

// TestParseValuesDocsFindsUndocumented is the failing case of the rule above.
func TestParseValuesDocsFindsUndocumented(t *testing.T) {
	src := "# -- documented\na: 1\nb:\n  # -- documented too\n  c: x\n  d: y\n# -- a map documented whole\nres:\n  requests: {cpu: 1}\n"
	docs, undocumented, err := ParseValuesDocs([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(undocumented) != 1 || undocumented[0] != "b.d" {
		t.Fatalf("undocumented = %v, want [b.d]", undocumented)
	}
	if len(docs) != 3 || docs[1].Key != "b.c" || docs[2].Key != "res" {
		t.Fatalf("docs = %+v", docs)
	}
}

// TestSchemaListsOnlyRealValues: every key values.schema.json declares exists in
// values.yaml (the defaults rendering under the strict schema proves the converse), so the
// schema cannot keep accepting a value the chart no longer reads.
func TestSchemaListsOnlyRealValues(t *testing.T) {
	var schema map[string]any
	b, err := os.ReadFile(filepath.Join(ChartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	var walk func(prefix string, s map[string]any)
	walk = func(prefix string, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for k, v := range props {
			key := strings.TrimPrefix(prefix+"."+k, ".")
			if lookupDefault(key) == nil {
				if _, isNull := nullDefaults[key]; !isNull {
					t.Errorf("values.schema.json declares %s, which values.yaml does not have", key)
				}
			}
			if sub, ok := v.(map[string]any); ok && sub["additionalProperties"] == false {
				walk(key, sub)
			}
		}
	}
	walk("", schema)
}

// nullDefaults are schema keys whose default in values.yaml is legitimately absent.
var nullDefaults = map[string]struct{}{}
