//go:build linux

package firewall

import (
	"bytes"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TestBatchTouchesOnlyOurTable checks the netlink batch itself, without a
// kernel: it opens with the atomic swap of our table (the nft equivalent
// of "table inet bulwark; delete table inet bulwark; table inet bulwark
// {…}") and every message in it names table bulwark and no other.
func TestBatchTouchesOnlyOurTable(t *testing.T) {
	var msgs []netlink.Message
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		msgs = append(msgs, req...)
		return req, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Render(testNetwork(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.build().queue(c); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	var types []int
	for _, m := range msgs {
		typ := int(m.Header.Type) & 0xff
		if typ == unix.NFNL_MSG_BATCH_BEGIN || typ == unix.NFNL_MSG_BATCH_END {
			continue
		}
		types = append(types, typ)
		attrs, err := netlink.UnmarshalAttributes(m.Data[4:]) // after nfgenmsg
		if err != nil {
			t.Fatalf("message type %d: %v", typ, err)
		}
		// Attribute 1 is the table name in table, set, element, chain
		// and rule messages alike.
		var table []byte
		for _, a := range attrs {
			if a.Type&^unix.NLA_F_NESTED == 1 {
				table = a.Data
			}
		}
		if !bytes.Equal(table, []byte("bulwark\x00")) {
			t.Errorf("message type %d names table %q, want only bulwark", typ, table)
		}
	}
	want := []int{unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE, unix.NFT_MSG_NEWTABLE}
	if len(types) < 3 || types[0] != want[0] || types[1] != want[1] || types[2] != want[2] {
		t.Errorf("batch opens with message types %v, want %v (create, delete, recreate)", types[:min(3, len(types))], want)
	}
	rules, _ := rs.counts()
	var nrules int
	for _, typ := range types {
		if typ == unix.NFT_MSG_NEWRULE {
			nrules++
		}
	}
	if nrules != rules {
		t.Errorf("batch has %d rules, model %d", nrules, rules)
	}
}
