package testproc

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
)

// ExactlyOnce is what CheckExactlyOnce found: the stores' events counted
// by event_id against an ack log.
type ExactlyOnce struct {
	Acked       int64 // event ids in the ack log
	Rows        int64 // events stored, over every store
	Distinct    int64 // distinct event ids among them
	Duplicated  int64 // event ids stored more than once
	Missing     int64 // acknowledged event ids stored nowhere
	RollupCount int64 // events the stores' rollups count
	// Examples names up to three duplicated and three missing ids, for
	// the failure message.
	Examples []string
}

// OK reports whether every acknowledged event is stored exactly once and
// the rollups count exactly the stored events.
func (e ExactlyOnce) OK() bool {
	return e.Acked > 0 && e.Duplicated == 0 && e.Missing == 0 && e.Rows == e.Distinct && e.RollupCount == e.Rows
}

func (e ExactlyOnce) String() string {
	s := fmt.Sprintf("%d acknowledged, %d stored (%d distinct ids), %d duplicated, %d missing, rollups count %d",
		e.Acked, e.Rows, e.Distinct, e.Duplicated, e.Missing, e.RollupCount)
	if len(e.Examples) > 0 {
		s += "; e.g. " + strings.Join(e.Examples, ", ")
	}
	return s
}

// CheckExactlyOnce counts the events of the stopped stores under dataDirs
// by event_id and compares them with the ack log at ackPath (one id per
// line, loadgen's AckLog). The counting runs in DuckDB, not in a Go map as
// ReadStore does: a run at hundreds of thousands of events per second
// acknowledges tens of millions, and DuckDB joins them on disk if it must.
// It fails the test only if the stores cannot be read; the caller decides
// what the counts mean (OK says exactly once).
func CheckExactlyOnce(t testing.TB, ackPath string, dataDirs ...string) ExactlyOnce {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // temp tables and views live in this connection's catalog
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("check exactly-once: %v\n%s", err, q)
		}
	}
	exec("SET temp_directory = " + quote(t.TempDir()))
	exec("SET preserve_insertion_order = false")
	var events, rollups []string
	for i, d := range dataDirs {
		u := storeSelects(t, db, d, fmt.Sprintf("s%d", i))
		if len(u[0]) == 0 {
			t.Fatalf("no store under %s", d)
		}
		events = append(events, u[0]...)
		rollups = append(rollups, u[1]...)
	}
	exec("CREATE TEMP TABLE stored AS SELECT coalesce(json_extract_string(attrs, '$.event_id'), '') AS id FROM (" +
		strings.Join(events, " UNION ALL ") + ")")
	exec("CREATE TEMP VIEW rollups AS " + strings.Join(rollups, " UNION ALL "))
	exec("CREATE TEMP TABLE acked (id VARCHAR)")
	// read_csv refuses an empty file; an empty ack log is Acked 0.
	var size int64
	if err := db.QueryRow("SELECT coalesce(max(size), 0) FROM read_blob(" + quote(ackPath) + ")").Scan(&size); err != nil {
		t.Fatalf("read the ack log %s: %v", ackPath, err)
	}
	if size > 0 {
		exec("INSERT INTO acked SELECT id FROM read_csv(" + quote(ackPath) +
			", header = false, auto_detect = false, delim = '\t', quote = '', escape = '', columns = {'id': 'VARCHAR'}) WHERE id <> ''")
	}

	var e ExactlyOnce
	scan := func(q string, dest ...any) {
		t.Helper()
		if err := db.QueryRow(q).Scan(dest...); err != nil {
			t.Fatalf("check exactly-once: %v\n%s", err, q)
		}
	}
	scan("SELECT count(*) FROM acked", &e.Acked)
	scan("SELECT count(*), count(DISTINCT id) FROM stored", &e.Rows, &e.Distinct)
	scan("SELECT count(*) FROM (SELECT id FROM stored GROUP BY id HAVING count(*) > 1)", &e.Duplicated)
	scan("SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM stored s WHERE s.id = a.id)", &e.Missing)
	scan("SELECT coalesce(sum(count), 0) FROM rollups", &e.RollupCount)
	for _, q := range []string{
		"SELECT 'stored ' || count(*) || ' times: ' || id FROM stored GROUP BY id HAVING count(*) > 1 LIMIT 3",
		"SELECT 'missing: ' || id FROM acked a WHERE NOT EXISTS (SELECT 1 FROM stored s WHERE s.id = a.id) LIMIT 3",
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("check exactly-once: %v\n%s", err, q)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			e.Examples = append(e.Examples, s)
		}
		rows.Close()
	}
	return e
}

// quote is a SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
