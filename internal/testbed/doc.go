// Package testbed is Hummingbird's test bed: a real Kubernetes control plane on a bridge of its
// own, prepared the way kubeadm prepares one, and real Debian edge hosts booted with
// systemd-nspawn on that bridge, each with its own hostname, MAC, address, sshd and what a
// kubelet needs.
//
// A bed lives in one directory (see [Up]). Everything it makes on the machine is named after its
// index: the bridge hb<N>br, the host links hb<N>h<i>, the network namespaces hb<N>-<host> and
// the cgroups /hummingbird/bed<N> in every hierarchy, so that [Down] can remove all of it from
// the directory alone, even after the process that made the bed was killed.
//
// The Kubernetes binaries, the Debian root and the container images come from a cache filled by
// test/bed/prepare (see [Cache]). Traffic stays on loopback and on the bed's own bridge: the
// hosts have no default route.
package testbed
