//! The names the decoder gives its layers and fields, with the kind of value each one holds.
//!
//! One table serves three readers: the decoder (a test checks that it emits no name missing here,
//! and no value of another kind), the display filter (which rejects unknown names and values of
//! the wrong kind before it ever sees a packet) and `docs/filters.md`. The names are Wireshark's,
//! so that a filter typed in netlab means what it would mean in Wireshark.

/// What a field holds, as far as a filter is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A protocol: only its presence can be tested (`tcp`, `arp`).
    Protocol,
    /// An unsigned integer: ports, lengths, types, counters.
    Int,
    /// A flag.
    Bool,
    /// An IPv4 address.
    Ipv4,
    /// An IPv6 address.
    Ipv6,
    /// An Ethernet (MAC) address.
    Mac,
    /// Free text.
    Text,
}

/// One name a filter may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: &'static str,
    pub kind: Kind,
    /// What it is, in a few words.
    pub about: &'static str,
}

const fn f(name: &'static str, kind: Kind, about: &'static str) -> FieldInfo {
    FieldInfo { name, kind, about }
}

use Kind::{Bool, Int, Ipv4, Ipv6, Mac, Protocol, Text};

/// Protocols: the `abbrev` of a [`super::Layer`].
pub static PROTOCOLS: &[FieldInfo] = &[
    f("eth", Protocol, "Ethernet II"),
    f("vlan", Protocol, "802.1Q virtual LAN tag"),
    f("arp", Protocol, "Address Resolution Protocol"),
    f("ip", Protocol, "Internet Protocol version 4"),
    f("ipv6", Protocol, "Internet Protocol version 6"),
    f("icmp", Protocol, "Internet Control Message Protocol"),
    f("icmpv6", Protocol, "Internet Control Message Protocol v6"),
    f("tcp", Protocol, "Transmission Control Protocol"),
    f("udp", Protocol, "User Datagram Protocol"),
    f("data", Protocol, "payload bytes no dissector claimed"),
    f("_ws.malformed", Protocol, "a layer that did not parse"),
];

/// Fields the decoder emits.
pub static FIELDS: &[FieldInfo] = &[
    f("eth.dst", Mac, "destination MAC address"),
    f("eth.src", Mac, "source MAC address"),
    f("eth.type", Int, "EtherType"),
    f("vlan.priority", Int, "priority code point"),
    f("vlan.dei", Bool, "drop eligible indicator"),
    f("vlan.id", Int, "VLAN identifier"),
    f("vlan.etype", Int, "EtherType after the tag"),
    f("arp.hw.type", Int, "hardware type"),
    f("arp.proto.type", Int, "protocol type"),
    f("arp.hw.size", Int, "hardware address size"),
    f("arp.proto.size", Int, "protocol address size"),
    f("arp.opcode", Int, "1 request, 2 reply"),
    f("arp.src.hw_mac", Mac, "sender MAC address"),
    f("arp.src.proto_ipv4", Ipv4, "sender IPv4 address"),
    f("arp.dst.hw_mac", Mac, "target MAC address"),
    f("arp.dst.proto_ipv4", Ipv4, "target IPv4 address"),
    f("ip.version", Int, "IP version"),
    f("ip.hdr_len", Int, "header length in bytes"),
    f("ip.dsfield.dscp", Int, "differentiated services code point"),
    f("ip.dsfield.ecn", Int, "explicit congestion notification"),
    f("ip.len", Int, "total length"),
    f("ip.id", Int, "identification"),
    f("ip.flags.df", Bool, "don't fragment"),
    f("ip.flags.mf", Bool, "more fragments"),
    f("ip.frag_offset", Int, "fragment offset in bytes"),
    f("ip.ttl", Int, "time to live"),
    f("ip.proto", Int, "protocol number of the payload"),
    f("ip.checksum", Int, "header checksum"),
    f("ip.src", Ipv4, "source address"),
    f("ip.dst", Ipv4, "destination address"),
    f("ip.options", Int, "bytes of options"),
    f("ipv6.version", Int, "IP version"),
    f("ipv6.tclass", Int, "traffic class"),
    f("ipv6.flow", Int, "flow label"),
    f("ipv6.plen", Int, "payload length"),
    f("ipv6.nxt", Int, "next header"),
    f("ipv6.hlim", Int, "hop limit"),
    f("ipv6.src", Ipv6, "source address"),
    f("ipv6.dst", Ipv6, "destination address"),
    f("ipv6.hopopts", Int, "hop-by-hop options header (its length)"),
    f("ipv6.routing", Int, "routing header (its length)"),
    f("ipv6.dstopts", Int, "destination options header (its length)"),
    f("ipv6.fragment.offset", Int, "fragment offset in bytes"),
    f("ipv6.fragment.more", Bool, "more fragments"),
    f("ipv6.fragment.id", Int, "fragment identification"),
    f("icmp.type", Int, "message type"),
    f("icmp.code", Int, "message code"),
    f("icmp.checksum", Int, "checksum"),
    f("icmp.ident", Int, "echo identifier"),
    f("icmp.seq", Int, "echo sequence number"),
    f("icmp.mtu", Int, "MTU of the next hop (fragmentation needed)"),
    f("icmp.redir_gw", Ipv4, "gateway of a redirect"),
    f("icmpv6.type", Int, "message type"),
    f("icmpv6.code", Int, "message code"),
    f("icmpv6.checksum", Int, "checksum"),
    f("icmpv6.echo.identifier", Int, "echo identifier"),
    f("icmpv6.echo.sequence_number", Int, "echo sequence number"),
    f("icmpv6.mtu", Int, "MTU (packet too big)"),
    f("icmpv6.pointer", Int, "pointer (parameter problem)"),
    f("icmpv6.nd.ns.target_address", Ipv6, "target of a neighbor solicitation"),
    f("icmpv6.nd.na.target_address", Ipv6, "target of a neighbor advertisement"),
    f("icmpv6.nd.na.flag.r", Bool, "router flag"),
    f("icmpv6.nd.na.flag.s", Bool, "solicited flag"),
    f("icmpv6.nd.na.flag.o", Bool, "override flag"),
    f("icmpv6.nd.ra.cur_hop_limit", Int, "hop limit a router advertises"),
    f("icmpv6.nd.ra.flag", Int, "router advertisement flags"),
    f("icmpv6.nd.ra.router_lifetime", Int, "router lifetime in seconds"),
    f("icmpv6.nd.ra.reachable_time", Int, "reachable time in milliseconds"),
    f("icmpv6.nd.ra.retrans_timer", Int, "retransmission timer in milliseconds"),
    f("icmpv6.nd.rd.target_address", Ipv6, "better first hop of a redirect"),
    f("icmpv6.nd.rd.destination_address", Ipv6, "destination of a redirect"),
    f("icmpv6.opt.type", Int, "NDP option type"),
    f("icmpv6.opt.length", Int, "NDP option length in units of 8 bytes"),
    f("icmpv6.opt.src_linkaddr", Mac, "source link-layer address option"),
    f("icmpv6.opt.target_linkaddr", Mac, "target link-layer address option"),
    f("icmpv6.opt.prefix.length", Int, "prefix length of a prefix information option"),
    f("icmpv6.opt.prefix", Ipv6, "prefix of a prefix information option"),
    f("icmpv6.opt.mtu", Int, "MTU option"),
    f("tcp.srcport", Int, "source port"),
    f("tcp.dstport", Int, "destination port"),
    f("tcp.seq", Int, "sequence number (absolute)"),
    f("tcp.ack", Int, "acknowledgment number (absolute)"),
    f("tcp.hdr_len", Int, "header length in bytes"),
    f("tcp.flags", Int, "the 12 flag bits"),
    f("tcp.flags.cwr", Bool, "congestion window reduced"),
    f("tcp.flags.ece", Bool, "ECN-echo"),
    f("tcp.flags.urg", Bool, "urgent"),
    f("tcp.flags.ack", Bool, "acknowledgment"),
    f("tcp.flags.push", Bool, "push"),
    f("tcp.flags.reset", Bool, "reset"),
    f("tcp.flags.syn", Bool, "synchronize"),
    f("tcp.flags.fin", Bool, "finish"),
    f("tcp.window_size", Int, "window as sent (not scaled)"),
    f("tcp.checksum", Int, "checksum"),
    f("tcp.urgent_pointer", Int, "urgent pointer"),
    f("tcp.options", Text, "the options, in words"),
    f("tcp.options.mss_val", Int, "maximum segment size"),
    f("tcp.options.wscale.shift", Int, "window scale shift count"),
    f("tcp.options.sack_perm", Bool, "SACK permitted"),
    f("tcp.options.sack_le", Int, "left edge of a SACK block"),
    f("tcp.options.sack_re", Int, "right edge of a SACK block"),
    f("tcp.options.timestamp.tsval", Int, "timestamp value"),
    f("tcp.options.timestamp.tsecr", Int, "timestamp echo reply"),
    f("tcp.option_kind", Int, "kind of an option the decoder does not know"),
    f("tcp.len", Int, "payload length"),
    f("udp.srcport", Int, "source port"),
    f("udp.dstport", Int, "destination port"),
    f("udp.length", Int, "length of header and payload"),
    f("udp.checksum", Int, "checksum"),
    f("data.len", Int, "payload length"),
    f("_ws.expert.message", Text, "why a layer did not parse"),
];

/// The protocol or field of that name.
#[must_use]
pub fn lookup(name: &str) -> Option<&'static FieldInfo> {
    PROTOCOLS.iter().chain(FIELDS).find(|f| f.name == name)
}
