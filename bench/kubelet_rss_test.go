package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/testbed"
)

// envKubeletSettle is how long BenchmarkKubeletRSS lets the kubelet run
// after its Node is Ready before it reads its memory (default 2m).
const envKubeletSettle = "HB_BENCH_KUBELET_SETTLE"

// BenchmarkKubeletRSS is the Kubernetes counterpart of
// BenchmarkAgentFootprint: it brings up a test bed with one host, joins it
// with kubeadm join, waits for its Node to be Ready, lets the kubelet run
// for HB_BENCH_KUBELET_SETTLE (default 2m: Lease renewals every 10 s, node
// status) and reads its VmRSS and VmHWM from /proc, with its CPU time over
// that window and the RSS of the host's containerd, which a kubelet needs
// and hb-agent does not. Beside it, in the same run, hb-agent (stripped)
// joined to a controller and beating every second, as in
// BenchmarkAgentFootprint. b.N is ignored: run with -benchtime 1x.
func BenchmarkKubeletRSS(b *testing.B) {
	requireBed(b)
	settle := 2 * time.Minute
	if s := os.Getenv(envKubeletSettle); s != "" {
		var err error
		if settle, err = time.ParseDuration(s); err != nil {
			b.Fatalf("%s: %v", envKubeletSettle, err)
		}
	}
	f := measureKubelet(b, settle)
	b.ReportMetric(mib(f.rss), "kubelet-rss-MiB")
	b.ReportMetric(mib(f.hwm), "kubelet-hwm-MiB")
	b.ReportMetric(mib(f.containerdRSS), "containerd-rss-MiB")
	b.ReportMetric(f.cpuPerHour(), "kubelet-cpu-s/h")
	b.ReportMetric(float64(f.binary)/1e6, "kubelet-binary-MB")
	b.ReportMetric(mib(f.agentRSS), "agent-rss-MiB")
	b.ReportMetric(mib(f.agentHWM), "agent-hwm-MiB")
	b.ReportMetric(float64(f.rss)/float64(f.agentRSS), "rss-ratio")
	b.Log(f)
}

// TestKubeletRSSBenchSetup runs BenchmarkKubeletRSS briefly on a bed of
// its own, so that CI sees it work: the kubelet is read 2 s after its
// Node is Ready. It is skipped and fails as the end-to-end tests are
// (requireBed).
func TestKubeletRSSBenchSetup(t *testing.T) {
	requireBed(t)
	t.Parallel()
	f := measureKubelet(t, 2*time.Second)
	t.Log(f)
	if f.rss <= 0 || f.hwm < f.rss || f.containerdRSS <= 0 || f.binary <= 0 {
		t.Errorf("kubelet RSS %d, peak %d, binary %d bytes, containerd RSS %d: want all above 0 and peak ≥ RSS", f.rss, f.hwm, f.binary, f.containerdRSS)
	}
	if f.agentRSS <= 0 || f.agentHWM < f.agentRSS {
		t.Errorf("hb-agent RSS %d, peak %d: want above 0 and peak ≥ RSS", f.agentRSS, f.agentHWM)
	}
}

// kubeletFigures is what measureKubelet read, in bytes.
type kubeletFigures struct {
	version, node      string
	pid                int
	rss, hwm           int64
	cpu, window        time.Duration
	binary             int64
	containerdRSS      int64
	agentRSS, agentHWM int64
}

func (f kubeletFigures) cpuPerHour() float64 {
	return f.cpu.Seconds() * time.Hour.Seconds() / f.window.Seconds()
}

func (f kubeletFigures) String() string {
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("kubelet %s (pid %d, node %s Ready): RSS %.2f MiB, peak %.2f MiB, CPU %s in %s (%.1f s per hour), binary %.2f MB; containerd RSS %.2f MiB; "+
		"hb-agent: RSS %.2f MiB, peak %.2f MiB; kubelet/hb-agent RSS %.1f×; loadavg %s",
		f.version, f.pid, f.node, mib(f.rss), mib(f.hwm), f.cpu, f.window.Round(time.Second), f.cpuPerHour(),
		float64(f.binary)/1e6, mib(f.containerdRSS), mib(f.agentRSS), mib(f.agentHWM), float64(f.rss)/float64(f.agentRSS), strings.TrimSpace(string(load)))
}

// measureKubelet brings up a bed with one host for tb, joins the host,
// waits for its Node to be Ready, starts the stripped hb-agent beside it,
// lets both run for settle and reads them.
func measureKubelet(tb testing.TB, settle time.Duration) kubeletFigures {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bed := testbed.Start(tb, ctx, testbed.Options{Hosts: 1, Kubelet: true})
	h := bed.Hosts[0]
	join, err := bed.ControlPlane.JoinCommand(ctx, h.Name)
	if err != nil {
		tb.Fatal(err)
	}
	// The bed's hosts have no br_netfilter (see test/bed/README.md).
	join = append(join, "--ignore-preflight-errors=FileContent--proc-sys-net-bridge-bridge-nf-call-iptables,SystemVerification")
	if out, err := h.SSH(ctx, strings.Join(join, " ")); err != nil {
		journal, _ := h.SSH(ctx, "journalctl --no-pager -n 40 -u kubelet -u containerd")
		tb.Fatalf("kubeadm join: %v\n%s\nthe host's journal:\n%s", err, out, journal)
	}
	node, err := bed.ControlPlane.WaitNodeReady(ctx, h.Name)
	if err != nil {
		tb.Fatal(err)
	}
	kubelet, err := bedProcess(bed.Index, h.Name, "kubelet")
	if err != nil {
		tb.Fatal(err)
	}
	containerd, err := bedProcess(bed.Index, h.Name, "containerd")
	if err != nil {
		tb.Fatal(err)
	}

	bin, _ := buildAgent(tb, true)
	agent := startAgent(tb, bin, time.Second)

	cpu0, t0 := pidCPU(kubelet), time.Now()
	time.Sleep(settle)
	cpu1, t1 := pidCPU(kubelet), time.Now()
	status := func(pid int, field string) int64 {
		v := procStatusBytes(fmt.Sprintf("/proc/%d/status", pid), field)
		if v < 0 {
			tb.Fatalf("no %s in /proc/%d/status", field, pid)
		}
		return v
	}
	f := kubeletFigures{
		version: node.Status.NodeInfo.KubeletVersion, node: h.Name, pid: kubelet,
		rss: status(kubelet, "VmRSS:"), hwm: status(kubelet, "VmHWM:"),
		cpu: cpu1 - cpu0, window: t1.Sub(t0),
		containerdRSS: status(containerd, "VmRSS:"),
	}
	f.agentRSS, f.agentHWM = agent.memory(tb)
	cache, err := testbed.DefaultCache()
	if err != nil {
		tb.Fatal(err)
	}
	kbin, err := os.Stat(cache.Bin("kubelet"))
	if err != nil {
		tb.Fatal(err)
	}
	f.binary = kbin.Size()
	return f
}
