package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"

	"nestvm/benchmarks"
)

// writeBenchSVG draws slowdown against depth, one line per (layer,
// workload), as a self-contained SVG. It is written by hand: one line
// chart does not justify a plotting library (gonum/plot and its font and
// image dependencies) in the monitor's binary.
//
// Colour tells workloads apart and the dash pattern layers; the legend
// names each line; a grey line marks 1x (no slowdown).
func writeBenchSVG(w io.Writer, rep benchmarks.Report) error {
	const (
		width, height = 960, 600
		left, right   = 80, 290 // the legend lives in the right margin
		top, bottom   = 84, 64
	)
	palette := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"}
	dashes := []string{"", "8,4", "2,3", "10,3,2,3", "4,4", "1,6"}

	// The series, in row order.
	type series struct {
		work, layer string
		xs          []int
		ys          []float64
	}
	var all []*series
	index := map[[2]string]*series{}
	var works, layers []string
	seenW, seenL := map[string]bool{}, map[string]bool{}
	minX, maxX := math.MaxInt, math.MinInt
	minY, maxY := 1.0, 1.0
	for _, r := range rep.Rows {
		k := [2]string{r.Layer, r.Workload}
		s := index[k]
		if s == nil {
			s = &series{work: r.Workload, layer: r.Layer}
			index[k] = s
			all = append(all, s)
		}
		if !seenW[r.Workload] {
			seenW[r.Workload] = true
			works = append(works, r.Workload)
		}
		if !seenL[r.Layer] {
			seenL[r.Layer] = true
			layers = append(layers, r.Layer)
		}
		s.xs = append(s.xs, r.Depth)
		s.ys = append(s.ys, r.Slowdown)
		minX, maxX = min(minX, r.Depth), max(maxX, r.Depth)
		minY, maxY = math.Min(minY, r.Slowdown), math.Max(maxY, r.Slowdown)
	}
	if len(all) == 0 {
		minX, maxX = 0, 1
	}
	if maxX == minX {
		maxX = minX + 1
	}
	colour := map[string]string{}
	for i, wk := range works {
		colour[wk] = palette[i%len(palette)]
	}
	dash := map[string]string{}
	for i, l := range layers {
		dash[l] = dashes[i%len(dashes)]
	}

	// The y axis: round ticks covering every point and 1x, at least 1%
	// either side so that flat lines stay readable as flat; logarithmic
	// when the largest slowdown is several times the smallest, so a layer
	// that costs little stays visible beside one that costs a lot.
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	px := func(x int) float64 { return float64(left) + float64(x-minX)/float64(maxX-minX)*plotW }
	ticks, labels, py, logScale := yAxis(minY, maxY, float64(top), plotH)
	lo, hi := ticks[0], ticks[len(ticks)-1]

	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">
<rect width="100%%" height="100%%" fill="white"/>
`, width, height, width, height)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="18" font-weight="bold">%s</text>
`, left, esc("nestvm bench: slowdown against depth 0, backend "+rep.BackendLabel()))
	fmt.Fprintf(&b, `<text x="%d" y="47" font-size="12" fill="#444">%s</text>
`, left, esc("host: "+rep.Host.Summary))
	fmt.Fprintf(&b, `<text x="%d" y="63" font-size="12" fill="#444">%s</text>
`, left, esc(fmt.Sprintf("median of %d runs each; load average %.1f before, %.1f after", rep.Reps, rep.Host.LoadBefore, rep.Host.LoadAfter)))

	// Grid, ticks and labels.
	b.WriteString(`<g stroke="#e4e4e4" stroke-width="1">` + "\n")
	for _, y := range ticks {
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%s" y2="%s"/>`+"\n", left, f(py(y)), f(float64(left)+plotW), f(py(y)))
	}
	for x := minX; x <= maxX; x++ {
		fmt.Fprintf(&b, `<line x1="%s" y1="%d" x2="%s" y2="%s"/>`+"\n", f(px(x)), top, f(px(x)), f(float64(top)+plotH))
	}
	b.WriteString("</g>\n")
	if lo <= 1 && 1 <= hi {
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%s" y2="%s" stroke="#888" stroke-width="1.5"/>`+"\n", left, f(py(1)), f(float64(left)+plotW), f(py(1)))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%s" height="%s" fill="none" stroke="#333"/>`+"\n", left, top, f(plotW), f(plotH))
	for i, y := range ticks {
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#333"/>`+"\n", left-5, f(py(y)), left, f(py(y)))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%sx</text>`+"\n", left-8, f(py(y)), labels[i])
	}
	for x := minX; x <= maxX; x++ {
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#333"/>`+"\n", f(px(x)), f(float64(top)+plotH), f(px(x)), f(float64(top)+plotH+5))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle">%d</text>`+"\n", f(px(x)), f(float64(top)+plotH+20), x)
	}
	fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">depth (copies of the layer between the monitor and the program)</text>`+"\n", f(float64(left)+plotW/2), height-16)
	ylabel := "slowdown (median time / median at depth 0)"
	if logScale {
		ylabel += ", log scale"
	}
	fmt.Fprintf(&b, `<text transform="translate(22 %s) rotate(-90)" text-anchor="middle">%s</text>`+"\n", f(float64(top)+plotH/2), ylabel)

	// The lines, and the legend beside the plot.
	lx := float64(width - right + 24)
	fmt.Fprintf(&b, `<text x="%s" y="%d" font-weight="bold">workload, layer</text>`+"\n", f(lx), top+4)
	for i, s := range all {
		style := fmt.Sprintf(`stroke="%s" stroke-width="2.2" fill="none"`, colour[s.work])
		if d := dash[s.layer]; d != "" {
			style += fmt.Sprintf(` stroke-dasharray="%s"`, d)
		}
		var pts bytes.Buffer
		for j := range s.xs {
			fmt.Fprintf(&pts, "%s,%s ", f(px(s.xs[j])), f(py(s.ys[j])))
		}
		fmt.Fprintf(&b, `<polyline %s points="%s"><title>%s</title></polyline>`+"\n", style, bytes.TrimSpace(pts.Bytes()), esc(s.work+", "+s.layer))
		for j := range s.xs {
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"><title>%s</title></circle>`+"\n", f(px(s.xs[j])), f(py(s.ys[j])), colour[s.work],
				esc(fmt.Sprintf("%s, %s, depth %d: %.3fx", s.work, s.layer, s.xs[j], s.ys[j])))
		}
		ly := float64(top) + 26 + float64(i)*22
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" %s/>`+"\n", f(lx), f(ly), f(lx+36), f(ly), style)
		last := s.ys[len(s.ys)-1]
		fmt.Fprintf(&b, `<text x="%s" y="%s" dominant-baseline="middle">%s</text>`+"\n", f(lx+44), f(ly), esc(fmt.Sprintf("%s, %s (%.2fx at %d)", s.work, s.layer, last, s.xs[len(s.xs)-1])))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// yAxis chooses the y axis for slowdowns from minY to maxY (1 among
// them), drawn from top over height pixels: its ticks, their labels, the
// mapping to pixels, and whether it is logarithmic.
func yAxis(minY, maxY, top, height float64) (ticks []float64, labels []string, py func(float64) float64, logScale bool) {
	if minY > 0 && maxY/minY > 4 {
		// Ticks at 1, 2 and 5 times powers of ten, from the one at or
		// below minY to the one at or above maxY.
		var all []float64
		for e := math.Floor(math.Log10(minY)) - 1; e <= math.Ceil(math.Log10(maxY)); e++ {
			for _, m := range []float64{1, 2, 5} {
				all = append(all, m*math.Pow(10, e))
			}
		}
		first, last := 0, len(all)-1
		for i, v := range all {
			if v <= minY*(1+1e-9) {
				first = i
			}
		}
		for i := len(all) - 1; i >= 0; i-- {
			if all[i] >= maxY*(1-1e-9) {
				last = i
			}
		}
		ticks = all[first : last+1]
		for _, v := range ticks {
			labels = append(labels, strconv.FormatFloat(v, 'g', 3, 64))
		}
		lo, hi := math.Log10(ticks[0]), math.Log10(ticks[len(ticks)-1])
		return ticks, labels, func(y float64) float64 { return top + (hi-math.Log10(y))/(hi-lo)*height }, true
	}
	lo, hi := minY, maxY
	if hi-lo < 0.02 {
		lo, hi = math.Min(lo, 1-0.01), math.Max(hi, 1+0.01)
	}
	step := niceStep((hi - lo) / 6)
	lo = math.Floor(lo/step) * step
	hi = math.Ceil(hi/step) * step
	prec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	n := int(math.Round((hi - lo) / step))
	for i := 0; i <= n; i++ {
		v := lo + float64(i)*step
		ticks = append(ticks, v)
		labels = append(labels, strconv.FormatFloat(v, 'f', prec, 64))
	}
	return ticks, labels, func(y float64) float64 { return top + (hi-y)/(hi-lo)*height }, false
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}
