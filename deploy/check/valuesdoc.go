package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// ValueDoc is one documented value of values.yaml: its dotted key and its `# --` comment.
type ValueDoc struct {
	Key, Type, Default, Description string
}

var (
	commentRE = regexp.MustCompile(`^(\s*)# -- (.*)$`)
	moreRE    = regexp.MustCompile(`^(\s*)#\s?(.*)$`)
	keyRE     = regexp.MustCompile(`^(\s*)([A-Za-z0-9_.\-/]+):`)
)

// ParseValuesDocs reads values.yaml's `# --` comments (the helm-docs convention: the comment
// right above a key documents it) and returns the documented keys in file order, and the
// keys that are leaves (scalars, lists, or empty maps) without a comment.
func ParseValuesDocs(src []byte) (docs []ValueDoc, undocumented []string, err error) {
	var values map[string]any
	if err := yaml.Unmarshal(src, &values); err != nil {
		return nil, nil, err
	}
	var stack []string
	var pending []string
	skip := -1 // depth of a documented map whose children are its default, not values of their own
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		if m := commentRE.FindStringSubmatch(line); m != nil {
			pending = []string{m[2]}
			continue
		}
		if pending != nil {
			if m := moreRE.FindStringSubmatch(line); m != nil {
				pending = append(pending, m[2])
				continue
			}
		}
		m := keyRE.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(strings.TrimSpace(line), "-") {
			if strings.TrimSpace(line) == "" {
				pending = nil
			}
			continue
		}
		depth := len(m[1]) / 2
		if skip >= 0 && depth > skip {
			continue
		}
		skip = -1
		if depth > len(stack) {
			return nil, nil, fmt.Errorf("values.yaml line %q: indent by two spaces per level", line)
		}
		stack = append(stack[:depth], m[2])
		key := strings.Join(stack, ".")
		v := lookupPath(values, stack)
		if pending != nil {
			def, _ := json.Marshal(v)
			docs = append(docs, ValueDoc{Key: key, Type: typeName(v), Default: string(def), Description: strings.Join(pending, " ")})
			pending = nil
			// A documented map or list is documented as a whole: its children are its default.
			skip = depth
			continue
		}
		if mm, ok := v.(map[string]any); !ok || len(mm) == 0 {
			undocumented = append(undocumented, key)
		}
	}
	return docs, undocumented, sc.Err()
}

func lookupPath(m map[string]any, path []string) any {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func typeName(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case float64, int, int64:
		return "int"
	case string:
		return "string"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return "null"
}

// Table markers in the chart's README.
const (
	TableBegin = "<!-- values-table:begin (generated from values.yaml by `make chart-docs`) -->"
	TableEnd   = "<!-- values-table:end -->"
)

// ValuesTable renders the README table.
func ValuesTable(docs []ValueDoc) string {
	var b strings.Builder
	b.WriteString("| Key | Type | Default | Description |\n| --- | --- | --- | --- |\n")
	for _, d := range docs {
		def := d.Default
		if len(def) > 80 {
			def = def[:77] + "..."
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", d.Key, d.Type, strings.ReplaceAll(def, "|", `\|`), strings.ReplaceAll(d.Description, "|", `\|`))
	}
	return b.String()
}

// ReplaceTable puts table between the markers of readme.
func ReplaceTable(readme, table string) (string, error) {
	i, j := strings.Index(readme, TableBegin), strings.Index(readme, TableEnd)
	if i < 0 || j < i {
		return "", fmt.Errorf("README lacks the markers %q … %q", TableBegin, TableEnd)
	}
	return readme[:i+len(TableBegin)] + "\n" + table + readme[j:], nil
}
