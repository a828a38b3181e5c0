// Package agent is hb-agent: it joins its node to the controller with an
// enrollment token and a pinned CA, keeps its key on the node, and then
// sends small heartbeats at the interval the controller chooses, the
// hardware inventory when the controller asks for it, and renews its
// certificate before it expires. It dials out to the controller; when the
// host is a member of redundant apps it also runs their failover (package
// failover), which listens for the other members.
package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"hummingbird.io/hummingbird/internal/failover"
	"hummingbird.io/hummingbird/internal/wire"
)

// Files in the state directory.
const (
	KeyFile        = "agent.key"
	CertFile       = "agent.crt"
	CAFile         = "ca.crt"
	ControllerFile = "controller"
	// DesiredFile keeps the last desired state, so that apps keep their
	// failover across restarts while the controller is unreachable.
	DesiredFile = "desired.json"
	// FailoverDir holds each app group's raft state.
	FailoverDir = "failover"
)

// JoinOptions is what hb-agent join is told.
type JoinOptions struct {
	Controller string // https://host:6385, or several controllers' URLs separated by commas
	Token      string // enroll token
	CAHash     string // sha256:<hex of the CA's SubjectPublicKeyInfo>
	Hostname   string
	StateDir   string
}

// Joined says whether the state directory holds a joined agent's files.
func Joined(stateDir string) bool {
	for _, f := range []string{KeyFile, CertFile, CAFile, ControllerFile} {
		if _, err := os.Stat(filepath.Join(stateDir, f)); err != nil {
			return false
		}
	}
	return true
}

// ErrCAMismatch means the controller's CA is not the pinned one.
var ErrCAMismatch = errors.New("the controller's CA does not match --ca-hash")

// Join admits the node and stores its key, certificate, the CA and the
// controller's URL in the state directory.
func Join(ctx context.Context, o JoinOptions) (wire.JoinResponse, error) {
	if !strings.HasPrefix(o.CAHash, "sha256:") {
		return wire.JoinResponse{}, errors.New("--ca-hash must be sha256:<hex>, as the controller logs it at first start")
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return wire.JoinResponse{}, err
	}
	// The CA, fetched without trust and accepted only if it matches the pin.
	insecure := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // verified by pin below
	}}
	controllers := splitControllers(o.Controller)
	if len(controllers) == 0 {
		return wire.JoinResponse{}, errors.New("--controller must name the controller, https://CONTROLLER:6385")
	}
	// The first controller that answers; every controller of a database has the same CA.
	var (
		caPEM []byte
		ctrl  string
		err   error
	)
	for _, c := range controllers {
		if caPEM, err = get(ctx, insecure, c+wire.CAPath); err == nil {
			ctrl = c
			break
		}
	}
	if err != nil {
		return wire.JoinResponse{}, fmt.Errorf("fetch the controller CA: %w", err)
	}
	ca, err := parseCert(caPEM)
	if err != nil {
		return wire.JoinResponse{}, fmt.Errorf("the controller CA: %w", err)
	}
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	if got := "sha256:" + hex.EncodeToString(sum[:]); !strings.EqualFold(got, o.CAHash) {
		return wire.JoinResponse{}, fmt.Errorf("%w: it is %s", ErrCAMismatch, got)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return wire.JoinResponse{}, err
	}
	csr, err := makeCSR(key, o.Hostname)
	if err != nil {
		return wire.JoinResponse{}, err
	}
	macs, err := localMACs()
	if err != nil {
		return wire.JoinResponse{}, err
	}
	mgmtMAC := routeMAC(ctrl)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	var resp wire.JoinResponse
	err = post(ctx, c, ctrl+wire.JoinPath, wire.JoinRequest{
		Capability: wire.CapabilityVersion, Token: o.Token, Hostname: o.Hostname, MACs: macs, MgmtMAC: mgmtMAC, CSR: csr,
	}, &resp)
	if err != nil {
		return resp, fmt.Errorf("join: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return resp, err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{CertFile, resp.Certificate, 0o644},
		{CAFile, caPEM, 0o644},
		{ControllerFile, []byte(strings.Join(controllers, ",") + "\n"), 0o644},
	} {
		if err := writeFile(filepath.Join(o.StateDir, f.name), f.data, f.mode); err != nil {
			return resp, err
		}
	}
	return resp, nil
}

func makeCSR(key *ecdsa.PrivateKey, hostname string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: hostname},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// localMACs lists the node's Ethernet MACs.
func localMACs() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("network interfaces: %w", err)
	}
	var out []string
	for _, i := range ifs {
		if len(i.HardwareAddr) == 6 {
			out = append(out, i.HardwareAddr.String())
		}
	}
	return out, nil
}

// routeMAC is the MAC of the interface this node reaches the controller
// through: the kernel picks the source address of a UDP "connection"
// (nothing is sent), and the interface holding it has the MAC.
func routeMAC(controller string) string {
	u, err := url.Parse(controller)
	if err != nil || u.Host == "" {
		return ""
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	conn, err := net.Dial("udp", host)
	if err != nil {
		return ""
	}
	defer conn.Close()
	local, ok := conn.LocalAddr().(*net.UDPAddr)
	if !ok {
		return ""
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, i := range ifs {
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(local.IP) && len(i.HardwareAddr) == 6 {
				return i.HardwareAddr.String()
			}
		}
	}
	return ""
}

// Collector produces the node's inventory and its hash.
type Collector func(ctx context.Context) (wire.Inventory, string, error)

// RunOptions is what hb-agent run is told.
type RunOptions struct {
	StateDir string
	Log      *slog.Logger
	Collect  Collector // nil: no inventory is sent
	// Backoff after failed heartbeats; zero means 1 s doubling to 5 min.
	Backoff Backoff
	// Sleep waits d or until ctx ends; nil means a timer (tests inject it).
	Sleep func(ctx context.Context, d time.Duration) error
	// FailoverListen is where the failover listener of redundant apps
	// binds (default ":" + wire.FailoverPort); it opens only once the host has an app.
	FailoverListen string
	// LocalSocket is the unix socket of the local endpoint for apps
	// (default /run/hummingbird/agent.sock); it too opens with the first app.
	LocalSocket string
	// ReadyListen is the readiness listener for the kubelet's probes of
	// the apps' pods (default 127.0.0.1: wire.ReadyPort); it too opens with
	// the first app.
	ReadyListen string
	// RaftLog receives the app groups' raft warnings (nil: discarded).
	RaftLog io.Writer
}

type session struct {
	o RunOptions
	// controllers are the controllers' URLs; cur is the one that answered last.
	controllers []string
	cur         int
	client      *http.Client
	pool        *x509.CertPool
	boot        string
	seq         uint64
	invHash     string
	desired     wire.Desired
	apps        *failover.Manager // nil until the host has an app
}

// Run sends heartbeats until ctx ends.
func Run(ctx context.Context, o RunOptions) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Backoff.Base == 0 {
		o.Backoff = Backoff{Base: time.Second, Max: 5 * time.Minute}
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	ctrl, err := os.ReadFile(filepath.Join(o.StateDir, ControllerFile))
	if err != nil {
		return fmt.Errorf("not joined (run hb-agent join first): %w", err)
	}
	if o.FailoverListen == "" {
		o.FailoverListen = ":" + strconv.Itoa(wire.FailoverPort)
	}
	if o.LocalSocket == "" {
		o.LocalSocket = "/run/hummingbird/agent.sock"
	}
	if o.ReadyListen == "" {
		o.ReadyListen = net.JoinHostPort("127.0.0.1", strconv.Itoa(wire.ReadyPort))
	}
	s := &session{o: o, controllers: splitControllers(string(ctrl))}
	if len(s.controllers) == 0 {
		return fmt.Errorf("%s names no controller: run hb-agent join again", filepath.Join(o.StateDir, ControllerFile))
	}
	if err := s.connect(); err != nil {
		return err
	}
	// The apps run from the last desired state at once: the controller
	// may be unreachable.
	if b, err := os.ReadFile(filepath.Join(o.StateDir, DesiredFile)); err == nil {
		var d wire.Desired
		if err := json.Unmarshal(b, &d); err != nil {
			o.Log.Warn("kept desired state unreadable; waiting for the controller's", "err", err)
		} else if err := s.setDesired(ctx, d); err != nil {
			return err
		}
	}
	defer func() {
		if s.apps != nil {
			s.apps.Stop()
		}
	}()
	var b [8]byte
	rand.Read(b[:])
	s.boot = hex.EncodeToString(b[:])
	for {
		// The controller counts intervals from heartbeat to heartbeat, so
		// the time a heartbeat took comes off the wait.
		start := time.Now()
		next, err := s.beat(ctx)
		next -= time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait := o.Backoff.Next()
			o.Log.Warn("heartbeat failed", "err", err, "retry_in", wait.Round(time.Millisecond))
			next = wait
		} else {
			o.Backoff.Reset()
		}
		if err := s.wait(ctx, next); err != nil {
			return nil
		}
	}
}

// minBeat is the least time between two heartbeats sent early because an
// app's state changed.
const minBeat = 200 * time.Millisecond

// wait sleeps d, or less when an app's state changes: the controller
// hears of a switchover at once (but no sooner than minBeat).
func (s *session) wait(ctx context.Context, d time.Duration) error {
	if s.apps == nil {
		return s.o.Sleep(ctx, d)
	}
	changed := s.apps.Changed()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-changed:
			cancel()
		case <-wctx.Done():
		}
	}()
	start := time.Now()
	if err := s.o.Sleep(wctx, d); err != nil && ctx.Err() != nil {
		return err
	}
	if early := minBeat - time.Since(start); early > 0 {
		return s.o.Sleep(ctx, early)
	}
	return nil
}

// setDesired runs the apps of d, starting the failover listener and the
// local endpoint with the first app.
func (s *session) setDesired(ctx context.Context, d wire.Desired) error {
	if s.apps == nil && len(d.Apps) > 0 {
		pair, err := tls.LoadX509KeyPair(filepath.Join(s.o.StateDir, CertFile), filepath.Join(s.o.StateDir, KeyFile))
		if err != nil {
			return fmt.Errorf("agent certificate: %w", err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return err
		}
		m, err := failover.Start(ctx, failover.Options{
			Self:    leaf.Subject.CommonName,
			Listen:  s.o.FailoverListen,
			Dir:     filepath.Join(s.o.StateDir, FailoverDir),
			Certs:   failover.CertFiles(filepath.Join(s.o.StateDir, CertFile), filepath.Join(s.o.StateDir, KeyFile)),
			CA:      s.pool,
			Log:     s.o.Log.With("logger", "failover"),
			RaftLog: s.o.RaftLog,
		})
		if err != nil {
			return err
		}
		s.apps = m
		if missing := failover.MissingCapabilities(); len(missing) > 0 {
			s.o.Log.Warn("this agent lacks capabilities its redundant apps need: see deploy/README.md, \"What the agent needs\"",
				"missing", strings.Join(missing, ", "))
		}
		go func() {
			if err := m.ServeLocal(ctx, s.o.LocalSocket); err != nil {
				s.o.Log.Error("local endpoint not served", "socket", s.o.LocalSocket, "err", err)
			}
		}()
		go func() {
			if err := m.ServeReady(ctx, s.o.ReadyListen); err != nil {
				s.o.Log.Error("readiness listener not served", "addr", s.o.ReadyListen, "err", err)
			}
		}()
	}
	if s.apps != nil {
		s.apps.Apply(d.Apps)
	}
	s.desired = d
	return nil
}

// connect loads the key, certificate and CA into a mutual TLS client.
func (s *session) connect() error {
	dir := s.o.StateDir
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return fmt.Errorf("agent certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no CA certificate in " + CAFile)
	}
	s.pool = pool
	s.client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	}}
	return nil
}

// beat sends one heartbeat and what the reply asks for, and returns when
// to send the next.
func (s *session) beat(ctx context.Context) (time.Duration, error) {
	s.seq++
	hb := wire.Heartbeat{
		Capability: wire.CapabilityVersion, Seq: s.seq, Boot: s.boot, InventoryHash: s.invHash,
		DesiredVersion: s.desired.Version,
	}
	if s.apps != nil {
		hb.Apps = s.apps.Status()
	}
	var reply wire.HeartbeatReply
	// The controller that answered last, else the next that answers: any of them keeps the
	// host's liveness.
	var err error
	for i := range s.controllers {
		n := (s.cur + i) % len(s.controllers)
		if err = post(ctx, s.client, s.controllers[n]+wire.HeartbeatPath, hb, &reply); err == nil {
			if n != s.cur {
				s.o.Log.Info("heartbeats go to another controller", "controller", s.controllers[n], "unreachable", s.controllers[s.cur])
				s.cur = n
			}
			break
		}
		var api *apiError
		if errors.As(err, &api) || ctx.Err() != nil {
			return 0, err // it answered: the answer stands
		}
	}
	if err != nil {
		return 0, err
	}
	if reply.DesiredVersion != s.desired.Version {
		if err := s.fetchDesired(ctx); err != nil {
			s.o.Log.Warn("desired state not fetched", "err", err)
		}
	}
	if reply.SendInventory && s.o.Collect != nil {
		inv, hash, err := s.o.Collect(ctx)
		if err != nil {
			s.o.Log.Warn("inventory not collected", "err", err)
		} else if err := post(ctx, s.client, s.controllers[s.cur]+wire.InventoryPath,
			wire.InventoryReport{Capability: wire.CapabilityVersion, Hash: hash, Inventory: inv}, &struct{}{}); err != nil {
			s.o.Log.Warn("inventory not sent", "err", err)
		} else {
			s.invHash = hash
		}
	}
	if reply.RenewBy != nil {
		if err := s.renew(ctx); err != nil {
			s.o.Log.Warn("certificate not renewed", "err", err, "renew_by", reply.RenewBy)
		}
	}
	return time.Duration(max(reply.IntervalMillis, 100)) * time.Millisecond, nil
}

// fetchDesired gets, keeps and applies the controller's desired state.
func (s *session) fetchDesired(ctx context.Context) error {
	var d wire.Desired
	if err := post(ctx, s.client, s.controllers[s.cur]+wire.DesiredPath, struct {
		Capability int `json:"capability"`
	}{wire.CapabilityVersion}, &d); err != nil {
		return err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(s.o.StateDir, DesiredFile), b, 0o600); err != nil {
		return err
	}
	s.o.Log.Info("desired state", "version", d.Version, "apps", len(d.Apps))
	return s.setDesired(ctx, d)
}

func (s *session) renew(ctx context.Context) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := makeCSR(key, "")
	if err != nil {
		return err
	}
	var resp wire.RenewResponse
	if err := post(ctx, s.client, s.controllers[s.cur]+wire.RenewPath, wire.RenewRequest{Capability: wire.CapabilityVersion, CSR: csr}, &resp); err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(s.o.StateDir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(s.o.StateDir, CertFile), resp.Certificate, 0o644); err != nil {
		return err
	}
	s.o.Log.Info("certificate renewed")
	return s.connect()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// apiError is an error answer of the controller.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code) }

// splitControllers reads a comma-separated list of controllers' URLs.
func splitControllers(s string) []string {
	var out []string
	for _, c := range strings.Split(strings.TrimSpace(s), ",") {
		if c = strings.TrimRight(strings.TrimSpace(c), "/"); c != "" {
			out = append(out, c)
		}
	}
	return out
}

func post(ctx context.Context, c *http.Client, url string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e wire.Error
		_ = json.Unmarshal(data, &e)
		return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	return json.Unmarshal(data, out)
}

func get(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func parseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
