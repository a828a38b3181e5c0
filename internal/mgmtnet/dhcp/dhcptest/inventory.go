// Package dhcptest helps test the DHCP server and its peers: an in-memory
// mgmtnet.Inventory, network namespaces joined by veth pairs, and a small
// DHCP client that speaks through a UDP socket.
package dhcptest

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"hummingbird.io/hummingbird/internal/mgmtnet"
)

// Inventory is an in-memory mgmtnet.Inventory. A MAC has at most one
// binding; Binding returns it when link is inside its network, ErrNotHere
// when not, ErrUnknownMAC for other MACs. It records every call.
type Inventory struct {
	mu         sync.Mutex
	hosts      map[string]mgmtnet.Binding
	err        error
	links      []netip.Addr
	discovered []Discovery
	leased     []Lease
	released   []string
}

// Discovery is one call of Discovered.
type Discovery struct {
	MAC  string
	Link netip.Addr
}

// Lease is one call of Leased.
type Lease struct {
	MAC     string
	IP      netip.Addr
	Expires time.Time
}

// NewInventory returns an inventory holding bs.
func NewInventory(bs ...mgmtnet.Binding) *Inventory {
	f := &Inventory{hosts: make(map[string]mgmtnet.Binding)}
	for _, b := range bs {
		f.hosts[b.MAC.String()] = b
	}
	return f
}

// Fail makes Binding return err (nil: answer again).
func (f *Inventory) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Held returns the binding of mac, if any.
func (f *Inventory) Held(mac net.HardwareAddr) (mgmtnet.Binding, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.hosts[mac.String()]
	return b, ok
}

// Binding implements mgmtnet.Inventory.
func (f *Inventory) Binding(ctx context.Context, mac net.HardwareAddr, link netip.Addr) (mgmtnet.Binding, error) {
	if err := ctx.Err(); err != nil {
		return mgmtnet.Binding{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links = append(f.links, link)
	if f.err != nil {
		return mgmtnet.Binding{}, f.err
	}
	b, ok := f.hosts[mac.String()]
	if !ok {
		return mgmtnet.Binding{}, mgmtnet.ErrUnknownMAC
	}
	if !b.Network.Contains(link) {
		return mgmtnet.Binding{}, mgmtnet.ErrNotHere
	}
	b.MAC = slices.Clone(b.MAC)
	b.DNS = slices.Clone(b.DNS)
	b.NTP = slices.Clone(b.NTP)
	return b, nil
}

// Discovered implements mgmtnet.Inventory.
func (f *Inventory) Discovered(ctx context.Context, mac net.HardwareAddr, link netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discovered = append(f.discovered, Discovery{MAC: mac.String(), Link: link})
	return nil
}

// Leased implements mgmtnet.Inventory.
func (f *Inventory) Leased(ctx context.Context, b mgmtnet.Binding, expires time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leased = append(f.leased, Lease{MAC: b.MAC.String(), IP: b.IP, Expires: expires})
	return nil
}

// Released implements mgmtnet.Inventory.
func (f *Inventory) Released(ctx context.Context, mac net.HardwareAddr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, mac.String())
	return nil
}

// Links returns the links Binding was asked about, in order.
func (f *Inventory) Links() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.links)
}

// Discoveries returns the calls of Discovered, in order.
func (f *Inventory) Discoveries() []Discovery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.discovered)
}

// Leases returns the calls of Leased, in order.
func (f *Inventory) Leases() []Lease {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.leased)
}

// Releases returns the MACs given to Released, in order.
func (f *Inventory) Releases() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.released)
}
