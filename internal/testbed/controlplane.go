package testbed

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ControlPlane is the bed's Kubernetes control plane: Debian's etcd and kube-apiserver,
// kube-controller-manager and kube-scheduler built at [KubernetesVersion], prepared the way `kubeadm init` prepares
// a cluster, so that a plain `kubeadm join` with a bootstrap token works against it.
type ControlPlane struct {
	// Dir holds the control plane's PKI, kubeconfigs, data and logs.
	Dir string
	// Endpoint is the API server's host:port, on the bed's bridge.
	Endpoint string
	// Kubeconfig is the path of the cluster admin's kubeconfig.
	Kubeconfig string

	index int
	cache Cache
}

// Ports of bed N on loopback: etcd's client and peer ports, the controller manager's and the
// scheduler's.
func etcdPort(index int) int         { return 24000 + 10*index }
func etcdPeerPort(index int) int     { return etcdPort(index) + 1 }
func managerPort(index int) int      { return etcdPort(index) + 2 }
func schedulerPort(index int) int    { return etcdPort(index) + 3 }
func controlCgroup(index int) string { return fmt.Sprintf("%s/bed%d/control", cgroupParent, index) }

// apiPort is the API server's port on the bed's bridge address.
const apiPort = 6443

// startControlPlane makes the PKI and starts etcd, kube-apiserver and kube-controller-manager,
// then uploads what kubeadm join needs. Processes it started are left for the bed's teardown.
func startControlPlane(ctx context.Context, cache Cache, dir string, index int) (*ControlPlane, error) {
	ip := bridgeIP(index)
	cp := &ControlPlane{
		Dir:        dir,
		Endpoint:   net.JoinHostPort(ip.String(), fmt.Sprint(apiPort)),
		Kubeconfig: filepath.Join(dir, "admin.conf"),
		index:      index,
		cache:      cache,
	}
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return nil, fmt.Errorf("making the control plane directory: %w", err)
	}
	if err := cp.writePKI(pki); err != nil {
		return nil, err
	}
	if err := cp.startEtcd(ctx); err != nil {
		return nil, err
	}
	if err := cp.startAPIServer(ctx, pki); err != nil {
		return nil, err
	}
	if err := cp.startControllerManager(ctx, pki); err != nil {
		return nil, err
	}
	if err := cp.startScheduler(ctx); err != nil {
		return nil, err
	}
	if err := cp.prepareForJoin(ctx); err != nil {
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) clusterName() string { return fmt.Sprintf("hummingbird-bed%d", cp.index) }

func (cp *ControlPlane) writePKI(pki string) error {
	ca, err := newAuthority(cp.clusterName() + "-ca")
	if err != nil {
		return err
	}
	if err := ca.writeFiles(pki); err != nil {
		return err
	}
	ip := bridgeIP(cp.index)
	specs := []certSpec{
		{name: "apiserver", cn: "kube-apiserver", server: true,
			ips: []net.IP{ip, net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
			dns: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}},
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}},
	}
	for _, s := range specs {
		if err := ca.writeCert(pki, s); err != nil {
			return err
		}
	}
	// The service account signing key is a key pair with no certificate.
	saKey, err := newAuthority("service-accounts")
	if err != nil {
		return err
	}
	saPriv, err := encodeKey(saKey.key)
	if err != nil {
		return fmt.Errorf("encoding the service account key: %w", err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(saKey.key.Public())
	if err != nil {
		return fmt.Errorf("encoding the service account key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(pki, "sa.key"), saPriv, 0o600); err != nil {
		return fmt.Errorf("writing the service account key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(pki, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub}), 0o644); err != nil {
		return fmt.Errorf("writing the service account key: %w", err)
	}

	server := "https://" + cp.Endpoint
	for _, kc := range []struct {
		file, cn string
		orgs     []string
	}{
		{"admin.conf", "kubernetes-admin", []string{"system:masters"}},
		{"controller-manager.conf", "system:kube-controller-manager", nil},
		{"scheduler.conf", "system:kube-scheduler", nil},
	} {
		cert, key, err := ca.issue(certSpec{name: kc.file, cn: kc.cn, orgs: kc.orgs})
		if err != nil {
			return err
		}
		data, err := kubeconfig(server, cp.clusterName(), kc.cn, ca.certPEM(), cert, key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(cp.Dir, kc.file), data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", kc.file, err)
		}
	}
	return nil
}

func (cp *ControlPlane) startEtcd(ctx context.Context) error {
	client := fmt.Sprintf("http://127.0.0.1:%d", etcdPort(cp.index))
	peer := fmt.Sprintf("http://127.0.0.1:%d", etcdPeerPort(cp.index))
	name := fmt.Sprintf("bed%d", cp.index)
	d, err := startDaemon(controlCgroup(cp.index), filepath.Join(cp.Dir, "etcd.log"), nil, "etcd",
		"--name", name,
		"--data-dir", filepath.Join(cp.Dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", name+"="+peer,
		"--initial-cluster-state", "new",
	)
	if err != nil {
		return err
	}
	return d.waitFor(ctx, "etcd", func(ctx context.Context) error {
		return httpGet(ctx, http.DefaultClient, client+"/health")
	})
}

func (cp *ControlPlane) startAPIServer(ctx context.Context, pki string) error {
	ip := bridgeIP(cp.index).String()
	p := func(f string) string { return filepath.Join(pki, f) }
	d, err := startDaemon(controlCgroup(cp.index), filepath.Join(cp.Dir, "kube-apiserver.log"), nil,
		cp.cache.Bin("kube-apiserver"),
		"--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", etcdPort(cp.index)),
		"--bind-address", ip, "--advertise-address", ip, "--secure-port", fmt.Sprint(apiPort),
		"--tls-cert-file", p("apiserver.crt"), "--tls-private-key-file", p("apiserver.key"),
		"--client-ca-file", p("ca.crt"),
		"--kubelet-client-certificate", p("apiserver-kubelet-client.crt"),
		"--kubelet-client-key", p("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types", "InternalIP",
		"--service-account-key-file", p("sa.pub"),
		"--service-account-signing-key-file", p("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--enable-bootstrap-token-auth",
		"--allow-privileged",
	)
	if err != nil {
		return err
	}
	client, err := cp.httpClient()
	if err != nil {
		return err
	}
	return d.waitFor(ctx, "kube-apiserver", func(ctx context.Context) error {
		return httpGet(ctx, client, "https://"+cp.Endpoint+"/readyz")
	})
}

func (cp *ControlPlane) startControllerManager(ctx context.Context, pki string) error {
	p := func(f string) string { return filepath.Join(pki, f) }
	conf := filepath.Join(cp.Dir, "controller-manager.conf")
	d, err := startDaemon(controlCgroup(cp.index), filepath.Join(cp.Dir, "kube-controller-manager.log"), nil,
		cp.cache.Bin("kube-controller-manager"),
		"--kubeconfig", conf,
		"--authentication-kubeconfig", conf, "--authorization-kubeconfig", conf,
		"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(managerPort(cp.index)),
		"--cluster-name", cp.clusterName(),
		"--cluster-signing-cert-file", p("ca.crt"), "--cluster-signing-key-file", p("ca.key"),
		"--root-ca-file", p("ca.crt"),
		"--service-account-private-key-file", p("sa.key"),
		"--use-service-account-credentials",
		"--controllers", "*,bootstrapsigner,tokencleaner",
		"--leader-elect=false",
		// A stopped kubelet's Node turns NotReady after 20 s, not 50: tests wait for it.
		"--node-monitor-grace-period=20s",
	)
	if err != nil {
		return err
	}
	return d.waitFor(ctx, "kube-controller-manager", func(ctx context.Context) error {
		return httpGet(ctx, selfSignedClient(), fmt.Sprintf("https://127.0.0.1:%d/healthz", managerPort(cp.index)))
	})
}

// startScheduler runs kube-scheduler, which places the pods that do not name their node, such as
// those of Deployments and DaemonSets.
func (cp *ControlPlane) startScheduler(ctx context.Context) error {
	conf := filepath.Join(cp.Dir, "scheduler.conf")
	d, err := startDaemon(controlCgroup(cp.index), filepath.Join(cp.Dir, "kube-scheduler.log"), nil,
		cp.cache.Bin("kube-scheduler"),
		"--kubeconfig", conf,
		"--authentication-kubeconfig", conf, "--authorization-kubeconfig", conf,
		"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(schedulerPort(cp.index)),
		"--leader-elect=false",
	)
	if err != nil {
		return err
	}
	return d.waitFor(ctx, "kube-scheduler", func(ctx context.Context) error {
		return httpGet(ctx, selfSignedClient(), fmt.Sprintf("https://127.0.0.1:%d/healthz", schedulerPort(cp.index)))
	})
}

// selfSignedClient returns a client for the health endpoints of the controller manager and the
// scheduler, which serve a self-signed certificate on loopback.
func selfSignedClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true,
	}}}
}

// kubeadmConfig is what `kubeadm init phase` reads to make cluster-info, the bootstrap RBAC and
// the kubeadm-config and kubelet-config ConfigMaps.
const kubeadmConfig = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: %[1]s
  bindPort: %[2]d
bootstrapTokens:
- token: %[5]s
  ttl: 24h0m0s
  usages: [signing, authentication]
  groups: ["system:bootstrappers:kubeadm:default-node-token"]
nodeRegistration:
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: %[4]s
kubernetesVersion: %[3]s
controlPlaneEndpoint: %[1]s:%[2]d
networking:
  serviceSubnet: 10.96.0.0/16
  podSubnet: 10.244.0.0/16
  dnsDomain: cluster.local
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failSwapOn: false
`

// prepareForJoin runs kubeadm's own init phases against the running API server.
func (cp *ControlPlane) prepareForJoin(ctx context.Context) error {
	token, err := newBootstrapToken()
	if err != nil {
		return err
	}
	cfg := filepath.Join(cp.Dir, "kubeadm.yaml")
	data := fmt.Sprintf(kubeadmConfig, bridgeIP(cp.index), apiPort, KubernetesVersion,
		cp.clusterName(), token)
	if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
		return fmt.Errorf("writing the kubeadm configuration: %w", err)
	}
	for _, phase := range [][]string{{"bootstrap-token"}, {"upload-config", "all"}} {
		args := append(append([]string{"init", "phase"}, phase...), "--kubeconfig", cp.Kubeconfig, "--config", cfg)
		if _, err := run(ctx, cp.cache.Bin("kubeadm"), args...); err != nil {
			return fmt.Errorf("preparing the cluster for kubeadm join: %w", err)
		}
	}
	return nil
}

// newBootstrapToken returns a random bootstrap token, id.secret.
func newBootstrapToken() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 22)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return "", fmt.Errorf("making a bootstrap token: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:6]) + "." + string(b[6:]), nil
}

// Reach is the control plane of a bed that another process brought up (test/bed/up), reached
// through its cluster-admin kubeconfig, for Kubectl and GetJSON.
func Reach(kubeconfig string) (*ControlPlane, error) {
	cache, err := DefaultCache()
	if err != nil {
		return nil, err
	}
	return &ControlPlane{Kubeconfig: kubeconfig, cache: cache}, nil
}

// Kubectl runs the bed's kubectl as the cluster admin and returns its standard output.
func (cp *ControlPlane) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	return run(ctx, cp.cache.Bin("kubectl"), append([]string{"--kubeconfig", cp.Kubeconfig}, args...)...)
}

// CreateToken makes a new bootstrap token with `kubeadm token create`.
func (cp *ControlPlane) CreateToken(ctx context.Context) (string, error) {
	out, err := run(ctx, cp.cache.Bin("kubeadm"), "token", "create", "--kubeconfig", cp.Kubeconfig)
	if err != nil {
		return "", fmt.Errorf("creating a bootstrap token: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// CA returns the cluster CA certificate, PEM encoded.
func (cp *ControlPlane) CA() ([]byte, error) {
	ca, err := os.ReadFile(filepath.Join(cp.Dir, "pki", "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster CA: %w", err)
	}
	return ca, nil
}

// CAHash returns the cluster CA's hash for kubeadm's --discovery-token-ca-cert-hash.
func (cp *ControlPlane) CAHash() (string, error) {
	ca, err := cp.CA()
	if err != nil {
		return "", err
	}
	return CAHash(ca)
}

// JoinCommand returns a `kubeadm join` command line for a node of the given name, with a new
// bootstrap token.
func (cp *ControlPlane) JoinCommand(ctx context.Context, node string) ([]string, error) {
	token, err := cp.CreateToken(ctx)
	if err != nil {
		return nil, err
	}
	hash, err := cp.CAHash()
	if err != nil {
		return nil, err
	}
	return []string{"kubeadm", "join", cp.Endpoint, "--token", token,
		"--discovery-token-ca-cert-hash", hash, "--node-name", node,
		"--cri-socket", "unix:///run/containerd/containerd.sock"}, nil
}

// httpClient returns a client that trusts the cluster CA and authenticates as the admin.
func (cp *ControlPlane) httpClient() (*http.Client, error) {
	pki := filepath.Join(cp.Dir, "pki")
	ca, err := cp.CA()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "apiserver-kubelet-client.crt"), filepath.Join(pki, "apiserver-kubelet-client.key"))
	if err != nil {
		return nil, fmt.Errorf("loading a client certificate: %w", err)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{cert},
		}},
	}, nil
}

// httpGet fails unless url answers 200.
func httpGet(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("asking %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("asking %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("asking %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

// waitFor retries check until it succeeds or ctx ends, and then returns the last failure.
func waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %w)", what, ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// KubectlPath returns the path of the bed's kubectl.
func (cp *ControlPlane) KubectlPath() string { return cp.cache.Bin("kubectl") }
