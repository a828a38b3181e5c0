package bench

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/testbed/apptest"
)

// envServiceTrials overrides the number of partitions BenchmarkServiceFollows makes (10).
const envServiceTrials = "HB_BENCH_SERVICE_TRIALS"

// BenchmarkServiceFollows measures how long the Service of a redundant app keeps the pod of an
// active member that is cut off: from setting the active member's link down (its agent and its
// kubelet reach nobody) until the Service's EndpointSlice holds the standby's pod as its one ready
// endpoint. Without the controller's help that is until Kubernetes finds the Node NotReady
// (--node-monitor-grace-period: 20 s on the bed, 40 s by default). The bed is apptest's (real
// kubelets, agents, controller and EndpointSlice controller); see bench/README.md.
func BenchmarkServiceFollows(b *testing.B) {
	requireBed(b)
	n := 10
	if s := os.Getenv(envServiceTrials); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive number", envServiceTrials, s)
		}
	}
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
	defer cancel()
	ab := apptest.Start(b, ctx, nil)
	ab.AddApp(b, ctx)
	cfg, err := clientcmd.BuildConfigFromFlags("", ab.Bed.ControlPlane.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	// client-go's default rate limit (5 requests a second) would set the resolution here.
	cfg.QPS, cfg.Burst = 1000, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ready := func() []string {
		list, err := cs.DiscoveryV1().EndpointSlices("hummingbird-apps").List(ctx,
			metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=hb-app-press"})
		if err != nil {
			return nil
		}
		var out []string
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					out = append(out, e.Addresses...)
				}
			}
		}
		return out
	}
	// settled waits until the controller shows an active member and a healthy standby and the
	// Service's one ready endpoint is the active member's, and returns the app.
	settled := func(what string) apitype.App {
		deadline := time.Now().Add(3 * time.Minute)
		for {
			a, err := ab.API.GetApp(ctx, "press")
			if err == nil && a.Active != "" && len(a.Standbys) == 1 {
				if h := ab.Host(a.Active); h != nil && slices.Equal(ready(), []string{h.IP.String()}) {
					return a
				}
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s: not settled after 3 minutes: app %+v, ready endpoints %v", what, a, ready())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var follows latencies
	var list []string
	b.ResetTimer()
	for i := range n {
		a := settled("before trial " + strconv.Itoa(i))
		act, stby := ab.Host(a.Active), ab.Host(a.Standbys[0])
		time.Sleep(2 * time.Second) // every kubelet has reported, the group is quiet
		from := time.Now()
		apptest.SetLink(b, ctx, act, false)
		want := []string{stby.IP.String()}
		// When the controller shows the standby active, and when the pods' Ready conditions
		// (old active's False, standby's True) are so in the API: where the time goes.
		var confirmed, oldOut, newIn time.Duration
		for !slices.Equal(ready(), want) {
			if time.Since(from) > 2*time.Minute {
				b.Fatalf("trial %d: the Service kept %v for 2 minutes after %s was cut off", i, ready(), act.Name)
			}
			if confirmed == 0 {
				if a, err := ab.API.GetApp(ctx, "press"); err == nil && a.Active == stby.Name {
					confirmed = time.Since(from)
				}
			}
			if oldOut == 0 || newIn == 0 {
				pods, _ := cs.CoreV1().Pods("hummingbird-apps").List(ctx, metav1.ListOptions{LabelSelector: "hummingbird.io/app=press"})
				for _, p := range pods.Items {
					for _, c := range p.Status.Conditions {
						if c.Type != "Ready" {
							continue
						}
						if p.Spec.NodeName == act.Name && c.Status != "True" && oldOut == 0 {
							oldOut = time.Since(from)
						}
						if p.Spec.NodeName == stby.Name && c.Status == "True" && newIn == 0 {
							newIn = time.Since(from)
						}
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		d := time.Since(from)
		follows.add(d)
		list = append(list, strconv.FormatInt(d.Milliseconds(), 10))
		b.Logf("trial %d: the controller shows %s active after %v, %s's pod NotReady after %v, %s's Ready after %v, the Service follows after %v",
			i, stby.Name, confirmed.Round(time.Millisecond), act.Name, oldOut.Round(time.Millisecond), stby.Name,
			newIn.Round(time.Millisecond), d.Round(time.Millisecond))
		apptest.SetLink(b, ctx, act, true)
	}
	b.StopTimer()
	settled("after the trials")
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(follows.percentile(0.5)), "p50-ms")
	b.ReportMetric(ms(follows.percentile(0.99)), "p99-ms")
	b.ReportMetric(ms(follows.percentile(1)), "max-ms")
	b.ReportMetric(ms(follows.percentile(0)), "min-ms")
	b.Logf("Service follows, ms, in trial order: %s", strings.Join(list, " "))
}
