// Package version reports which Hummingbird build is running.
package version

import "runtime/debug"

// stamped is set at link time: -ldflags "-X hummingbird.io/hummingbird/internal/version.stamped=v0.1.0".
var stamped string

// String returns the release version, or the VCS revision of a development
// build, or "dev".
func String() string {
	if stamped != "" {
		return stamped
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}
