package loadgen

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// WriteSoakHTML draws the samples as a self-contained HTML page of small SVG
// line charts (no scripts, nothing fetched), one per measure, with the
// summary on top.
func WriteSoakHTML(w io.Writer, title string, sum SoakSummary, samples []SoakSample) error {
	type series struct {
		name, unit string
		v          func(i int) float64
		limit      float64 // a dashed line at the bound, 0 = none
	}
	rate := func(i int) float64 {
		iv := samples[i].Elapsed.Seconds()
		if i > 0 {
			iv -= samples[i-1].Elapsed.Seconds()
		}
		if iv <= 0 {
			return 0
		}
		return samples[i].StoredPerSec / iv
	}
	capInf := func(v float64) float64 {
		if math.IsInf(v, 1) {
			return 10 // beyond the last bucket; drawn at 10 s
		}
		return v
	}
	charts := []series{
		{"stored events/s", "/s", rate, 0},
		{"backlog", "MB (records on Kafka)", func(i int) float64 { return samples[i].Backlog / 1e6 }, 0},
		{"longest store write (bucket bound)", "s", func(i int) float64 { return capInf(samples[i].WriteMax) }, sum.StallBound},
		{"longest background checkpoint (bucket bound)", "s", func(i int) float64 { return capInf(samples[i].CheckpointMax) }, 0},
		{"ingest → stored p99 (bucket bound)", "s", func(i int) float64 { return capInf(samples[i].FreshP99) }, sum.FreshnessBound},
		{"RSS", "MB", func(i int) float64 { return samples[i].RSS / 1e6 }, sum.RSSBound / 1e6},
		{"DuckDB WAL / temp spill", "MB", func(i int) float64 { return (samples[i].WAL + samples[i].Temp) / 1e6 }, 0},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><meta charset=utf-8><title>%s</title>\n", html.EscapeString(title))
	b.WriteString("<style>body{font:14px sans-serif;margin:1em}svg{background:#fafafa;margin:4px}pre{background:#f4f4f4;padding:8px}</style>\n")
	fmt.Fprintf(&b, "<h1>%s</h1>\n<pre>", html.EscapeString(title))
	var sb strings.Builder
	sum.WriteText(&sb)
	b.WriteString(html.EscapeString(sb.String()))
	b.WriteString("</pre>\n")
	const W, H, pad = 900.0, 160.0, 40.0
	for _, c := range charts {
		hi := c.limit
		for i := range samples {
			hi = max(hi, c.v(i))
		}
		if hi <= 0 {
			hi = 1
		}
		hi *= 1.1
		tmax := 1.0
		if n := len(samples); n > 0 {
			tmax = max(samples[n-1].Elapsed.Seconds(), 1)
		}
		x := func(i int) float64 { return pad + samples[i].Elapsed.Seconds()/tmax*(W-pad-10) }
		y := func(v float64) float64 { return H - 20 - v/hi*(H-35) }
		fmt.Fprintf(&b, "<div><b>%s</b> (%s)<br><svg width=%d height=%d>", html.EscapeString(c.name), html.EscapeString(c.unit), int(W), int(H))
		fmt.Fprintf(&b, `<text x=2 y=14 font-size=11>%.3g</text><text x=2 y=%d font-size=11>0</text><text x=%d y=%d font-size=11>%.0f s</text>`,
			hi, int(H-20), int(W-60), int(H-4), tmax)
		if c.limit > 0 {
			fmt.Fprintf(&b, `<line x1=%g x2=%g y1=%.1f y2=%.1f stroke=#c00 stroke-dasharray="4 4"/>`, pad, W-10, y(c.limit), y(c.limit))
		}
		b.WriteString(`<polyline fill=none stroke=#1f5fa8 stroke-width=1.2 points="`)
		for i := range samples {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(c.v(i)))
		}
		b.WriteString(`"/></svg></div>` + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
