package main

import (
	"strings"
	"testing"

	"hummingbird.io/hummingbird/internal/deplist"
)

// TestDependencies keeps hbctl a thin client of the API: the packages it
// links beyond the standard library must be exactly those in deps.txt (see
// package deplist), and none of the controller's (the store and its
// database drivers and migrations, the inventory, authentication,
// Kubernetes' client).
func TestDependencies(t *testing.T) {
	t.Parallel()
	deplist.Check(t, "keep hbctl a client of the API", func(p string) string {
		for _, bad := range controllerOnly {
			if strings.HasPrefix(p, bad) {
				return "it belongs to the controller: move what hbctl needs of it to apitype"
			}
		}
		return ""
	})
}

// controllerOnly are import path prefixes hbctl must never link, even when
// deps.txt lists them.
var controllerOnly = []string{
	"hummingbird.io/hummingbird/internal/store",
	"hummingbird.io/hummingbird/internal/inventory",
	"hummingbird.io/hummingbird/internal/auth",
	"hummingbird.io/hummingbird/internal/controller",
	"hummingbird.io/hummingbird/internal/kube",
	"modernc.org/sqlite",
	"github.com/jackc/pgx",
	"github.com/pressly/goose",
	"k8s.io/",
	"github.com/hashicorp/raft",
}
