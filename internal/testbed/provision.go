package testbed

import (
	"path/filepath"

	"hummingbird.io/hummingbird/internal/bundle"
)

// MakeBundle writes the offline bundle of the bed's Kubernetes version under dir: the bed's
// kubelet, kubeadm and kubectl, the CNI plugins of the hosts' Debian root, and the bed's images.
func (c Cache) MakeBundle(dir string) (*bundle.Bundle, error) {
	var images []string
	for _, img := range Images() {
		images = append(images, filepath.Join(c.Images(), ImageFile(img.Name)))
	}
	return bundle.Make(dir, KubernetesVersion, bundle.Sources{
		Bin:    filepath.Dir(c.Bin("kubelet")),
		CNI:    filepath.Join(c.Rootfs(), "usr", "lib", "cni"),
		Images: images,
	})
}

// ProvisionVars are the provisioning playbook's settings for the bed's hosts, which are
// containers on a shared kernel: the bed's control plane uses the cgroupfs driver, the hosts lack
// CAP_SYS_RESOURCE and br_netfilter, the machine may be cgroup v1 (which kubeadm's preflight
// and the kubelet refuse unless told), and several kubelets share the machine's cgroups (each
// host's pods go under its own cgroup root, see nodeSetup).
func ProvisionVars() map[string]any {
	return map[string]any{
		"hb_cgroup_driver":                     "cgroupfs",
		"hb_containerd_restrict_oom_score_adj": true,
		"hb_require_br_netfilter":              false,
		"hb_apply_sysctl":                      false,
		"hb_kubeadm_ignore_preflight_errors": []string{
			"FileContent--proc-sys-net-bridge-bridge-nf-call-iptables", "SystemVerification",
		},
		"hb_kubelet_config": map[string]any{
			"cgroupRoot":   podsCgroup,
			"failCgroupV1": false,
			"failSwapOn":   false,
		},
	}
}
