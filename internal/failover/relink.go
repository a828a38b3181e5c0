package failover

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// When this node's link comes back (a cable plugged in again, an interface set up), its kernel
// has forgotten its neighbours: it asks for a peer's address once, at once, and then only after
// a second (net.ipv4.neigh.*.retrans_time_ms). That first request is lost when the other end
// forwards nothing yet for a moment after the carrier returns, as a bridge or a switch port
// enabling itself does: the member then reaches no peer, and no peer reaches it (its answers wait
// for the address), for that second. It stays a candidate meanwhile and misses what the active
// writes, so that when the active is lost next the witness refuses it as behind and wins itself
// (68-90 ms failovers at a 20 ms heartbeat time, bound 48; 190-200 ms at 100 ms, bound 182).
//
// So on every link that comes up, the agent asks for its peers' addresses itself, relinkAfter
// after and then at doubling intervals up to relinkUntil: the answers settle the kernel's
// pending entries, and a peer that hears a request learns this node's address. IPv4 only (ARP);
// an IPv6 peer waits for the kernel's own neighbour solicitations.
const (
	relinkAfter = 10 * time.Millisecond
	relinkUntil = 640 * time.Millisecond
)

// ifinfomsg and flags of linux/rtnetlink.h and linux/if.h.
const (
	ifinfomsgLen = 16
	iffLowerUp   = 0x10000
	rtmgrpLink   = 0x1
)

// linkUp reports whether an RTM_NEWLINK message says its interface is up with a carrier, and
// which interface.
func linkUp(data []byte) (index int, up bool, ok bool) {
	if len(data) < ifinfomsgLen {
		return 0, false, false
	}
	index = int(int32(binary.NativeEndian.Uint32(data[4:8])))
	flags := binary.NativeEndian.Uint32(data[8:12])
	return index, flags&syscall.IFF_UP != 0 && flags&iffLowerUp != 0, true
}

// linkWatch reads the kernel's link changes.
type linkWatch struct {
	f    *os.File
	last map[int]bool // whether each interface was up, as last told
}

// openLinkWatch subscribes to the kernel's link changes.
func openLinkWatch() (*linkWatch, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: rtmgrpLink}); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	// Through the runtime's poller: Close ends a Read under way.
	return &linkWatch{f: os.NewFile(uintptr(fd), "netlink-route"), last: map[int]bool{}}, nil
}

// next waits for links to come up and returns their indexes: links seen down before, up now.
func (w *linkWatch) next(buf []byte) ([]int, error) {
	for {
		n, err := w.f.Read(buf)
		if errors.Is(err, syscall.ENOBUFS) {
			continue // the kernel dropped changes it could not queue: the next ones come
		}
		if err != nil {
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		var up []int
		for _, m := range msgs {
			if m.Header.Type != syscall.RTM_NEWLINK {
				continue
			}
			index, isUp, ok := linkUp(m.Data)
			if !ok {
				continue
			}
			was, seen := w.last[index]
			w.last[index] = isUp
			if isUp && seen && !was {
				up = append(up, index)
			}
		}
		if len(up) > 0 {
			return up, nil
		}
	}
}

// watchLinks asks for the peers' addresses on each link that comes up (see relinkAfter) until
// ctx ends. peers lists the peers' addresses when asked.
func (m *Manager) watchLinks(ctx context.Context, peers func() []netip.Addr) {
	w, err := openLinkWatch()
	if err != nil {
		m.log.Warn("cannot follow this node's links: after a link comes back, peers are reached once the kernel asks for "+
			"their addresses again (a second)", "err", err)
		return
	}
	m.log.Debug("following this node's links")
	stop := context.AfterFunc(ctx, func() { w.f.Close() })
	defer stop()
	defer w.f.Close()
	var (
		mu      sync.Mutex
		pending = map[int]context.CancelFunc{} // the requests each link's last coming up started
	)
	buf := make([]byte, 16<<10)
	for {
		up, err := w.next(buf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, os.ErrClosed) {
				m.log.Warn("following this node's links ended", "err", err)
			}
			return
		}
		for _, index := range up {
			mu.Lock()
			if cancel := pending[index]; cancel != nil {
				cancel()
			}
			rctx, cancel := context.WithCancel(ctx)
			pending[index] = cancel
			mu.Unlock()
			go relink(rctx, index, peers(), relinkAfter, relinkUntil)
		}
	}
}

// relink asks, on interface index, for the addresses of those of peers in its networks: after
// first, then at doubling intervals while the next is within until.
func relink(ctx context.Context, index int, peers []netip.Addr, first, until time.Duration) {
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return
	}
	type ask struct{ from, to netip.Addr }
	var asks []ask
	addrs, err := ifi.Addrs()
	if err != nil {
		return
	}
	for _, p := range peers {
		if !p.Is4() {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			ones, _ := n.Mask.Size()
			if ok && ip.Unmap().Is4() && netip.PrefixFrom(ip.Unmap(), ones).Masked().Contains(p) && ip.Unmap() != p {
				asks = append(asks, ask{from: ip.Unmap(), to: p})
				break
			}
		}
	}
	if len(asks) == 0 {
		return
	}
	start := time.Now()
	for at := first; at <= until; at *= 2 {
		t := time.NewTimer(time.Until(start.Add(at)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		for _, a := range asks {
			arpRequest(ifi, a.from, a.to) // a link down again fails it: nothing to do
		}
	}
}
