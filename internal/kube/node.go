package kube

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
)

// JoinToken is a bootstrap token for kubeadm join: ID.Secret.
type JoinToken struct {
	ID, Secret string
}

func (t JoinToken) String() string { return t.ID + "." + t.Secret }

const tokenChars = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomToken draws n characters of tokenChars uniformly: bytes of 252 and up are dropped, as
// 252 is the largest multiple of 36 a byte holds.
func randomToken(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, c := range buf {
			if c < 252 && len(out) < n {
				out = append(out, tokenChars[int(c)%len(tokenChars)])
			}
		}
	}
	return string(out), nil
}

// CreateJoinToken stores a bootstrap token in the cluster, as `kubeadm token create` does: a
// Secret bootstrap-token-<id> in kube-system that authenticates a kubelet's TLS bootstrap and
// signs the cluster-info ConfigMap for discovery, valid for ttl.
func (c *Cluster) CreateJoinToken(ctx context.Context, ttl time.Duration, description string, now time.Time) (JoinToken, error) {
	var t JoinToken
	var err error
	if t.ID, err = randomToken(6); err != nil {
		return t, fmt.Errorf("making a bootstrap token: %w", err)
	}
	if t.Secret, err = randomToken(16); err != nil {
		return t, fmt.Errorf("making a bootstrap token: %w", err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + t.ID, Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			"description":                    description,
			"token-id":                       t.ID,
			"token-secret":                   t.Secret,
			"expiration":                     now.Add(ttl).UTC().Format(time.RFC3339),
			"usage-bootstrap-authentication": "true",
			"usage-bootstrap-signing":        "true",
			"auth-extra-groups":              "system:bootstrappers:kubeadm:default-node-token",
		},
	}
	if _, err := c.cs.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return JoinToken{}, fmt.Errorf("storing a bootstrap token in the cluster: %w", err)
	}
	return t, nil
}

// DeleteJoinToken removes a bootstrap token; one already gone is no error.
func (c *Cluster) DeleteJoinToken(ctx context.Context, id string) error {
	err := c.cs.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, "bootstrap-token-"+id, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting bootstrap token %s: %w", id, err)
	}
	return nil
}

// JoinEndpoint is the host:port nodes join at: the server of the cluster-info ConfigMap that
// kubeadm discovery reads, or else the kubeconfig's server.
func (c *Cluster) JoinEndpoint(ctx context.Context) (string, error) {
	server := c.cfg.Host
	cm, err := c.cs.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, "cluster-info", metav1.GetOptions{})
	switch {
	case err == nil:
		if kc, ok := cm.Data["kubeconfig"]; ok {
			cfg, err := clientcmd.Load([]byte(kc))
			if err != nil {
				return "", fmt.Errorf("reading the cluster-info ConfigMap: %w", err)
			}
			for _, cl := range cfg.Clusters {
				server = cl.Server
				break
			}
		}
	case apierrors.IsNotFound(err):
		return "", errors.New("the cluster has no cluster-info ConfigMap in kube-public: nodes cannot " +
			"discover it with kubeadm join (run `kubeadm init phase bootstrap-token` on it)")
	default:
		return "", fmt.Errorf("reading the cluster-info ConfigMap: %w", err)
	}
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("the cluster's API server %q is not a URL", server)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return net.JoinHostPort(u.Host, "443"), nil
	}
	return u.Host, nil
}

// NodeState is what the controller reads of a Node.
type NodeState struct {
	Exists         bool
	Ready          bool
	Reason         string // why it is not Ready, from its Ready condition
	KubeletVersion string
	Unschedulable  bool
	Labels         map[string]string
	// Owner is the uuid of the host whose Node it is (LabelHost); empty: none.
	Owner string
	// UID and Created are the Node's: a Node deleted and registered again has others.
	UID     types.UID
	Created time.Time
}

// Node reads the state of a Node; a missing Node is no error.
func (c *Cluster) Node(ctx context.Context, name string) (NodeState, error) {
	n, err := c.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return NodeState{}, nil
	}
	if err != nil {
		return NodeState{}, fmt.Errorf("reading node %s: %w", name, err)
	}
	return nodeState(n), nil
}

func nodeState(n *corev1.Node) NodeState {
	s := NodeState{Exists: true, KubeletVersion: n.Status.NodeInfo.KubeletVersion,
		Unschedulable: n.Spec.Unschedulable, Labels: n.Labels, Reason: "the kubelet has not reported",
		Owner: n.Labels[LabelHost], UID: n.UID, Created: n.CreationTimestamp.Time}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			s.Ready = cond.Status == corev1.ConditionTrue
			s.Reason = cond.Reason
			if cond.Message != "" {
				s.Reason = cond.Message
			}
		}
	}
	return s
}

// WaitNodeReady polls a Node every interval until it is Ready or ctx ends.
func (c *Cluster) WaitNodeReady(ctx context.Context, name string, interval time.Duration) (NodeState, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s, err := c.Node(ctx, name)
		if err == nil && s.Ready {
			return s, nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return s, err
			}
			if !s.Exists {
				return s, fmt.Errorf("node %s never registered with the cluster", name)
			}
			return s, fmt.Errorf("node %s is not Ready: %s", name, s.Reason)
		case <-t.C:
		}
	}
}

// ServerVersion is the API server's gitVersion, like v1.37.2.
func (c *Cluster) ServerVersion() (string, error) {
	v, err := c.cs.Discovery().ServerVersion()
	if err != nil {
		return "", fmt.Errorf("the Kubernetes API server at %s: %w", c.cfg.Host, err)
	}
	return v.GitVersion, nil
}

// CAHash pins the cluster CA for kubeadm join's --discovery-token-ca-cert-hash.
func (c *Cluster) CAHash() (string, error) { return c.caHash() }

// ManagedLabelsAnnotation lists, comma-separated, the label keys Hummingbird set on a Node, so
// that it removes the ones it no longer wants and leaves everyone else's alone.
const ManagedLabelsAnnotation = "hummingbird.io/managed-labels"

// Node is a Node as the controller reconciles it (see NodeCache).
type Node struct {
	Name        string
	State       NodeState
	Annotations map[string]string
}

// ApplyManagedLabels makes the labels Hummingbird manages on a Node equal want: it sets the
// missing and drifted ones, removes the ones it set before but no longer wants, and records
// the set in ManagedLabelsAnnotation. A Node that already agrees is not written; changed says
// whether it was. A Node that is not the host's (host: its uuid; see LabelHost) is refused with
// *NotOwnedError and not written.
func (c *Cluster) ApplyManagedLabels(ctx context.Context, n Node, host string, want map[string]string) (changed bool, err error) {
	if err := checkOwner(n.Name, n.State, host); err != nil {
		return false, err
	}
	if _, needed := managedLabelsPatch(n.State.Labels, n.Annotations, want); !needed {
		return false, nil
	}
	return c.ApplyManagedLabelsByName(ctx, n.Name, host, want)
}

// ApplyManagedLabelsByName is ApplyManagedLabels for a Node read by name: the Node is read, its
// owner checked and the labels written with its resourceVersion as a precondition.
func (c *Cluster) ApplyManagedLabelsByName(ctx context.Context, name, host string, want map[string]string) (changed bool, err error) {
	changed, err = c.patchOwned(ctx, name, host, func(s NodeState, ann map[string]string) (map[string]any, error) {
		patch, needed := managedLabelsPatch(s.Labels, ann, want)
		if !needed {
			return nil, nil
		}
		var m map[string]any
		err := json.Unmarshal(patch, &m)
		return m, err
	})
	if err != nil {
		return false, fmt.Errorf("labelling node %s: %w", name, err)
	}
	return changed, nil
}

// managedLabelsPatch is the merge patch that brings a Node with labels have and annotations ann
// to the managed labels want, and whether one is needed.
func managedLabelsPatch(have, ann, want map[string]string) ([]byte, bool) {
	labels := map[string]*string{}
	for k, v := range want {
		if cur, ok := have[k]; !ok || cur != v {
			labels[k] = &v
		}
	}
	for _, k := range strings.Split(ann[ManagedLabelsAnnotation], ",") {
		if _, wanted := want[k]; k != "" && !wanted {
			if _, present := have[k]; present {
				labels[k] = nil
			}
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	managed := strings.Join(keys, ",")
	if len(labels) == 0 && ann[ManagedLabelsAnnotation] == managed {
		return nil, false
	}
	meta := map[string]any{"annotations": map[string]string{ManagedLabelsAnnotation: managed}}
	if len(labels) > 0 {
		meta["labels"] = labels
	}
	patch, _ := json.Marshal(map[string]any{"metadata": meta})
	return patch, true
}
