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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bed := testbed.Start(b, ctx, testbed.Options{Hosts: 1, Kubelet: true})
	h := bed.Hosts[0]
	join, err := bed.ControlPlane.JoinCommand(ctx, h.Name)
	if err != nil {
		b.Fatal(err)
	}
	// The bed's hosts have no br_netfilter (see test/bed/README.md).
	join = append(join, "--ignore-preflight-errors=FileContent--proc-sys-net-bridge-bridge-nf-call-iptables,SystemVerification")
	if out, err := h.SSH(ctx, strings.Join(join, " ")); err != nil {
		journal, _ := h.SSH(ctx, "journalctl --no-pager -n 40 -u kubelet -u containerd")
		b.Fatalf("kubeadm join: %v\n%s\nthe host's journal:\n%s", err, out, journal)
	}
	node, err := bed.ControlPlane.WaitNodeReady(ctx, h.Name)
	if err != nil {
		b.Fatal(err)
	}
	kubelet, err := bedProcess(bed.Index, h.Name, "kubelet")
	if err != nil {
		b.Fatal(err)
	}
	containerd, err := bedProcess(bed.Index, h.Name, "containerd")
	if err != nil {
		b.Fatal(err)
	}

	bin, _ := buildAgent(b, true)
	agent := startAgent(b, bin, time.Second)

	cpu0, t0 := pidCPU(kubelet), time.Now()
	time.Sleep(settle)
	cpu1, t1 := pidCPU(kubelet), time.Now()
	status := func(pid int, field string) int64 {
		v := procStatusBytes(fmt.Sprintf("/proc/%d/status", pid), field)
		if v < 0 {
			b.Fatalf("no %s in /proc/%d/status", field, pid)
		}
		return v
	}
	rss, hwm := status(kubelet, "VmRSS:"), status(kubelet, "VmHWM:")
	crss := status(containerd, "VmRSS:")
	arss, ahwm := agent.memory(b)
	cache, err := testbed.DefaultCache()
	if err != nil {
		b.Fatal(err)
	}
	kbin, err := os.Stat(cache.Bin("kubelet"))
	if err != nil {
		b.Fatal(err)
	}
	perHour := (cpu1 - cpu0).Seconds() * time.Hour.Seconds() / t1.Sub(t0).Seconds()
	b.ReportMetric(mib(rss), "kubelet-rss-MiB")
	b.ReportMetric(mib(hwm), "kubelet-hwm-MiB")
	b.ReportMetric(mib(crss), "containerd-rss-MiB")
	b.ReportMetric(perHour, "kubelet-cpu-s/h")
	b.ReportMetric(float64(kbin.Size())/1e6, "kubelet-binary-MB")
	b.ReportMetric(mib(arss), "agent-rss-MiB")
	b.ReportMetric(mib(ahwm), "agent-hwm-MiB")
	b.ReportMetric(float64(rss)/float64(arss), "rss-ratio")
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("kubelet %s (pid %d, node %s Ready): RSS %.2f MiB, peak %.2f MiB, CPU %s in %s (%.1f s per hour), binary %.2f MB; containerd RSS %.2f MiB; "+
		"hb-agent: RSS %.2f MiB, peak %.2f MiB; kubelet/hb-agent RSS %.1f×; loadavg %s",
		node.Status.NodeInfo.KubeletVersion, kubelet, h.Name, mib(rss), mib(hwm), cpu1-cpu0, t1.Sub(t0).Round(time.Second), perHour,
		float64(kbin.Size())/1e6, mib(crss), mib(arss), mib(ahwm), float64(rss)/float64(arss), strings.TrimSpace(string(load)))
}
