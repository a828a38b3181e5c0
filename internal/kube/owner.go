package kube

// Which Nodes are Hummingbird's. A host and a Node share a name, and names are chosen by whoever
// adds a host: a name alone proves nothing. Hummingbird acts (labels, cordon, drain, app
// placement) only on a Node that carries LabelHost with the host's uuid.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

// LabelHost marks a Node as Hummingbird's: its value is the uuid of the host whose Node it is.
//
// Its prefix, node-restriction.kubernetes.io/, is one the NodeRestriction admission plugin keeps
// kubelets from writing, on their own Node or at registration (--node-labels): only a client
// allowed to update any Node, like the controller's kubeconfig or a cluster admin, can set it. The
// controller sets it only on a Node it saw register from one of its own provisioning jobs (see
// ClaimNode), so a machine that names itself like a host, or a host named like an existing Node,
// never gets it. A cluster admin may set it by hand to vouch for a Node Hummingbird did not join.
const LabelHost = "node-restriction.kubernetes.io/hummingbird-host"

// NotOwnedError refuses to act on a Node that is not the given host's.
type NotOwnedError struct {
	Node string
	Host string // the host's uuid
	// Owner is the uuid the Node's LabelHost names; empty: the Node has none.
	Owner string
}

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("node %s: %s", e.Node, NotOwnedReason(e.Owner))
}

// NotOwnedReason says why a Node whose LabelHost is owner is not a host's, and what to do.
func NotOwnedReason(owner string) string {
	if owner == "" {
		return "a Node of this name exists that Hummingbird did not join (it has no " + LabelHost + " label), so " +
			"Hummingbird leaves it alone: rename the host, or, if the Node really is this host's, have a cluster " +
			"admin delete the Node and provision the host again, or label it " + LabelHost + "=<host uuid>"
	}
	return "the Node of this name belongs to another host, uuid " + owner + " (" + LabelHost + "), so Hummingbird " +
		"leaves it alone: a host of this name was deleted and added again? Have a cluster admin delete the Node " +
		"and provision the host again"
}

// Owns says whether the Node in state s is the host with uuid host's.
func (s NodeState) Owns(host string) bool { return s.Exists && host != "" && s.Owner == host }

// checkOwner refuses a Node that is not host's.
func checkOwner(name string, s NodeState, host string) error {
	if !s.Owns(host) {
		return &NotOwnedError{Node: name, Host: host, Owner: s.Owner}
	}
	return nil
}

// patchOwned reads Node name, checks that it is host's, and applies the merge patch that build
// makes of it (nil: nothing to do), with the resourceVersion read as a precondition, so that
// the check and the write see the same Node; a Node changed in between is read again.
func (c *Cluster) patchOwned(ctx context.Context, name, host string, build func(NodeState, map[string]string) (map[string]any, error)) (changed bool, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		changed = false
		n, err := c.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		s := nodeState(n)
		if err := checkOwner(name, s, host); err != nil {
			return err
		}
		patch, err := build(s, n.Annotations)
		if err != nil || patch == nil {
			return err
		}
		meta, _ := patch["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			patch["metadata"] = meta
		}
		meta["resourceVersion"] = n.ResourceVersion
		data, err := json.Marshal(patch)
		if err != nil {
			return err
		}
		if _, err := c.cs.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, data, metav1.PatchOptions{}); err != nil {
			return err
		}
		changed = true
		return nil
	})
	return changed, err
}

// ClaimNode marks Node name as host's (LabelHost), unless it is already: the caller has made
// sure the Node registered from the host's own provisioning job (RegisteredWithToken) or meets
// the adoption rule of Nodes joined before the marker existed. A Node that is another host's
// is refused with *NotOwnedError; so is a Node whose uid is not uid (made again since it was
// checked), unless uid is empty.
func (c *Cluster) ClaimNode(ctx context.Context, name, host string, uid types.UID) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := c.cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if uid != "" && n.UID != uid {
			return fmt.Errorf("node %s was made again while Hummingbird checked where it came from: it is left alone, and checked again on the next pass", name)
		}
		owner := n.Labels[LabelHost]
		if owner == host {
			return nil
		}
		if owner != "" {
			return &NotOwnedError{Node: name, Host: host, Owner: owner}
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": n.ResourceVersion,
			"labels":          map[string]string{LabelHost: host},
		}})
		_, err = c.cs.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("marking node %s as Hummingbird's: %w", name, err)
	}
	return nil
}

// RegisteredWithToken says whether the kubelet of Node name got its client certificate through
// the bootstrap token tokenID: whether the cluster holds an approved kubelet client CSR for
// system:node:NAME that system:bootstrap:TOKENID filed. Only a kubeadm join with that token
// files one, and the job that made the token alone knows its secret.
func (c *Cluster) RegisteredWithToken(ctx context.Context, name, tokenID string) (bool, error) {
	list, err := c.cs.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		if apierrors.IsForbidden(err) {
			return false, fmt.Errorf("listing the cluster's certificate signing requests: %w (give the user of the "+
				"controller's kubeconfig the right to list certificatesigningrequests: the controller checks that a Node "+
				"registered from its provisioning job before it takes it as a host's)", err)
		}
		return false, fmt.Errorf("listing the cluster's certificate signing requests: %w", err)
	}
	for _, csr := range list.Items {
		if csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName ||
			csr.Spec.Username != "system:bootstrap:"+tokenID || !approved(csr) {
			continue
		}
		block, _ := pem.Decode(csr.Spec.Request)
		if block == nil {
			continue
		}
		req, err := x509.ParseCertificateRequest(block.Bytes)
		if err == nil && req.Subject.CommonName == "system:node:"+name {
			return true, nil
		}
	}
	return false, nil
}

func approved(csr certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved {
			return true
		}
	}
	return false
}
