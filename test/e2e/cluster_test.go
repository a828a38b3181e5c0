package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hummingbird.io/hummingbird/internal/controller"
	"hummingbird.io/hummingbird/internal/controller/controllertest"
	"hummingbird.io/hummingbird/internal/pki"
	"hummingbird.io/hummingbird/internal/testbed"
)

// TestClusterShow runs a controller with --kubeconfig pointing at the test
// bed's control plane: GET /v1/cluster (hbctl cluster-show) reports the
// bed's API server, its Kubernetes version and the pin of its CA.
func TestClusterShow(t *testing.T) {
	requireBed(t)
	checkNothingLeft(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	b := testbed.Start(t, ctx, testbed.Options{})
	in := controllertest.Start(t, "", func(c *controller.Config) { c.Kubeconfig = b.ControlPlane.Kubeconfig })
	got, err := in.Client(t, in.AdminToken).Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(b.ControlPlane.Dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil {
		t.Fatal("no PEM in the bed's ca.crt")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Configured || got.Version != testbed.KubernetesVersion || !strings.Contains(got.Server, b.ControlPlane.Endpoint) ||
		got.CAHash != pki.CAHash(ca) || got.Nodes != 0 {
		t.Errorf("cluster %+v; want version %s at %s with CA pin %s and no nodes",
			got, testbed.KubernetesVersion, b.ControlPlane.Endpoint, pki.CAHash(ca))
	}
}
