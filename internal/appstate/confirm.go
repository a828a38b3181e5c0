package appstate

import (
	"cmp"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/store"
	"hummingbird.io/hummingbird/internal/wire"
)

// What the controller shows of an app is what a majority of its voters
// (its members and its witness) confirm, never what one of them says: a
// member's report is its own view, and a member can be partitioned, stale
// or lying. Each voter's last report is stored as it came (app_reports);
// from all of them the controller takes
//
//   - the active member and epoch: the highest epoch for which a majority
//     of the voters report the same active member (the raft group commits
//     an election to a majority's logs, so a real one is confirmed so, and
//     a single report of epoch 2^62 counts for one voter only). It never
//     goes back.
//   - the last switchover: the one a majority report alike, with one of
//     the reasons there are (wire.SwitchReason).
//   - the end of a planned switchover: once a majority report it done.
//   - each member's role: what it reports when its report agrees with the
//     active member and epoch shown (active only for the member shown
//     active), down when it says it does not run the app, and unknown,
//     since the moment it stopped agreeing, otherwise. A member cut off in
//     a partition, still reporting the active role of an older epoch, is
//     shown unknown, never active.

// voterCount is the size of an app's group: its members and its witness.
func voterCount(a store.App) int {
	n := len(a.Members)
	if a.Witness != nil {
		n++
	}
	return n
}

// isVoter says whether host id is a member or the witness of a.
func isVoter(a store.App, id int64) bool {
	return slices.ContainsFunc(a.Members, func(m store.AppMember) bool { return m.HostID == id }) ||
		(a.Witness != nil && a.Witness.HostID == id)
}

// isMember says whether host id is a member of a (not its witness).
func isMember(a store.App, id int64) bool {
	return slices.ContainsFunc(a.Members, func(m store.AppMember) bool { return m.HostID == id })
}

// lastSwitch is a reported switchover as stored in a report: host ids
// instead of uuids, so that two voters' reports of the same switchover are
// the same text.
type lastSwitch struct {
	Epoch          int64     `json:"epoch"`
	At             time.Time `json:"at"`
	From           int64     `json:"from,omitempty"`
	To             int64     `json:"to"`
	DurationMillis int64     `json:"duration_ms"`
	Reason         string    `json:"reason"`
}

// reportOf is what a voter's heartbeat says of app a (st nil: it does not
// name the app, so it runs no copy of it), as a stored report. Names of
// hosts that are not members, and a switchover with an unknown reason,
// are left out.
func reportOf(a store.App, members map[string]int64, hostID int64, st *wire.AppStatus) store.AppReport {
	r := store.AppReport{HostID: hostID}
	if st == nil {
		return r
	}
	r.Role, r.Healthy = role(st.Role), st.Healthy
	if id := members[st.Active]; id != 0 {
		r.ActiveHostID, r.Epoch = id, epochOf(st.Epoch)
	}
	r.SwitchoverSeq = epochOf(st.SwitchoverSeq)
	r.Missing = missingCaps(st.Missing)
	if l := st.Last; l != nil && members[l.To] != 0 && (l.From == "" || members[l.From] != 0) &&
		wire.SwitchReason(l.Reason) && l.Epoch > 0 && l.DurationMillis >= 0 {
		b, err := json.Marshal(lastSwitch{Epoch: epochOf(l.Epoch), At: l.At.UTC().Truncate(time.Microsecond),
			From: members[l.From], To: members[l.To], DurationMillis: l.DurationMillis, Reason: l.Reason})
		if err == nil {
			r.LastSwitch = string(b)
		}
	}
	return r
}

// capName is a Linux capability's name as the agents report it.
var capName = regexp.MustCompile(`^CAP_[A-Z_]{1,32}$`)

// missingCaps keeps, of what an agent says it lacks, the capability names
// ("CAP_NET_ADMIN (what it is for)" gives CAP_NET_ADMIN), sorted and
// comma-separated; anything else an agent sends is dropped, so that no
// text of its own reaches an alarm.
func missingCaps(reported []string) string {
	var names []string
	for _, m := range reported {
		name, _, _ := strings.Cut(m, " ")
		if capName.MatchString(name) && !slices.Contains(names, name) && len(names) < 8 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// role is a voter's reported role, or down when it is none a voter has.
func role(r string) string {
	switch r {
	case wire.RoleActive, wire.RoleStandby, wire.RoleDown, wire.RoleWitness:
		return r
	}
	return wire.RoleDown
}

// sameReport says whether two reports say the same (when aside).
func sameReport(a, b store.AppReport) bool {
	a.ReportedAt, b.ReportedAt = time.Time{}, time.Time{}
	return a == b
}

// plan is what a new report changes of an app as stored.
type plan struct {
	report   *store.AppReport // the voter's report, when it changed
	epoch    int64            // > 0: the newly confirmed epoch of active
	active   int64
	last     *store.AppSwitch // a newly confirmed last switchover
	statuses []store.AppMemberStatus
	endSeq   int64 // > 0: the pending switchover is done up to this one
}

func (p plan) empty() bool {
	return p.report == nil && p.epoch == 0 && p.last == nil && len(p.statuses) == 0 && p.endSeq == 0
}

// planFor works out what report r of voter r.HostID changes of app a,
// whose voters last reported reports (by host id).
func planFor(a store.App, reports map[int64]store.AppReport, r store.AppReport, now time.Time) plan {
	var p plan
	if old, ok := reports[r.HostID]; !ok || !sameReport(old, r) {
		r.ReportedAt = now
		p.report = &r
	}
	all := make([]store.AppReport, 0, len(reports)+1)
	for id, rep := range reports {
		if id != r.HostID && isVoter(a, id) {
			all = append(all, rep)
		}
	}
	all = append(all, r)
	voters := voterCount(a)
	majority := func(n int) bool { return 2*n > voters }

	// The active member and epoch.
	type term struct{ epoch, active int64 }
	votes := map[term]int{}
	for _, rep := range all {
		if rep.Epoch > 0 && rep.ActiveHostID != 0 {
			votes[term{rep.Epoch, rep.ActiveHostID}]++
		}
	}
	epoch, active := a.Epoch, a.ActiveHostID
	for t, n := range votes {
		if majority(n) && t.epoch > epoch {
			epoch, active = t.epoch, t.active
		}
	}
	if epoch > a.Epoch {
		p.epoch, p.active = epoch, active
	}

	// The last switchover.
	lasts := map[string]int{}
	for _, rep := range all {
		if rep.LastSwitch != "" {
			lasts[rep.LastSwitch]++
		}
	}
	for text, n := range lasts {
		var l lastSwitch
		if !majority(n) || json.Unmarshal([]byte(text), &l) != nil || l.Epoch <= a.LastSwitch.Epoch {
			continue
		}
		sw := store.AppSwitch{Epoch: l.Epoch, At: l.At, FromHostID: l.From, ToHostID: l.To,
			DurationMillis: l.DurationMillis, Reason: l.Reason}
		if sw.At.IsZero() {
			sw.At = now
		}
		p.last = &sw
	}

	// Each member's role as shown.
	byHost := make(map[int64]store.AppReport, len(all))
	for _, rep := range all {
		byHost[rep.HostID] = rep
	}
	for _, m := range a.Members {
		rep, ok := byHost[m.HostID]
		if !ok {
			continue // never reported: shown without a role
		}
		role, healthy := shownRole(m.HostID, rep, epoch, active)
		if role != m.Role || healthy != m.Healthy {
			p.statuses = append(p.statuses, store.AppMemberStatus{HostID: m.HostID, Role: role, Healthy: healthy, ReportedAt: now})
		}
	}

	// The end of a planned switchover: the highest one a majority report
	// done.
	if a.Switchover.Pending && len(all) > voters/2 {
		seqs := make([]int64, 0, len(all))
		for _, rep := range all {
			seqs = append(seqs, rep.SwitchoverSeq)
		}
		slices.SortFunc(seqs, func(x, y int64) int { return cmp.Compare(y, x) })
		if done := seqs[voters/2]; done >= a.Switchover.Seq {
			p.endSeq = done
		}
	}
	return p
}

// shownRole is how member id, which last reported rep, is shown while
// the app's confirmed active member is active in epoch.
func shownRole(id int64, rep store.AppReport, epoch, active int64) (string, bool) {
	switch {
	case rep.Role == "" || rep.Role == wire.RoleDown:
		return rep.Role, rep.Healthy // it says it runs no copy of the app
	case rep.Epoch != epoch || rep.ActiveHostID != active:
		return apitype.RoleUnknown, false
	case rep.Role == wire.RoleActive && id == active, rep.Role == wire.RoleStandby && id != active:
		return rep.Role, rep.Healthy
	}
	return apitype.RoleUnknown, false
}
