// Package e2e holds Hummingbird's end-to-end tests. They run on the test bed (package
// testbed): a real Kubernetes control plane and real Debian edge hosts. They need root and the
// cache made by test/bed/prepare, and run only when HB_E2E=1.
package e2e
