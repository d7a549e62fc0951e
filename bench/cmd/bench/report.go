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
	fmt.Fprintf(w, "%-28s %8s %15s %8s %8s %19s %19s %7s %8s %8s %9s %6s %6s %5s\n",
		"row", "req/s", "(min–max)", "p50", "p99", "× one GET (min–max)", "× none (min–max)", "RT/req", "cmds/req", "wr/req", "redis µs", "go µs", "cpu µs", "sock")
	for i, r := range rows {
		var rps, p50, p99, vsFloor, vsNone, rt, cmds, wr, cpu, goCPU, all []float64
		var sockErr int64
		for round, res := range results[i] {
			rps = append(rps, res.rps())
			p50 = append(p50, float64(res.p50))
			p99 = append(p99, float64(res.p99))
			vsFloor = append(vsFloor, res.rps()/floor[round].rps())
			vsNone = append(vsNone, res.rps()/none[round].rps())
			rt = append(rt, res.roundTrips)
			cmds = append(cmds, res.commands)
			wr = append(wr, res.writes)
			cpu = append(cpu, res.redisCPU)
			goCPU = append(goCPU, res.goCPU)
			all = append(all, res.cpu())
			sockErr += res.socketErrors
		}
		fmt.Fprintf(w, "%-28s %8.0f %15s %8v %8v %19s %19s %7.3f %8.3f %8.4f %9.1f %6.1f %6.1f %5d\n", r.name,
			median(rps), fmt.Sprintf("(%.0f–%.0f)", slices.Min(rps), slices.Max(rps)),
			time.Duration(median(p50)).Round(time.Microsecond), time.Duration(median(p99)).Round(time.Microsecond),
			spread(vsFloor), spread(vsNone), median(rt), median(cmds), median(wr), median(cpu), median(goCPU), median(all), sockErr)
	}
	fmt.Fprintln(w, "req/s, p50, p99: medians over the rounds. Ratios: within each round, then the median and the range.")
	fmt.Fprintln(w, "RT/req: Redis round trips per request, counted by the row's clients (a pipeline is one).")
	fmt.Fprintln(w, "cmds/req, wr/req: Redis commands and write commands per request, inside scripts too, from INFO commandstats.")
	fmt.Fprintln(w, "redis µs: Redis CPU time (user + system, INFO cpu) per request.")
	fmt.Fprintln(w, "go µs: the CPU time per request of the process serving the row (its server, its Redis clients and its garbage collector; getrusage).")
	fmt.Fprintln(w, "cpu µs: all the CPU time a request cost the machine: go µs, Redis's and wrk's.")
	fmt.Fprintln(w, "sock: wrk's connect, read, write and timeout errors over all rounds.")
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
