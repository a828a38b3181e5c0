// Package config layers a command's settings: each flag's default, then a
// YAML file, then its HB_ environment variable, then the command line.
// Every flag gets its variable by rule: --data-dir is HB_DATA_DIR.
package config

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// EnvName is the environment variable of a flag.
func EnvName(flag string) string {
	return "HB_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// DocumentEnv appends "(env HB_…)" to the usage of every flag in fs, so
// --help shows the variables.
func DocumentEnv(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || strings.Contains(f.Usage, "(env ") {
			return
		}
		f.Usage += " (env " + EnvName(f.Name) + ")"
	})
}

// Apply sets every flag of fs that was not given on the command line from
// its environment variable (looked up with getenv) or else from file, a
// YAML mapping of flag names to values (lists for repeated flags). Keys of
// file that name no flag are an error, so typos do not pass silently.
func Apply(fs *pflag.FlagSet, file map[string]any, getenv func(string) string) error {
	for k := range file {
		if fs.Lookup(k) == nil {
			return fmt.Errorf("config file: unknown setting %q (settings are named like the flags: %s)", k, strings.Join(flagNames(fs), ", "))
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, serr)
			}
			return
		}
		v, ok := file[f.Name]
		if !ok {
			return
		}
		var s string
		switch x := v.(type) {
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			s = strings.Join(parts, ",")
		default:
			s = fmt.Sprint(x)
		}
		if serr := fs.Set(f.Name, s); serr != nil {
			err = fmt.Errorf("config file %s: %q: %w", f.Name, s, serr)
		}
	})
	return err
}

// ReadFile reads a YAML settings file. A missing file is an error only when
// required.
func ReadFile(path string, required bool) (map[string]any, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return m, nil
}

func flagNames(fs *pflag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && f.Name != "config" {
			out = append(out, f.Name)
		}
	})
	sort.Strings(out)
	return out
}
