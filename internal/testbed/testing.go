package testbed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Require skips tb unless the end-to-end tests were asked for (HB_E2E=1),
// and fails it when they were but the test does not run as root, which
// the bed needs.
func Require(tb testing.TB) {
	tb.Helper()
	if os.Getenv("HB_E2E") != "1" {
		tb.Skip("end-to-end test: set HB_E2E=1 to run it on the test bed (needs root and test/bed/prepare)")
	}
	if os.Geteuid() != 0 {
		tb.Fatal("HB_E2E=1 but not root: the test bed needs root")
	}
}

// Main runs a test binary's tests with beds that never outlive it: first it takes down beds left
// by test binaries that were killed, and if this one is interrupted (SIGINT, SIGTERM) it takes
// down its own beds before it exits. Call it from TestMain: os.Exit(testbed.Main(m)).
func Main(m *testing.M) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if os.Geteuid() == 0 {
		reap, cancel := context.WithTimeout(ctx, 2*time.Minute)
		if err := Reap(reap, DefaultDir()); err != nil {
			slog.Warn("taking down beds left behind failed", "err", err)
		}
		cancel()
	}
	code := make(chan int, 1)
	go func() { code <- m.Run() }()
	select {
	case c := <-code:
		return c
	case <-ctx.Done():
		stop()
		slog.Warn("interrupted, taking down this test binary's beds")
		down, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := downOwned(down, DefaultDir(), os.Getpid()); err != nil {
			slog.Error("taking down beds failed", "err", err)
		}
		return 1
	}
}

// downOwned takes down the beds under base that owner made.
func downOwned(ctx context.Context, base string, owner int) error {
	dirs, err := Beds(base)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "owner"))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("reading the owner of %s: %w", d, err))
			}
			continue
		}
		if strings.TrimSpace(string(data)) == strconv.Itoa(owner) {
			errs = append(errs, Down(ctx, d))
		}
	}
	return errors.Join(errs...)
}

// Start brings a bed up for a test and takes it down when the test and its subtests finish,
// whether they pass or not. The bed's owner is this process (see [Main] and [Reap]).
func Start(tb testing.TB, ctx context.Context, opts Options) *Bed {
	tb.Helper()
	opts.Owner = os.Getpid()
	start := time.Now()
	b, err := Up(ctx, opts)
	if err != nil {
		tb.Fatalf("bringing the test bed up: %v", err)
	}
	tb.Logf("test bed %d up in %v", b.Index, time.Since(start).Round(time.Millisecond))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.Down(ctx); err != nil {
			tb.Errorf("taking the test bed down: %v", err)
		}
	})
	return b
}
