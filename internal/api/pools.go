package api

import (
	"net/http"
	"net/netip"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/auth"
	"hummingbird.io/hummingbird/internal/inventory"
)

func addrStrings(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func poolOut(p inventory.PoolInfo) apitype.Pool {
	ranges := make([]string, len(p.Ranges))
	for i, r := range p.Ranges {
		ranges[i] = r.String()
	}
	gw := ""
	if p.Gateway.IsValid() {
		gw = p.Gateway.String()
	}
	return apitype.Pool{
		ID: p.Row.ID, UUID: p.Row.UUID, Name: p.Row.Name, Role: p.Row.Role, Mode: p.Row.Mode,
		Network: p.Network.String(), Ranges: ranges, Gateway: gw, DNS: addrStrings(p.DNS),
		NTP: addrStrings(p.NTP), Reserved: addrStrings(p.Reserved), LeaseSeconds: p.Row.LeaseSeconds,
		Used: p.Used, CreatedAt: p.Row.CreatedAt, UpdatedAt: p.Row.UpdatedAt,
	}
}

func (s *Server) listPools(r *http.Request, _ auth.Principal) (any, error) {
	pools, err := s.d.Inventory.ListPools(r.Context())
	if err != nil {
		return nil, err
	}
	out := apitype.PoolList{Pools: make([]apitype.Pool, 0, len(pools))}
	for _, p := range pools {
		out.Pools = append(out.Pools, poolOut(p))
	}
	return out, nil
}

func (s *Server) addPool(r *http.Request, p auth.Principal) (any, error) {
	var req apitype.PoolCreate
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	pool, err := s.d.Inventory.AddPool(r.Context(), p.Actor(), req)
	if err != nil {
		return nil, err
	}
	return poolOut(pool), nil
}

func (s *Server) getPool(r *http.Request, _ auth.Principal) (any, error) {
	pool, err := s.d.Inventory.GetPool(r.Context(), r.PathValue("pool"))
	if err != nil {
		return nil, err
	}
	return poolOut(pool), nil
}

func (s *Server) deletePool(r *http.Request, p auth.Principal) (any, error) {
	return nil, s.d.Inventory.DeletePool(r.Context(), p.Actor(), r.PathValue("pool"))
}
