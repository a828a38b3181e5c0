package collect

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"hummingbird.io/hummingbird/internal/wire"
)

func (s Sources) collectInterfaces(_ context.Context, inv *wire.Inventory) error {
	netDir := filepath.Join(s.Sys, "class/net")
	entries, err := os.ReadDir(netDir)
	if err != nil {
		return err
	}
	var errs []error
	addrs, err := s.Addrs()
	if err != nil {
		errs = append(errs, err)
	}
	ifs := []wire.Interface{}
	for _, e := range entries {
		name := e.Name()
		dir := filepath.Join(netDir, name)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue // bonding_masters and other files
		}
		mtu, err := readInt(filepath.Join(dir, "mtu"))
		if err != nil {
			if os.IsNotExist(err) {
				continue // gone while we looked
			}
			errs = append(errs, fmt.Errorf("interface %s: %w", name, err))
		}
		ifc := wire.Interface{
			Name:      name,
			MAC:       strings.ToLower(readOptional(filepath.Join(dir, "address"))),
			State:     strings.ToLower(readOptional(filepath.Join(dir, "operstate"))),
			MTU:       int(mtu),
			Addresses: []string{},
		}
		if ifc.State == "" {
			ifc.State = "unknown"
		}
		// Reading the speed of a link that is down fails; virtual links
		// say -1. Both are "unknown", 0.
		if sp, err := strconv.Atoi(readOptional(filepath.Join(dir, "speed"))); err == nil && sp > 0 {
			ifc.SpeedMbps = sp
		}
		if _, err := os.Stat(filepath.Join(dir, "device")); err != nil {
			ifc.Virtual = true
		}
		if a := addrs[name]; a != nil {
			ifc.Addresses = slices.Clone(a)
		}
		ifs = append(ifs, ifc)
	}
	slices.SortFunc(ifs, func(a, b wire.Interface) int { return strings.Compare(a.Name, b.Name) })
	inv.Interfaces = ifs
	return errors.Join(errs...)
}
