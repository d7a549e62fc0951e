package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// writeTable prints one line per row: medians over the rounds, with the
// spread (lowest and highest round) of throughput and of both ratios.
// Ratios are taken within each round, against that round's floor and
// no-session rows, so drift between rounds cancels out.
func writeTable(w io.Writer, rows []*row, results [][]loadResult, c config) {
	none, floor := results[0], results[1]
	fmt.Fprintf(w, "%-28s %10s %17s %9s %9s %21s %21s %9s %10s\n",
		"row", "req/s", "(min–max)", "p50", "p99", "× one GET (min–max)", "× none (min–max)", "RT/req", "writes/req")
	for i, r := range rows {
		var rps, p50, p99, vsFloor, vsNone, rt, wr []float64
		for round, res := range results[i] {
			rps = append(rps, res.rps())
			p50 = append(p50, float64(res.p50))
			p99 = append(p99, float64(res.p99))
			vsFloor = append(vsFloor, res.rps()/floor[round].rps())
			vsNone = append(vsNone, res.rps()/none[round].rps())
			rt = append(rt, res.roundTrips)
			wr = append(wr, res.writes)
		}
		fmt.Fprintf(w, "%-28s %10.0f %17s %9v %9v %21s %21s %9.3f %10.4f\n", r.name,
			median(rps), fmt.Sprintf("(%.0f–%.0f)", slices.Min(rps), slices.Max(rps)),
			time.Duration(median(p50)).Round(time.Microsecond), time.Duration(median(p99)).Round(time.Microsecond),
			spread(vsFloor), spread(vsNone), median(rt), median(wr))
	}
	fmt.Fprintln(w, "RT/req: Redis commands sent per request (INFO commandstats); writes/req: write commands per request, inside scripts too.")
}

func spread(v []float64) string {
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(v), slices.Min(v), slices.Max(v))
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func splitLines(s string) []string { return strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") }

func cut(s, sep string) (string, string, bool) {
	k, v, ok := strings.Cut(s, sep)
	return strings.TrimSpace(k), strings.TrimSpace(v), ok
}
