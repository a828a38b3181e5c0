// Package inventory is the host inventory: the personalities and states a
// host has, the checks a host must pass to be added or changed (hostname,
// MAC, management address, BMC, provisioning rules), and the service that
// applies them, each change in one store transaction with its event.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/problem"
	"hummingbird.io/hummingbird/internal/store"
)

// Event-log ids, as StarlingX operators know them.
const (
	CodeHostAdded   = "200.020"
	CodeHostCommand = "200.021"
	CodeHostState   = "200.022"
)

// Service applies inventory changes. Its clock and id source are injected.
type Service struct {
	st      store.Store
	now     func() time.Time
	newUUID func() string
}

// Options configures a Service. Zero Clock and NewUUID mean the wall clock
// and random v4 uuids.
type Options struct {
	Clock   func() time.Time
	NewUUID func() string
}

// New returns a Service over st.
func New(st store.Store, o Options) *Service {
	s := &Service{st: st, now: o.Clock, newUUID: o.NewUUID}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newUUID == nil {
		s.newUUID = uuid.NewString
	}
	return s
}

// stamp is the current time, in UTC with the microsecond precision both
// databases keep.
func (s *Service) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func (s *Service) event(tx store.Tx, at time.Time, code, action, actor string, h store.Host, reason string) error {
	return tx.AppendEvent(&store.Event{
		UUID: s.newUUID(), Time: at, Code: code, EntityType: "host",
		EntityID: "host=" + h.Hostname, Action: action, Actor: actor, Reason: reason,
	})
}

// Lookup finds a host by id, uuid or hostname inside tx.
func Lookup(tx store.Tx, ref string) (store.Host, error) {
	var (
		h   store.Host
		err error
	)
	if id, perr := strconv.ParseInt(ref, 10, 64); perr == nil {
		h, err = tx.HostByID(id)
	} else if u, perr := uuid.Parse(ref); perr == nil {
		h, err = tx.HostByUUID(u.String())
	} else {
		h, err = tx.HostByHostname(strings.ToLower(ref))
	}
	if errors.Is(err, store.ErrNotFound) {
		return h, problem.NotFoundf("no host %q: name a host by its id, uuid or hostname (hbctl host-list shows them)", ref)
	}
	return h, err
}

// Get returns one host.
func (s *Service) Get(ctx context.Context, ref string) (store.Host, error) {
	var h store.Host
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		h, err = Lookup(tx, ref)
		return err
	})
	return h, err
}

// List returns the hosts f selects.
func (s *Service) List(ctx context.Context, f store.HostFilter) ([]store.Host, error) {
	for field, v := range map[string]string{
		"personality": f.Personality, "availability": f.Availability,
		"administrative": f.Administrative, "operational": f.Operational,
		"invprovision": f.InvProvision,
	} {
		if v != "" {
			if err := CheckEnum(field, v); err != nil {
				return nil, err
			}
		}
	}
	var hosts []store.Host
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		hosts, err = tx.ListHosts(f)
		return err
	})
	return hosts, err
}

// Add checks req and stores a new host, locked, disabled, offline and
// unprovisioned, with a "host added" event.
func (s *Service) Add(ctx context.Context, actor string, req apitype.HostCreate) (store.Host, error) {
	var h store.Host
	err := s.st.Write(ctx, func(tx store.Tx) error {
		var err error
		h, err = s.AddTx(tx, actor, req)
		return err
	})
	return h, err
}

// AddTx is Add inside the caller's transaction.
func (s *Service) AddTx(tx store.Tx, actor string, req apitype.HostCreate) (store.Host, error) {
	now := s.stamp()
	h := store.Host{
		UUID:           s.newUUID(),
		Hostname:       strings.TrimSpace(req.Hostname),
		Personality:    req.Personality,
		Administrative: AdminLocked,
		Operational:    OperDisabled,
		Availability:   AvailOffline,
		InvProvision:   ProvUnprovisioned,
		MgmtMAC:        req.MgmtMAC,
		MgmtIP:         req.MgmtIP,
		Location:       req.Location,
		Group:          req.Group,
		BMType:         req.BMType,
		BMIP:           req.BMIP,
		BMUsername:     req.BMUsername,
		SSHUser:        req.SSHUser,
		SSHKey:         req.SSHKey,
		Labels:         req.Labels,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	if h.Labels == nil {
		h.Labels = map[string]string{}
	}
	if err := s.check(&h, nil); err != nil {
		return store.Host{}, err
	}
	if err := checkGroupExists(tx, h.Group); err != nil {
		return store.Host{}, err
	}
	if err := s.assignAddress(tx, &h, nil, strings.TrimSpace(req.Pool)); err != nil {
		return store.Host{}, err
	}
	if err := checkUnique(tx, h); err != nil {
		return store.Host{}, err
	}
	id, err := tx.NextID("hosts")
	if err != nil {
		return store.Host{}, err
	}
	h.ID = id
	if err := tx.InsertHost(&h); err != nil {
		return store.Host{}, err
	}
	if err := s.event(tx, now, CodeHostAdded, "host.add", actor, h,
		fmt.Sprintf("host %s added with personality %s", h.Hostname, h.Personality)); err != nil {
		return store.Host{}, err
	}
	return h, nil
}

// Update applies a merge patch to a host.
func (s *Service) Update(ctx context.Context, actor, ref string, u apitype.HostUpdate) (store.Host, error) {
	var out store.Host
	err := s.st.Write(ctx, func(tx store.Tx) error {
		old, err := Lookup(tx, ref)
		if err != nil {
			return err
		}
		h := old
		h.Labels = old.Labels
		set := func(dst *string, src *string) {
			if src != nil {
				*dst = *src
			}
		}
		set(&h.Hostname, u.Hostname)
		set(&h.Personality, u.Personality)
		set(&h.MgmtMAC, u.MgmtMAC)
		set(&h.MgmtIP, u.MgmtIP)
		set(&h.Location, u.Location)
		set(&h.Group, u.Group)
		set(&h.BMType, u.BMType)
		set(&h.BMIP, u.BMIP)
		set(&h.BMUsername, u.BMUsername)
		set(&h.SSHUser, u.SSHUser)
		set(&h.SSHKey, u.SSHKey)
		if u.Labels != nil {
			h.Labels = *u.Labels
			if h.Labels == nil {
				h.Labels = map[string]string{}
			}
		}
		h.Hostname = strings.TrimSpace(h.Hostname)
		if err := s.check(&h, &old); err != nil {
			return err
		}
		var pool string
		if u.Pool != nil {
			if pool = strings.TrimSpace(*u.Pool); pool == "" {
				return problem.Invalidf("pool", "pool cannot be cleared: name the pool the host's address is from")
			}
		}
		if h.Group != old.Group {
			if err := checkGroupExists(tx, h.Group); err != nil {
				return err
			}
		}
		if h.Group != old.Group {
			if err := checkNotAppMember(tx, old, "moved to another group", false); err != nil {
				return err
			}
		}
		if h.Personality != old.Personality {
			if err := checkNotAppMember(tx, old, "given another personality", false); err != nil {
				return err
			}
		}
		if err := s.assignAddress(tx, &h, &old, pool); err != nil {
			return err
		}
		if old.MgmtIP != "" && h.MgmtIP == "" {
			if err := checkNotAppMember(tx, old, "left without a management address (its app's agents reach it there)", true); err != nil {
				return err
			}
		}
		changed := changedFields(old, h)
		if len(changed) == 0 {
			out = old
			return nil
		}
		if err := checkUnique(tx, h); err != nil {
			return err
		}
		if old.MgmtIP != "" && (old.MgmtIP != h.MgmtIP || old.PoolID != h.PoolID) {
			if err := releaseAddress(tx, old.PoolID, old.MgmtIP); err != nil {
				return err
			}
		}
		h.UpdatedAt = s.stamp()
		if err := tx.UpdateHost(&h); err != nil {
			return err
		}
		out = h
		return s.event(tx, h.UpdatedAt, CodeHostCommand, "host.update", actor, h,
			fmt.Sprintf("host %s updated: %s", h.Hostname, strings.Join(changed, ", ")))
	})
	return out, err
}

// AssignLabels sets labels on a host, keeping its others, in one
// transaction with its event.
func (s *Service) AssignLabels(ctx context.Context, actor, ref string, labels map[string]string) (store.Host, error) {
	if len(labels) == 0 {
		return store.Host{}, problem.Invalidf("labels", "give at least one label to assign, like zone=north")
	}
	if err := CheckLabels(labels); err != nil {
		return store.Host{}, err
	}
	return s.relabel(ctx, actor, ref, "host.label.assign", func(l map[string]string) []string {
		var changed []string
		for k, v := range labels {
			if old, ok := l[k]; !ok || old != v {
				l[k] = v
				changed = append(changed, k+"="+v)
			}
		}
		return changed
	})
}

// RemoveLabels removes labels from a host by key; keys it does not have
// are refused, so a typo does not pass for a success.
func (s *Service) RemoveLabels(ctx context.Context, actor, ref string, keys []string) (store.Host, error) {
	if len(keys) == 0 {
		return store.Host{}, problem.Invalidf("keys", "give at least one label key to remove")
	}
	var missing error
	h, err := s.relabel(ctx, actor, ref, "host.label.remove", func(l map[string]string) []string {
		var removed []string
		for _, k := range keys {
			if _, ok := l[k]; !ok {
				missing = problem.NotFoundf("host has no label %q (hbctl host-label-list shows its labels)", k)
				return nil
			}
			delete(l, k)
			removed = append(removed, k)
		}
		return removed
	})
	if missing != nil {
		return store.Host{}, missing
	}
	return h, err
}

// relabel applies change to a copy of a host's labels and stores the
// result with an event naming what changed; nothing changed, nothing is
// written.
func (s *Service) relabel(ctx context.Context, actor, ref, action string, change func(map[string]string) []string) (store.Host, error) {
	var out store.Host
	err := s.st.Write(ctx, func(tx store.Tx) error {
		h, err := Lookup(tx, ref)
		if err != nil {
			return err
		}
		labels := make(map[string]string, len(h.Labels))
		for k, v := range h.Labels {
			labels[k] = v
		}
		changed := change(labels)
		out = h
		if len(changed) == 0 {
			return nil
		}
		h.Labels = labels
		h.UpdatedAt = s.stamp()
		if err := tx.UpdateHost(&h); err != nil {
			return err
		}
		out = h
		sort.Strings(changed)
		return s.event(tx, h.UpdatedAt, CodeHostCommand, action, actor, h,
			fmt.Sprintf("host %s labels: %s %s", h.Hostname, strings.TrimPrefix(action, "host.label."), strings.Join(changed, ", ")))
	})
	return out, err
}

// Delete removes a host; a host being provisioned, or an app's member, is
// refused.
func (s *Service) Delete(ctx context.Context, actor, ref string) (store.Host, error) {
	var h store.Host
	err := s.st.Write(ctx, func(tx store.Tx) error {
		var err error
		if h, err = Lookup(tx, ref); err != nil {
			return err
		}
		if h.InvProvision == ProvProvisioning {
			return problem.Conflictf("", "host %s is being provisioned; wait for the job to end or cancel it, then delete the host", h.Hostname)
		}
		if err := checkNotAppMember(tx, h, "deleted", true); err != nil {
			return err
		}
		if err := tx.DeleteHost(h.ID); err != nil {
			return err
		}
		if err := releaseAddress(tx, h.PoolID, h.MgmtIP); err != nil {
			return err
		}
		return s.event(tx, s.stamp(), CodeHostCommand, "host.delete", actor, h,
			fmt.Sprintf("host %s deleted", h.Hostname))
	})
	return h, err
}

// Upgrade is the software upgrade of a host. Edgeworkers are refused: their
// owners install and upgrade the OS; Hummingbird only provisions Kubernetes
// onto it.
func (s *Service) Upgrade(ctx context.Context, actor, ref string) error {
	h, err := s.Get(ctx, ref)
	if err != nil {
		return err
	}
	if h.Personality == apitype.PersonalityEdgeworker {
		return problem.NotSupportedf("host-upgrade is not supported for edgeworker host %s: its operating system "+
			"is installed and upgraded by its owner, not by Hummingbird: upgrade it with the OS's own tools "+
			"(apt, dnf); Hummingbird keeps only its Kubernetes packages at the cluster's version", h.Hostname)
	}
	return problem.NotSupportedf("host-upgrade of %s host %s is not available: this controller does not "+
		"manage platform software upgrades", h.Personality, h.Hostname)
}

// Alarms lists the active alarms.
func (s *Service) Alarms(ctx context.Context, f store.AlarmFilter) ([]store.Alarm, error) {
	var out []store.Alarm
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListAlarms(f)
		return err
	})
	return out, err
}

// Alarm returns one active alarm by uuid.
func (s *Service) Alarm(ctx context.Context, id string) (store.Alarm, error) {
	var a store.Alarm
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		a, err = tx.AlarmByUUID(id)
		if errors.Is(err, store.ErrNotFound) {
			return problem.NotFoundf("no active alarm %q: it was cleared, or never raised (hbctl alarm-list shows the active ones)", id)
		}
		return err
	})
	return a, err
}

// HardwareInventory returns what a host's agent last reported (JSON of
// wire.Inventory) and its hash.
func (s *Service) HardwareInventory(ctx context.Context, ref string) (store.Host, string, string, error) {
	var (
		h         store.Host
		inv, hash string
	)
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		if h, err = Lookup(tx, ref); err != nil {
			return err
		}
		inv, hash, err = tx.HostInventory(h.ID)
		return err
	})
	if err == nil && inv == "" {
		err = problem.NotFoundf("host %s has no hardware inventory yet: its agent reports it after joining (hb-agent join, then hb-agent run)", h.Hostname)
	}
	return h, inv, hash, err
}

// Events lists the event log.
func (s *Service) Events(ctx context.Context, f store.EventFilter) ([]store.Event, error) {
	var out []store.Event
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.ListEvents(f)
		return err
	})
	return out, err
}

// check validates and normalizes h in place, all but its address (which
// assignAddress gives inside the transaction). old is the stored host for
// an update, nil for an add.
func (s *Service) check(h *store.Host, old *store.Host) error {
	if err := CheckHostname(h.Hostname); err != nil {
		return err
	}
	if err := CheckEnum("personality", h.Personality); err != nil {
		if h.Personality == "" {
			return problem.Invalidf("personality", "personality is required: one of %s", strings.Join(Personalities, ", "))
		}
		return err
	}
	if old != nil && old.InvProvision != ProvUnprovisioned {
		if h.Personality != old.Personality {
			return problem.Conflictf("personality", "host %s is %s: the personality of a provisioned host cannot change; delete the host and add it again", old.Hostname, old.InvProvision)
		}
		if h.Hostname != old.Hostname {
			return problem.Conflictf("hostname", "host %s is %s: its hostname is its Kubernetes node name and cannot change; delete the host and add it again", old.Hostname, old.InvProvision)
		}
	}
	if h.MgmtMAC != "" {
		mac, err := NormalizeMAC("mgmt_mac", h.MgmtMAC)
		if err != nil {
			return err
		}
		h.MgmtMAC = mac
	}
	edge := h.Personality == apitype.PersonalityEdgeworker
	if err := CheckText("location", h.Location, 255); err != nil {
		return err
	}
	if err := CheckGroup(h.Group); err != nil {
		return err
	}
	if err := CheckLabels(h.Labels); err != nil {
		return err
	}
	if err := checkSSH(h); err != nil {
		return err
	}
	return checkBMC(h, edge)
}

var (
	sshUserRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	sshKeyRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// checkSSH checks the login the controller provisions the host with: a
// POSIX user name, and the name (not the path, nor the key itself) of a
// private key in the controller's SSH key directory. Empty means root and
// the key named default.
func checkSSH(h *store.Host) error {
	if h.SSHUser != "" && !sshUserRE.MatchString(h.SSHUser) {
		return problem.Invalidf("ssh_user", "ssh_user %q is not a user name: write a login of 1 to 32 lowercase letters, "+
			"digits, '_' and '-' that starts with a letter or '_', like hummingbird (leave it empty to log in as root)", h.SSHUser)
	}
	if h.SSHKey != "" && !sshKeyRE.MatchString(h.SSHKey) {
		what := "is not a key name"
		switch {
		case strings.Contains(h.SSHKey, "PRIVATE KEY"):
			what = "is a key itself, which the controller does not take over the API"
		case strings.ContainsAny(h.SSHKey, `/\`):
			what = "is a path"
		}
		return problem.Invalidf("ssh_key", "ssh_key %q %s: write the file name of a private key in the controller's SSH key "+
			"directory, 1 to 64 letters, digits, '.', '_' and '-' that starts with a letter or digit, like site-a "+
			"(leave it empty for the key named default)", sshKeyText(h.SSHKey), what)
	}
	return nil
}

// sshKeyText is an ssh_key value short enough to quote, and never the
// private key someone pasted by mistake.
func sshKeyText(s string) string {
	if strings.Contains(s, "PRIVATE KEY") {
		return "-----BEGIN … PRIVATE KEY-----"
	}
	if r := []rune(s); len(r) > 80 {
		return string(r[:80]) + "…"
	}
	return s
}

func checkBMC(h *store.Host, edge bool) error {
	for _, f := range []struct{ name, v string }{{"bm_type", h.BMType}, {"bm_ip", h.BMIP}, {"bm_username", h.BMUsername}} {
		if edge && f.v != "" {
			return problem.Invalidf(f.name, "edgeworker hosts have no board management controller: Hummingbird "+
				"manages them in-band, so leave %s out (clear it with %s= when changing a host to edgeworker)", f.name, f.name)
		}
	}
	if h.BMType != "" && !slices.Contains(BMTypes, h.BMType) {
		return problem.Invalidf("bm_type", "bm_type %q is not one of: %s", h.BMType, strings.Join(BMTypes, ", "))
	}
	if h.BMIP != "" {
		a, err := netip.ParseAddr(h.BMIP)
		if err != nil {
			return problem.Invalidf("bm_ip", "bm_ip %q is not an IP address", h.BMIP)
		}
		h.BMIP = a.Unmap().String()
	}
	return CheckText("bm_username", h.BMUsername, 255)
}

// checkUnique refuses a hostname, MAC or address that another host has.
func checkUnique(tx store.Tx, h store.Host) error {
	for _, c := range []struct {
		field, v string
		find     func(string) (store.Host, error)
	}{
		{"hostname", h.Hostname, tx.HostByHostname},
		{"mgmt_mac", h.MgmtMAC, tx.HostByMAC},
		{"mgmt_ip", h.MgmtIP, tx.HostByIP},
	} {
		if c.v == "" {
			continue
		}
		other, err := c.find(c.v)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		case other.ID != h.ID:
			return problem.Conflictf(c.field, "%s %s is already used by host %s (id %d)", c.field, c.v, other.Hostname, other.ID)
		}
	}
	return nil
}

// changedFields names the fields that differ between a and b.
func changedFields(a, b store.Host) []string {
	var out []string
	for _, f := range []struct {
		name string
		x, y string
	}{
		{"hostname", a.Hostname, b.Hostname}, {"personality", a.Personality, b.Personality},
		{"mgmt_mac", a.MgmtMAC, b.MgmtMAC}, {"mgmt_ip", a.MgmtIP, b.MgmtIP},
		{"pool", a.PoolName, b.PoolName},
		{"location", a.Location, b.Location}, {"group", a.Group, b.Group},
		{"bm_type", a.BMType, b.BMType}, {"bm_ip", a.BMIP, b.BMIP},
		{"bm_username", a.BMUsername, b.BMUsername},
		{"ssh_user", a.SSHUser, b.SSHUser}, {"ssh_key", a.SSHKey, b.SSHKey},
	} {
		if f.x != f.y {
			out = append(out, f.name)
		}
	}
	if len(a.Labels) != len(b.Labels) {
		return append(out, "labels")
	}
	for k, v := range a.Labels {
		if bv, ok := b.Labels[k]; !ok || bv != v {
			return append(out, "labels")
		}
	}
	return out
}
