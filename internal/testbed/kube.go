package testbed

import (
	"context"
	"encoding/json"
	"fmt"
)

// KubectlInput is [ControlPlane.Kubectl] with data on kubectl's standard input, as
// `kubectl apply -f -` reads it.
func (cp *ControlPlane) KubectlInput(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	return runInput(ctx, stdin, cp.cache.Bin("kubectl"), append([]string{"--kubeconfig", cp.Kubeconfig}, args...)...)
}

// Node is the part of a Kubernetes Node the bed's tests look at.
type Node struct {
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Unschedulable bool `json:"unschedulable"`
	} `json:"spec"`
	Status struct {
		Conditions []Condition `json:"conditions"`
		NodeInfo   struct {
			KubeletVersion string `json:"kubeletVersion"`
		} `json:"nodeInfo"`
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
	} `json:"status"`
}

// Pod is the part of a Kubernetes Pod the bed's tests look at.
type Pod struct {
	Status struct {
		Phase      string      `json:"phase"`
		PodIP      string      `json:"podIP"`
		Conditions []Condition `json:"conditions"`
	} `json:"status"`
}

// Condition is a condition of a Node or a Pod.
type Condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Ready tells whether the node's Ready condition is True.
func (n Node) Ready() bool {
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// GetJSON runs `kubectl get <args> -o json` and decodes the result into v.
func (cp *ControlPlane) GetJSON(ctx context.Context, v any, args ...string) error {
	out, err := cp.Kubectl(ctx, append(append([]string{"get"}, args...), "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("decoding kubectl get %v: %w", args, err)
	}
	return nil
}

// WaitNodeReady waits until the Node called name exists and is Ready, and returns it.
func (cp *ControlPlane) WaitNodeReady(ctx context.Context, name string) (Node, error) {
	var n Node
	err := waitFor(ctx, "node "+name+" to be Ready", func(ctx context.Context) error {
		n = Node{}
		if err := cp.GetJSON(ctx, &n, "node", name); err != nil {
			return err
		}
		if !n.Ready() {
			return fmt.Errorf("node %s is not Ready: %+v", name, n.Status.Conditions)
		}
		return nil
	})
	return n, err
}

// WaitPodRunning waits until the pod name in namespace ns is Running, and returns it.
func (cp *ControlPlane) WaitPodRunning(ctx context.Context, ns, name string) (Pod, error) {
	var p Pod
	err := waitFor(ctx, "pod "+ns+"/"+name+" to run", func(ctx context.Context) error {
		p = Pod{}
		if err := cp.GetJSON(ctx, &p, "pod", "--namespace", ns, name); err != nil {
			return err
		}
		if p.Status.Phase != "Running" {
			return fmt.Errorf("pod %s/%s is %q: %+v", ns, name, p.Status.Phase, p.Status.Conditions)
		}
		return nil
	})
	return p, err
}

// CreateNode makes a Node called name with labels, as a cluster admin can, with no kubelet
// behind it: a Node Hummingbird did not join, like a control plane's. It has room for pods
// (110, 4 CPUs, 8 GiB), so that the scheduler may place pods on it as on any Node.
func (cp *ControlPlane) CreateNode(ctx context.Context, name string, labels map[string]string) error {
	resources := map[string]string{"pods": "110", "cpu": "4", "memory": "8Gi"}
	node, err := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": name, "labels": labels},
		"status":   map[string]any{"capacity": resources, "allocatable": resources},
	})
	if err != nil {
		return err
	}
	if out, err := cp.KubectlInput(ctx, node, "create", "-f", "-"); err != nil {
		return fmt.Errorf("creating node %s: %w\n%s", name, err, out)
	}
	return nil
}
