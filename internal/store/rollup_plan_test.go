package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// rollupsPlain answers req the plain way, as Rollups did before issue 12's
// fourth session: one row per point, summed from the per-second rows only
// (no coarser rollups), read row by row. The reference the faster plans
// must equal.
func rollupsPlain(st *Store, req RollupsRequest) (*Rollups, error) {
	step, from, to, err := BucketWindow(req.From, req.To, req.Step)
	if err != nil {
		return nil, err
	}
	res := &Rollups{From: time.Unix(from, 0).UTC(), To: time.Unix(to, 0).UTC(), StepSeconds: step, By: []string{}, Series: []Series{}}
	cols := map[string]string{ByService: "NULL::VARCHAR", ByLevel: "NULL::VARCHAR", ByTenant: "NULL::VARCHAR"}
	for _, d := range Dimensions {
		for _, b := range req.By {
			if b == d {
				cols[d] = d
				res.By = append(res.By, d)
			}
		}
	}
	w := where{}
	w.add("sec >= ?", from)
	w.add("sec < ?", to)
	for _, f := range []struct{ col, v string }{{"service", req.Service}, {"level", req.Level}, {"tenant", req.Tenant}} {
		if f.v != "" {
			w.add(f.col+" = ?", f.v)
		}
	}
	q := fmt.Sprintf(`SELECT %s, %s, %s, (sec - ((sec %% %d) + %d) %% %d) AS b, sum(count)::BIGINT, sum(bytes)::BIGINT
		FROM rollups%s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`, cols[ByService], cols[ByLevel], cols[ByTenant], step, step, step, w.String())
	rows, err := st.db.Query(q, w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cur *Series
	var cs, cl, ct sql.NullString
	for rows.Next() {
		var s, l, tn sql.NullString
		var b, c, y int64
		if err := rows.Scan(&s, &l, &tn, &b, &c, &y); err != nil {
			return nil, err
		}
		if cur == nil || s != cs || l != cl || tn != ct {
			res.Series = append(res.Series, Series{Points: []Point{}})
			cur = &res.Series[len(res.Series)-1]
			cs, cl, ct = s, l, tn
			for _, d := range []struct {
				v   sql.NullString
				dst **string
			}{{s, &cur.Service}, {l, &cur.Level}, {tn, &cur.Tenant}} {
				if d.v.Valid {
					v := d.v.String
					*d.dst = &v
				}
			}
		}
		cur.Points = append(cur.Points, Point{Time: time.Unix(b, 0).UTC(), Count: c, Bytes: y})
	}
	return res, rows.Err()
}

// TestRollupsMatchPlainQuery: Rollups (one row per series, coarser rollups
// where the step allows) must answer exactly what the plain per-second
// query answers, for random windows, steps, splits and filters, before and
// after compaction, after a retention cut inside a minute, after a restart
// and after late events, on both store formats. The JSON the API writes
// (AppendJSON) must be json.Marshal's, byte for byte.
func TestRollupsMatchPlainQuery(t *testing.T) {
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			path := tempDB(t)
			opts := Options{DisableMaintenance: true, Retention: time.Hour, Format: format}
			st, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			ctx := context.Background()
			write := func(rows []Row) {
				t.Helper()
				mustWrite(t, st, rows)
				if err := st.FlushSegments(ctx); err != nil {
					t.Fatal(err)
				}
			}
			start := t0.Add(17*time.Second + 300*time.Millisecond)
			// Twenty minutes, a partial set of rows per batch; batches
			// of different sizes so that rows of one second come from
			// several of them.
			off := int64(0)
			for _, n := range []int64{700, 1300, 2000, 500, 2500, 1000, 3000, 1000} {
				write(genRows(int(n), "logs", 0, off, start.Add(time.Duration(off)*100*time.Millisecond), 100*time.Millisecond))
				off += n
			}
			rng := rand.New(rand.NewPCG(12, 4))
			steps := []time.Duration{time.Second, 5 * time.Second, 7 * time.Second, 10 * time.Second, 15 * time.Second,
				30 * time.Second, time.Minute, 90 * time.Second, 2 * time.Minute, 4 * time.Minute, 10 * time.Minute}
			bys := [][]string{nil, {ByService}, {ByLevel}, {ByService, ByLevel}, {ByTenant}, {ByService, ByLevel, ByTenant}, {ByLevel, ByTenant}}
			check := func(when string) {
				t.Helper()
				for i := 0; i < 60; i++ {
					// Windows from a few seconds to the whole store and
					// beyond, aligned or not.
					from := t0.Add(time.Duration(rng.Int64N(int64(25*time.Minute))) - 2*time.Minute)
					if rng.IntN(4) == 0 {
						from = from.Truncate(time.Minute)
					}
					to := from.Add(time.Duration(rng.Int64N(int64(30*time.Minute))) + time.Second)
					if rng.IntN(4) == 0 {
						to = to.Truncate(10 * time.Second).Add(10 * time.Second)
					}
					req := RollupsRequest{From: from, To: to, Step: steps[rng.IntN(len(steps))], By: bys[rng.IntN(len(bys))]}
					switch rng.IntN(6) {
					case 0:
						req.Service = testServices[rng.IntN(len(testServices))]
					case 1:
						req.Level = testLevels[rng.IntN(len(testLevels))].String()
					case 2:
						req.Tenant = "acme"
					}
					got, err := st.Rollups(ctx, req)
					if err != nil {
						t.Fatalf("%s: %+v: %v", when, req, err)
					}
					want, err := rollupsPlain(st, req)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%s: Rollups(%+v) differs from the plain query:\n got %s\nwant %s", when, req, describeRollups(got), describeRollups(want))
					}
					if len(req.By) == 0 { // the histogram's filters are the rollups'
						checkHistogramPlain(t, st, when, req)
					}
					j, err := got.AppendJSON(nil)
					if err != nil {
						t.Fatal(err)
					}
					if m, _ := json.Marshal(got); !bytes.Equal(j, m) {
						t.Fatalf("%s: AppendJSON differs from json.Marshal:\n got %.300s\nwant %.300s", when, j, m)
					}
				}
			}
			check("before compaction")
			if err := st.Compact(ctx); err != nil {
				t.Fatal(err)
			}
			check("after compaction")
			// Retention cuts at 3m25s after t0: inside a minute and a 10 s span.
			if _, err := st.EnforceRetention(ctx, t0.Add(3*time.Minute+25*time.Second).Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			check("after retention")
			st.Close()
			if st, err = Open(path, opts); err != nil {
				t.Fatal(err)
			}
			check("after a restart")
			write(genRows(500, "logs", 0, off, start.Add(4*time.Minute+3*time.Second), 170*time.Millisecond)) // late events
			check("after late events")
			if err := st.Compact(ctx); err != nil {
				t.Fatal(err)
			}
			check("after late events, compacted")
		})
	}
}

func describeRollups(r *Rollups) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "[%s, %s) step %d by %v, %d series:", r.From.Format(time.TimeOnly), r.To.Format(time.TimeOnly), r.StepSeconds, r.By, len(r.Series))
	for _, s := range r.Series {
		name := func(p *string) string {
			if p == nil {
				return "-"
			}
			return *p
		}
		fmt.Fprintf(&b, " {%s %s %s:", name(s.Service), name(s.Level), name(s.Tenant))
		for _, p := range s.Points {
			fmt.Fprintf(&b, " %s=%d/%d", p.Time.Format(time.TimeOnly), p.Count, p.Bytes)
		}
		b.WriteString("}")
	}
	return b.String()
}

// TestRollupsAppendJSONEdges: AppendJSON equals json.Marshal for what the
// store never produces itself but another storage backend might: nil
// slices, strings that JSON escapes, partial answers, zones and fractions
// of a second; and fails where json.Marshal fails (a year past 9999).
func TestRollupsAppendJSONEdges(t *testing.T) {
	str := func(s string) *string { return &s }
	zone := time.FixedZone("x", 5*3600+30*60)
	for _, r := range []*Rollups{
		{},
		{By: []string{}, Series: []Series{}},
		{From: t0.In(zone), To: t0.Add(1500 * time.Millisecond), StepSeconds: 3, By: []string{"service", "tenant"},
			Series: []Series{
				{Service: str(`a "quoted" <b>&amp;</b> \ line` + "\n\u2028\x01"), Tenant: str(""), Points: nil},
				{Level: str("info"), Points: []Point{{Time: t0.Add(time.Nanosecond), Count: -1, Bytes: 1 << 62}, {Time: t0.In(zone)}}},
				{Service: str("\xff invalid utf-8"), Points: []Point{}},
			},
			Coverage: Coverage{Partial: true, Missing: []string{"127.0.0.1:1", "<node>"}}},
		{Coverage: Coverage{Missing: []string{}}},
	} {
		j, err := r.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(j, append([]byte("prefix"), m...)) {
			t.Errorf("AppendJSON:\n got %s\nwant prefix%s", j, m)
		}
	}
	bad := &Rollups{Series: []Series{{Points: []Point{{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}}}
	if _, err := json.Marshal(bad); err == nil {
		t.Fatal("json.Marshal took a year past 9999")
	}
	if _, err := bad.AppendJSON(nil); err == nil {
		t.Error("AppendJSON took a year past 9999, json.Marshal refuses it")
	}
}

// checkHistogramPlain: Histogram over rollups (minutes or 10 s spans where
// the step allows) equals the per-level sums of the per-second rows.
func checkHistogramPlain(t *testing.T, st *Store, when string, req RollupsRequest) {
	t.Helper()
	h, err := st.Histogram(context.Background(), HistogramRequest{Filter: Filter{Service: req.Service, Level: req.Level, Tenant: req.Tenant,
		From: req.From, To: req.To}, Step: req.Step})
	if err != nil {
		t.Fatal(err)
	}
	if h.Source != "rollups" {
		t.Fatalf("histogram of %+v read %s, want rollups", req, h.Source)
	}
	plain, err := rollupsPlain(st, RollupsRequest{From: req.From, To: req.To, Step: req.Step, By: []string{ByLevel},
		Service: req.Service, Level: req.Level, Tenant: req.Tenant})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	var total int64
	for _, s := range plain.Series {
		for _, p := range s.Points {
			want[fmt.Sprintf("%s@%d", *s.Level, p.Time.Unix())] = p.Count
			total += p.Count
		}
	}
	got := map[string]int64{}
	for l, col := range h.Levels {
		for i, c := range col {
			if c != 0 {
				got[fmt.Sprintf("%s@%d", l, h.Times[i])] = c
			}
		}
	}
	if !reflect.DeepEqual(got, want) || h.Total != total {
		t.Fatalf("%s: Histogram(%+v): total %d, want %d from the per-second rows; buckets\n got %v\nwant %v", when, req, h.Total, total, got, want)
	}
}
