package provision

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"hummingbird.io/hummingbird/internal/bundle"
	"hummingbird.io/hummingbird/internal/store"
)

// unsafe is a string Ansible must take as text and never template. It is
// written as {"__ansible_unsafe": "…"}, which Ansible's JSON loader (used
// for inventory files and -e @file alike) reads as an unsafe string: a
// "{{ … }}" or "{% … %}" in a host's, a pool's or a bundle's data stays
// text on the node and is never run on the controller, which holds the CA
// key.
type unsafe string

func (u unsafe) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"__ansible_unsafe": string(u)})
}

// image is a bundle image as the playbook reads it.
type image struct {
	File unsafe `json:"file"`
	Ref  unsafe `json:"ref"`
}

// vars are the playbook's variables for one job: the site's (Config.Vars), then the
// controller's, which win. Every string the controller sets is unsafe; the site's
// variables are the controller operator's own file and are passed as written.
func (r *Runner) vars(h store.Host, pool store.Pool, job store.ProvisionJob, version, endpoint, caHash, token string, b *bundle.Bundle) map[string]any {
	v := map[string]any{}
	for k, x := range r.cfg.Vars {
		v[k] = x
	}
	v["hb_kubernetes_version"] = unsafe(version)
	v["hb_control_plane_endpoint"] = unsafe(endpoint)
	v["hb_ca_cert_hash"] = unsafe(caHash)
	v["hb_join_token"] = unsafe(token)
	v["hb_node_name"] = unsafe(h.Hostname)
	v["hb_node_ip"] = unsafe(h.MgmtIP)
	v["hb_reinstall"] = job.Reinstall
	v["hb_package_source"] = unsafe(r.cfg.PackageSource)
	// The pool's servers, when it names any; else the site's, else the host's own.
	if dns := splitList(pool.DNS); len(dns) > 0 {
		v["hb_dns_servers"] = dns
	}
	if ntp := splitList(pool.NTP); len(ntp) > 0 {
		v["hb_ntp_servers"] = ntp
	}
	if b != nil {
		v["hb_bundle_dir"] = unsafe(b.Dir)
		images := []image{}
		for _, i := range b.Images {
			images = append(images, image{File: unsafe(i.File), Ref: unsafe(i.Ref)})
		}
		v["hb_bundle_images"] = images
	}
	return v
}

func splitList(s string) []unsafe {
	out := []unsafe{}
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, unsafe(x))
		}
	}
	return out
}

// inventoryFor is the Ansible inventory of one host, in the YAML plugin's JSON form. The host's
// SSH key is named by path, never copied; its host key is learned at first contact and kept in
// knownHosts, and a changed one fails the job.
func inventoryFor(h store.Host, key, knownHosts string) map[string]any {
	user := h.SSHUser
	if user == "" {
		user = "root"
	}
	hostVars := map[string]any{
		"ansible_host":                 unsafe(h.MgmtIP),
		"ansible_user":                 unsafe(user),
		"ansible_ssh_private_key_file": key,
		"ansible_ssh_common_args": fmt.Sprintf("-o UserKnownHostsFile=%s -o StrictHostKeyChecking=accept-new "+
			"-o BatchMode=yes -o ConnectTimeout=10", knownHosts),
	}
	if user != "root" {
		hostVars["ansible_become"] = true
	}
	return map[string]any{
		"edgeworkers": map[string]any{"hosts": map[string]any{h.Hostname: hostVars}},
	}
}

// writeJobFiles writes the job's inventory and variables, readable by the controller only.
func writeJobFiles(dir string, inventory, vars map[string]any) error {
	for name, v := range map[string]any{"inventory.json": inventory, "vars.json": vars} {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("writing the job's %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("writing the job's %s: %w", name, err)
		}
	}
	return os.MkdirAll(filepath.Join(dir, "tmp"), 0o700)
}

// LoadVars reads a YAML file of site variables for the playbook (--provision-vars). Variables
// the controller sets itself are refused, so a site file cannot redirect a join.
func LoadVars(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--provision-vars: %w", err)
	}
	var vars map[string]any
	if err := yaml.Unmarshal(data, &vars); err != nil {
		return nil, fmt.Errorf("--provision-vars %s: not a YAML mapping: %w", path, err)
	}
	for k := range vars {
		if controllerVars[k] {
			return nil, fmt.Errorf("--provision-vars %s: %s is set by the controller; remove it from the file", path, k)
		}
	}
	return vars, nil
}

// controllerVars are the variables the controller computes for each job.
var controllerVars = map[string]bool{
	"hb_kubernetes_version": true, "hb_control_plane_endpoint": true, "hb_ca_cert_hash": true,
	"hb_join_token": true, "hb_node_name": true, "hb_node_ip": true, "hb_reinstall": true,
	"hb_package_source": true, "hb_bundle_dir": true, "hb_bundle_images": true,
}
