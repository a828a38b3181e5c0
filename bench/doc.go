// Package bench measures the Hummingbird controller as an operator meets
// it: the real controller runs in-process and serves its HTTPS API on
// 127.0.0.1 with token authentication, on the embedded SQLite database and
// on PostgreSQL, and the benchmarks talk to it over TLS like hbctl does.
//
// BenchmarkHostAdd measures host-add throughput, from one client and from
// several at once; BenchmarkHostList10k measures the latency of listing and
// showing hosts in an inventory of 10,000. README.md has the command that
// runs them and the figures measured. The ordinary test TestBenchSetup runs
// the same setup with a few hosts, so that go test ./... catches a broken
// benchmark. BenchmarkEventList measures event-list and alarm-list pages
// in a log of a million events and BenchmarkEventPrune the retention's
// prune of it. At fleet scale, 100,000 hosts: BenchmarkFleetAdd adds them,
// BenchmarkHostList100k lists them, BenchmarkControllerFleet measures
// hb-controller's start, RSS and idle CPU with them, BenchmarkAppSync and
// BenchmarkNodeSync the reconcilers' cost per period. Each has a Setup
// test that runs it small in go test.
package bench
