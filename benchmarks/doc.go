// Package benchmarks measures what nestvm costs. It holds the harness
// behind nestvm bench, and Go benchmarks of the monitor's own operations.
//
// The harness (New, Bench.Run) runs workloads (Workloads: guest programs
// sized per backend, Linux programs under the Linux personality) under
// 0 to N stacked copies of each layer, interleaved, and reports the median
// time from launch to exit and the slowdown against depth 0 of the same
// run, with what the guests measured themselves (the time of one call,
// the rate of spaces created) and, for workloads that hold live spaces,
// the memory each one holds once the monitor has settled. Every run,
// depth 0 included, loads its program through nester's loader and the
// environment the layers make, as nestvm run loads one, so what is
// measured is what runs; the harness holds capabilities only, as a layer
// does. cmd/nestvm parses the flags and prints the Report.
//
// The Go benchmarks run real guest programs on every backend this host
// offers:
//
//	go test -run '^$' -bench . ./benchmarks/    # or: make bench
//
// Each benchmark reports ratios measured side by side in the same run
// (never absolute thresholds):
//
//   - BenchmarkCalls: the backend's raw trap round trip, a bare ABI call
//     and a console write (call/trap, write/trap);
//   - BenchmarkIPC: a port_call/port_reply round trip between two threads
//     of one space, against a bare call (ipc/call);
//   - BenchmarkKeeper: a page supplied by a keeper thread on first touch,
//     against a bare call (page/call);
//   - BenchmarkSpawn: a guest creating a child space with a region and a
//     thread that exits at once, through to the exit notice;
//   - BenchmarkLaunch: the monitor launching hello, to its first write and
//     to its exit;
//   - BenchmarkNest: hello at nesting depths 0 to 3 under the guest nester
//     examples/nest, launch to exit (depthK/depth0 and the mean cost of one
//     nester level);
//   - BenchmarkCompute: guest compute against the same loop run natively.
//
// The per-operation benchmarks time the operations inside the guest (the
// bench guest, examples/bench) and report that time as ns/op, so guest
// start-up is not part of it. The package's tests check that every bench
// mode still runs and that the harness reports what it should; they time
// nothing.
package benchmarks
