package apitype

import (
	"encoding/json"
	"slices"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoding a page of 1,000 hosts with encoding/json costs a client about
// 16 ms of CPU: a validation pass over the whole answer, then reflection
// over every field. DecodeHostList and DecodeHost read the shape the
// controller writes in one pass instead. They are strict: on anything
// they do not handle exactly as encoding/json does (a key in another case
// or unknown, a duplicate key, a number that is not an int64, invalid
// UTF-8, a value of another type, a syntax error) they drop what they
// have and leave the answer to encoding/json. FuzzDecodeHostList holds
// them to json.Unmarshal's result for any input.

// DecodeHostList decodes data (a GET /v1/hosts answer) into l exactly as
// json.Unmarshal(data, l) would for a zero l: l is zeroed first, and the
// result and the error (or its absence) are json.Unmarshal's.
func DecodeHostList(data []byte, l *HostList) error {
	*l = HostList{}
	d := decoder{data: data}
	if d.hostList(l) && d.end() {
		return nil
	}
	*l = HostList{}
	return json.Unmarshal(data, l)
}

// DecodeHost decodes data (a GET /v1/hosts/{host} answer) into h exactly
// as json.Unmarshal(data, h) would for a zero h.
func DecodeHost(data []byte, h *Host) error {
	*h = Host{}
	d := decoder{data: data}
	if d.hostValue(h) && d.end() {
		return nil
	}
	*h = Host{}
	return json.Unmarshal(data, h)
}

// A decoder reads JSON from data. Its methods report whether they read
// what they expected; false means "let encoding/json decide", and pos is
// then of no further use.
type decoder struct {
	data []byte
	pos  int
	kept map[string]string // strings shared has made, by their text
}

// hostList reads a host list object.
func (d *decoder) hostList(l *HostList) bool {
	const (
		seenHosts = 1 << iota
		seenNext
	)
	var seen uint
	return d.object(func(key []byte) bool {
		var bit uint
		var ok bool
		switch string(key) {
		case "hosts":
			bit, ok = seenHosts, d.hosts(&l.Hosts)
		case "next":
			bit, ok = seenNext, d.stringValue(&l.Next)
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
}

// hosts reads an array of hosts, or null.
func (d *decoder) hosts(dst *[]Host) bool {
	if d.null() {
		return true
	}
	if !d.consume('[') {
		return false
	}
	hosts := []Host{}
	if d.consume(']') {
		*dst = hosts
		return true
	}
	for {
		start := d.pos
		hosts = append(hosts, Host{})
		if !d.hostValue(&hosts[len(hosts)-1]) {
			return false
		}
		if len(hosts) == 1 {
			hosts = slices.Grow(hosts, d.hostsLeft(d.pos-start))
		}
		if d.consume(']') {
			*dst = hosts
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

// hostsLeft guesses how many hosts follow the first, which took n bytes:
// hosts of a page are about the same size, so the guess saves growing
// the slice a dozen times. The floor keeps a small first host from
// making the guess absurd.
func (d *decoder) hostsLeft(n int) int {
	n = max(n, 256)
	left := len(d.data) - d.pos
	return left/n + left/n/8
}

// hostValue reads a host object, or null (a zero host).
func (d *decoder) hostValue(h *Host) bool {
	if d.null() {
		return true
	}
	var seen uint32
	return d.object(func(key []byte) bool {
		bit, ok := d.hostField(h, key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
}

// hostField reads the value of key into its field of h, and returns the
// field's bit for finding duplicate keys. The values each host has its
// own of (uuid, hostname, addresses) are not shared.
func (d *decoder) hostField(h *Host, key []byte) (uint32, bool) {
	switch string(key) {
	case "id":
		return 1 << 0, d.int64Value(&h.ID)
	case "uuid":
		return 1 << 1, d.stringValue(&h.UUID)
	case "hostname":
		return 1 << 2, d.stringValue(&h.Hostname)
	case "personality":
		return 1 << 3, d.sharedValue(&h.Personality)
	case "administrative":
		return 1 << 4, d.sharedValue(&h.Administrative)
	case "operational":
		return 1 << 5, d.sharedValue(&h.Operational)
	case "availability":
		return 1 << 6, d.sharedValue(&h.Availability)
	case "invprovision":
		return 1 << 7, d.sharedValue(&h.InvProvision)
	case "mgmt_mac":
		return 1 << 8, d.stringValue(&h.MgmtMAC)
	case "mgmt_ip":
		return 1 << 9, d.stringValue(&h.MgmtIP)
	case "pool":
		return 1 << 10, d.sharedValue(&h.Pool)
	case "group":
		return 1 << 11, d.sharedValue(&h.Group)
	case "labels":
		return 1 << 12, d.labels(&h.Labels)
	case "location":
		return 1 << 13, d.sharedValue(&h.Location)
	case "bm_type":
		return 1 << 14, d.sharedValue(&h.BMType)
	case "bm_ip":
		return 1 << 15, d.stringValue(&h.BMIP)
	case "bm_username":
		return 1 << 16, d.sharedValue(&h.BMUsername)
	case "ssh_user":
		return 1 << 17, d.sharedValue(&h.SSHUser)
	case "ssh_key":
		return 1 << 18, d.sharedValue(&h.SSHKey)
	case "node_state":
		return 1 << 19, d.sharedValue(&h.NodeState)
	case "kubelet_version":
		return 1 << 20, d.sharedValue(&h.KubeletVersion)
	case "node_reason":
		return 1 << 21, d.sharedValue(&h.NodeReason)
	case "created_at":
		return 1 << 22, d.timeValue(&h.CreatedAt)
	case "updated_at":
		return 1 << 23, d.timeValue(&h.UpdatedAt)
	}
	return 0, false
}

// labels reads an object of strings, or null. A null value is an empty
// string, as encoding/json makes it; of a repeated key the last counts,
// as with encoding/json.
func (d *decoder) labels(dst *map[string]string) bool {
	if d.null() {
		return true
	}
	m := make(map[string]string)
	ok := d.object(func(key []byte) bool {
		k, ok := d.shared(key)
		if !ok {
			return false
		}
		var v string
		if !d.sharedValue(&v) {
			return false
		}
		m[k] = v
		return true
	})
	*dst = m
	return ok
}

// object reads an object, calling member with each key's raw text, the
// bytes between its quotes, to read the value that follows the colon.
// Keys are compared as written: a key that would need unescaping to
// match is not matched, and the caller then gives up.
func (d *decoder) object(member func(key []byte) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		d.space()
		key, ok := d.rawString()
		if !ok || !d.consume(':') || !member(key[1:len(key)-1]) {
			return false
		}
		if d.consume('}') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

// stringValue reads a string into dst, or null, which leaves dst alone.
func (d *decoder) stringValue(dst *string) bool { return d.text(dst, unquote) }

// sharedValue is stringValue for the fields whose values repeat from
// host to host (personality, states, pool, group, labels...): hosts with
// the same value share one copy of it, which saves most of a page's
// allocations.
func (d *decoder) sharedValue(dst *string) bool { return d.text(dst, d.shared) }

// text reads a string into dst with conv (its text between the quotes),
// or null, which leaves dst alone.
func (d *decoder) text(dst *string, conv func([]byte) (string, bool)) bool {
	if d.null() {
		return true
	}
	raw, ok := d.rawString()
	if !ok {
		return false
	}
	*dst, ok = conv(raw[1 : len(raw)-1])
	return ok
}

// maxShared bounds how many strings a decoder keeps for sharing, and
// maxSharedLen how long each may be: values that repeat are short and
// few.
const (
	maxShared    = 1024
	maxSharedLen = 64
)

// shared is unquote, returning the string made before for the same text
// when there is one. Only text without escapes (which always shorten it)
// is kept, so that the text is its own key.
func (d *decoder) shared(b []byte) (string, bool) {
	if s, ok := d.kept[string(b)]; ok {
		return s, true
	}
	s, ok := unquote(b)
	if !ok || len(b) > maxSharedLen || len(d.kept) >= maxShared || len(s) != len(b) {
		return s, ok
	}
	if d.kept == nil {
		d.kept = make(map[string]string)
	}
	d.kept[s] = s
	return s, true
}

// int64Value reads a number into dst, or null. Only integers that fit an
// int64 are read; encoding/json judges fractions, exponents and overflow.
func (d *decoder) int64Value(dst *int64) bool {
	if d.null() {
		return true
	}
	b := d.data[d.pos:]
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	n := 0
	for n < len(b) && '0' <= b[n] && b[n] <= '9' {
		n++
	}
	switch {
	case n == 0, n > 19, n > 1 && b[0] == '0':
		return false
	case n < len(b) && (b[n] == '.' || b[n] == 'e' || b[n] == 'E'):
		return false
	}
	var u uint64 // 19 digits always fit
	for _, c := range b[:n] {
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= 1<<63:
		*dst = int64(-u)
	case !neg && u < 1<<63:
		*dst = int64(u)
	default:
		return false
	}
	d.pos = len(d.data) - len(b) + n
	return true
}

// timeValue reads a time as encoding/json does: it gives the quoted text,
// escapes and all, to time.Time's UnmarshalJSON. Null leaves dst alone.
func (d *decoder) timeValue(dst *time.Time) bool {
	if d.null() {
		return true
	}
	raw, ok := d.rawString()
	return ok && dst.UnmarshalJSON(raw) == nil
}

// rawString reads a string and returns it with its quotes, unchanged. It
// checks the string is valid JSON and valid UTF-8 (encoding/json replaces
// invalid UTF-8; that is left to it).
func (d *decoder) rawString() ([]byte, bool) {
	data, start := d.data, d.pos
	if start >= len(data) || data[start] != '"' {
		return nil, false
	}
	ascii := true
	for i := start + 1; i < len(data); i++ {
		c := data[i]
		if plain[c] {
			continue
		}
		switch {
		case c == '"':
			d.pos = i + 1
			raw := data[start:d.pos]
			return raw, ascii || utf8.Valid(raw)
		case c == '\\':
			n := escapeLen(data[i:])
			if n == 0 {
				return nil, false
			}
			i += n - 1
		case c < ' ':
			return nil, false
		default:
			ascii = false
		}
	}
	return nil, false
}

// plain marks the bytes a string holds as they are: ASCII but for the
// quote, the backslash and the control characters.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escapeLen is the length of the valid escape sequence b starts with, or
// 0.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		if hex4(b[2:]) < 0 {
			return 0
		}
		return 6
	}
	return 0
}

// hex4 is the value of the four hex digits b starts with, or -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unquote turns the text between a string's quotes, already checked by
// rawString, into the string encoding/json makes of it. Text without
// escapes is only copied.
func unquote(b []byte) (string, bool) {
	i := 0
	for i < len(b) && b[i] != '\\' {
		i++
	}
	if i == len(b) {
		return string(b), true
	}
	out := make([]byte, 0, len(b))
	for {
		out = append(out, b[:i]...)
		if i == len(b) {
			return string(out), true
		}
		var n int
		if out, n = appendEscape(out, b[i:]); n == 0 {
			return "", false
		}
		b = b[i+n:]
		i = 0
		for i < len(b) && b[i] != '\\' {
			i++
		}
	}
}

// appendEscape appends what the escape sequence b starts with stands for
// and returns the number of bytes it read, 0 for an invalid escape. Like
// encoding/json it joins a surrogate pair into one rune and turns a lone
// surrogate into U+FFFD, leaving what follows it to be read on its own.
func appendEscape(out, b []byte) ([]byte, int) {
	if escapeLen(b) == 0 {
		return out, 0
	}
	switch b[1] {
	case 'b':
		return append(out, '\b'), 2
	case 'f':
		return append(out, '\f'), 2
	case 'n':
		return append(out, '\n'), 2
	case 'r':
		return append(out, '\r'), 2
	case 't':
		return append(out, '\t'), 2
	case 'u':
		r := hex4(b[2:])
		if !utf16.IsSurrogate(r) {
			return utf8.AppendRune(out, r), 6
		}
		if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
			if pair := utf16.DecodeRune(r, hex4(b[8:])); pair != utf8.RuneError {
				return utf8.AppendRune(out, pair), 12
			}
		}
		return utf8.AppendRune(out, utf8.RuneError), 6
	}
	return append(out, b[1]), 2 // " \ /
}

// null reads a null, if one comes next.
func (d *decoder) null() bool {
	d.space()
	if len(d.data)-d.pos >= 4 && string(d.data[d.pos:d.pos+4]) == "null" {
		d.pos += 4
		return true
	}
	return false
}

// consume reads c, after any white space, if it comes next.
func (d *decoder) consume(c byte) bool {
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// space skips white space as JSON defines it.
func (d *decoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// end reports whether only white space is left.
func (d *decoder) end() bool {
	d.space()
	return d.pos == len(d.data)
}
