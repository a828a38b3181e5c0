package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/testbed"
	"hummingbird.io/hummingbird/internal/testbed/apptest"
)

// TestRedundantApp runs a redundant app end to end on real parts: a controller with the bed's
// cluster, two edge hosts joined as Nodes and a third without a kubelet as the witness, each
// running the real hb-agent enrolled with a token. app-add puts the app's pods on both members;
// the members elect an active one, which holds the VIP, and whose pod alone is Ready, so the
// app's Service has that one endpoint. A planned switchover through the controller moves all
// three and loses no request; it is an event with its duration. Freezing the standby's agent
// raises 400.002, thawing it clears it. With the controller stopped, killing the active member's
// agent moves the VIP and the Service's endpoint to the standby all the same, and the controller,
// started again, reports the failover. Locking the active member's host moves the app first.
// Cutting the active member off (its kubelet too) leaves the standby's pod as the Service's one
// ready endpoint within seconds. Deleting the app takes its pods, Service and VIP away.
func TestRedundantApp(t *testing.T) {
	requireBed(t)
	checkNothingLeft(t)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()

	ab := apptest.Start(t, ctx, nil)
	b, cp, ctl, api := ab.Bed, ab.Bed.ControlPlane, ab.Controller, ab.API
	vip := ab.VIP
	ab.AddApp(t, ctx)
	// The pods start (the images are in the hosts already), the members elect an active one.
	start := time.Now()
	app := waitApp(t, ctx, api, "an active member and a healthy standby", func(a apitype.App) bool {
		return a.Active != "" && len(a.Standbys) == 1
	})
	t.Logf("%s active, %s standby, %v after app-add", app.Active, app.Standbys[0], time.Since(start).Round(time.Millisecond))
	byName := map[string]*testbed.Host{}
	for _, h := range b.Hosts {
		byName[h.Name] = h
	}
	app = checkActive(t, ctx, api, cp, b.Hosts, vip, "")

	// A planned switchover through the controller: nothing lost, one event with its duration.
	probe := startVIPProbe(ctx, vip)
	if _, err := api.SwitchoverApp(ctx, "press", ""); err != nil {
		t.Fatal(err)
	}
	old := app.Active
	app = waitApp(t, ctx, api, "the switchover", func(a apitype.App) bool {
		return a.Active != old && a.PendingSwitchover == nil && len(a.Standbys) == 1
	})
	time.Sleep(time.Second)
	// A reset is counted apart, as in the VIP benchmark (bench/README.md): a connection whose
	// handshake reached the old active just before the move, which the new active did not pass on.
	if r := probe.stop(); r.lost > 0 || r.reset > 0 || r.n == 0 {
		t.Errorf("%d of %d requests to the VIP lost and %d reset in the planned switchover, want none: %v", r.lost, r.n, r.reset, r.what)
	} else {
		t.Logf("planned switchover from %s to %s: %d requests, none lost or reset", old, app.Active, r.n)
	}
	// The new active passed the old one's connections on for its drain (iptables on the node).
	if h := byName[app.Active]; h == nil {
		t.Errorf("no test bed host named %s", app.Active)
	} else if out, err := h.SSH(ctx, "journalctl --no-pager -u hb-agent"); err != nil ||
		!bytes.Contains(out, []byte("passing the old active's connections on")) || bytes.Contains(out, []byte("connections to the old active not passed on")) {
		lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
		t.Errorf("%s's agent did not pass the old active's connections on (%v); the end of its journal:\n%s",
			app.Active, err, bytes.Join(lines[max(0, len(lines)-40):], []byte("\n")))
	}
	if sw := app.LastSwitchover; sw == nil || sw.From != old || sw.To != app.Active || sw.Reason != "planned" {
		t.Errorf("last switchover %+v, want planned from %s to %s", sw, old, app.Active)
	}
	app = checkActive(t, ctx, api, cp, b.Hosts, vip, "")
	events, err := api.ListEvents(ctx, client.EventFilter{EntityID: "app=press"})
	if err != nil {
		t.Fatal(err)
	}
	var switches []string
	for _, e := range events {
		if e.Action == "app.switchover" {
			switches = append(switches, e.Reason)
		}
	}
	want := fmt.Sprintf("app press switched from %s to %s in ", old, app.Active)
	if len(switches) == 0 || !strings.HasPrefix(switches[0], want) || !strings.Contains(switches[0], "reason planned") {
		t.Errorf("app.switchover events %q, want the last to start %q and give reason planned", switches, want)
	}

	// The standby's agent frozen: redundancy lost (400.002); thawed: back.
	app = waitApp(t, ctx, api, "a healthy standby", func(a apitype.App) bool { return len(a.Standbys) == 1 })
	standby := byName[app.Standbys[0]]
	if out, err := standby.SSH(ctx, "systemctl kill --signal=SIGSTOP hb-agent"); err != nil {
		t.Fatalf("freezing the agent of %s: %v\n%s", standby.Name, err, out)
	}
	waitAlarm(t, ctx, api, fm.AlarmAppRedundancy, true)
	if out, err := standby.SSH(ctx, "systemctl kill --signal=SIGCONT hb-agent"); err != nil {
		t.Fatalf("thawing the agent of %s: %v\n%s", standby.Name, err, out)
	}
	waitAlarm(t, ctx, api, fm.AlarmAppRedundancy, false)
	app = waitApp(t, ctx, api, "the standby back", func(a apitype.App) bool { return len(a.Standbys) == 1 })

	// The controller stopped, then the active member's agent killed: the standby takes over on its
	// own, and the Service follows through the pods' readiness, which the agents answer. The
	// killed agent could not take the VIP off; started again, it does, and joins as a standby.
	// The controller, back, learns of the move from the members.
	app = checkActive(t, ctx, api, cp, b.Hosts, vip, "")
	if len(app.Standbys) != 1 {
		t.Fatalf("before the controller stops: standbys %v, want one healthy standby", app.Standbys)
	}
	killed, survivor := byName[app.Active], byName[app.Standbys[0]]
	ctl.Stop(t)
	if out, err := killed.SSH(ctx, "systemctl kill --signal=SIGKILL hb-agent"); err != nil {
		t.Fatalf("killing the agent of %s: %v\n%s", killed.Name, err, out)
	}
	fault := time.Now()
	pctx, pcancel := context.WithTimeout(ctx, time.Minute)
	pollUntil(t, pctx, "the standby active with the controller stopped", func() error {
		return nodesAgree(t, ctx, cp, b.Hosts, vip, survivor, killed)
	})
	pcancel()
	t.Logf("with the controller stopped, %s's agent killed: %s active at the VIP and in the Service after %v",
		killed.Name, survivor.Name, time.Since(fault).Round(time.Millisecond))
	if out, err := killed.SSH(ctx, "systemctl reset-failed hb-agent; systemd-run --unit hb-agent /usr/local/bin/hb-agent run"); err != nil {
		t.Fatalf("starting the agent of %s again: %v\n%s", killed.Name, err, out)
	}
	pctx, pcancel = context.WithTimeout(ctx, time.Minute)
	pollUntil(t, pctx, "the restarted agent's stale VIP gone", func() error {
		return nodesAgree(t, ctx, cp, b.Hosts, vip, survivor, nil)
	})
	pcancel()
	ctl.Restart(t)
	app = waitApp(t, ctx, api, "the controller told of the failover", func(a apitype.App) bool {
		return a.Active == survivor.Name && len(a.Standbys) == 1 && a.Standbys[0] == killed.Name
	})
	if sw := app.LastSwitchover; sw == nil || sw.From != killed.Name || sw.To != survivor.Name || sw.Reason != "failure" {
		t.Errorf("last switchover %+v, want a failure from %s to %s", sw, killed.Name, survivor.Name)
	}
	if events, err = api.ListEvents(ctx, client.EventFilter{EntityID: "app=press"}); err != nil {
		t.Fatal(err)
	}
	want = fmt.Sprintf("app press switched from %s to %s in ", killed.Name, survivor.Name)
	if !slices.ContainsFunc(events, func(e apitype.Event) bool {
		return e.Action == "app.switchover" && strings.HasPrefix(e.Reason, want) && strings.Contains(e.Reason, "reason failure")
	}) {
		t.Errorf("no app.switchover event of the failover starting %q among %+v", want, events)
	}
	app = checkActive(t, ctx, api, cp, b.Hosts, vip, killed.Name)

	// Locking the active member's host moves the app away first.
	locked := app.Active
	if _, err := api.LockHost(ctx, locked, apitype.LockRequest{Timeout: "2m"}); err != nil {
		t.Fatal(err)
	}
	if op := waitLock(t, ctx, api, locked); op.State != "locked" {
		t.Errorf("lock of the active member %s: %+v", locked, op)
	}
	checkActive(t, ctx, api, cp, b.Hosts, vip, locked) // the app off the locked host
	if _, err := api.UnlockHost(ctx, locked); err != nil {
		t.Fatal(err)
	}

	// The active member cut off, its kubelet with it: the controller takes its pod out of the
	// Service, long before Kubernetes would find its Node NotReady (20 s on the bed).
	app = checkActive(t, ctx, api, cp, b.Hosts, vip, "")
	// The member just unlocked rejoins as a standby with its agent's next
	// report: until then the app may have none to cut over to.
	pctx, pcancel = context.WithTimeout(ctx, time.Minute)
	pollUntil(t, pctx, "a standby member after the unlock", func() error {
		var err error
		if app, err = api.GetApp(ctx, "press"); err == nil && len(app.Standbys) == 0 {
			err = fmt.Errorf("active %q, no standby yet", app.Active)
		}
		return err
	})
	pcancel()
	cut, standby := ab.Host(app.Active), ab.Host(app.Standbys[0])
	fault = time.Now()
	apptest.SetLink(t, ctx, cut, false)
	defer func() {
		if t.Failed() {
			dumpApp(t, ctx, api, cp, standby, ab.Witness)
		}
	}()
	pctx, pcancel = context.WithTimeout(ctx, 10*time.Second)
	pollUntil(t, pctx, "the Service's one ready endpoint on the standby", func() error {
		ready, err := apptest.ReadyEndpoints(ctx, cp)
		if err != nil || !slices.Equal(ready, []string{standby.IP.String()}) {
			return fmt.Errorf("ready endpoints %v (%v), want %s", ready, err, standby.IP)
		}
		return nil
	})
	pcancel()
	t.Logf("%s cut off: the Service's one ready endpoint is %s's pod after %v", cut.Name, standby.Name,
		time.Since(fault).Round(time.Millisecond))
	apptest.SetLink(t, ctx, cut, true)
	checkActive(t, ctx, api, cp, b.Hosts, vip, "")

	// Deleted: pods, Service and VIP go.
	if err := api.DeleteApp(ctx, "press"); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, ctx, "the app's pods, Service and VIP gone", func() error {
		for _, h := range b.Hosts {
			if vipOn(t, ctx, h, vip) {
				return fmt.Errorf("%s still holds the VIP", h.Name)
			}
		}
		if pods := appPods(t, ctx, cp); len(pods.Items) > 0 {
			return fmt.Errorf("%d pods of the app remain", len(pods.Items))
		}
		if out, err := cp.Kubectl(ctx, "get", "service", "--namespace", "hummingbird-apps", "--ignore-not-found", "-o", "name"); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			return fmt.Errorf("services remain: %q %v", out, err)
		}
		return nil
	})
}

// waitApp polls the app until ok says yes, for up to three minutes.
func waitApp(t *testing.T, ctx context.Context, api *client.Client, what string, ok func(apitype.App) bool) apitype.App {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		a, err := api.GetApp(ctx, "press")
		if err == nil && ok(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: app %+v (%v)", what, a, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitAlarm waits until the app's alarm id is raised (or cleared).
func waitAlarm(t *testing.T, ctx context.Context, api *client.Client, id string, raised bool) {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pollUntil(t, pctx, fmt.Sprintf("alarm %s raised=%t", id, raised), func() error {
		as, err := api.ListAlarms(ctx, "app=press", "")
		if err != nil {
			return err
		}
		found := slices.ContainsFunc(as, func(a apitype.Alarm) bool { return a.AlarmID == id })
		if found != raised {
			return fmt.Errorf("alarms of app=press: %+v", as)
		}
		return nil
	})
}

// checkActive waits until the controller, the nodes and the cluster agree on the app's active
// member (which is not host not): the member the controller reports alone holds the VIP and
// answers at it, and its pod alone is Ready, so the app's Service has its address as its one
// ready endpoint. It returns the app as the controller reported it then. The members may move
// the role while it waits (a pod still starting fails its health check), so it follows the
// controller rather than a host fixed beforehand.
func checkActive(t *testing.T, ctx context.Context, api *client.Client, cp *testbed.ControlPlane, hosts []*testbed.Host, vip, not string) apitype.App {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	defer func() {
		if t.Failed() {
			for _, h := range hosts {
				out, _ := h.SSH(context.WithoutCancel(ctx), "journalctl --no-pager -n 40 -u hb-agent")
				t.Logf("the agent on %s:\n%s", h.Name, out)
			}
		}
	}()
	var app apitype.App
	pollUntil(t, pctx, "the active member at the VIP, in its pod's readiness and in the Service", func() error {
		var err error
		if app, err = api.GetApp(ctx, "press"); err != nil {
			return err
		}
		var act *testbed.Host
		for _, h := range hosts {
			if h.Name == app.Active {
				act = h
			}
		}
		if act == nil || app.Active == not {
			return fmt.Errorf("the controller reports %q as the active member", app.Active)
		}
		return nodesAgree(t, ctx, cp, hosts, vip, act, nil)
	})
	return app
}

// nodesAgree says whether the nodes and the cluster agree that act is the app's active member:
// act alone holds the VIP (stale, when not nil, is a host whose killed agent could not take it
// off, and is not asked), the VIP answers, and act's pod alone is Ready, so the app's Service has
// act's address as its one ready endpoint. None of it asks the controller.
func nodesAgree(t *testing.T, ctx context.Context, cp *testbed.ControlPlane, hosts []*testbed.Host, vip string, act, stale *testbed.Host) error {
	t.Helper()
	for _, h := range hosts {
		if on := vipOn(t, ctx, h, vip); h != stale && on != (h == act) {
			return fmt.Errorf("%s holds the VIP: %t", h.Name, on)
		}
	}
	if body, err := get(ctx, "http://"+net.JoinHostPort(vip, "8080")+"/"); err != nil || strings.TrimSpace(body) != "hello from Hummingbird" {
		return fmt.Errorf("the VIP answered %q, %v", body, err)
	}
	pods := appPods(t, ctx, cp)
	if len(pods.Items) != 2 {
		return fmt.Errorf("%d pods of the app, want one on each member", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.ready() != (p.Spec.NodeName == act.Name) {
			return fmt.Errorf("the pod on %s is ready: %t", p.Spec.NodeName, p.ready())
		}
	}
	ready, err := apptest.ReadyEndpoints(ctx, cp)
	if err != nil {
		return err
	}
	if len(ready) != 1 || ready[0] != act.IP.String() {
		return fmt.Errorf("the Service's ready endpoints are %v, want %s", ready, act.IP)
	}
	return nil
}

type appPodList struct {
	Items []appPod `json:"items"`
}

type appPod struct {
	Spec struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
}

func (p appPod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// dumpApp logs what the controller, the cluster and the agents on hosts say of the app press,
// for a failed test.
func dumpApp(t *testing.T, ctx context.Context, api *client.Client, cp *testbed.ControlPlane, hosts ...*testbed.Host) {
	t.Helper()
	ctx = context.WithoutCancel(ctx)
	app, err := api.GetApp(ctx, "press")
	t.Logf("the controller's app press: %+v %v", app, err)
	out, err := cp.Kubectl(ctx, "get", "pods", "--namespace", "hummingbird-apps", "-o", "yaml")
	t.Logf("the app's pods (%v):\n%s", err, out)
	for _, h := range hosts {
		out, _ := h.SSH(ctx, "journalctl --no-pager -n 60 -u hb-agent")
		t.Logf("the agent on %s:\n%s", h.Name, out)
	}
}

// appPods lists the pods of the app press.
func appPods(t *testing.T, ctx context.Context, cp *testbed.ControlPlane) appPodList {
	t.Helper()
	var pods appPodList
	if err := cp.GetJSON(ctx, &pods, "pods", "--namespace", "hummingbird-apps", "-l", "hummingbird.io/app=press"); err != nil {
		t.Fatal(err)
	}
	return pods
}

// vipOn says whether h has the VIP on its eth0.
func vipOn(t *testing.T, ctx context.Context, h *testbed.Host, vip string) bool {
	t.Helper()
	out, err := exec.CommandContext(ctx, "ip", "-n", h.NetNS, "-j", "addr", "show", "dev", "eth0").Output()
	if err != nil {
		t.Fatalf("addresses of %s: %v", h.Name, err)
	}
	var links []struct {
		Addrs []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		for _, a := range l.Addrs {
			if a.Local == vip {
				return true
			}
		}
	}
	return false
}

func get(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// vipProbe sends one request at a time to the VIP, each on a new connection, and counts the
// requests that got no right answer: lost, or reset (a connection whose handshake reached the
// old active in the instant before a move and whose request reached the new one), with what each
// of them saw.
type vipProbe struct {
	cancel context.CancelFunc
	done   chan vipProbeResult
}

type vipProbeResult struct {
	n, lost, reset int
	what           []string
}

func startVIPProbe(ctx context.Context, vip string) *vipProbe {
	ctx, cancel := context.WithCancel(ctx)
	p := &vipProbe{cancel: cancel, done: make(chan vipProbeResult, 1)}
	go func() {
		var r vipProbeResult
		for ctx.Err() == nil {
			sent := time.Now()
			if body, err := get(ctx, "http://"+net.JoinHostPort(vip, "8080")+"/"); ctx.Err() == nil {
				r.n++
				failed := true
				switch {
				case errors.Is(err, syscall.ECONNRESET):
					r.reset++
				case err != nil || strings.TrimSpace(body) != "hello from Hummingbird":
					r.lost++
				default:
					failed = false
				}
				if failed {
					r.what = append(r.what, fmt.Sprintf("%s+%v: %q %v", sent.Format("15:04:05.000"), time.Since(sent).Round(time.Millisecond), body, err))
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.done <- r
	}()
	return p
}

// stop ends the probe and returns what it counted.
func (p *vipProbe) stop() vipProbeResult {
	p.cancel()
	return <-p.done
}
