package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/apitype"
	"hummingbird.io/hummingbird/internal/client"
	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/store"
)

// TestRenew joins, checks that the controller refuses to renew a new
// certificate, then ages it into the renewal window: the heartbeat reply
// offers renewal, the agent renews, the new certificate works and the old
// one is refused.
func TestRenew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	in := controllertest.Start(t, "", nil)
	tok := enrollToken(t, in, "edge-01")
	dir := t.TempDir()
	joined, err := Join(ctx, JoinOptions{Controller: in.URL, Token: tok, CAHash: pki.CAHash(in.Controller.CA.Cert), Hostname: "edge-01", StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s := &session{o: RunOptions{StateDir: dir, Log: slog.New(slog.DiscardHandler)}, controllers: []string{in.URL}}
	if err := s.connect(); err != nil {
		t.Fatal(err)
	}
	s.boot = "b"
	var ae *apiError
	if err := s.renew(ctx); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Errorf("renewal of a new certificate: %v, want 409", err)
	}

	// The certificate, signed again as if 61 of its 90 days had passed.
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := makeCSR(key.(*ecdsa.PrivateKey), "edge-01")
	if err != nil {
		t.Fatal(err)
	}
	// Of the next generation, as a renewal would be: the host's serial is
	// read from the certificate the agent holds.
	held, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := pem.Decode(held)
	heldCert, err := x509.ParseCertificate(hb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	aged, serial, err := pki.SignAgent(in.Controller.CA, csr, joined.HostUUID, heldCert.SerialNumber.Text(16), true,
		time.Now().Add(-pki.AgentCertValidity*2/3-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Controller.Store.Write(ctx, func(tx store.Tx) error {
		h, err := tx.HostByUUID(joined.HostUUID)
		if err != nil {
			return err
		}
		return tx.SetHostAgent(h.ID, serial)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CertFile), aged, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.connect(); err != nil {
		t.Fatal(err)
	}
	old := s.client
	if _, err := s.beat(ctx); err != nil {
		t.Fatalf("heartbeat with the aged certificate: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, CertFile))
	if string(aged) == string(after) {
		t.Fatal("the heartbeat that offered renewal left the aged certificate")
	}
	if _, err := s.beat(ctx); err != nil {
		t.Errorf("heartbeat with the renewed certificate: %v", err)
	}
	s.client = old
	_, err = s.beat(ctx)
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Errorf("heartbeat with the replaced certificate: %v, want 403", err)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: time.Second, Max: 10 * time.Second, Rand: func() float64 { return 0.999999 }}
	var got []time.Duration
	for range 6 {
		got = append(got, b.Next().Round(time.Millisecond))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff ceilings %v, want %v", got, want)
		}
	}
	b.Reset()
	if d := b.Next().Round(time.Millisecond); d != time.Second {
		t.Errorf("after Reset: %v", d)
	}
	b.Rand = func() float64 { return 0 }
	if d := b.Next(); d != 0 {
		t.Errorf("jitter can go to zero: %v", d)
	}
}

// TestAutoAdd: without the policy a node that is not in the inventory is
// refused; with it, it is added as an edgeworker (on a static management
// pool, with the address it connected from) and joins.
func TestAutoAdd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, auto := range []bool{false, true} {
		in := controllertest.Start(t, "", func(c *controller.Config) {
			c.AgentAutoAdd = auto
			c.MgmtSubnet, c.MgmtControllerIPs = "127.0.0.0/8", nil
		})
		api := in.Client(t, in.AdminToken)
		tok, err := api.CreateToken(ctx, apitype.TokenCreate{Type: "enroll"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Join(ctx, JoinOptions{Controller: in.URL, Token: tok.Secret, CAHash: pki.CAHash(in.Controller.CA.Cert),
			Hostname: "edge-new", StateDir: t.TempDir()})
		if !auto {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
				t.Errorf("join of an unknown node without auto-add: %v, want 403", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("join with auto-add: %v", err)
		}
		h, err := api.GetHost(ctx, "edge-new")
		if err != nil || h.Personality != "edgeworker" || h.MgmtIP != "127.0.0.1" {
			t.Errorf("auto-added host: %+v, %v", h, err)
		}
		evs, err := api.ListEvents(ctx, client.EventFilter{Action: "host.add"})
		if err != nil || len(evs) != 1 || evs[0].Actor != "agent-auto-add" {
			t.Errorf("host.add events: %+v, %v", evs, err)
		}
	}
}
