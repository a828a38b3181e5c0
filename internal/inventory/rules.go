package inventory

import (
	"net"
	"net/netip"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/util/validation"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/problem"
)

// Host states (apitype's, where hbctl finds them without this package).
const (
	AdminLocked       = apitype.AdminLocked
	AdminUnlocked     = apitype.AdminUnlocked
	OperDisabled      = apitype.OperDisabled
	OperEnabled       = apitype.OperEnabled
	AvailOffline      = apitype.AvailOffline
	AvailOnline       = apitype.AvailOnline
	AvailAvailable    = apitype.AvailAvailable
	AvailDegraded     = apitype.AvailDegraded
	AvailFailed       = apitype.AvailFailed
	ProvUnprovisioned = apitype.ProvUnprovisioned
	ProvProvisioning  = apitype.ProvProvisioning
	ProvProvisioned   = apitype.ProvProvisioned
	ProvFailed        = apitype.ProvFailed
)

// Personalities lists the personalities a host may have.
var Personalities = apitype.Personalities

// BMTypes lists the board management types a non-edgeworker host may have.
var BMTypes = []string{"ipmi", "redfish", "dynamic"}

// Enums lists the values each enumerated host field (and list filter) takes.
var Enums = apitype.HostEnums

// CheckEnum says whether v is one of the values field takes.
func CheckEnum(field, v string) error {
	for _, ok := range Enums[field] {
		if v == ok {
			return nil
		}
	}
	return problem.Invalidf(field, "%s %q is not one of: %s", field, v, strings.Join(Enums[field], ", "))
}

// LabelPrefix is the label key prefix Hummingbird reserves for the labels it
// sets on Kubernetes Nodes itself (group, personality).
const LabelPrefix = "hummingbird.io/"

// CheckHostname applies RFC 1123: lowercase letters, digits and '-', labels
// of 1 to 63 characters that neither start nor end with '-', separated by
// '.', 253 characters at most. A name of digits only is refused because it
// would read as a host id.
func CheckHostname(name string) error {
	const hint = "use lowercase letters, digits and '-' (RFC 1123), like edge-01"
	if name == "" {
		return problem.Invalidf("hostname", "hostname is required; %s", hint)
	}
	if len(name) > 253 {
		return problem.Invalidf("hostname", "hostname is %d characters long; at most 253 are allowed", len(name))
	}
	allDigits := true
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return problem.Invalidf("hostname", "hostname %q has an empty label (two dots, or a dot at an end)", name)
		}
		if len(label) > 63 {
			return problem.Invalidf("hostname", "hostname label %q is %d characters long; at most 63 are allowed", label, len(label))
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return problem.Invalidf("hostname", "hostname %q: a label cannot start or end with '-'", name)
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r == '-':
				allDigits = false
			case r >= '0' && r <= '9':
			case r >= 'A' && r <= 'Z':
				if s := suggestHostname(name); s != "" {
					return problem.Invalidf("hostname", "hostname %q has uppercase letters; use %q", name, s)
				}
				return problem.Invalidf("hostname", "hostname %q has uppercase letters; %s", name, hint)
			default:
				if s := suggestHostname(name); s != "" {
					return problem.Invalidf("hostname", "hostname %q has the character %q; use %q (RFC 1123)", name, r, s)
				}
				return problem.Invalidf("hostname", "hostname %q has the character %q; %s", name, r, hint)
			}
		}
	}
	if allDigits {
		return problem.Invalidf("hostname", "hostname %q is only digits, which reads as a host id; add a letter", name)
	}
	if _, err := uuid.Parse(name); err == nil {
		return problem.Invalidf("hostname", "hostname %q has the form of a uuid, which reads as a host uuid; choose another name", name)
	}
	return nil
}

// suggestHostname proposes a name CheckHostname accepts for one it refused
// for its characters: uppercase letters lowered, '_' and ' ' made '-', and
// '-' trimmed from the ends of labels. It returns "" when there is nothing
// plain to propose: other characters, an empty or overlong label or name,
// a name of digits only or one of the form of a uuid.
func suggestHostname(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'A' && r <= 'Z':
			b.WriteRune(unicode.ToLower(r))
		case r == '_' || r == ' ':
			b.WriteByte('-')
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			return ""
		}
	}
	labels := strings.Split(b.String(), ".")
	for i, l := range labels {
		l = strings.Trim(l, "-")
		if l == "" || len(l) > 63 {
			return ""
		}
		labels[i] = l
	}
	s := strings.Join(labels, ".")
	if len(s) > 253 || strings.Trim(s, "0123456789.") == "" {
		return ""
	}
	if _, err := uuid.Parse(s); err == nil {
		return ""
	}
	return s
}

// NormalizeMAC parses a management MAC (colon, dash or dot form, or twelve
// hex digits) and returns it in lowercase colon form. Only unicast EUI-48
// addresses are accepted.
func NormalizeMAC(field, s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return "", problem.Invalidf(field, "%s %q is not a MAC address; write six hex pairs like 52:54:00:12:34:56", field, s)
	}
	if hw[0]&1 == 1 {
		return "", problem.Invalidf(field, "%s %s is a multicast or broadcast address; give the NIC's own (unicast) MAC", field, hw)
	}
	if hw.String() == "00:00:00:00:00:00" {
		return "", problem.Invalidf(field, "%s is all zeros; give the NIC's own MAC", field)
	}
	return hw.String(), nil
}

// broadcast returns the IPv4 broadcast address of p.
func broadcast(p netip.Prefix) (netip.Addr, bool) {
	if !p.Addr().Is4() {
		return netip.Addr{}, false
	}
	return lastAddr(p), true
}

// CheckGroup: a group name becomes a Node label value, so it follows RFC
// 1123 label rules.
func CheckGroup(g string) error {
	if g == "" {
		return nil
	}
	if errs := validation.IsDNS1123Label(g); len(errs) > 0 {
		return problem.Invalidf("group", "group %q: %s", g, strings.Join(errs, "; "))
	}
	return nil
}

// KubernetesLabelDomains are the label key namespaces Kubernetes reserves for itself; their
// subdomains (node-role.kubernetes.io, node-restriction.kubernetes.io, topology.kubernetes.io,
// ...) too. Host and group labels may use none of them: such labels steer the cluster (node
// roles, the NodeRestriction plugin's node-restriction.kubernetes.io/ keys, among them the mark
// of the Nodes Hummingbird owns), so they are set by Kubernetes and by Hummingbird, not by
// whoever may label a host.
var KubernetesLabelDomains = []string{"kubernetes.io", "k8s.io"}

// ReservedLabelKey says whether label key k lies in a namespace of KubernetesLabelDomains or
// under LabelPrefix.
func ReservedLabelKey(k string) bool {
	if strings.HasPrefix(k, LabelPrefix) {
		return true
	}
	prefix, _, ok := strings.Cut(k, "/")
	if !ok {
		return false
	}
	prefix = strings.ToLower(prefix)
	for _, d := range KubernetesLabelDomains {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			return true
		}
	}
	return false
}

// CheckLabels applies Kubernetes label syntax to keys and values and refuses keys under
// LabelPrefix and in the namespaces of KubernetesLabelDomains; host and group labels both pass
// here.
func CheckLabels(labels map[string]string) error {
	for k, v := range labels {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return problem.Invalidf("labels", "label key %q: %s", k, strings.Join(errs, "; "))
		}
		if strings.HasPrefix(k, LabelPrefix) {
			return problem.Invalidf("labels", "label key %q: the prefix %s is Hummingbird's own (the controller sets %sgroup and %spersonality on Nodes)",
				k, LabelPrefix, LabelPrefix, LabelPrefix)
		}
		if ReservedLabelKey(k) {
			prefix, _, _ := strings.Cut(k, "/")
			return problem.Invalidf("labels", "label key %q: the prefix %s/ lies in the kubernetes.io and k8s.io namespaces, "+
				"which Kubernetes keeps for itself (node roles, topology, the NodeRestriction plugin's keys): use a prefix "+
				"of your own, like example.com/%s, or none", k, prefix, strings.TrimPrefix(k, prefix+"/"))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return problem.Invalidf("labels", "label %s value %q: %s", k, v, strings.Join(errs, "; "))
		}
	}
	return nil
}

// CheckText bounds a free-text field and refuses control characters.
func CheckText(field, s string, max int) error {
	if len(s) > max {
		return problem.Invalidf(field, "%s is %d bytes long; at most %d are allowed", field, len(s), max)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return problem.Invalidf(field, "%s has a control character (%U); use printable text", field, r)
		}
	}
	return nil
}
