// Package collect gathers the hardware and software inventory that
// hb-agent reports to the controller (wire.Inventory).
//
// The work is split into small Collectors, in the style of a
// fingerprinting framework: each one has a name and fills its own part of
// the inventory (CPUs, memory, disks, interfaces, OS, kernel, containerd,
// kubelet). Run runs a set of them; a failing collector is reported by
// name and does not stop the others, so the agent can still send what it
// learned. Default picks the set for the running operating system (today
// Linux, which reads /proc, /sys and /etc/os-release); Collect is the
// shortcut the agent calls.
//
// Every path is taken from a Sources value, so the agent can read the host
// through mounts (a container with the host's /proc and /sys under /host)
// and tests can point at fixture trees. Hash gives a stable digest of an
// inventory without its timestamp and fast-changing values, so the agent
// sends a new inventory only when something real changed.
//
// The agent must stay small: this package imports only the standard
// library and internal/wire.
package collect
