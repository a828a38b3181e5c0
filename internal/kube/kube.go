// Package kube is everything in Hummingbird that talks to Kubernetes: the
// cluster the controller manages, known through a kubeconfig. It uses
// client-go; nothing else in the controller does.
package kube

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Cluster is a Kubernetes cluster reached through a kubeconfig.
type Cluster struct {
	cs  kubernetes.Interface
	cfg *rest.Config
}

// Load reads a kubeconfig and prepares a client; it does not contact the
// cluster yet.
func Load(path string) (*Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	c, err := FromConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return c, nil
}

// FromConfig prepares a client of the cluster cfg reaches, as Load does of a kubeconfig's. It
// sets the user agent and the request limits that Load sets when cfg leaves them unset, on a
// copy.
func FromConfig(cfg *rest.Config) (*Cluster, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hummingbird-controller"
	}
	// client-go's default, 5 requests a second with bursts of 10, is shared by every part of
	// the controller that talks to the cluster: a failover's readiness writes waited behind
	// the Node and app passes for up to a second. kube-scheduler's limits.
	if cfg.QPS == 0 && cfg.Burst == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("the client of %s: %w", cfg.Host, err)
	}
	return &Cluster{cs: cs, cfg: cfg}, nil
}

// Info is what the controller knows of its cluster.
type Info struct {
	Server     string // the API server's URL
	Version    string // its gitVersion, like v1.37.2
	Nodes      int
	NodesReady int
	// CAHash pins the cluster CA as kubeadm join's
	// --discovery-token-ca-cert-hash does: sha256 of its DER
	// SubjectPublicKeyInfo.
	CAHash string
}

// Info asks the cluster for its version and nodes.
func (c *Cluster) Info(ctx context.Context) (Info, error) {
	info := Info{Server: c.cfg.Host}
	v, err := c.cs.Discovery().ServerVersion()
	if err != nil {
		return info, fmt.Errorf("the Kubernetes API server at %s: %w", c.cfg.Host, err)
	}
	info.Version = v.GitVersion
	nodes, err := c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return info, fmt.Errorf("listing nodes at %s: %w", c.cfg.Host, err)
	}
	info.Nodes = len(nodes.Items)
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				info.NodesReady++
			}
		}
	}
	if info.CAHash, err = c.caHash(); err != nil {
		return info, err
	}
	return info, nil
}

// caHash is the pin of the cluster CA named by the kubeconfig.
func (c *Cluster) caHash() (string, error) {
	data := c.cfg.CAData
	if len(data) == 0 && c.cfg.CAFile != "" {
		var err error
		if data, err = os.ReadFile(c.cfg.CAFile); err != nil {
			return "", fmt.Errorf("cluster CA: %w", err)
		}
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return "", errors.New("the kubeconfig names no cluster CA certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("cluster CA: %w", err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
