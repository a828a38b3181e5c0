package inventory

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/fm"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// MinAppMembers is the fewest members an app runs on: one active, one
// standby.
const MinAppMembers = 2

func (s *Service) appEvent(tx store.Tx, action, actor, name, reason string) error {
	return tx.AppendEvent(&store.Event{
		UUID: s.newUUID(), Time: s.stamp(), EntityType: "app", EntityID: "app=" + name,
		Action: action, Actor: actor, Reason: reason,
	})
}

// AddApp checks req and stores a new app on members of its group: the
// hosts req names, in order of preference, or else every edgeworker of the
// group.
func (s *Service) AddApp(ctx context.Context, actor string, req apitype.AppCreate) (store.App, error) {
	now := s.stamp()
	a := store.App{
		UUID: s.newUUID(), Name: strings.TrimSpace(req.Name), Group: strings.TrimSpace(req.Group),
		Image: strings.TrimSpace(req.Image), Port: req.Port, CreatedAt: now, UpdatedAt: now,
	}
	if err := CheckAppName(a.Name); err != nil {
		return store.App{}, err
	}
	if a.Group == "" {
		return store.App{}, problem.Invalidf("group", "an app needs a group: the group whose edgeworkers run it (hbctl group-list shows them)")
	}
	if err := CheckImage(a.Image); err != nil {
		return store.App{}, err
	}
	if a.Port < 0 || a.Port > 65535 {
		return store.App{}, problem.Invalidf("port", "port %d is not a TCP or UDP port: give 1 to 65535, or 0 for none", a.Port)
	}
	var err error
	if a.HealthKind, a.HealthPath, err = checkHealth(req.Health, req.HealthPath, a.Port); err != nil {
		return store.App{}, err
	}
	if err := checkDetection(req.HeartbeatMillis, req.Probes); err != nil {
		return store.App{}, err
	}
	a.HeartbeatMillis, a.Probes, a.LeanProbes = req.HeartbeatMillis, req.Probes, req.LeanProbes
	var vip netip.Addr
	if v := strings.TrimSpace(req.VIP); v != "" {
		p, err := CheckVIP(v)
		if err != nil {
			return store.App{}, err
		}
		a.VIP, vip = p.String(), p.Addr()
	}
	err = s.st.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.AppByName(a.Name); err == nil {
			return problem.Conflictf("name", "there is already an app named %s", a.Name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := checkGroupExists(tx, a.Group); err != nil {
			return err
		}
		members, err := appMembers(tx, a.Group, req.Members)
		if err != nil {
			return err
		}
		for i, h := range members {
			if err := checkVoterAddress(h, "members", a.Name); err != nil {
				return err
			}
			a.Members = append(a.Members, store.AppMember{HostID: h.ID, Hostname: h.Hostname, Availability: h.Availability, Position: i + 1})
		}
		witness := ""
		if ref := strings.TrimSpace(req.Witness); ref != "" {
			w, err := appWitness(tx, ref, a.Name, members)
			if err != nil {
				return err
			}
			a.Witness, witness = &store.AppMember{HostID: w.ID}, fmt.Sprintf(", with witness %s", w.Hostname)
		}
		if vip.IsValid() {
			if err := checkVIPFree(tx, vip); err != nil {
				return err
			}
		}
		if a.ID, err = tx.NextID("apps"); err != nil {
			return err
		}
		if err := tx.InsertApp(&a); err != nil {
			return err
		}
		if a, err = tx.AppByName(a.Name); err != nil {
			return err
		}
		names := make([]string, len(members))
		for i, h := range members {
			names[i] = h.Hostname
		}
		return s.appEvent(tx, "app.add", actor, a.Name,
			fmt.Sprintf("app %s added to group %s on %s%s", a.Name, a.Group, strings.Join(names, ", "), witness))
	})
	if err != nil {
		return store.App{}, err
	}
	return a, nil
}

// appMembers resolves the members an app is given, in order, or picks every
// edgeworker of its group when none are.
func appMembers(tx store.Tx, group string, refs []string) ([]store.Host, error) {
	if len(refs) == 0 {
		hosts, err := tx.ListHosts(store.HostFilter{Group: group, Personality: apitype.PersonalityEdgeworker})
		if err != nil {
			return nil, err
		}
		if len(hosts) < MinAppMembers {
			return nil, problem.Conflictf("members", "group %s has %d edgeworker(s)%s; an app runs on at least %d: "+
				"add edgeworkers to the group (hbctl host-update HOST group=%s)", group, len(hosts), hostnames(hosts), MinAppMembers, group)
		}
		return hosts, nil
	}
	var out []store.Host
	seen := map[int64]bool{}
	for _, ref := range refs {
		ref = strings.TrimSpace(ref)
		if ref == "" {
			return nil, problem.Invalidf("members", "members has an empty host name")
		}
		h, err := Lookup(tx, ref)
		if problem.Is(err, problem.NotFound) {
			return nil, problem.Invalidf("members", "no host %q: name members by hostname (hbctl host-list shows them)", ref)
		} else if err != nil {
			return nil, err
		}
		if seen[h.ID] {
			return nil, problem.Invalidf("members", "host %s is named twice in members; name each member once", h.Hostname)
		}
		seen[h.ID] = true
		if h.Personality != apitype.PersonalityEdgeworker {
			return nil, problem.Conflictf("members", "host %s is a %s: apps run on edgeworkers only", h.Hostname, h.Personality)
		}
		if h.Group != group {
			if h.Group == "" {
				return nil, problem.Conflictf("members", "host %s is in no group: an app runs on members of its group %s "+
					"(hbctl host-update %s group=%s adds it)", h.Hostname, group, h.Hostname, group)
			}
			return nil, problem.Conflictf("members", "host %s is in group %s, not %s: an app runs on members of its group "+
				"(hbctl host-update %s group=%s moves it)", h.Hostname, h.Group, group, h.Hostname, group)
		}
		out = append(out, h)
	}
	if len(out) < MinAppMembers {
		return nil, problem.Invalidf("members", "members names %d host(s); an app runs on at least %d, one active and the others standing by",
			len(out), MinAppMembers)
	}
	return out, nil
}

// Health check kinds of an app.
const (
	HealthTCP  = "tcp"
	HealthHTTP = "http"
	HealthNone = "none"
)

// checkHealth checks an app's health check and fills in its defaults: tcp
// when the app has a port, none otherwise; path / for http.
func checkHealth(kind, path string, port int) (string, string, error) {
	kind, path = strings.ToLower(strings.TrimSpace(kind)), strings.TrimSpace(path)
	if kind == "" {
		kind = HealthNone
		if port != 0 {
			kind = HealthTCP
		}
	}
	switch kind {
	case HealthTCP, HealthHTTP:
		if port == 0 {
			return "", "", problem.Invalidf("health", "a %s health check connects to the app's port, and the app has none: "+
				"give --port, or --health none", kind)
		}
	case HealthNone:
	default:
		return "", "", problem.Invalidf("health", "health %q: give tcp (connect to the port), http (GET health_path on it) or none", kind)
	}
	if kind != HealthHTTP {
		if path != "" {
			return "", "", problem.Invalidf("health_path", "health_path is for an http health check, and this one is %s: "+
				"give --health http, or leave the path out", kind)
		}
		return kind, "", nil
	}
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") || len(path) > 256 || strings.IndexFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return "", "", problem.Invalidf("health_path", "health_path %q must be a URL path: start with /, at most 256 characters, "+
			"no spaces, like /healthz", path)
	}
	return kind, path, nil
}

// checkVoterAddress: a member or witness of an app needs a management
// address, where the other members' agents reach its agent.
func checkVoterAddress(h store.Host, field, app string) error {
	if h.MgmtIP != "" {
		return nil
	}
	return problem.Conflictf(field, "host %s has no management address, and the agents of app %s's group reach each other "+
		"on theirs: give it one (hbctl host-update %s mgmt_ip=ADDRESS), or leave it out of the app", h.Hostname, app, h.Hostname)
}

// appWitness resolves an app's witness: a host with an address that is not
// one of the app's members.
func appWitness(tx store.Tx, ref, app string, members []store.Host) (store.Host, error) {
	w, err := Lookup(tx, ref)
	if problem.Is(err, problem.NotFound) {
		return w, problem.Invalidf("witness", "no host %q: name the witness by hostname (hbctl host-list shows them)", ref)
	} else if err != nil {
		return w, err
	}
	for _, m := range members {
		if m.ID == w.ID {
			return w, problem.Invalidf("witness", "host %s is a member of the app, and a witness must be a host that runs an "+
				"agent but never the app: name a third host as the witness, or leave %s out of the members (--members)", w.Hostname, w.Hostname)
		}
	}
	return w, checkVoterAddress(w, "witness", app)
}

// HealthyStandbys are an app's members other than its active one that last
// reported themselves healthy standbys and whose hosts are available: the
// members it can fail over to.
func HealthyStandbys(a store.App) []store.AppMember {
	var out []store.AppMember
	for _, m := range a.Members {
		if m.HostID != a.ActiveHostID && m.Role == wire.RoleStandby && m.Healthy && m.Availability == AvailAvailable {
			out = append(out, m)
		}
	}
	return out
}

// RequestSwitchover asks an app's members to move its active role to the
// member to names (a hostname; empty: any healthy standby). It is refused
// when the app has no active member yet, or no healthy standby, or to is
// not one. A pending request is replaced.
func (s *Service) RequestSwitchover(ctx context.Context, actor, name, to string) (store.App, error) {
	var a store.App
	err := s.st.Write(ctx, func(tx store.Tx) error {
		var err error
		if a, err = lookupApp(tx, name); err != nil {
			return err
		}
		target, err := switchoverTarget(a, strings.ToLower(strings.TrimSpace(to)))
		if err != nil {
			return err
		}
		seq, err := tx.RequestAppSwitchover(a.ID, target.HostID, s.stamp())
		if err != nil {
			return err
		}
		dest := "any healthy standby"
		if target.HostID != 0 {
			dest = target.Hostname
		}
		if err := s.appEvent(tx, "app.switchover.request", actor, a.Name, fmt.Sprintf("planned switchover %d of app %s "+
			"requested: from %s to %s", seq, a.Name, a.ActiveHostname, dest)); err != nil {
			return err
		}
		a, err = tx.AppByName(a.Name)
		return err
	})
	return a, err
}

// switchoverTarget checks a planned switchover of a to the member named to
// ("": any healthy standby, the zero member).
func switchoverTarget(a store.App, to string) (store.AppMember, error) {
	if a.ActiveHostID == 0 {
		return store.AppMember{}, problem.Conflictf("", "app %s has no active member yet: its members' agents have not "+
			"elected one (hbctl app-show %s shows what they report); nothing to switch over", a.Name, a.Name)
	}
	standbys := HealthyStandbys(a)
	if to == "" {
		if len(standbys) == 0 {
			return store.AppMember{}, noStandby(a)
		}
		return store.AppMember{}, nil
	}
	var names []string
	for _, m := range a.Members {
		names = append(names, m.Hostname)
		if m.Hostname != to {
			continue
		}
		if m.HostID == a.ActiveHostID {
			return m, problem.Conflictf("to", "host %s is the active member of app %s already; name a standby, or leave "+
				"--to out", m.Hostname, a.Name)
		}
		for _, sb := range standbys {
			if sb.HostID == m.HostID {
				return m, nil
			}
		}
		if len(standbys) == 0 {
			return m, noStandby(a)
		}
		return m, problem.Conflictf("to", "member %s of app %s is not a healthy standby (it reports role %q, healthy %v, "+
			"and its host is %s); name one of %s, or leave --to out", m.Hostname, a.Name, m.Role, m.Healthy, m.Availability,
			strings.Join(memberNames(standbys), ", "))
	}
	return store.AppMember{}, problem.Invalidf("to", "host %q is not a member of app %s; its members are %s", to, a.Name, strings.Join(names, ", "))
}

func memberNames(ms []store.AppMember) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Hostname
	}
	return out
}

func noStandby(a store.App) error {
	return problem.Conflictf("", "app %s has no healthy standby to switch over to: no member other than the active %s "+
		"reports itself a healthy standby on an available host; bring one back first (hbctl app-show %s shows each "+
		"member's role, health and availability)", a.Name, a.ActiveHostname, a.Name)
}

// hostnames is " (a, b)" for a few hosts, "" for none.
func hostnames(hosts []store.Host) string {
	if len(hosts) == 0 {
		return ""
	}
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Hostname
	}
	return " (" + strings.Join(names, ", ") + ")"
}

// checkVIPFree refuses a virtual address that a host or another app has,
// or that an address pool keeps for something else: a controller's
// (reserved) address, a gateway, a DNS or NTP server.
func checkVIPFree(tx store.Tx, vip netip.Addr) error {
	h, err := tx.HostByIP(vip.String())
	switch {
	case err == nil:
		return problem.Conflictf("vip", "vip %s is the management address of host %s; choose a free address", vip, h.Hostname)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	pools, err := tx.ListPools()
	if err != nil {
		return err
	}
	for _, row := range pools {
		p, err := ParsePool(row)
		if err != nil {
			return err
		}
		if what := p.keeps(vip); what != "" {
			return problem.Conflictf("vip", "vip %s is %s of pool %s; choose another address", vip, what, p.Row.Name)
		}
	}
	apps, err := tx.ListApps()
	if err != nil {
		return err
	}
	for _, other := range apps {
		if p, err := netip.ParsePrefix(other.VIP); err == nil && p.Addr() == vip {
			return problem.Conflictf("vip", "vip %s is the address of app %s; choose a free address", vip, other.Name)
		}
	}
	return nil
}

func lookupApp(tx store.Tx, name string) (store.App, error) {
	a, err := tx.AppByName(name)
	if errors.Is(err, store.ErrNotFound) {
		return a, problem.NotFoundf("no app %q (hbctl app-list shows them)", name)
	}
	return a, err
}

// GetApp returns an app and its members.
func (s *Service) GetApp(ctx context.Context, name string) (store.App, error) {
	var a store.App
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		a, err = lookupApp(tx, name)
		return err
	})
	return a, err
}

// ListApps returns every app, by name.
func (s *Service) ListApps(ctx context.Context) ([]store.App, error) {
	var out []store.App
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListApps()
		return err
	})
	return out, err
}

// DeleteApp deletes an app; its members stay in the inventory.
func (s *Service) DeleteApp(ctx context.Context, actor, name string) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		a, err := lookupApp(tx, name)
		if err != nil {
			return err
		}
		if err := tx.DeleteApp(a.ID); err != nil {
			return err
		}
		if err := fm.Clear(tx, fm.AlarmAppRedundancy, "app", "app="+a.Name, "app "+a.Name+" deleted", s.newUUID(), s.stamp()); err != nil {
			return err
		}
		for _, m := range a.Members {
			// appstate.MemberEntity, which imports this package.
			entity := "app=" + a.Name + ".host=" + m.Hostname
			raised, err := tx.ListAlarms(store.AlarmFilter{EntityInstance: entity})
			if err != nil {
				return err
			}
			if len(raised) == 0 {
				continue
			}
			if err := fm.Clear(tx, fm.AlarmAppMember, "app", entity, "app "+a.Name+" deleted", s.newUUID(), s.stamp()); err != nil {
				return err
			}
		}
		return s.appEvent(tx, "app.delete", actor, a.Name, fmt.Sprintf("app %s deleted from group %s", a.Name, a.Group))
	})
}

// appNames is "a, b" for the apps, "a, b, …" past ten.
func appNames(apps []store.App) string {
	var names []string
	for i, a := range apps {
		if i == 10 {
			names = append(names, "…")
			break
		}
		names = append(names, a.Name)
	}
	return strings.Join(names, ", ")
}

// checkNotAppMember refuses a change to a host that its apps do not allow;
// doing says what the change is ("deleted", "moved to group x").
// A witness stays a witness whatever its group or personality; only
// witnessToo refuses the change for a witness as well.
func checkNotAppMember(tx store.Tx, h store.Host, doing string, witnessToo bool) error {
	all, err := tx.AppsOfHost(h.ID)
	if err != nil {
		return err
	}
	var apps, witnessed []store.App
	for _, a := range all {
		if a.Witness != nil && a.Witness.HostID == h.ID {
			witnessed = append(witnessed, a)
		} else {
			apps = append(apps, a)
		}
	}
	if len(apps) > 0 {
		return problem.Conflictf("", "host %s is a member of app(s) %s and cannot be %s; delete the app(s) first (hbctl app-delete %s)",
			h.Hostname, appNames(apps), doing, apps[0].Name)
	}
	if witnessToo && len(witnessed) > 0 {
		return problem.Conflictf("", "host %s is the witness of app(s) %s and cannot be %s; delete the app(s) first (hbctl app-delete %s)",
			h.Hostname, appNames(witnessed), doing, witnessed[0].Name)
	}
	return nil
}

// CheckAppName: an app name is one RFC 1123 label, as a hostname's first.
// MaxAppName is the longest app name: hb-app-NAME, the name of its
// DaemonSet and Service, must fit in 63 characters.
const MaxAppName = 56

func CheckAppName(name string) error {
	if strings.Contains(name, ".") {
		return problem.Invalidf("name", "app name %q has a '.': use one label of lowercase letters, digits and '-', like plc-bridge", name)
	}
	// The app's DaemonSet and Service are hb-app-NAME, at most 63
	// characters.
	if len(name) > MaxAppName {
		return problem.Invalidf("name", "app name %q has %d characters: use at most %d (its objects in the cluster are hb-app-NAME)", name, len(name), MaxAppName)
	}
	if err := CheckHostname(name); err != nil {
		var pe *problem.Error
		if errors.As(err, &pe) {
			return problem.Invalidf("name", "app name%s", strings.TrimPrefix(pe.Message, "hostname"))
		}
		return err
	}
	return nil
}

var (
	imageRegistryRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]{1,5})?$`)
	imageComponentRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
	imageTagRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	imageDigestRE    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// CheckImage checks a container image reference:
// [registry[:port]/]path[:tag][@sha256:digest], with a path of lowercase
// components.
func CheckImage(ref string) error {
	const form = "write [registry[:port]/]path[:tag][@sha256:digest], like registry.example/plc-bridge:1.4"
	if ref == "" {
		return problem.Invalidf("image", "an app needs an image; %s", form)
	}
	if len(ref) > 512 {
		return problem.Invalidf("image", "image is %d characters long; at most 512 are allowed", len(ref))
	}
	if strings.IndexFunc(ref, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return problem.Invalidf("image", "image %q has a space or control character; %s", ref, form)
	}
	name := ref
	if at := strings.IndexByte(name, '@'); at >= 0 {
		if d := name[at+1:]; !imageDigestRE.MatchString(d) {
			return problem.Invalidf("image", "image %q: digest %q is not sha256: and 64 lowercase hex digits", ref, d)
		}
		name = name[:at]
	}
	if colon := strings.LastIndexByte(name, ':'); colon > strings.LastIndexByte(name, '/') {
		if tag := name[colon+1:]; !imageTagRE.MatchString(tag) {
			return problem.Invalidf("image", "image %q: tag %q must be 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'", ref, tag)
		}
		name = name[:colon]
	}
	parts := strings.Split(name, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		host, port, hasPort := strings.Cut(parts[0], ":")
		if !imageRegistryRE.MatchString(parts[0]) {
			return problem.Invalidf("image", "image %q: registry %q is not a host name with an optional port; %s", ref, parts[0], form)
		}
		if n, _ := strconv.Atoi(port); hasPort && (n < 1 || n > 65535) {
			return problem.Invalidf("image", "image %q: registry %s has port %s; give 1 to 65535", ref, host, port)
		}
		parts = parts[1:]
	}
	for _, c := range parts {
		if imageComponentRE.MatchString(c) {
			continue
		}
		if strings.ToLower(c) != c && imageComponentRE.MatchString(strings.ToLower(c)) {
			return problem.Invalidf("image", "image %q: path component %q has uppercase letters; image paths are lowercase", ref, c)
		}
		return problem.Invalidf("image", "image %q: path component %q must be lowercase letters and digits, separated by '.', '_', '__' or '-'; %s", ref, c, form)
	}
	return nil
}

// CheckVIP checks an app's virtual address: an address with the prefix
// length of its segment, that a host can hold (not the segment's network or
// broadcast address, nor a loopback, multicast or unspecified one).
func CheckVIP(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, problem.Invalidf("vip", "vip %q is not an address with its prefix length: write it like 10.20.0.50/24", s)
	}
	a := p.Addr()
	if a.Is4In6() {
		if p.Bits() < 96 {
			return p, problem.Invalidf("vip", "vip %q is an IPv4 address in IPv6 form with a prefix shorter than /96: "+
				"write the IPv4 address with its own prefix length, like 10.20.0.50/24", s)
		}
		v4 := netip.PrefixFrom(a.Unmap(), p.Bits()-96).String()
		// Propose the IPv4 form only if it is a VIP itself; if not, say why.
		if _, err := CheckVIP(v4); err != nil {
			return p, err
		}
		return p, problem.Invalidf("vip", "vip %q is an IPv4 address in IPv6 form: write it as %s", s, v4)
	}
	if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() {
		return p, problem.Invalidf("vip", "vip %s is an unspecified, loopback or multicast address; give an address of the group's segment", s)
	}
	if p.Bits() < a.BitLen()-1 {
		if a == p.Masked().Addr() {
			return p, problem.Invalidf("vip", "vip %s is the network address of %s; choose a host address in it", s, p.Masked())
		}
		if b, ok := broadcast(p); ok && a == b {
			return p, problem.Invalidf("vip", "vip %s is the broadcast address of %s; choose a host address in it", s, p.Masked())
		}
	}
	return p, nil
}

// checkDetection checks an app's failure detection: a heartbeat time of
// hbMillis (0: the default) with probes probes in it (0: the default).
func checkDetection(hbMillis, probes int) error {
	if hbMillis != 0 && (hbMillis < wire.MinHeartbeatMillis || hbMillis > wire.MaxHeartbeatMillis) {
		return problem.Invalidf("heartbeat_ms", "heartbeat time %d ms: give %d to %d ms, or 0 for the default (%d)",
			hbMillis, wire.MinHeartbeatMillis, wire.MaxHeartbeatMillis, wire.DefaultHeartbeatMillis)
	}
	if probes != 0 && (probes < wire.MinProbes || probes > wire.MaxProbes) {
		return problem.Invalidf("probes", "%d probes in a heartbeat time: give %d to %d, or 0 for the default (%d)",
			probes, wire.MinProbes, wire.MaxProbes, wire.DefaultProbes)
	}
	hb, n := wire.Detection(hbMillis, probes)
	if hb < n*wire.MinProbeMillis {
		return problem.Invalidf("probes", "%d probes in %d ms is a probe every %.1f ms: at most one every %d ms, so give "+
			"at most %d probes or a heartbeat time of at least %d ms", n, hb, float64(hb)/float64(n), wire.MinProbeMillis,
			hb/wire.MinProbeMillis, n*wire.MinProbeMillis)
	}
	return nil
}
