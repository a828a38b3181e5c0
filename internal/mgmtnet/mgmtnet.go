// Package mgmtnet describes what the management network's services need
// from the inventory: which address and options a MAC gets on a given
// subnet, and where to record leases and unknown MACs. The DHCP server
// (package mgmtnet/dhcp) consumes Inventory; package inventory implements
// it on the store. This package uses only the standard library.
package mgmtnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// ErrUnknownMAC: no host of the inventory has this management MAC. The
// server gives no lease and reports the MAC with Discovered.
var ErrUnknownMAC = errors.New("no host has this MAC")

// ErrNotHere: the host exists but gets no address on this subnet: it has no
// management address yet, or its address is from another pool than the
// subnet the request came from. The server gives no lease.
var ErrNotHere = errors.New("the host has no address on this subnet")

// Binding is what one host gets from DHCP.
type Binding struct {
	HostID   int64
	Hostname string
	MAC      net.HardwareAddr
	IP       netip.Addr   // the host's management address
	Network  netip.Prefix // the pool's network: gives the subnet mask
	Gateway  netip.Addr   // the router option; invalid when the pool has none
	DNS      []netip.Addr
	NTP      []netip.Addr
	Lease    time.Duration
	PoolID   int64
	PoolName string
}

// Inventory is what the DHCP server asks of the inventory. link is an
// address inside the requester's subnet: the relay's giaddr when the
// request was relayed, the client's own address (ciaddr) when it renews by
// unicast, else the address of the interface the request arrived on. The
// binding comes from the pool whose network contains link.
// Errors other than ErrUnknownMAC and ErrNotHere are the inventory's own
// failures (the database is down, …): the server answers nothing and logs.
type Inventory interface {
	Binding(ctx context.Context, mac net.HardwareAddr, link netip.Addr) (Binding, error)
	// Discovered records a MAC that asked for an address and is in no host.
	Discovered(ctx context.Context, mac net.HardwareAddr, link netip.Addr) error
	// Leased records that b is acknowledged until expires. It runs before
	// the ACK is sent, and an error means no ACK: it must be quick.
	Leased(ctx context.Context, b Binding, expires time.Time) error
	// Released records that the client gave its lease back.
	Released(ctx context.Context, mac net.HardwareAddr) error
}
