package collect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"hummingbird.io/hummingbird/internal/wire"
)

// parseOSRelease parses os-release(5): KEY=value lines, the value
// possibly quoted in shell style.
func parseOSRelease(b []byte) map[string]string {
	m := make(map[string]string)
	lines(b, func(line string) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			return
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return
		}
		m[strings.TrimSpace(k)] = unquote(strings.TrimSpace(v))
	})
	return m
}

// unquote undoes shell quoting as far as os-release uses it: single
// quotes, double quotes with backslash escapes, backslashes outside quotes.
func unquote(v string) string {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		case c == '\\' && i+1 < len(v) && (quote == 0 || strings.IndexByte("\"\\$`", v[i+1]) >= 0):
			i++
			b.WriteByte(v[i])
		case c == '"':
			if quote == '"' {
				quote = 0
			} else {
				quote = '"'
			}
		case c == '\'' && quote == 0:
			quote = '\''
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// readUnderRoot reads path, a file of the tree whose root is root,
// following an absolute symbolic link inside that tree rather than in the
// agent's own file system (/etc/os-release -> /usr/lib/os-release read
// through a host mount).
func readUnderRoot(root, path string) ([]byte, error) {
	for range 8 {
		target, err := os.Readlink(path)
		if err != nil || !filepath.IsAbs(target) {
			break
		}
		path = filepath.Join(root, target)
	}
	return os.ReadFile(path)
}

func (s Sources) collectOS(_ context.Context, inv *wire.Inventory) error {
	root := filepath.Dir(filepath.Clean(s.Etc))
	var b []byte
	var err error
	paths := []string{filepath.Join(s.Etc, "os-release"), filepath.Join(root, "usr/lib/os-release")}
	for _, p := range paths {
		b, err = readUnderRoot(root, p)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	m := parseOSRelease(b)
	inv.OS = wire.OS{
		ID:         m["ID"],
		VersionID:  m["VERSION_ID"],
		PrettyName: m["PRETTY_NAME"],
		IDLike:     m["ID_LIKE"],
	}
	if inv.OS.ID == "" {
		inv.OS.ID = "linux" // the default os-release(5) gives
	}
	if inv.OS.PrettyName == "" {
		inv.OS.PrettyName = strings.TrimSpace(m["NAME"] + " " + m["VERSION"])
	}
	if inv.OS.PrettyName == "" {
		return fmt.Errorf("%s: neither PRETTY_NAME nor NAME", paths[0])
	}
	return nil
}
