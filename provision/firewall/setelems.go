//go:build linux

package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// elementDumper reads set elements through one netlink socket of its own.
// The read-back of 10 000 networks is 20 000 interval elements per set,
// and the library's GetSetElements dials a socket per set and decodes
// every element into its full SetElement (timeouts, expressions, verdict
// data) through nested attribute decoders; that decoding cost as much as
// the kernel's dump itself. The comparison needs only each element's key
// and its interval-end flag, so this reads those and nothing else.
type elementDumper struct{ c *netlink.Conn }

// newElementDumper opens the socket in the network namespace netns (an
// fd, as nftables.Conn.NetNS holds it; 0 is the caller's own).
func newElementDumper(netns int) (*elementDumper, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: netns})
	if err != nil {
		return nil, fmt.Errorf("open netlink for set elements: %w", err)
	}
	return &elementDumper{c: c}, nil
}

func (d *elementDumper) close() { _ = d.c.Close() }

// elements dumps set in table inet <table>: each element's key and, for
// interval sets, whether it ends an interval. Other fields are left zero.
func (d *elementDumper) elements(table, set string) ([]nftables.SetElement, error) {
	attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_SET_ELEM_LIST_TABLE, Data: []byte(table + "\x00")},
		{Type: unix.NFTA_SET_ELEM_LIST_SET, Data: []byte(set + "\x00")},
	})
	if err != nil {
		return nil, err
	}
	req, err := d.c.Send(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSETELEM),
			Flags: netlink.Request | netlink.Dump,
		},
		// nfgenmsg: family, version, resource id
		Data: append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	if err := d.widenDump(); err != nil {
		return nil, err
	}
	msgs, err := d.c.Receive()
	if err == nil {
		err = netlink.Validate(req, msgs)
	}
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	var out []nftables.SetElement
	for _, m := range msgs {
		if len(m.Data) < 4 {
			return nil, errors.New("dump: short message")
		}
		err := eachAttr(m.Data[4:], func(typ uint16, b []byte) error {
			if typ != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
				return nil
			}
			return eachAttr(b, func(typ uint16, b []byte) error {
				if typ != unix.NFTA_LIST_ELEM {
					return nil
				}
				e, err := decodeElementKey(b)
				out = append(out, e)
				return err
			})
		})
		if err != nil {
			return nil, fmt.Errorf("dump: %w", err)
		}
	}
	return out, nil
}

// dumpChunk is the largest dump message the kernel builds: it sizes each
// one to the largest recvmsg buffer the socket has seen, up to 32 KiB.
const dumpChunk = 32 << 10

// widenDump peeks at the first dump message with a dumpChunk buffer, so
// the kernel builds the rest of the dump in messages of that size instead
// of one page each (the library reads with page-sized buffers). An
// interval set's dump resumes each message by walking the set from its
// first element past those already sent, so the number of messages
// multiplies the kernel's cost: 20 000 elements in 4 KiB messages is about
// 100 walks of 10 000 elements on average, in 32 KiB messages about 13.
func (d *elementDumper) widenDump() error {
	raw, err := d.c.SyscallConn()
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	buf := make([]byte, dumpChunk)
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		_, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	}); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("dump: peek: %w", rerr)
	}
	return nil
}

// decodeElementKey reads one NFTA_LIST_ELEM: its key (NFTA_SET_ELEM_KEY,
// holding an NFTA_DATA_VALUE) and its flags.
func decodeElementKey(b []byte) (nftables.SetElement, error) {
	var e nftables.SetElement
	err := eachAttr(b, func(typ uint16, b []byte) error {
		switch typ {
		case unix.NFTA_SET_ELEM_KEY:
			return eachAttr(b, func(typ uint16, b []byte) error {
				if typ == unix.NFTA_DATA_VALUE {
					e.Key = b
				}
				return nil
			})
		case unix.NFTA_SET_ELEM_FLAGS:
			if len(b) != 4 {
				return fmt.Errorf("element flags: %d bytes, want 4", len(b))
			}
			e.IntervalEnd = binary.BigEndian.Uint32(b)&unix.NFT_SET_ELEM_INTERVAL_END != 0
		}
		return nil
	})
	return e, err
}

// eachAttr calls fn with the type (nested and byte-order bits cleared)
// and payload of each netlink attribute in b. The payloads alias b, which
// each dump message owns, so keys are not copied.
func eachAttr(b []byte, fn func(typ uint16, data []byte) error) error {
	for len(b) > 0 {
		if len(b) < unix.SizeofNlAttr {
			return fmt.Errorf("attribute header: %d bytes left", len(b))
		}
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < unix.SizeofNlAttr || n > len(b) {
			return fmt.Errorf("attribute type %d: length %d with %d bytes left", typ, n, len(b))
		}
		if err := fn(typ, b[unix.SizeofNlAttr:n]); err != nil {
			return err
		}
		b = b[min(len(b), (n+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
	}
	return nil
}
