package apitype

import (
	"errors"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// A host list is the API's largest and most frequent answer: a page of
// 1,000 hosts is about 600 KB of JSON. encoding/json spends a fifth of
// such a request reflecting over Host's fields and growing its buffer;
// AppendJSON writes the same bytes directly. FuzzHostJSON holds the two
// to the same output, byte for byte, so clients see no difference.

// errNotAppendable says a value holds something AppendJSON does not
// write the way encoding/json does (a time outside years 0–9999):
// encode it with encoding/json, which reports it.
var errNotAppendable = errors.New("apitype: value needs encoding/json")

// AppendJSON appends l as encoding/json's Encoder (with its default HTML
// escaping) writes it, without the Encoder's trailing newline.
func (l HostList) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"hosts":`...)
	if l.Hosts == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range l.Hosts {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = l.Hosts[i].appendJSON(b); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	if l.Next != "" {
		b = append(b, `,"next":`...)
		b = appendJSONString(b, l.Next)
	}
	return append(b, '}'), nil
}

// JSONSize is about how many bytes AppendJSON writes for l: enough that
// a buffer of this size rarely grows.
func (l HostList) JSONSize() int { return 64 + 700*len(l.Hosts) }

// JSONSize is about how many bytes AppendJSON writes for h.
func (h Host) JSONSize() int { return 700 }

// AppendJSON appends h as encoding/json's Encoder writes it, without
// the trailing newline.
func (h Host) AppendJSON(b []byte) ([]byte, error) { return h.appendJSON(b) }

func (h *Host) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, h.ID, 10)
	b = appendField(b, `,"uuid":`, h.UUID)
	b = appendField(b, `,"hostname":`, h.Hostname)
	b = appendField(b, `,"personality":`, h.Personality)
	b = appendField(b, `,"administrative":`, h.Administrative)
	b = appendField(b, `,"operational":`, h.Operational)
	b = appendField(b, `,"availability":`, h.Availability)
	b = appendField(b, `,"invprovision":`, h.InvProvision)
	b = appendField(b, `,"mgmt_mac":`, h.MgmtMAC)
	b = appendField(b, `,"mgmt_ip":`, h.MgmtIP)
	b = appendField(b, `,"pool":`, h.Pool)
	b = appendField(b, `,"group":`, h.Group)
	b = append(b, `,"labels":`...)
	b = appendLabels(b, h.Labels)
	b = appendField(b, `,"location":`, h.Location)
	b = appendField(b, `,"bm_type":`, h.BMType)
	b = appendField(b, `,"bm_ip":`, h.BMIP)
	b = appendField(b, `,"bm_username":`, h.BMUsername)
	b = appendField(b, `,"ssh_user":`, h.SSHUser)
	b = appendField(b, `,"ssh_key":`, h.SSHKey)
	b = appendField(b, `,"node_state":`, h.NodeState)
	b = appendField(b, `,"kubelet_version":`, h.KubeletVersion)
	b = appendField(b, `,"node_reason":`, h.NodeReason)
	var err error
	b = append(b, `,"created_at":`...)
	if b, err = appendJSONTime(b, h.CreatedAt); err != nil {
		return b, err
	}
	b = append(b, `,"updated_at":`...)
	if b, err = appendJSONTime(b, h.UpdatedAt); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendField(b []byte, key, v string) []byte {
	return appendJSONString(append(b, key...), v)
}

// appendLabels writes a map as encoding/json does: keys sorted, nil as
// null.
func appendLabels(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var small [8]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// appendJSONTime writes t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds), or refuses what MarshalJSON refuses.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, errNotAppendable
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, errNotAppendable
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string the way encoding/json does
// with HTML escaping: ", \ and the control characters escaped (\b, \f,
// \n, \r and \t by name), <, > and & as \u003c, \u003e and \u0026,
// U+2028 and U+2029 escaped, and each byte of invalid UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
