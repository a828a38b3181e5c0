package inventory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/mgmtnet"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

// ManagementPoolName is the name of the pool made from the controller's
// management network settings at first start.
const ManagementPoolName = "management"

// DefaultLease is the DHCP lease time of a pool that names none.
const DefaultLease = 24 * time.Hour

// Range is an inclusive range of addresses.
type Range struct{ First, Last netip.Addr }

func (r Range) String() string { return r.First.String() + "-" + r.Last.String() }

func (r Range) contains(a netip.Addr) bool {
	return r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// Pool is an address pool, parsed.
type Pool struct {
	Row      store.Pool
	Network  netip.Prefix
	Ranges   []Range // empty: the whole network
	Gateway  netip.Addr
	DNS      []netip.Addr
	NTP      []netip.Addr
	Reserved []netip.Addr
	Lease    time.Duration
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func joinAddrs(as []netip.Addr) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return strings.Join(out, ",")
}

func parseAddrs(field string, list []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range list {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || a.Zone() != "" {
			return nil, problem.Invalidf(field, "%s: %q is not an IP address", field, s)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// buildPool checks a pool's settings and returns it parsed, with its row's
// text fields normalized.
func buildPool(row store.Pool, ranges, dns, ntp, reserved []string) (Pool, error) {
	p := Pool{Row: row}
	if err := CheckGroup(row.Name); err != nil {
		return p, problem.Invalidf("name", "pool name %q: use lowercase letters, digits and '-', 63 at most, like site-a", row.Name)
	}
	if row.Mode != apitype.PoolStatic && row.Mode != apitype.PoolDynamic {
		return p, problem.Invalidf("mode", "mode %q: use static (operators give addresses) or dynamic (the controller allocates them)", row.Mode)
	}
	net, err := netip.ParsePrefix(strings.TrimSpace(row.Network))
	if err != nil {
		return p, problem.Invalidf("network", "network %q is not a CIDR like 192.168.204.0/24", row.Network)
	}
	// The size first: a network with host bits set is then told a masked
	// network that passes.
	if net.Addr().Is4() && net.Bits() > 30 || net.Addr().Is6() && net.Bits() > 126 {
		return p, problem.Invalidf("network", "network %s is too small to hold hosts", net)
	}
	if net != net.Masked() {
		return p, problem.Invalidf("network", "network %s has host bits set: did you mean %s?", net, net.Masked())
	}
	p.Network = net
	p.Row.Network = net.String()
	inside := func(field string, a netip.Addr) error {
		if !net.Contains(a) {
			return problem.Invalidf(field, "%s %s is outside the pool's network %s", field, a, net)
		}
		return nil
	}
	for _, r := range ranges {
		first, last, ok := strings.Cut(r, "-")
		a, err1 := netip.ParseAddr(strings.TrimSpace(first))
		b, err2 := netip.ParseAddr(strings.TrimSpace(last))
		if !ok || err1 != nil || err2 != nil {
			return p, problem.Invalidf("ranges", "range %q: write it as first-last, like 192.168.204.100-192.168.204.199", r)
		}
		rg := Range{a.Unmap(), b.Unmap()}
		if err := inside("ranges", rg.First); err != nil {
			return p, err
		}
		if err := inside("ranges", rg.Last); err != nil {
			return p, err
		}
		if rg.Last.Less(rg.First) {
			return p, problem.Invalidf("ranges", "range %s ends before it starts", rg)
		}
		for _, o := range p.Ranges {
			if o.contains(rg.First) || o.contains(rg.Last) || rg.contains(o.First) {
				return p, problem.Invalidf("ranges", "ranges %s and %s overlap", o, rg)
			}
		}
		p.Ranges = append(p.Ranges, rg)
	}
	rs := make([]string, len(p.Ranges))
	for i, r := range p.Ranges {
		rs[i] = r.String()
	}
	p.Row.Ranges = strings.Join(rs, ",")
	if g := strings.TrimSpace(row.Gateway); g != "" {
		gw, err := parseAddrs("gateway", []string{g})
		if err != nil {
			return p, err
		}
		if err := inside("gateway", gw[0]); err != nil {
			return p, err
		}
		p.Gateway = gw[0]
		p.Row.Gateway = gw[0].String()
	}
	if p.DNS, err = parseAddrs("dns", dns); err != nil {
		return p, err
	}
	if p.NTP, err = parseAddrs("ntp", ntp); err != nil {
		return p, err
	}
	if p.Reserved, err = parseAddrs("reserved", reserved); err != nil {
		return p, err
	}
	for _, r := range p.Reserved {
		if err := inside("reserved", r); err != nil {
			return p, err
		}
	}
	p.Row.DNS, p.Row.NTP, p.Row.Reserved = joinAddrs(p.DNS), joinAddrs(p.NTP), joinAddrs(p.Reserved)
	if p.Row.LeaseSeconds == 0 {
		p.Row.LeaseSeconds = int64(DefaultLease / time.Second)
	}
	if p.Row.LeaseSeconds < 60 || p.Row.LeaseSeconds > 365*24*3600 {
		return p, problem.Invalidf("lease_seconds", "lease_seconds %d: give 60 (a minute) to 31536000 (a year)", p.Row.LeaseSeconds)
	}
	p.Lease = time.Duration(p.Row.LeaseSeconds) * time.Second
	return p, nil
}

// ParsePool parses a stored pool.
func ParsePool(row store.Pool) (Pool, error) {
	return buildPool(row, splitList(row.Ranges), splitList(row.DNS), splitList(row.NTP), splitList(row.Reserved))
}

// excluded says whether a is never given to a host: the network address,
// the IPv4 broadcast address, the gateway or a reserved address.
func (p Pool) excluded(a netip.Addr) string {
	switch {
	case a == p.Network.Addr():
		return "the network address of " + p.Network.String()
	case a == p.Gateway:
		return "the pool's gateway"
	}
	if b, ok := broadcast(p.Network); ok && a == b {
		return "the broadcast address of " + p.Network.String()
	}
	for _, r := range p.Reserved {
		if a == r {
			return "reserved (a controller's address)"
		}
	}
	return ""
}

// keeps says whether the pool keeps a for a purpose of its own, whatever
// network it is in: a reserved (controller's) address, the gateway, a DNS
// or an NTP server.
func (p Pool) keeps(a netip.Addr) string {
	switch {
	case slices.Contains(p.Reserved, a):
		return "reserved (a controller's address)"
	case p.Gateway.IsValid() && a == p.Gateway:
		return "the gateway"
	case slices.Contains(p.DNS, a):
		return "a DNS server"
	case slices.Contains(p.NTP, a):
		return "an NTP server"
	}
	return ""
}

// CheckAddress checks an address an operator gives a host in this pool
// (any address of the network that is not excluded, also outside the
// dynamic ranges) and returns it normalized.
func (p Pool) CheckAddress(ip string) (string, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil || a.Zone() != "" {
		return "", problem.Invalidf("mgmt_ip", "mgmt_ip %q is not an IP address", ip)
	}
	a = a.Unmap()
	if !p.Network.Contains(a) {
		return "", problem.Invalidf("mgmt_ip", "mgmt_ip %s is outside pool %s (%s); give an address inside it, or another pool with --pool", a, p.Row.Name, p.Network)
	}
	if why := p.excluded(a); why != "" {
		return "", problem.Invalidf("mgmt_ip", "mgmt_ip %s is %s; pick another address", a, why)
	}
	return a.String(), nil
}

// lastAddr is the highest address of p: every host bit set.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= p.Bits() {
				b[i] |= 0x80 >> bit
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// candidates returns up to n addresses of the ranges (or of the network)
// at or above from (invalid: from the start), lowest first, that are not
// excluded.
func (p Pool) candidates(from netip.Addr, n int) []netip.Addr {
	ranges := p.Ranges
	if len(ranges) == 0 {
		ranges = []Range{{p.Network.Addr(), lastAddr(p.Network)}}
	}
	var out []netip.Addr
	for _, r := range ranges {
		a := r.First
		if from.IsValid() && a.Less(from) {
			if r.Last.Less(from) {
				continue
			}
			a = from
		}
		for ; a.IsValid() && r.contains(a); a = a.Next() {
			if p.excluded(a) == "" {
				if out = append(out, a); len(out) == n {
					return out
				}
			}
		}
	}
	return out
}

// Allocate returns the lowest address of the ranges (or of the network)
// at or above from (invalid: from the start) that is neither excluded
// nor held, asking held which of a batch of candidates are; ok is false
// when there is none. Batches grow from 16 to 1024 addresses, so that
// the first is small (from is usually free) and a long run of held
// addresses costs few questions.
func (p Pool) Allocate(from netip.Addr, held func([]netip.Addr) (map[netip.Addr]bool, error)) (a netip.Addr, ok bool, err error) {
	for n := 16; ; n = min(4*n, 1024) {
		cands := p.candidates(from, n)
		if len(cands) == 0 {
			return netip.Addr{}, false, nil
		}
		used, err := held(cands)
		if err != nil {
			return netip.Addr{}, false, err
		}
		for _, c := range cands {
			if !used[c] {
				return c, true, nil
			}
		}
		if len(cands) < n {
			return netip.Addr{}, false, nil
		}
		from = cands[len(cands)-1].Next()
		if !from.IsValid() {
			return netip.Addr{}, false, nil
		}
	}
}

// PoolInfo is a pool with how many hosts hold an address of it.
type PoolInfo struct {
	Pool
	Used int
}

func (s *Service) poolEvent(tx store.Tx, at time.Time, action, actor string, p store.Pool, reason string) error {
	return tx.AppendEvent(&store.Event{
		UUID: s.newUUID(), Time: at, EntityType: "addrpool", EntityID: "addrpool=" + p.Name,
		Action: action, Actor: actor, Reason: reason,
	})
}

// insertPool stores a checked pool, refusing a name in use or a network
// that overlaps another pool's.
func (s *Service) insertPool(tx store.Tx, p *Pool) error {
	if _, err := tx.PoolByName(p.Row.Name); err == nil {
		return problem.Conflictf("name", "there is already a pool named %s", p.Row.Name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	all, err := tx.ListPools()
	if err != nil {
		return err
	}
	for _, o := range all {
		on, err := netip.ParsePrefix(o.Network)
		if err == nil && on.Overlaps(p.Network) {
			return problem.Conflictf("network", "network %s overlaps %s of pool %s", p.Network, on, o.Name)
		}
	}
	id, err := tx.NextID("pools")
	if err != nil {
		return err
	}
	p.Row.ID = id
	return tx.InsertPool(&p.Row)
}

// AddPool adds an edge address pool (a routed subnet of edge nodes).
func (s *Service) AddPool(ctx context.Context, actor string, req apitype.PoolCreate) (PoolInfo, error) {
	now := s.stamp()
	p, err := buildPool(store.Pool{
		UUID: s.newUUID(), Name: strings.TrimSpace(req.Name), Role: apitype.RoleEdge, Mode: req.Mode,
		Network: req.Network, Gateway: req.Gateway, LeaseSeconds: req.LeaseSeconds,
		CreatedAt: now, UpdatedAt: now,
	}, req.Ranges, req.DNS, req.NTP, req.Reserved)
	if err != nil {
		return PoolInfo{}, err
	}
	err = s.st.Write(ctx, func(tx store.Tx) error {
		if err := s.insertPool(tx, &p); err != nil {
			return err
		}
		return s.poolEvent(tx, now, "addrpool.add", actor, p.Row,
			fmt.Sprintf("address pool %s (%s, %s) added", p.Row.Name, p.Network, p.Row.Mode))
	})
	return PoolInfo{Pool: p}, err
}

// CheckManagementSettings checks the settings the management pool is made
// from, without storing anything.
func CheckManagementSettings(mode, subnet string, controllers []string) error {
	_, err := buildPool(store.Pool{Name: ManagementPoolName, Role: apitype.RoleManagement, Mode: mode, Network: subnet}, nil, nil, nil, controllers)
	if err != nil {
		return fmt.Errorf("management network settings (--mgmt-mode, --mgmt-subnet, --mgmt-controller-ips): %w", err)
	}
	return nil
}

// EnsureManagementPool makes the management pool from the controller's
// settings when there is none yet, and returns the management pool.
func (s *Service) EnsureManagementPool(ctx context.Context, mode, subnet string, controllers []string) (Pool, bool, error) {
	var (
		p       Pool
		created bool
	)
	err := s.st.Write(ctx, func(tx store.Tx) error {
		row, err := tx.ManagementPool()
		if err == nil {
			p, err = ParsePool(row)
			return err
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		now := s.stamp()
		p, err = buildPool(store.Pool{
			UUID: s.newUUID(), Name: ManagementPoolName, Role: apitype.RoleManagement, Mode: mode,
			Network: subnet, CreatedAt: now, UpdatedAt: now,
		}, nil, nil, nil, controllers)
		if err != nil {
			return fmt.Errorf("management network settings: %w", err)
		}
		if err := s.insertPool(tx, &p); err != nil {
			return err
		}
		created = true
		return s.poolEvent(tx, now, "addrpool.add", "controller", p.Row,
			fmt.Sprintf("management pool made from the controller's settings (%s, %s)", p.Network, mode))
	})
	return p, created, err
}

func lookupPool(tx store.Tx, ref string) (store.Pool, error) {
	row, err := tx.PoolByName(ref)
	if errors.Is(err, store.ErrNotFound) {
		return row, problem.NotFoundf("no address pool %q (hbctl addrpool-list shows them)", ref)
	}
	return row, err
}

func poolInfo(tx store.Tx, row store.Pool) (PoolInfo, error) {
	p, err := ParsePool(row)
	if err != nil {
		return PoolInfo{}, fmt.Errorf("stored pool %s: %w", row.Name, err)
	}
	used, err := tx.CountPoolHosts(row.ID)
	return PoolInfo{Pool: p, Used: used}, err
}

// GetPool returns a pool by name.
func (s *Service) GetPool(ctx context.Context, ref string) (PoolInfo, error) {
	var out PoolInfo
	err := s.st.Read(ctx, func(tx store.Tx) error {
		row, err := lookupPool(tx, ref)
		if err != nil {
			return err
		}
		out, err = poolInfo(tx, row)
		return err
	})
	return out, err
}

// ListPools returns every pool, the management pool first.
func (s *Service) ListPools(ctx context.Context) ([]PoolInfo, error) {
	var out []PoolInfo
	err := s.st.Read(ctx, func(tx store.Tx) error {
		rows, err := tx.ListPools()
		if err != nil {
			return err
		}
		for _, r := range rows {
			pi, err := poolInfo(tx, r)
			if err != nil {
				return err
			}
			out = append(out, pi)
		}
		return nil
	})
	return out, err
}

// DeletePool deletes an edge pool no host uses.
func (s *Service) DeletePool(ctx context.Context, actor, ref string) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		row, err := lookupPool(tx, ref)
		if err != nil {
			return err
		}
		if row.Role == apitype.RoleManagement {
			return problem.NotSupportedf("pool %s is the management network and cannot be deleted", row.Name)
		}
		hosts, err := tx.HostsInPool(row.ID, 11)
		if err != nil {
			return err
		}
		if len(hosts) > 0 {
			names := make([]string, 0, 10)
			for i, h := range hosts {
				if i == 10 {
					names = append(names, "…")
					break
				}
				names = append(names, h.Hostname)
			}
			return problem.Conflictf("", "pool %s is in use by %s; move or delete those hosts first", row.Name, strings.Join(names, ", "))
		}
		if err := tx.DeletePool(row.ID); err != nil {
			return err
		}
		return s.poolEvent(tx, s.stamp(), "addrpool.delete", actor, row, fmt.Sprintf("address pool %s deleted", row.Name))
	})
}

// assignAddress gives h its pool and management address inside tx:
// poolName picks the pool (empty: keep the host's, or the management pool
// for a new host); a static pool needs mgmt_ip; a dynamic pool takes a
// pinned mgmt_ip or allocates the lowest free address.
func (s *Service) assignAddress(tx store.Tx, h *store.Host, old *store.Host, poolName string) error {
	var (
		row store.Pool
		err error
	)
	switch {
	case poolName != "":
		row, err = tx.PoolByName(poolName)
		if errors.Is(err, store.ErrNotFound) {
			return problem.Invalidf("pool", "no address pool %q (hbctl addrpool-list shows them)", poolName)
		}
	case h.PoolID != 0:
		row, err = tx.PoolByID(h.PoolID)
	default:
		row, err = tx.ManagementPool()
		if errors.Is(err, store.ErrNotFound) {
			return problem.Invalidf("pool", "there is no management pool yet; name a pool with --pool")
		}
	}
	if err != nil {
		return err
	}
	p, err := ParsePool(row)
	if err != nil {
		return fmt.Errorf("stored pool %s: %w", row.Name, err)
	}
	if old != nil && row.ID != old.PoolID && h.MgmtIP == old.MgmtIP && p.Row.Mode == apitype.PoolDynamic {
		h.MgmtIP = "" // moving to a dynamic pool without an address: allocate one there
	}
	h.PoolID, h.PoolName = row.ID, row.Name
	if h.Personality == apitype.PersonalityEdgeworker && p.Row.Mode == apitype.PoolDynamic && h.MgmtMAC == "" {
		return problem.Invalidf("mgmt_mac", "an edgeworker on the dynamic pool %s needs its mgmt_mac (-m): the controller serves its address by DHCP to that MAC", row.Name)
	}
	if old != nil && h.MgmtIP != "" && h.MgmtIP == old.MgmtIP && h.PoolID == old.PoolID {
		return nil // the address it holds stays
	}
	if h.MgmtIP != "" {
		h.MgmtIP, err = p.CheckAddress(h.MgmtIP)
		return err
	}
	if p.Row.Mode == apitype.PoolStatic {
		return problem.Invalidf("mgmt_ip", "pool %s is static: give the host's address in %s with mgmt_ip (-i)", row.Name, p.Network)
	}
	if err := tx.LockPool(row.ID); err != nil {
		return err
	}
	// Read again under the lock: another allocation may have moved it.
	if row, err = tx.PoolByID(row.ID); err != nil {
		return err
	}
	var from, stored netip.Addr
	if row.AllocFrom != "" {
		if stored, err = netip.ParseAddr(row.AllocFrom); err != nil {
			return fmt.Errorf("stored pool %s: allocation start %q: %w", row.Name, row.AllocFrom, err)
		}
		from = stored
	}
	if old != nil && old.PoolID == row.ID && from.IsValid() {
		// The host's own address, below the start, is free for it.
		if own, err := netip.ParseAddr(old.MgmtIP); err == nil && own.Less(from) {
			from = own
		}
	}
	held := func(cands []netip.Addr) (map[netip.Addr]bool, error) {
		list := make([]string, len(cands))
		for i, c := range cands {
			list[i] = c.String()
		}
		got, err := tx.HeldAddresses(list)
		if err != nil {
			return nil, err
		}
		used := make(map[netip.Addr]bool, len(got))
		for _, u := range got {
			// The host's own address is free for it.
			if a, err := netip.ParseAddr(u); err == nil && (old == nil || u != old.MgmtIP) {
				used[a] = true
			}
		}
		return used, nil
	}
	a, ok, err := p.Allocate(from, held)
	if err != nil {
		return err
	}
	if !ok {
		return problem.Conflictf("mgmt_ip", "pool %s has no free address left; widen its ranges or free addresses", row.Name)
	}
	h.MgmtIP = a.String()
	// Every address below a was held, and a is now; a host that took its
	// own address back leaves the start where it was.
	next := a.Next()
	if !next.IsValid() || (stored.IsValid() && next.Less(stored)) {
		return nil
	}
	return tx.SetPoolAllocFrom(row.ID, next.String())
}

// releaseAddress notes that the host holding ip of the pool poolID gave it
// up: the pool's next allocation starts looking there, if not lower.
func releaseAddress(tx store.Tx, poolID int64, ip string) error {
	a, err := netip.ParseAddr(ip)
	if poolID == 0 || err != nil {
		return nil
	}
	if err := tx.LockPool(poolID); err != nil {
		return err
	}
	row, err := tx.PoolByID(poolID)
	if err != nil {
		return err
	}
	if row.AllocFrom == "" {
		return nil // the next allocation looks from the start anyway
	}
	if from, err := netip.ParseAddr(row.AllocFrom); err == nil && !a.Less(from) {
		return nil
	}
	return tx.SetPoolAllocFrom(poolID, a.String())
}

// Binding implements mgmtnet.Inventory.
func (s *Service) Binding(ctx context.Context, mac net.HardwareAddr, link netip.Addr) (mgmtnet.Binding, error) {
	var b mgmtnet.Binding
	err := s.st.Read(ctx, func(tx store.Tx) error {
		h, err := tx.HostByMAC(mac.String())
		if errors.Is(err, store.ErrNotFound) {
			return mgmtnet.ErrUnknownMAC
		}
		if err != nil {
			return err
		}
		if h.MgmtIP == "" || h.PoolID == 0 {
			return fmt.Errorf("host %s has no management address: %w", h.Hostname, mgmtnet.ErrNotHere)
		}
		row, err := tx.PoolByID(h.PoolID)
		if err != nil {
			return err
		}
		p, err := ParsePool(row)
		if err != nil {
			return fmt.Errorf("stored pool %s: %w", row.Name, err)
		}
		if !p.Network.Contains(link.Unmap()) {
			return fmt.Errorf("host %s is in pool %s (%s), the request came from %s: %w", h.Hostname, row.Name, p.Network, link, mgmtnet.ErrNotHere)
		}
		ip, err := netip.ParseAddr(h.MgmtIP)
		if err != nil {
			return fmt.Errorf("host %s: stored address %q: %w", h.Hostname, h.MgmtIP, err)
		}
		b = mgmtnet.Binding{
			HostID: h.ID, Hostname: h.Hostname, MAC: mac, IP: ip, Network: p.Network,
			Gateway: p.Gateway, DNS: p.DNS, NTP: p.NTP, Lease: p.Lease, PoolID: row.ID, PoolName: row.Name,
		}
		return nil
	})
	return b, err
}

// DiscoveredQuiet is how long a discovered MAC is not logged again.
const DiscoveredQuiet = 10 * time.Minute

// Discovered implements mgmtnet.Inventory: an event the operator can act
// on, once per MAC per DiscoveredQuiet, whichever controller saw it.
func (s *Service) Discovered(ctx context.Context, mac net.HardwareAddr, link netip.Addr) error {
	now := s.stamp()
	return s.st.Write(ctx, func(tx store.Tx) error {
		last, err := tx.ListEvents(store.EventFilter{EntityType: "host", EntityID: "mac=" + mac.String(), Action: "host.discovered", Limit: 1})
		if err != nil {
			return err
		}
		if len(last) > 0 && now.Sub(last[0].Time) < DiscoveredQuiet {
			return nil
		}
		return tx.AppendEvent(&store.Event{
			UUID: s.newUUID(), Time: now, Code: CodeHostAdded, EntityType: "host",
			EntityID: "mac=" + mac.String(), Action: "host.discovered", Actor: "dhcp",
			Reason: fmt.Sprintf("unknown MAC %s asked for an address on %s; add it with hbctl host-add -m %s", mac, link, mac),
		})
	})
}

// Leased implements mgmtnet.Inventory: the lease is stored, and its first
// grant (or a new address) is an event.
func (s *Service) Leased(ctx context.Context, b mgmtnet.Binding, expires time.Time) error {
	now := s.stamp()
	return s.st.Write(ctx, func(tx store.Tx) error {
		prev, err := tx.LeaseByMAC(b.MAC.String())
		fresh := errors.Is(err, store.ErrNotFound) || (err == nil && (prev.IP != b.IP.String() || !prev.ExpiresAt.After(now)))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.UpsertLease(&store.Lease{
			MAC: b.MAC.String(), IP: b.IP.String(), HostID: b.HostID, PoolID: b.PoolID,
			ExpiresAt: expires.UTC().Truncate(time.Microsecond), UpdatedAt: now,
		}); err != nil {
			return err
		}
		if !fresh {
			return nil
		}
		return tx.AppendEvent(&store.Event{
			UUID: s.newUUID(), Time: now, Code: CodeHostState, EntityType: "host",
			EntityID: "host=" + b.Hostname, Action: "host.leased", Actor: "dhcp",
			Reason: fmt.Sprintf("host %s leased %s from pool %s until %s", b.Hostname, b.IP, b.PoolName, expires.UTC().Format(time.RFC3339)),
		})
	})
}

// Released implements mgmtnet.Inventory.
func (s *Service) Released(ctx context.Context, mac net.HardwareAddr) error {
	return s.st.Write(ctx, func(tx store.Tx) error { return tx.DeleteLease(mac.String()) })
}

var _ mgmtnet.Inventory = (*Service)(nil)
