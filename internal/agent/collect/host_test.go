package collect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"hummingbird.io/hummingbird/internal/wire"
)

// The report on this machine must agree with what lscpu, lsblk and ip say.
// Other tests on the machine may add and remove links and loop devices
// meanwhile, so a disagreement is looked at again a few times before it
// fails the test.
func TestThisHostAgreesWithLscpuLsblkIP(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the collectors of this machine's system are not the Linux ones")
	}
	for _, prog := range []string{"lscpu", "lsblk", "ip"} {
		if _, err := exec.LookPath(prog); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (apt-get install util-linux iproute2): %v", prog, err)
			}
			t.Skipf("%s not installed: %v", prog, err)
		}
	}
	checks := []struct {
		name    string
		compare func(t *testing.T) string // a diff, "" when they agree
	}{
		{"lscpu", compareLscpu},
		{"lsblk", compareLsblk},
		{"ip link", compareIPLink},
		{"uname", compareUname},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var diff string
			for attempt := range 5 {
				if attempt > 0 {
					time.Sleep(200 * time.Millisecond)
				}
				if diff = c.compare(t); diff == "" {
					return
				}
			}
			t.Errorf("report disagrees with %s (-%s +report):\n%s", c.name, c.name, diff)
		})
	}
}

// command runs lscpu, lsblk, ip or uname and returns its standard output.
func command(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// collectHost runs one collector of this machine.
func collectHost(t *testing.T, name string) wire.Inventory {
	t.Helper()
	for _, c := range Linux(Sources{}) {
		if c.Name() == name {
			var inv wire.Inventory
			if err := c.Collect(t.Context(), &inv); err != nil {
				t.Fatalf("collect %s: %v", name, err)
			}
			return inv
		}
	}
	t.Fatalf("no collector %s", name)
	return wire.Inventory{}
}

type lscpuField struct {
	Field    string       `json:"field"`
	Data     string       `json:"data"`
	Children []lscpuField `json:"children"`
}

// socketShape is a socket without what lscpu does not say alike.
type socketShape struct {
	Model          string
	Cores, Threads int
}

func compareLscpu(t *testing.T) string {
	t.Helper()
	var doc struct {
		Lscpu []lscpuField `json:"lscpu"`
	}
	if err := json.Unmarshal(command(t, "lscpu", "-J"), &doc); err != nil {
		t.Fatalf("lscpu -J: %v", err)
	}
	fields := make(map[string]string)
	var walk func([]lscpuField)
	walk = func(fs []lscpuField) {
		for _, f := range fs {
			fields[strings.TrimSuffix(f.Field, ":")] = f.Data
			walk(f.Children)
		}
	}
	walk(doc.Lscpu)
	number := func(field string) int {
		n, err := strconv.Atoi(fields[field])
		if err != nil {
			t.Fatalf("lscpu %q = %q: %v", field, fields[field], err)
		}
		return n
	}
	sockets, cores, threads := number("Socket(s)"), number("Core(s) per socket"), number("Thread(s) per core")
	var want []socketShape
	for range sockets {
		want = append(want, socketShape{Model: fields["Model name"], Cores: cores, Threads: cores * threads})
	}
	var got []socketShape
	for _, c := range collectHost(t, NameCPU).CPUs {
		got = append(got, socketShape{Model: c.Model, Cores: c.Cores, Threads: c.Threads})
	}
	return cmp.Diff(want, got)
}

// flexible reads a JSON number, boolean or string alike, as older lsblk
// versions write sizes and flags as strings.
type flexible string

func (f *flexible) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = flexible(s)
		return nil
	}
	if string(b) == "null" {
		*f = ""
		return nil
	}
	*f = flexible(b)
	return nil
}

type diskShape struct {
	Size       uint64
	Rotational bool
}

func compareLsblk(t *testing.T) string {
	t.Helper()
	var doc struct {
		Blockdevices []struct {
			Name   string   `json:"name"`
			Size   flexible `json:"size"`
			Rota   flexible `json:"rota"`
			Type   string   `json:"type"`
			Serial flexible `json:"serial"`
		} `json:"blockdevices"`
	}
	out := command(t, "lsblk", "-J", "-b", "-d", "-o", "NAME,SIZE,ROTA,TYPE,SERIAL")
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("lsblk -J: %v", err)
	}
	want := make(map[string]diskShape)
	serials := make(map[string]string)
	for _, d := range doc.Blockdevices {
		size, err := strconv.ParseUint(string(d.Size), 10, 64)
		if err != nil {
			t.Fatalf("lsblk size of %s = %q: %v", d.Name, d.Size, err)
		}
		// lsblk lists zram, empty devices and the like as disks too; the
		// report keeps real disks only.
		if d.Type != "disk" || size == 0 || skipDisk(d.Name) {
			continue
		}
		want[d.Name] = diskShape{Size: size, Rotational: d.Rota == "true" || d.Rota == "1"}
		serials[d.Name] = string(d.Serial)
	}
	got := make(map[string]diskShape)
	for _, d := range collectHost(t, NameDisks).Disks {
		got[d.Name] = diskShape{Size: d.SizeBytes, Rotational: d.Rotational}
		// lsblk takes serials from udev, which reads them its own way
		// and may be absent: say where the two differ, without failing.
		if s := serials[d.Name]; s != "" && s != d.Serial {
			t.Logf("disk %s: lsblk serial %q, report %q", d.Name, s, d.Serial)
		}
	}
	if len(want) == 0 {
		t.Log("no disks on this machine")
	}
	return cmp.Diff(want, got)
}

type linkShape struct {
	MAC   string
	State string
	MTU   int
}

func compareIPLink(t *testing.T) string {
	t.Helper()
	var links []struct {
		Name      string `json:"ifname"`
		Address   string `json:"address"`
		OperState string `json:"operstate"`
		MTU       int    `json:"mtu"`
		LinkType  string `json:"link_type"`
	}
	if err := json.Unmarshal(command(t, "ip", "-j", "link"), &links); err != nil {
		t.Fatalf("ip -j link: %v", err)
	}
	want := make(map[string]linkShape)
	macs := make(map[string]bool)
	for _, l := range links {
		// ip shows a tunnel's endpoint address where sysfs has none:
		// compare Ethernet-like hardware addresses only.
		hasMAC := l.LinkType == "ether" || l.LinkType == "loopback"
		macs[l.Name] = hasMAC
		s := linkShape{State: strings.ToLower(l.OperState), MTU: l.MTU}
		if hasMAC {
			s.MAC = strings.ToLower(l.Address)
		}
		want[l.Name] = s
	}
	got := make(map[string]linkShape)
	for _, ifc := range collectHost(t, NameInterfaces).Interfaces {
		s := linkShape{State: ifc.State, MTU: ifc.MTU}
		if macs[ifc.Name] {
			s.MAC = ifc.MAC
		}
		got[ifc.Name] = s
	}
	if len(got) == 0 {
		return fmt.Sprintf("no interfaces reported; ip has %d", len(want))
	}
	return cmp.Diff(want, got)
}

// compareUname checks the whole default collection on this machine: no
// collector fails, and the kernel is the one uname names.
func compareUname(t *testing.T) string {
	t.Helper()
	inv, err := Collect(t.Context(), Sources{})
	if err != nil {
		t.Fatalf("Collect on this machine: %v", err)
	}
	if inv.OS.ID == "" || inv.OS.PrettyName == "" {
		t.Errorf("OS = %+v, want an ID and a pretty name", inv.OS)
	}
	return cmp.Diff(strings.TrimSpace(string(command(t, "uname", "-r"))), inv.Kernel)
}
