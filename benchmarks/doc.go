// Package benchmarks measures what nestvm costs, with Go benchmarks that
// run real guest programs on every backend this host offers:
//
//	go test -bench . ./benchmarks/
//
// Each benchmark reports ratios measured side by side in the same run
// (never absolute thresholds): a bare ABI call against the backend's raw
// trap, guest compute against the same loop run natively, and so on.
package benchmarks
