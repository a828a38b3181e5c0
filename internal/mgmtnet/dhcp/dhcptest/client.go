package dhcptest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// Client is a DHCP client over a UDP socket on port 68 bound to one
// interface. It asks with the broadcast flag set, so that any server's
// answer reaches the socket before the interface has an address, and
// handles one exchange at a time.
type Client struct {
	conn net.PacketConn
	buf  []byte
}

// ListenClient opens a client socket on iface, in the namespace of the
// calling OS thread (see In).
func ListenClient(iface string) (*Client, error) {
	conn, err := server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ClientPort})
	if err != nil {
		return nil, fmt.Errorf("client socket on %s: %w", iface, err)
	}
	return &Client{conn: conn, buf: make([]byte, 4096)}, nil
}

// Close closes the socket.
func (c *Client) Close() error { return c.conn.Close() }

// Lease runs DISCOVER, OFFER, REQUEST, ACK for mac and returns the OFFER
// and the ACK (or NAK).
func (c *Client) Lease(ctx context.Context, mac net.HardwareAddr) (offer, ack *dhcpv4.DHCPv4, err error) {
	params := dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter,
		dhcpv4.OptionDomainNameServer, dhcpv4.OptionNTPServers, dhcpv4.OptionHostName)
	disc, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithBroadcast(true), params)
	if err != nil {
		return nil, nil, fmt.Errorf("make discover: %w", err)
	}
	offer, err = c.Exchange(ctx, disc, dhcpv4.MessageTypeOffer)
	if err != nil {
		return nil, nil, err
	}
	req, err := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithBroadcast(true), params)
	if err != nil {
		return nil, nil, fmt.Errorf("make request: %w", err)
	}
	ack, err = c.Exchange(ctx, req, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if err != nil {
		return offer, nil, err
	}
	return offer, ack, nil
}

// Exchange broadcasts m to port 67, again every second without answer,
// and returns the first reply with m's transaction id and one of the types
// want, or an error when ctx ends.
func (c *Client) Exchange(ctx context.Context, m *dhcpv4.DHCPv4, want ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	dst := &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort}
	pkt := m.ToBytes()
	resend := time.Now()
	for {
		if !time.Now().Before(resend) {
			if _, err := c.conn.WriteTo(pkt, dst); err != nil {
				return nil, fmt.Errorf("send %s: %w", m.MessageType(), err)
			}
			resend = time.Now().Add(time.Second)
		}
		deadline := resend
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		c.conn.SetReadDeadline(deadline)
		n, _, err := c.conn.ReadFrom(c.buf)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, fmt.Errorf("no answer to %s: %w", m.MessageType(), cerr)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return nil, fmt.Errorf("read: %w", err)
		}
		r, err := dhcpv4.FromBytes(c.buf[:n])
		if err != nil || r.OpCode != dhcpv4.OpcodeBootReply || r.TransactionID != m.TransactionID {
			continue
		}
		for _, t := range want {
			if r.MessageType() == t {
				return r, nil
			}
		}
	}
}
