package cli

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// What hbctl prints comes partly from nodes (their inventory) and from
// playbooks' output, which the controller passes on: a control character
// in it could move the cursor, rewrite the terminal's title or hide text
// from the person reading. Every such character is printed escaped, as Go
// writes it in a string literal (\x1b, \u202e), and invalid UTF-8 as \xNN.

// unprintable says whether r must not reach a terminal as it is: C0 and C1
// controls, DEL, and format characters such as bidirectional overrides.
func unprintable(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }

// escapeText is s with every unprintable character and invalid byte escaped.
func escapeText(s string) string { return escape(s, false) }

// escapeLines is escapeText that keeps newlines and tabs: for logs.
func escapeLines(s string) string { return escape(s, true) }

func escape(s string, lines bool) string {
	keep := func(r rune) bool { return lines && (r == '\n' || r == '\t') }
	if utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return unprintable(r) && !keep(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keep(r) || !unprintable(r):
			b.WriteString(s[i : i+n])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += n
	}
	return b.String()
}

// escapeJSON escapes, in encoding/json's output, the characters it leaves
// as they are and a terminal would act on: DEL, C1 controls and format
// characters. The JSON stays the same value: \u escapes are JSON's own.
// It serves YAML too, whose double-quoted scalars take the same escapes;
// quoteUnprintable puts every string that has such characters in one.
func escapeJSON(b []byte) []byte {
	bad := func(r rune) bool { return r != '\n' && unprintable(r) }
	s := string(b)
	if strings.IndexFunc(s, bad) < 0 {
		return b
	}
	var out strings.Builder
	for _, r := range s {
		if bad(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
			continue
		}
		out.WriteRune(r)
	}
	return []byte(out.String())
}

// quoteUnprintable writes every string scalar of n with an unprintable
// character double-quoted. yaml.v3 escapes control characters there itself
// but takes format characters as printable, as YAML does.
func quoteUnprintable(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && strings.IndexFunc(n.Value, unprintable) >= 0 {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		quoteUnprintable(c)
	}
}
