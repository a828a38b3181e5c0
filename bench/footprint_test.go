package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
)

// Targets of issue 4 for hb-agent.
const (
	maxAgentRSS    = 15 << 20   // 15 MiB
	maxAgentBinary = 15_000_000 // 15 MB
)

// envFootprintDuration is how long BenchmarkAgentFootprint lets the agent
// run (default 2m).
const envFootprintDuration = "HB_BENCH_FOOTPRINT_DURATION"

// TestAgentFootprint is a product guard: the stripped hb-agent binary must
// stay under 15 MB, and the agent, joined to a controller and sending
// heartbeats every second (its inventory collected and sent once), under
// 15 MiB of resident memory (its peak, VmHWM).
func TestAgentFootprint(t *testing.T) {
	bin, size := buildAgent(t, true)
	if size > maxAgentBinary {
		t.Errorf("the stripped hb-agent is %d bytes, over the %d of the target", size, maxAgentBinary)
	}
	a := startAgent(t, bin, time.Second)
	time.Sleep(2500 * time.Millisecond) // a few more heartbeats after the inventory
	rss, hwm := a.memory(t)
	t.Logf("stripped binary %.2f MB; RSS %.2f MiB, peak %.2f MiB", float64(size)/1e6, mib(rss), mib(hwm))
	if hwm > maxAgentRSS {
		t.Errorf("hb-agent's peak RSS is %.2f MiB, over the 15 MiB target", mib(hwm))
	}
}

// BenchmarkAgentFootprint builds hb-agent as go build does by default and
// stripped (-trimpath -ldflags='-s -w'), joins the stripped one to a
// controller with hb-agent join, lets hb-agent run send heartbeats every
// second for HB_BENCH_FOOTPRINT_DURATION (default 2m), and reports the
// binary sizes, the agent's RSS (VmRSS) and peak RSS (VmHWM), and its CPU
// time (utime+stime) over the run, extrapolated to an hour. b.N is ignored:
// run with -benchtime 1x.
func BenchmarkAgentFootprint(b *testing.B) {
	d := 2 * time.Minute
	if s := os.Getenv(envFootprintDuration); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			b.Fatalf("%s: %v", envFootprintDuration, err)
		}
	}
	_, plain := buildAgent(b, false)
	bin, stripped := buildAgent(b, true)
	const interval = time.Second
	a := startAgent(b, bin, interval)
	time.Sleep(3 * time.Second) // past the inventory sent after the first heartbeat
	cpu0, t0 := a.cpu(b), time.Now()
	time.Sleep(d)
	cpu1, t1 := a.cpu(b), time.Now()
	rss, hwm := a.memory(b)
	perHour := (cpu1 - cpu0).Seconds() * time.Hour.Seconds() / t1.Sub(t0).Seconds()
	beats := t1.Sub(t0).Seconds() / interval.Seconds()
	b.ReportMetric(float64(plain)/1e6, "binary-MB")
	b.ReportMetric(float64(stripped)/1e6, "stripped-MB")
	b.ReportMetric(mib(rss), "rss-MiB")
	b.ReportMetric(mib(hwm), "hwm-MiB")
	b.ReportMetric(perHour, "cpu-s/h@1s")
	b.ReportMetric(perHour/30, "cpu-s/h@30s")
	b.ReportMetric((cpu1-cpu0).Seconds()*1000/beats, "cpu-ms/beat")
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("binary %d bytes, stripped %d bytes; RSS %.2f MiB, peak %.2f MiB; CPU %s in %s (%.0f heartbeats): %.1f s per hour at a 1 s interval, %.2f s per hour at the default 30 s (extrapolated); loadavg %s",
		plain, stripped, mib(rss), mib(hwm), cpu1-cpu0, t1.Sub(t0).Round(time.Second), beats, perHour, perHour/30, strings.TrimSpace(string(load)))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// buildAgent builds cmd/hb-agent into a temporary directory, stripped
// (-trimpath -ldflags='-s -w') or not, and returns its path and size.
func buildAgent(tb testing.TB, stripped bool) (string, int64) {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "hb-agent")
	args := []string{"build", "-o", bin}
	if stripped {
		args = append(args, "-trimpath", "-ldflags=-s -w")
	}
	out, err := exec.Command("go", append(args, "hummingbird.io/hummingbird/cmd/hb-agent")...).CombinedOutput()
	if err != nil {
		tb.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	st, err := os.Stat(bin)
	if err != nil {
		tb.Fatal(err)
	}
	return bin, st.Size()
}

// agentProcess is a running hb-agent run.
type agentProcess struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

// startAgent starts a controller telling agents to beat every interval,
// adds host edge-01 and an enroll token for it, runs bin join and then bin
// run, and waits until the host is available.
func startAgent(tb testing.TB, bin string, interval time.Duration) *agentProcess {
	tb.Helper()
	ctx := context.Background()
	in := controllertest.Start(tb, "", func(c *controller.Config) { c.Heartbeat.Interval = interval })
	api := in.Client(tb, in.AdminToken)
	if _, err := api.AddHost(ctx, apitype.HostCreate{Hostname: "edge-01", Personality: "edgeworker", MgmtIP: "192.168.204.10"}); err != nil {
		tb.Fatal(err)
	}
	tok, err := api.CreateToken(ctx, apitype.TokenCreate{Type: "enroll", Uses: 1, Host: "edge-01"})
	if err != nil {
		tb.Fatal(err)
	}
	state := tb.TempDir()
	out, err := exec.Command(bin, "join", "--controller", in.URL, "--token", tok.Secret,
		"--ca-hash", pki.CAHash(in.Controller.CA.Cert), "--hostname", "edge-01", "--state-dir", state).CombinedOutput()
	if err != nil {
		tb.Fatalf("hb-agent join: %v: %s", err, out)
	}
	a := &agentProcess{cmd: exec.Command(bin, "run", "--state-dir", state), stderr: &bytes.Buffer{}}
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		a.cmd.Process.Kill()
		a.cmd.Wait()
		if tb.Failed() {
			tb.Logf("hb-agent run said:\n%s", a.stderr)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, err := api.GetHost(ctx, "edge-01")
		if err == nil && h.Availability == "available" {
			return a
		}
		if time.Now().After(deadline) {
			tb.Fatalf("edge-01 never became available (%+v, %v); hb-agent run said:\n%s", h.Availability, err, a.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memory returns the agent's VmRSS and VmHWM in bytes.
func (a *agentProcess) memory(tb testing.TB) (rss, hwm int64) {
	tb.Helper()
	return procMemory(tb, a.cmd.Process.Pid)
}

// cpu returns the agent's user and system CPU time.
func (a *agentProcess) cpu(tb testing.TB) time.Duration {
	tb.Helper()
	return procCPU(tb, a.cmd.Process.Pid)
}
