package collect

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"hummingbird.io/hummingbird/internal/wire"
)

// Hash returns a stable digest of inv, "sha256:" and 64 hex digits, that
// changes only when something real changed: it leaves out CollectedAt and
// the values that move on their own (available memory, the CPU clock),
// and does not depend on the order of CPUs, disks, interfaces or
// addresses, nor on an empty list being nil (as JSON null) or not.
func Hash(inv wire.Inventory) string {
	n := inv
	n.CollectedAt = time.Time{}
	n.Memory.AvailableBytes = 0
	n.CPUs = slices.Clone(inv.CPUs)
	for i := range n.CPUs {
		n.CPUs[i].MHz = 0
	}
	slices.SortFunc(n.CPUs, func(a, b wire.CPU) int { return cmp.Compare(a.Socket, b.Socket) })
	n.Disks = slices.Clone(inv.Disks)
	slices.SortFunc(n.Disks, func(a, b wire.Disk) int { return strings.Compare(a.Name, b.Name) })
	n.Interfaces = slices.Clone(inv.Interfaces)
	for i := range n.Interfaces {
		a := slices.Clone(n.Interfaces[i].Addresses)
		slices.Sort(a)
		n.Interfaces[i].Addresses = emptyNil(a)
	}
	slices.SortFunc(n.Interfaces, func(a, b wire.Interface) int { return strings.Compare(a.Name, b.Name) })
	n.CPUs, n.Disks, n.Interfaces = emptyNil(n.CPUs), emptyNil(n.Disks), emptyNil(n.Interfaces)
	// Marshalling these types cannot fail: no maps, channels or funcs.
	b, _ := json.Marshal(n)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func emptyNil[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}
