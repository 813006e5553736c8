//! A frame, taken apart for people: protocol layers with named fields, each with the bytes it came
//! from, and a one-line summary for a packet list.
//!
//! The bytes are untrusted (a lab may inject anything, and a link may cut a frame short), so every
//! length is checked before it is used: smoltcp's `new_checked` guards its accessors, and the
//! offsets of fields are only read through it or through `get`. A layer that does not parse ends
//! the decoding with a "Malformed Packet" layer that says why; what came before it stays.
//!
//! Stateless: sequence numbers are absolute (Wireshark shows them relative to the first one of a
//! connection, which needs the connection; see `flows`).

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use smoltcp::wire::{
    ArpPacket, EthernetFrame, Icmpv4Packet, Icmpv6Message, Icmpv6Packet, IpAddress, Ipv4Packet, Ipv6ExtHeader,
    Ipv6Packet, TcpOption, TcpPacket, UdpPacket,
};

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// From the outermost (Ethernet) inwards.
    pub layers: Vec<Layer>,
    pub summary: Summary,
}

/// One protocol layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// "Ethernet II", "Internet Protocol Version 4", ...
    pub name: &'static str,
    /// Its filter name: "eth", "ip", "tcp", ... (see [`super::fields::PROTOCOLS`]).
    pub abbrev: &'static str,
    /// What follows the name on the layer's line: "Src: 10.0.0.1, Dst: 10.0.0.2".
    pub info: String,
    /// Its bytes in the frame.
    pub range: Range<usize>,
    pub fields: Vec<Field>,
}

/// One field of a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Wireshark's name: "eth.src", "ip.ttl", "tcp.flags.syn".
    pub name: &'static str,
    /// For people: "Source: 02:00:00:00:00:01".
    pub label: String,
    pub value: Value,
    /// Its bytes in the frame (empty for a value computed from others).
    pub range: Range<usize>,
}

/// The value of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(u64),
    Bool(bool),
    Addr(IpAddr),
    Mac([u8; 6]),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{}", if *b { "1" } else { "0" }),
            Value::Addr(a) => write!(f, "{a}"),
            Value::Mac(m) => f.write_str(&mac_text(*m)),
            Value::Text(t) => f.write_str(t),
        }
    }
}

/// One line of a packet list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// IP source if there is one, else the Ethernet source.
    pub src: String,
    pub dst: String,
    /// "ARP", "ICMP", "ICMPv6", "TCP", "UDP", "IPv4", "IPv6" or "Ethernet": the innermost
    /// protocol that was recognised.
    pub protocol: &'static str,
    /// Wireshark-like: "Who has 10.0.0.2? Tell 10.0.0.1", `49152 → 9 [SYN] Seq=1000 Win=64240 Len=0`.
    pub info: String,
}

impl Decoded {
    /// The first layer of that filter name.
    #[must_use]
    pub fn layer(&self, abbrev: &str) -> Option<&Layer> {
        self.layers.iter().find(|l| l.abbrev == abbrev)
    }

    /// Every field of that name, outermost first.
    pub fn fields<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Field> + 's {
        self.layers.iter().flat_map(|l| l.fields.iter()).filter(move |f| f.name == name)
    }

    /// The first field of that name.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.layers.iter().flat_map(|l| l.fields.iter()).find(|f| f.name == name)
    }

    /// Whether some layer did not parse.
    #[must_use]
    pub fn is_malformed(&self) -> bool {
        self.layer(MALFORMED).is_some()
    }
}

const MALFORMED: &str = "_ws.malformed";

/// Decodes a frame. Never panics, whatever the bytes.
#[must_use]
pub fn decode(frame: &[u8]) -> Decoded {
    let mut d = Dissector {
        frame,
        layers: Vec::new(),
        summary: Summary { src: String::new(), dst: String::new(), protocol: "Ethernet", info: String::new() },
    };
    d.ethernet();
    Decoded { layers: d.layers, summary: d.summary }
}

/// `02:00:00:00:00:01`, as Wireshark writes a MAC address.
#[must_use]
pub fn mac_text(m: [u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

/// A MAC address for the source and destination columns.
fn mac_name(m: [u8; 6]) -> String {
    if m == [0xff; 6] {
        "Broadcast".to_owned()
    } else {
        mac_text(m)
    }
}

fn mac_of(bytes: &[u8]) -> [u8; 6] {
    let mut m = [0; 6];
    if let Some(b) = bytes.get(..6) {
        m.copy_from_slice(b);
    }
    m
}

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

fn ipv6_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0; 16];
    if let Some(s) = b.get(at..at + 16) {
        a.copy_from_slice(s);
    }
    Ipv6Addr::from(a)
}

fn set(b: bool) -> &'static str {
    if b {
        "Set"
    } else {
        "Not set"
    }
}

pub(crate) fn ethertype_name(t: u16) -> Option<&'static str> {
    Some(match t {
        0x0800 => "IPv4",
        0x0806 => "ARP",
        0x86dd => "IPv6",
        0x8100 => "802.1Q Virtual LAN",
        0x88a8 => "802.1ad",
        0x88cc => "LLDP",
        0x8809 => "Slow Protocols",
        _ => return None,
    })
}

pub(crate) fn ip_proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        0 => "IPv6 Hop-by-Hop Option",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        17 => "UDP",
        41 => "IPv6",
        43 => "Routing Header for IPv6",
        44 => "Fragment Header for IPv6",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "ICMPv6",
        59 => "IPv6 No Next Header",
        60 => "Destination Options for IPv6",
        89 => "OSPF",
        132 => "SCTP",
        _ => return None,
    })
}

fn with_name(name: Option<&str>, n: impl fmt::Display) -> String {
    match name {
        Some(s) => format!("{s} ({n})"),
        None => format!("Unknown ({n})"),
    }
}

/// Where an IP payload came from: its addresses, for checksums and the summary.
#[derive(Clone, Copy)]
struct Ip {
    src: IpAddress,
    dst: IpAddress,
}

struct Dissector<'a> {
    frame: &'a [u8],
    layers: Vec<Layer>,
    summary: Summary,
}

impl Layer {
    fn new(name: &'static str, abbrev: &'static str, range: Range<usize>) -> Layer {
        Layer { name, abbrev, info: String::new(), range, fields: Vec::new() }
    }

    fn add(&mut self, name: &'static str, range: Range<usize>, value: Value, label: impl Into<String>) {
        self.fields.push(Field { name, label: label.into(), value, range });
    }
}

impl Dissector<'_> {
    /// Ends the decoding: the bytes from `at` on did not parse as `protocol`.
    fn malformed(&mut self, protocol: &'static str, at: usize, why: String) {
        let at = at.min(self.frame.len());
        let mut l = Layer::new("Malformed Packet", MALFORMED, at..self.frame.len());
        l.info = format!("{protocol}: {why}");
        l.add("_ws.expert.message", at..self.frame.len(), Value::Text(why.clone()), format!("{protocol}: {why}"));
        self.layers.push(l);
        self.summary.protocol = protocol;
        self.summary.info = format!("[Malformed Packet: {why}]");
    }

    /// Bytes no dissector claimed.
    fn data(&mut self, range: Range<usize>, name: &'static str, info: Option<String>) {
        if range.is_empty() || range.end > self.frame.len() {
            return;
        }
        let n = range.len();
        let mut l = Layer::new(name, "data", range.clone());
        l.info = info.unwrap_or_else(|| format!("{n} bytes"));
        l.add("data.len", range, Value::Int(n as u64), format!("Length: {n}"));
        self.layers.push(l);
    }

    fn ethernet(&mut self) {
        let f = self.frame;
        let Ok(eth) = EthernetFrame::new_checked(f) else {
            self.malformed("Ethernet", 0, format!("{} bytes, shorter than an Ethernet header (14)", f.len()));
            return;
        };
        let (dst, src) = (eth.dst_addr().0, eth.src_addr().0);
        let ethertype = u16::from(eth.ethertype());
        let mut l = Layer::new("Ethernet II", "eth", 0..14);
        l.info = format!("Src: {}, Dst: {}", mac_name(src), mac_name(dst));
        l.add("eth.dst", 0..6, Value::Mac(dst), format!("Destination: {}", mac_name(dst)));
        l.add("eth.src", 6..12, Value::Mac(src), format!("Source: {}", mac_name(src)));
        l.add(
            "eth.type",
            12..14,
            Value::Int(ethertype.into()),
            format!("Type: {}", with_name(ethertype_name(ethertype), format_args!("0x{ethertype:04x}"))),
        );
        self.layers.push(l);
        self.summary.src = mac_name(src);
        self.summary.dst = mac_name(dst);
        self.ether_payload(ethertype, 14, true);
    }

    fn ether_payload(&mut self, ethertype: u16, at: usize, tag_allowed: bool) {
        match ethertype {
            0x8100 if tag_allowed => self.vlan(at),
            0x0806 => self.arp(at),
            0x0800 => self.ipv4(at),
            0x86dd => self.ipv6(at),
            t => {
                self.summary.info = match ethertype_name(t) {
                    Some(name) => format!("{name} (0x{t:04x})"),
                    None => format!("EtherType 0x{t:04x}"),
                };
                self.data(at..self.frame.len(), "Data", None);
            }
        }
    }

    fn vlan(&mut self, at: usize) {
        let Some(b) = self.frame.get(at..at + 4) else {
            self.malformed("Ethernet", at, "802.1Q tag cut short".to_owned());
            return;
        };
        let tci = be16(b, 0);
        let etype = be16(b, 2);
        let (pri, dei, id) = (tci >> 13, tci & 0x1000 != 0, tci & 0x0fff);
        let mut l = Layer::new("802.1Q Virtual LAN", "vlan", at..at + 4);
        l.info = format!("PRI: {pri}, DEI: {}, ID: {id}", u8::from(dei));
        l.add("vlan.priority", at..at + 2, Value::Int(pri.into()), format!("Priority: {pri}"));
        l.add("vlan.dei", at..at + 2, Value::Bool(dei), format!("DEI: {}", u8::from(dei)));
        l.add("vlan.id", at..at + 2, Value::Int(id.into()), format!("ID: {id}"));
        l.add(
            "vlan.etype",
            at + 2..at + 4,
            Value::Int(etype.into()),
            format!("Type: {}", with_name(ethertype_name(etype), format_args!("0x{etype:04x}"))),
        );
        self.layers.push(l);
        self.ether_payload(etype, at + 4, false);
    }

    fn arp(&mut self, at: usize) {
        self.summary.protocol = "ARP";
        let b = self.frame.get(at..).unwrap_or_default();
        let Ok(p) = ArpPacket::new_checked(b) else {
            self.malformed("ARP", at, format!("{} bytes, shorter than its addresses need", b.len()));
            return;
        };
        let (hlen, plen) = (usize::from(p.hardware_len()), usize::from(p.protocol_len()));
        let (htype, ptype, op) = (be16(b, 0), be16(b, 2), be16(b, 6));
        let end = at + 8 + 2 * (hlen + plen);
        let op_name = match op {
            1 => Some("request"),
            2 => Some("reply"),
            3 => Some("reverse request"),
            4 => Some("reverse reply"),
            _ => None,
        };
        let mut l = Layer::new("Address Resolution Protocol", "arp", at..end);
        l.info = format!("({})", op_name.unwrap_or("unknown opcode"));
        let hname = if htype == 1 { Some("Ethernet") } else { None };
        l.add(
            "arp.hw.type",
            at..at + 2,
            Value::Int(htype.into()),
            format!("Hardware type: {}", with_name(hname, htype)),
        );
        let pname = ethertype_name(ptype);
        l.add(
            "arp.proto.type",
            at + 2..at + 4,
            Value::Int(ptype.into()),
            format!("Protocol type: {}", with_name(pname, format_args!("0x{ptype:04x}"))),
        );
        l.add("arp.hw.size", at + 4..at + 5, Value::Int(hlen as u64), format!("Hardware size: {hlen}"));
        l.add("arp.proto.size", at + 5..at + 6, Value::Int(plen as u64), format!("Protocol size: {plen}"));
        l.add("arp.opcode", at + 6..at + 8, Value::Int(op.into()), format!("Opcode: {}", with_name(op_name, op)));
        if hlen != 6 || plen != 4 {
            self.layers.push(l);
            self.summary.info = format!("ARP for hardware type {htype}, protocol type 0x{ptype:04x}");
            return;
        }
        let sha = mac_of(p.source_hardware_addr());
        let tha = mac_of(p.target_hardware_addr());
        let spa = Ipv4Addr::from(be32(b, 14));
        let tpa = Ipv4Addr::from(be32(b, 24));
        l.add("arp.src.hw_mac", at + 8..at + 14, Value::Mac(sha), format!("Sender MAC address: {}", mac_text(sha)));
        l.add("arp.src.proto_ipv4", at + 14..at + 18, Value::Addr(spa.into()), format!("Sender IP address: {spa}"));
        l.add("arp.dst.hw_mac", at + 18..at + 24, Value::Mac(tha), format!("Target MAC address: {}", mac_text(tha)));
        l.add("arp.dst.proto_ipv4", at + 24..at + 28, Value::Addr(tpa.into()), format!("Target IP address: {tpa}"));
        self.layers.push(l);
        self.summary.info = match op {
            1 if spa == tpa => format!("Gratuitous ARP for {spa} (Request)"),
            1 if spa.is_unspecified() => format!("Who has {tpa}? (ARP Probe)"),
            1 => format!("Who has {tpa}? Tell {spa}"),
            2 if spa == tpa => format!("Gratuitous ARP for {spa} (Reply)"),
            2 => format!("{spa} is at {}", mac_text(sha)),
            _ => format!("ARP {}", with_name(op_name, op)),
        };
    }

    fn ipv4(&mut self, at: usize) {
        self.summary.protocol = "IPv4";
        let b = self.frame.get(at..).unwrap_or_default();
        if b.len() < 20 {
            self.malformed("IPv4", at, format!("{} bytes, shorter than an IPv4 header (20)", b.len()));
            return;
        }
        let version = b[0] >> 4;
        if version != 4 {
            self.malformed("IPv4", at, format!("bogus IP version ({version})"));
            return;
        }
        let Ok(p) = Ipv4Packet::new_checked(b) else {
            let (hl, total) = (usize::from(b[0] & 0x0f) * 4, usize::from(be16(b, 2)));
            let why = if hl < 20 {
                format!("bogus IPv4 header length ({hl}, less than 20)")
            } else if total < hl {
                format!("bogus IPv4 total length ({total}, less than the header length {hl})")
            } else {
                format!("truncated: total length {total}, {} bytes present", b.len())
            };
            self.malformed("IPv4", at, why);
            return;
        };
        let hl = usize::from(p.header_len());
        let total = usize::from(p.total_len());
        let (src, dst) = (p.src_addr(), p.dst_addr());
        let proto = u8::from(p.next_header());
        let mut l = Layer::new("Internet Protocol Version 4", "ip", at..at + hl);
        l.info = format!("Src: {src}, Dst: {dst}");
        l.add("ip.version", at..at + 1, Value::Int(4), "Version: 4");
        l.add("ip.hdr_len", at..at + 1, Value::Int(hl as u64), format!("Header Length: {hl} bytes ({})", hl / 4));
        let (dscp, ecn) = (p.dscp(), p.ecn());
        l.add(
            "ip.dsfield.dscp",
            at + 1..at + 2,
            Value::Int(dscp.into()),
            format!("Differentiated Services Codepoint: {dscp}"),
        );
        l.add(
            "ip.dsfield.ecn",
            at + 1..at + 2,
            Value::Int(ecn.into()),
            format!("Explicit Congestion Notification: {ecn}"),
        );
        l.add("ip.len", at + 2..at + 4, Value::Int(total as u64), format!("Total Length: {total}"));
        let id = p.ident();
        l.add("ip.id", at + 4..at + 6, Value::Int(id.into()), format!("Identification: 0x{id:04x} ({id})"));
        let (df, mf, off) = (p.dont_frag(), p.more_frags(), p.frag_offset());
        l.add("ip.flags.df", at + 6..at + 7, Value::Bool(df), format!("Don't fragment: {}", set(df)));
        l.add("ip.flags.mf", at + 6..at + 7, Value::Bool(mf), format!("More fragments: {}", set(mf)));
        l.add("ip.frag_offset", at + 6..at + 8, Value::Int(off.into()), format!("Fragment Offset: {off}"));
        let ttl = p.hop_limit();
        l.add("ip.ttl", at + 8..at + 9, Value::Int(ttl.into()), format!("Time to Live: {ttl}"));
        l.add(
            "ip.proto",
            at + 9..at + 10,
            Value::Int(proto.into()),
            format!("Protocol: {}", with_name(ip_proto_name(proto), proto)),
        );
        let sum = p.checksum();
        let ok = if p.verify_checksum() { "correct" } else { "incorrect" };
        l.add("ip.checksum", at + 10..at + 12, Value::Int(sum.into()), format!("Header Checksum: 0x{sum:04x} [{ok}]"));
        l.add("ip.src", at + 12..at + 16, Value::Addr(src.into()), format!("Source Address: {src}"));
        l.add("ip.dst", at + 16..at + 20, Value::Addr(dst.into()), format!("Destination Address: {dst}"));
        if hl > 20 {
            l.add(
                "ip.options",
                at + 20..at + hl,
                Value::Int((hl - 20) as u64),
                format!("Options: ({} bytes)", hl - 20),
            );
        }
        self.layers.push(l);
        self.summary.src = src.to_string();
        self.summary.dst = dst.to_string();
        let payload = at + hl..at + total;
        if mf || off != 0 {
            // Without the other fragments there is no transport header to speak of (or only half of one).
            let name = ip_proto_name(proto).unwrap_or("Unknown");
            self.summary.info = format!("Fragmented IP protocol (proto={name} {proto}, off={off}, ID={id:04x})");
            self.data(payload, "Data", None);
            return;
        }
        self.ip_payload(proto, payload, Ip { src: IpAddress::Ipv4(src), dst: IpAddress::Ipv4(dst) });
    }

    fn ipv6(&mut self, at: usize) {
        self.summary.protocol = "IPv6";
        let b = self.frame.get(at..).unwrap_or_default();
        if b.len() < 40 {
            self.malformed("IPv6", at, format!("{} bytes, shorter than an IPv6 header (40)", b.len()));
            return;
        }
        let version = b[0] >> 4;
        if version != 6 {
            self.malformed("IPv6", at, format!("bogus IP version ({version})"));
            return;
        }
        let Ok(p) = Ipv6Packet::new_checked(b) else {
            self.malformed(
                "IPv6",
                at,
                format!("truncated: payload length {}, {} bytes present", be16(b, 4), b.len() - 40),
            );
            return;
        };
        let (src, dst) = (p.src_addr(), p.dst_addr());
        let plen = p.payload_len();
        let end = at + 40 + usize::from(plen);
        let mut l = Layer::new("Internet Protocol Version 6", "ipv6", at..at + 40);
        l.info = format!("Src: {src}, Dst: {dst}");
        l.add("ipv6.version", at..at + 1, Value::Int(6), "Version: 6");
        let tclass = p.traffic_class();
        l.add("ipv6.tclass", at..at + 2, Value::Int(tclass.into()), format!("Traffic Class: 0x{tclass:02x}"));
        let flow = p.flow_label();
        l.add("ipv6.flow", at + 1..at + 4, Value::Int(flow.into()), format!("Flow Label: 0x{flow:05x}"));
        l.add("ipv6.plen", at + 4..at + 6, Value::Int(plen.into()), format!("Payload Length: {plen}"));
        let mut next = u8::from(p.next_header());
        l.add(
            "ipv6.nxt",
            at + 6..at + 7,
            Value::Int(next.into()),
            format!("Next Header: {}", with_name(ip_proto_name(next), next)),
        );
        let hlim = p.hop_limit();
        l.add("ipv6.hlim", at + 7..at + 8, Value::Int(hlim.into()), format!("Hop Limit: {hlim}"));
        l.add("ipv6.src", at + 8..at + 24, Value::Addr(src.into()), format!("Source Address: {src}"));
        l.add("ipv6.dst", at + 24..at + 40, Value::Addr(dst.into()), format!("Destination Address: {dst}"));
        self.summary.src = src.to_string();
        self.summary.dst = dst.to_string();

        // Extension headers belong to the IPv6 layer; the upper layer starts after the last one.
        let mut pos = at + 40;
        let mut fragment = None;
        for _ in 0..MAX_EXT_HEADERS {
            let name = match next {
                0 => "ipv6.hopopts",
                43 => "ipv6.routing",
                60 => "ipv6.dstopts",
                44 => {
                    let Some(h) = self.frame.get(pos..end).filter(|h| h.len() >= 8) else {
                        l.range.end = pos;
                        self.layers.push(l);
                        self.malformed("IPv6", pos, "fragment header cut short".to_owned());
                        return;
                    };
                    let (off, more, id) = (be16(h, 2) & !7, be16(h, 2) & 1 == 1, be32(h, 4));
                    l.add("ipv6.fragment.offset", pos + 2..pos + 4, Value::Int(off.into()), format!("Offset: {off}"));
                    l.add(
                        "ipv6.fragment.more",
                        pos + 3..pos + 4,
                        Value::Bool(more),
                        format!("More Fragments: {}", set(more)),
                    );
                    l.add(
                        "ipv6.fragment.id",
                        pos + 4..pos + 8,
                        Value::Int(id.into()),
                        format!("Identification: 0x{id:08x}"),
                    );
                    fragment = Some((off, id, h[0]));
                    next = h[0];
                    pos += 8;
                    if off != 0 || more {
                        break;
                    }
                    fragment = None;
                    continue;
                }
                _ => break,
            };
            let Ok(h) = Ipv6ExtHeader::new_checked(self.frame.get(pos..end).unwrap_or_default()) else {
                l.range.end = pos;
                self.layers.push(l);
                self.malformed("IPv6", pos, "extension header cut short".to_owned());
                return;
            };
            let len = (usize::from(h.header_len()) + 1) * 8;
            let nh = u8::from(h.next_header());
            l.add(
                name,
                pos..pos + len,
                Value::Int(len as u64),
                format!(
                    "{}: {len} bytes, next header {}",
                    ip_proto_name(next).unwrap_or("Extension header"),
                    with_name(ip_proto_name(nh), nh)
                ),
            );
            next = nh;
            pos += len;
        }
        l.range.end = pos;
        self.layers.push(l);
        if let Some((off, id, proto)) = fragment {
            let name = ip_proto_name(proto).unwrap_or("Unknown");
            self.summary.info = format!("IPv6 fragment (nxt={name} ({proto}) off={off} ident=0x{id:08x})");
            self.data(pos..end, "Data", None);
            return;
        }
        if matches!(next, 0 | 43 | 44 | 60) {
            self.summary.info = format!("more than {MAX_EXT_HEADERS} extension headers");
            self.data(pos..end, "Data", None);
            return;
        }
        self.ip_payload(next, pos..end, Ip { src: IpAddress::Ipv6(src), dst: IpAddress::Ipv6(dst) });
    }

    fn ip_payload(&mut self, proto: u8, range: Range<usize>, ip: Ip) {
        match (proto, ip.src) {
            (1, IpAddress::Ipv4(_)) => self.icmpv4(range),
            (58, IpAddress::Ipv6(src)) => {
                let IpAddress::Ipv6(dst) = ip.dst else { return };
                self.icmpv6(range, src, dst);
            }
            (6, _) => self.tcp(range, ip),
            (17, _) => self.udp(range, ip),
            _ => {
                self.summary.info = match ip_proto_name(proto) {
                    Some(name) => format!("{name} ({proto})"),
                    None => format!("Protocol {proto}"),
                };
                self.data(range, "Data", None);
            }
        }
    }

    fn icmpv4(&mut self, range: Range<usize>) {
        self.summary.protocol = "ICMP";
        let at = range.start;
        let b = self.frame.get(range.clone()).unwrap_or_default();
        let Ok(p) = Icmpv4Packet::new_checked(b) else {
            self.malformed("ICMP", at, format!("{} bytes, shorter than an ICMP header (8)", b.len()));
            return;
        };
        let (ty, code) = (u8::from(p.msg_type()), p.msg_code());
        let mut l = Layer::new("Internet Control Message Protocol", "icmp", range.clone());
        let ty_name = match ty {
            0 => Some("Echo (ping) reply"),
            3 => Some("Destination unreachable"),
            5 => Some("Redirect"),
            8 => Some("Echo (ping) request"),
            9 => Some("Router advertisement"),
            10 => Some("Router solicitation"),
            11 => Some("Time-to-live exceeded"),
            12 => Some("Parameter problem"),
            13 => Some("Timestamp"),
            14 => Some("Timestamp reply"),
            _ => None,
        };
        let code_name = match (ty, code) {
            (3, c) => ICMP_UNREACHABLE.get(usize::from(c)).copied(),
            (11, 0) => Some("Time to live exceeded in transit"),
            (11, 1) => Some("Fragment reassembly time exceeded"),
            (5, 0) => Some("Redirect for network"),
            (5, 1) => Some("Redirect for host"),
            _ => None,
        };
        l.add("icmp.type", at..at + 1, Value::Int(ty.into()), format!("Type: {}", with_name(ty_name, ty)));
        let code_label = match code_name {
            Some(n) => format!("Code: {code} ({n})"),
            None => format!("Code: {code}"),
        };
        l.add("icmp.code", at + 1..at + 2, Value::Int(code.into()), code_label);
        let sum = p.checksum();
        let ok = if p.verify_checksum() { "correct" } else { "incorrect" };
        l.add("icmp.checksum", at + 2..at + 4, Value::Int(sum.into()), format!("Checksum: 0x{sum:04x} [{ok}]"));
        let rest = at + 8..range.end;
        match ty {
            0 | 8 => {
                let (id, seq) = (p.echo_ident(), p.echo_seq_no());
                l.add("icmp.ident", at + 4..at + 6, Value::Int(id.into()), format!("Identifier: {id} (0x{id:04x})"));
                l.add(
                    "icmp.seq",
                    at + 6..at + 8,
                    Value::Int(seq.into()),
                    format!("Sequence Number: {seq} (0x{seq:04x})"),
                );
                self.layers.push(l);
                self.summary.info = format!("{} id=0x{id:04x}, seq={seq}", ty_name.unwrap_or_default());
                self.data(rest, "Data", None);
            }
            3 | 5 | 11 | 12 => {
                if ty == 3 && code == 4 {
                    let mtu = be16(b, 6);
                    l.add("icmp.mtu", at + 6..at + 8, Value::Int(mtu.into()), format!("MTU of next hop: {mtu}"));
                }
                if ty == 5 {
                    let gw = Ipv4Addr::from(be32(b, 4));
                    l.add("icmp.redir_gw", at + 4..at + 8, Value::Addr(gw.into()), format!("Gateway address: {gw}"));
                }
                self.layers.push(l);
                self.summary.info = match code_name {
                    Some(c) => format!("{} ({c})", ty_name.unwrap_or_default()),
                    None => ty_name.unwrap_or_default().to_owned(),
                };
                let quote = self.frame.get(rest.clone()).and_then(quoted);
                self.data(rest, "Original datagram", quote);
            }
            _ => {
                self.layers.push(l);
                self.summary.info = match ty_name {
                    Some(n) => n.to_owned(),
                    None => format!("Type {ty}, code {code}"),
                };
                self.data(rest, "Data", None);
            }
        }
    }

    fn icmpv6(&mut self, range: Range<usize>, src: Ipv6Addr, dst: Ipv6Addr) {
        self.summary.protocol = "ICMPv6";
        let at = range.start;
        let b = self.frame.get(range.clone()).unwrap_or_default();
        if b.len() < 4 {
            self.malformed("ICMPv6", at, format!("{} bytes, shorter than an ICMPv6 header (4)", b.len()));
            return;
        }
        let (ty, code) = (b[0], b[1]);
        let ty_name = match ty {
            1 => Some("Destination Unreachable"),
            2 => Some("Packet Too Big"),
            3 => Some("Time Exceeded"),
            4 => Some("Parameter Problem"),
            128 => Some("Echo (ping) request"),
            129 => Some("Echo (ping) reply"),
            130 => Some("Multicast Listener Query"),
            131 => Some("Multicast Listener Report"),
            132 => Some("Multicast Listener Done"),
            133 => Some("Router Solicitation"),
            134 => Some("Router Advertisement"),
            135 => Some("Neighbor Solicitation"),
            136 => Some("Neighbor Advertisement"),
            137 => Some("Redirect"),
            143 => Some("Multicast Listener Report Message v2"),
            _ => None,
        };
        // The types smoltcp checks have a fixed header that must be there whole; the others are
        // read no further than their first four bytes.
        let checked = !matches!(Icmpv6Message::from(ty), Icmpv6Message::Unknown(_) | Icmpv6Message::RplControl);
        if checked && Icmpv6Packet::new_checked(b).is_err() {
            self.malformed("ICMPv6", at, format!("{} cut short ({} bytes)", ty_name.unwrap_or("message"), b.len()));
            return;
        }
        let code_name = match (ty, code) {
            (1, c) => ICMPV6_UNREACHABLE.get(usize::from(c)).copied(),
            (3, 0) => Some("hop limit exceeded in transit"),
            (3, 1) => Some("fragment reassembly time exceeded"),
            (4, c) => ICMPV6_PARAM_PROBLEM.get(usize::from(c)).copied(),
            _ => None,
        };
        let mut l = Layer::new("Internet Control Message Protocol v6", "icmpv6", range.clone());
        l.add("icmpv6.type", at..at + 1, Value::Int(ty.into()), format!("Type: {}", with_name(ty_name, ty)));
        let code_label = match code_name {
            Some(n) => format!("Code: {code} ({n})"),
            None => format!("Code: {code}"),
        };
        l.add("icmpv6.code", at + 1..at + 2, Value::Int(code.into()), code_label);
        let sum = be16(b, 2);
        // Reading the whole buffer is all verify_checksum does, so the unchecked view is safe here.
        let ok = Icmpv6Packet::new_unchecked(b).verify_checksum(&src, &dst);
        let ok = if ok { "correct" } else { "incorrect" };
        l.add("icmpv6.checksum", at + 2..at + 4, Value::Int(sum.into()), format!("Checksum: 0x{sum:04x} [{ok}]"));
        let name = ty_name.unwrap_or_default();
        let mut info = name.to_owned();
        let mut tail = None;
        match ty {
            128 | 129 => {
                let (id, seq) = (be16(b, 4), be16(b, 6));
                l.add(
                    "icmpv6.echo.identifier",
                    at + 4..at + 6,
                    Value::Int(id.into()),
                    format!("Identifier: 0x{id:04x}"),
                );
                l.add(
                    "icmpv6.echo.sequence_number",
                    at + 6..at + 8,
                    Value::Int(seq.into()),
                    format!("Sequence: {seq}"),
                );
                info = format!("{name} id=0x{id:04x}, seq={seq}");
                tail = Some((at + 8, "Data"));
            }
            1..=4 => {
                if let Some(c) = code_name {
                    info = format!("{name} ({c})");
                }
                if ty == 2 {
                    let mtu = be32(b, 4);
                    l.add("icmpv6.mtu", at + 4..at + 8, Value::Int(mtu.into()), format!("MTU: {mtu}"));
                }
                if ty == 4 {
                    let ptr = be32(b, 4);
                    l.add("icmpv6.pointer", at + 4..at + 8, Value::Int(ptr.into()), format!("Pointer: {ptr}"));
                }
                tail = Some((at + 8, "Original datagram"));
            }
            133 => {
                let mac = self.ndp_options(&mut l, at + 8, range.end);
                if let Some(m) = mac.0 {
                    info = format!("{name} from {}", mac_text(m));
                }
            }
            134 => {
                let (hop, flags) = (b[4], b[5]);
                let (life, reach, retrans) = (be16(b, 6), be32(b, 8), be32(b, 12));
                l.add(
                    "icmpv6.nd.ra.cur_hop_limit",
                    at + 4..at + 5,
                    Value::Int(hop.into()),
                    format!("Cur hop limit: {hop}"),
                );
                l.add("icmpv6.nd.ra.flag", at + 5..at + 6, Value::Int(flags.into()), format!("Flags: 0x{flags:02x}"));
                l.add(
                    "icmpv6.nd.ra.router_lifetime",
                    at + 6..at + 8,
                    Value::Int(life.into()),
                    format!("Router lifetime (s): {life}"),
                );
                l.add(
                    "icmpv6.nd.ra.reachable_time",
                    at + 8..at + 12,
                    Value::Int(reach.into()),
                    format!("Reachable time (ms): {reach}"),
                );
                l.add(
                    "icmpv6.nd.ra.retrans_timer",
                    at + 12..at + 16,
                    Value::Int(retrans.into()),
                    format!("Retrans timer (ms): {retrans}"),
                );
                let mac = self.ndp_options(&mut l, at + 16, range.end);
                if let Some(m) = mac.0 {
                    info = format!("{name} from {}", mac_text(m));
                }
            }
            135 => {
                let target = ipv6_at(b, 8);
                l.add(
                    "icmpv6.nd.ns.target_address",
                    at + 8..at + 24,
                    Value::Addr(target.into()),
                    format!("Target Address: {target}"),
                );
                let mac = self.ndp_options(&mut l, at + 24, range.end);
                info = match mac.0 {
                    Some(m) => format!("{name} for {target} from {}", mac_text(m)),
                    None => format!("{name} for {target}"),
                };
            }
            136 => {
                let flags = b[4];
                let (r, s, o) = (flags & 0x80 != 0, flags & 0x40 != 0, flags & 0x20 != 0);
                l.add("icmpv6.nd.na.flag.r", at + 4..at + 5, Value::Bool(r), format!("Router: {}", set(r)));
                l.add("icmpv6.nd.na.flag.s", at + 4..at + 5, Value::Bool(s), format!("Solicited: {}", set(s)));
                l.add("icmpv6.nd.na.flag.o", at + 4..at + 5, Value::Bool(o), format!("Override: {}", set(o)));
                let target = ipv6_at(b, 8);
                l.add(
                    "icmpv6.nd.na.target_address",
                    at + 8..at + 24,
                    Value::Addr(target.into()),
                    format!("Target Address: {target}"),
                );
                let mac = self.ndp_options(&mut l, at + 24, range.end);
                let words: Vec<&str> =
                    [(r, "rtr"), (s, "sol"), (o, "ovr")].iter().filter(|(on, _)| *on).map(|(_, w)| *w).collect();
                info = format!("{name} {target}");
                if !words.is_empty() {
                    let _ = write!(info, " ({})", words.join(", "));
                }
                if let Some(m) = mac.1 {
                    let _ = write!(info, " is at {}", mac_text(m));
                }
            }
            137 => {
                let (target, dest) = (ipv6_at(b, 8), ipv6_at(b, 24));
                l.add(
                    "icmpv6.nd.rd.target_address",
                    at + 8..at + 24,
                    Value::Addr(target.into()),
                    format!("Target Address: {target}"),
                );
                l.add(
                    "icmpv6.nd.rd.destination_address",
                    at + 24..at + 40,
                    Value::Addr(dest.into()),
                    format!("Destination Address: {dest}"),
                );
                self.ndp_options(&mut l, at + 40, range.end);
            }
            130..=132 | 143 => {}
            _ => {
                info = format!("Type {ty}, code {code}");
                tail = Some((at + 4, "Data"));
            }
        }
        self.layers.push(l);
        self.summary.info = info;
        if let Some((from, name)) = tail {
            let quote = if name == "Data" { None } else { self.frame.get(from..range.end).and_then(quoted) };
            self.data(from..range.end, name, quote);
        }
    }

    /// NDP options from `at` to `end`: their fields go into `l`. Returns the source and target
    /// link-layer addresses, if given.
    fn ndp_options(&self, l: &mut Layer, at: usize, end: usize) -> (Option<[u8; 6]>, Option<[u8; 6]>) {
        let mut found = (None, None);
        let mut pos = at;
        // Every option is at least 8 bytes, so this ends; the count bounds it regardless.
        for _ in 0..256 {
            let Some(o) = self.frame.get(pos..end).filter(|o| o.len() >= 2) else { break };
            let (ty, units) = (o[0], o[1]);
            let len = usize::from(units) * 8;
            let ty_name = match ty {
                1 => Some("Source link-layer address"),
                2 => Some("Target link-layer address"),
                3 => Some("Prefix information"),
                4 => Some("Redirected header"),
                5 => Some("MTU"),
                _ => None,
            };
            l.add("icmpv6.opt.type", pos..pos + 1, Value::Int(ty.into()), format!("Type: {}", with_name(ty_name, ty)));
            let note = if len == 0 {
                " (invalid: 0)"
            } else if len > o.len() {
                " (cut short)"
            } else {
                ""
            };
            l.add(
                "icmpv6.opt.length",
                pos + 1..pos + 2,
                Value::Int(units.into()),
                format!("Length: {units} ({len} bytes){note}"),
            );
            if !note.is_empty() {
                break;
            }
            match (ty, len) {
                (1 | 2, 8..) => {
                    let mac = mac_of(&o[2..8]);
                    let (name, label) = if ty == 1 {
                        found.0 = Some(mac);
                        ("icmpv6.opt.src_linkaddr", "Source Link-layer address")
                    } else {
                        found.1 = Some(mac);
                        ("icmpv6.opt.target_linkaddr", "Target Link-layer address")
                    };
                    l.add(name, pos + 2..pos + 8, Value::Mac(mac), format!("{label}: {}", mac_text(mac)));
                }
                (3, 32..) => {
                    let plen = o[2];
                    let prefix = ipv6_at(o, 16);
                    l.add(
                        "icmpv6.opt.prefix.length",
                        pos + 2..pos + 3,
                        Value::Int(plen.into()),
                        format!("Prefix Length: {plen}"),
                    );
                    l.add(
                        "icmpv6.opt.prefix",
                        pos + 16..pos + 32,
                        Value::Addr(prefix.into()),
                        format!("Prefix: {prefix}"),
                    );
                }
                (5, 8..) => {
                    let mtu = be32(o, 4);
                    l.add("icmpv6.opt.mtu", pos + 4..pos + 8, Value::Int(mtu.into()), format!("MTU: {mtu}"));
                }
                _ => {}
            }
            pos += len;
        }
        found
    }

    fn tcp(&mut self, range: Range<usize>, ip: Ip) {
        self.summary.protocol = "TCP";
        let at = range.start;
        let b = self.frame.get(range.clone()).unwrap_or_default();
        let Ok(p) = TcpPacket::new_checked(b) else {
            let why = if b.len() < 20 {
                format!("{} bytes, shorter than a TCP header (20)", b.len())
            } else {
                let hl = usize::from(b[12] >> 4) * 4;
                if hl < 20 {
                    format!("bogus TCP header length ({hl}, less than 20)")
                } else {
                    format!("header length {hl}, {} bytes present", b.len())
                }
            };
            self.malformed("TCP", at, why);
            return;
        };
        let (sport, dport) = (p.src_port(), p.dst_port());
        let (seq, ack) = (be32(b, 4), be32(b, 8));
        let hl = usize::from(p.header_len());
        let flags = be16(b, 12) & 0x0fff;
        let win = p.window_len();
        let payload = at + hl..range.end;
        let len = payload.len();
        let mut l = Layer::new("Transmission Control Protocol", "tcp", at..at + hl);
        l.info = format!("Src Port: {sport}, Dst Port: {dport}, Seq: {seq}, Len: {len}");
        l.add("tcp.srcport", at..at + 2, Value::Int(sport.into()), format!("Source Port: {sport}"));
        l.add("tcp.dstport", at + 2..at + 4, Value::Int(dport.into()), format!("Destination Port: {dport}"));
        l.add("tcp.len", payload.clone(), Value::Int(len as u64), format!("TCP Segment Len: {len}"));
        l.add("tcp.seq", at + 4..at + 8, Value::Int(seq.into()), format!("Sequence Number: {seq}"));
        l.add("tcp.ack", at + 8..at + 12, Value::Int(ack.into()), format!("Acknowledgment Number: {ack}"));
        l.add(
            "tcp.hdr_len",
            at + 12..at + 13,
            Value::Int(hl as u64),
            format!("Header Length: {hl} bytes ({})", hl / 4),
        );
        let names = flag_names(flags);
        let shown = if names.is_empty() { "<None>".to_owned() } else { names.join(", ") };
        l.add("tcp.flags", at + 12..at + 14, Value::Int(flags.into()), format!("Flags: 0x{flags:03x} ({shown})"));
        for &(bit, name, label) in &TCP_FLAGS {
            let on = flags & bit != 0;
            let byte = if bit > 0xff { at + 12..at + 13 } else { at + 13..at + 14 };
            l.add(name, byte, Value::Bool(on), format!("{label}: {}", set(on)));
        }
        l.add("tcp.window_size", at + 14..at + 16, Value::Int(win.into()), format!("Window: {win}"));
        let sum = p.checksum();
        let ok = if p.verify_checksum(&ip.src, &ip.dst) { "correct" } else { "incorrect" };
        l.add("tcp.checksum", at + 16..at + 18, Value::Int(sum.into()), format!("Checksum: 0x{sum:04x} [{ok}]"));
        let urg = p.urgent_at();
        l.add("tcp.urgent_pointer", at + 18..at + 20, Value::Int(urg.into()), format!("Urgent Pointer: {urg}"));
        let opts = tcp_options(&mut l, p.options(), at + 20);

        let mut info = format!("{sport} → {dport} [{shown}] Seq={seq}");
        if flags & ACK != 0 {
            let _ = write!(info, " Ack={ack}");
        }
        let _ = write!(info, " Win={win} Len={len}");
        for o in &opts {
            info.push(' ');
            info.push_str(o);
        }
        self.layers.push(l);
        self.summary.info = info;
        self.data(payload, "Data", None);
    }

    fn udp(&mut self, range: Range<usize>, ip: Ip) {
        self.summary.protocol = "UDP";
        let at = range.start;
        let b = self.frame.get(range).unwrap_or_default();
        let Ok(p) = UdpPacket::new_checked(b) else {
            let why = if b.len() < 8 {
                format!("{} bytes, shorter than a UDP header (8)", b.len())
            } else {
                let len = be16(b, 4);
                if len < 8 {
                    format!("bogus UDP length ({len}, less than 8)")
                } else {
                    format!("UDP length {len}, {} bytes present", b.len())
                }
            };
            self.malformed("UDP", at, why);
            return;
        };
        let (sport, dport, length) = (p.src_port(), p.dst_port(), p.len());
        let mut l = Layer::new("User Datagram Protocol", "udp", at..at + 8);
        l.info = format!("Src Port: {sport}, Dst Port: {dport}");
        l.add("udp.srcport", at..at + 2, Value::Int(sport.into()), format!("Source Port: {sport}"));
        l.add("udp.dstport", at + 2..at + 4, Value::Int(dport.into()), format!("Destination Port: {dport}"));
        l.add("udp.length", at + 4..at + 6, Value::Int(length.into()), format!("Length: {length}"));
        let sum = p.checksum();
        let ok = if sum == 0 && matches!(ip.src, IpAddress::Ipv4(_)) {
            "none"
        } else if p.verify_checksum(&ip.src, &ip.dst) {
            "correct"
        } else {
            "incorrect"
        };
        l.add("udp.checksum", at + 6..at + 8, Value::Int(sum.into()), format!("Checksum: 0x{sum:04x} [{ok}]"));
        self.layers.push(l);
        let payload = at + 8..at + usize::from(length);
        self.summary.info = format!("{sport} → {dport} Len={}", payload.len());
        self.data(payload, "Data", None);
    }
}

/// The most extension headers followed before the rest is shown as data.
const MAX_EXT_HEADERS: usize = 8;

const ACK: u16 = 0x010;

/// Flag bit, field name and label, in the order Wireshark lists them.
const TCP_FLAGS: [(u16, &str, &str); 8] = [
    (0x080, "tcp.flags.cwr", "Congestion Window Reduced"),
    (0x040, "tcp.flags.ece", "ECN-Echo"),
    (0x020, "tcp.flags.urg", "Urgent"),
    (0x010, "tcp.flags.ack", "Acknowledgment"),
    (0x008, "tcp.flags.push", "Push"),
    (0x004, "tcp.flags.reset", "Reset"),
    (0x002, "tcp.flags.syn", "Syn"),
    (0x001, "tcp.flags.fin", "Fin"),
];

/// The flags' short names, in the order Wireshark writes them in a summary.
pub(crate) fn flag_names(flags: u16) -> Vec<&'static str> {
    const ORDER: [(u16, &str); 9] = [
        (0x001, "FIN"),
        (0x002, "SYN"),
        (0x004, "RST"),
        (0x008, "PSH"),
        (0x010, "ACK"),
        (0x020, "URG"),
        (0x040, "ECE"),
        (0x080, "CWR"),
        (0x100, "AE"),
    ];
    ORDER.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect()
}

/// Adds the fields of TCP options starting at frame offset `at`; returns their words for the
/// summary ("MSS=1460", "SACK_PERM", "WS=128").
fn tcp_options(l: &mut Layer, opts: &[u8], at: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut rest = opts;
    let mut problem = None;
    // TcpOption::parse consumes at least one byte per option and the header holds at most 40.
    while !rest.is_empty() {
        let pos = at + (opts.len() - rest.len());
        let Ok((next, opt)) = TcpOption::parse(rest) else {
            problem = Some(pos - at);
            break;
        };
        let end = at + (opts.len() - next.len());
        match opt {
            TcpOption::EndOfList => {
                names.push("End of Option List (EOL)");
                break;
            }
            TcpOption::NoOperation => names.push("No-Operation (NOP)"),
            TcpOption::MaxSegmentSize(mss) => {
                names.push("Maximum segment size");
                l.add("tcp.options.mss_val", pos + 2..end, Value::Int(mss.into()), format!("MSS Value: {mss}"));
                words.push(format!("MSS={mss}"));
            }
            TcpOption::WindowScale(shift) => {
                names.push("Window scale");
                let mult = 1u64.checked_shl(shift.into()).unwrap_or(0);
                l.add(
                    "tcp.options.wscale.shift",
                    pos + 2..end,
                    Value::Int(shift.into()),
                    format!("Shift count: {shift} (multiply by {mult})"),
                );
                words.push(format!("WS={mult}"));
            }
            TcpOption::SackPermitted => {
                names.push("SACK permitted");
                l.add("tcp.options.sack_perm", pos..end, Value::Bool(true), "SACK permitted");
                words.push("SACK_PERM".to_owned());
            }
            TcpOption::SackRange(blocks) => {
                names.push("SACK");
                for (i, (left, right)) in blocks.iter().flatten().enumerate() {
                    let b = pos + 2 + i * 8;
                    l.add("tcp.options.sack_le", b..b + 4, Value::Int((*left).into()), format!("left edge = {left}"));
                    l.add(
                        "tcp.options.sack_re",
                        b + 4..b + 8,
                        Value::Int((*right).into()),
                        format!("right edge = {right}"),
                    );
                    words.push(format!("SLE={left} SRE={right}"));
                }
            }
            TcpOption::TimeStamp { tsval, tsecr } => {
                names.push("Timestamps");
                l.add(
                    "tcp.options.timestamp.tsval",
                    pos + 2..pos + 6,
                    Value::Int(tsval.into()),
                    format!("Timestamp value: {tsval}"),
                );
                l.add(
                    "tcp.options.timestamp.tsecr",
                    pos + 6..pos + 10,
                    Value::Int(tsecr.into()),
                    format!("Timestamp echo reply: {tsecr}"),
                );
                words.push(format!("TSval={tsval} TSecr={tsecr}"));
            }
            TcpOption::Unknown { kind, .. } => {
                names.push("Unknown");
                l.add("tcp.option_kind", pos..pos + 1, Value::Int(kind.into()), format!("Kind: {kind}"));
            }
        }
        rest = next;
    }
    if !opts.is_empty() {
        let mut text = format!("({} bytes)", opts.len());
        for n in &names {
            let _ = write!(text, ", {n}");
        }
        if let Some(at) = problem {
            let _ = write!(text, ", malformed option at byte {at}");
        }
        let label = format!("Options: {text}");
        l.add("tcp.options", at..at + opts.len(), Value::Text(text), label);
    }
    words
}

const ICMP_UNREACHABLE: [&str; 16] = [
    "Network unreachable",
    "Host unreachable",
    "Protocol unreachable",
    "Port unreachable",
    "Fragmentation needed",
    "Source route failed",
    "Destination network unknown",
    "Destination host unknown",
    "Source host isolated",
    "Network administratively prohibited",
    "Host administratively prohibited",
    "Network unreachable for TOS",
    "Host unreachable for TOS",
    "Communication administratively filtered",
    "Host precedence violation",
    "Precedence cutoff in effect",
];

/// As Wireshark writes them (in its mixed case).
const ICMPV6_UNREACHABLE: [&str; 8] = [
    "no route to destination",
    "Administratively prohibited",
    "Beyond scope of source address",
    "Address unreachable",
    "Port unreachable",
    "Source address failed ingress/egress policy",
    "Reject route to destination",
    "Error in Source Routing Header",
];

const ICMPV6_PARAM_PROBLEM: [&str; 4] = [
    "erroneous header field encountered",
    "unrecognized Next Header type encountered",
    "unrecognized IPv6 option encountered",
    "IPv6 First Fragment has incomplete IPv6 Header Chain",
];

/// A few words on the packet an ICMP error quotes: "10.0.0.1 → 10.0.0.9 UDP 49152 → 9". The quote
/// is cut short by design (the IP header and 8 bytes), so it is read field by field, not checked
/// whole.
fn quoted(b: &[u8]) -> Option<String> {
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, usize) = match b.first()? >> 4 {
        4 if b.len() >= 20 => {
            (Ipv4Addr::from(be32(b, 12)).into(), Ipv4Addr::from(be32(b, 16)).into(), b[9], usize::from(b[0] & 0x0f) * 4)
        }
        6 if b.len() >= 40 => (ipv6_at(b, 8).into(), ipv6_at(b, 24).into(), b[6], 40),
        _ => return None,
    };
    let name = ip_proto_name(proto).map_or_else(|| format!("protocol {proto}"), str::to_owned);
    let mut s = format!("{src} → {dst} {name}");
    if matches!(proto, 6 | 17) && b.len() >= l4 + 4 {
        let _ = write!(s, " {} → {}", be16(b, l4), be16(b, l4 + 2));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::fields::{self, Kind};
    use crate::inspect::fixtures::*;

    fn value(d: &Decoded, name: &str) -> Value {
        d.field(name).unwrap_or_else(|| panic!("no field {name} in {d:#?}")).value.clone()
    }

    fn int(d: &Decoded, name: &str) -> u64 {
        match value(d, name) {
            Value::Int(n) => n,
            v => panic!("{name} is {v:?}"),
        }
    }

    fn abbrevs(d: &Decoded) -> Vec<&'static str> {
        d.layers.iter().map(|l| l.abbrev).collect()
    }

    /// Every name is in the table with the kind of value it holds, and every range is in the frame.
    pub(crate) fn check_consistent(frame: &[u8], d: &Decoded) {
        for l in &d.layers {
            let info = fields::lookup(l.abbrev).unwrap_or_else(|| panic!("layer {} not in the table", l.abbrev));
            assert_eq!(info.kind, Kind::Protocol, "{}", l.abbrev);
            assert!(l.range.start <= l.range.end && l.range.end <= frame.len(), "{} {:?}", l.abbrev, l.range);
            for f in &l.fields {
                let info = fields::lookup(f.name).unwrap_or_else(|| panic!("field {} not in the table", f.name));
                let ok = matches!(
                    (info.kind, &f.value),
                    (Kind::Int, Value::Int(_))
                        | (Kind::Bool, Value::Bool(_))
                        | (Kind::Ipv4, Value::Addr(IpAddr::V4(_)))
                        | (Kind::Ipv6, Value::Addr(IpAddr::V6(_)))
                        | (Kind::Mac, Value::Mac(_))
                        | (Kind::Text, Value::Text(_))
                );
                assert!(ok, "{} holds {:?}, the table says {:?}", f.name, f.value, info.kind);
                assert!(f.range.start <= f.range.end && f.range.end <= frame.len(), "{} {:?}", f.name, f.range);
            }
        }
    }

    #[test]
    fn arp_request() {
        let d = decode(&ARP_REQUEST);
        check_consistent(&ARP_REQUEST, &d);
        assert_eq!(abbrevs(&d), ["eth", "arp"]);
        assert_eq!(
            d.summary,
            Summary {
                src: "02:00:00:00:00:01".into(),
                dst: "Broadcast".into(),
                protocol: "ARP",
                info: "Who has 10.0.0.2? Tell 10.0.0.1".into()
            }
        );
        assert_eq!(value(&d, "eth.dst"), Value::Mac([0xff; 6]));
        assert_eq!(int(&d, "eth.type"), 0x0806);
        assert_eq!(int(&d, "arp.opcode"), 1);
        assert_eq!(value(&d, "arp.src.proto_ipv4"), Value::Addr("10.0.0.1".parse().unwrap()));
        assert_eq!(value(&d, "arp.dst.proto_ipv4"), Value::Addr("10.0.0.2".parse().unwrap()));
        assert_eq!(value(&d, "arp.src.hw_mac"), Value::Mac(MAC_A));
        let f = d.field("arp.dst.proto_ipv4").unwrap();
        assert_eq!((f.range.clone(), f.label.as_str()), (38..42, "Target IP address: 10.0.0.2"));
        assert_eq!(d.layer("arp").unwrap().range, 14..42);
        assert_eq!(d.field("eth.type").unwrap().label, "Type: ARP (0x0806)");
    }

    #[test]
    fn icmp_echo_request() {
        let d = decode(&ICMP_ECHO_REQUEST);
        check_consistent(&ICMP_ECHO_REQUEST, &d);
        assert_eq!(abbrevs(&d), ["eth", "ip", "icmp", "data"]);
        assert_eq!(d.summary.protocol, "ICMP");
        assert_eq!((d.summary.src.as_str(), d.summary.dst.as_str()), ("10.0.0.1", "10.0.0.2"));
        assert_eq!(d.summary.info, "Echo (ping) request id=0x1234, seq=3");
        assert_eq!(int(&d, "ip.ttl"), 64);
        assert_eq!(int(&d, "ip.proto"), 1);
        assert_eq!(value(&d, "ip.flags.df"), Value::Bool(true));
        assert_eq!(d.field("ip.checksum").unwrap().label, "Header Checksum: 0x0a91 [correct]");
        assert_eq!((int(&d, "icmp.type"), int(&d, "icmp.code")), (8, 0));
        assert_eq!((int(&d, "icmp.ident"), int(&d, "icmp.seq")), (0x1234, 3));
        assert_eq!(d.field("icmp.checksum").unwrap().label, "Checksum: 0x5433 [correct]");
        assert_eq!(d.field("icmp.seq").unwrap().range, 40..42);
        assert_eq!(d.layer("ip").unwrap().range, 14..34);
        assert_eq!(d.layer("icmp").unwrap().range, 34..50);
        assert_eq!(int(&d, "data.len"), 8);
    }

    #[test]
    fn icmpv6_neighbor_solicitation() {
        let d = decode(&ICMPV6_NEIGHBOR_SOLICIT);
        check_consistent(&ICMPV6_NEIGHBOR_SOLICIT, &d);
        assert_eq!(abbrevs(&d), ["eth", "ipv6", "icmpv6"]);
        assert_eq!(d.summary.protocol, "ICMPv6");
        assert_eq!((d.summary.src.as_str(), d.summary.dst.as_str()), ("fe80::1", "ff02::1:ff00:2"));
        assert_eq!(d.summary.info, "Neighbor Solicitation for fe80::2 from 02:00:00:00:00:01");
        assert_eq!(int(&d, "ipv6.hlim"), 255);
        assert_eq!(int(&d, "ipv6.nxt"), 58);
        assert_eq!(int(&d, "icmpv6.type"), 135);
        assert_eq!(value(&d, "icmpv6.nd.ns.target_address"), Value::Addr("fe80::2".parse().unwrap()));
        assert_eq!(value(&d, "icmpv6.opt.src_linkaddr"), Value::Mac(MAC_A));
        assert_eq!(d.field("icmpv6.opt.src_linkaddr").unwrap().range, 80..86);
        assert_eq!(d.field("icmpv6.checksum").unwrap().label, "Checksum: 0x7a97 [correct]");
    }

    #[test]
    fn tcp_syn() {
        let d = decode(&TCP_SYN);
        check_consistent(&TCP_SYN, &d);
        assert_eq!(abbrevs(&d), ["eth", "ip", "tcp"]);
        assert_eq!(d.summary.protocol, "TCP");
        assert_eq!(
            d.summary.info,
            "49152 → 9 [SYN] Seq=1000 Win=64240 Len=0 MSS=1460 SACK_PERM TSval=16909060 TSecr=0 WS=128"
        );
        assert_eq!((int(&d, "tcp.srcport"), int(&d, "tcp.dstport")), (49152, 9));
        assert_eq!((int(&d, "tcp.seq"), int(&d, "tcp.ack"), int(&d, "tcp.len")), (1000, 0, 0));
        assert_eq!(int(&d, "tcp.hdr_len"), 40);
        assert_eq!(int(&d, "tcp.flags"), 0x002);
        assert_eq!(value(&d, "tcp.flags.syn"), Value::Bool(true));
        assert_eq!(value(&d, "tcp.flags.ack"), Value::Bool(false));
        assert_eq!(int(&d, "tcp.window_size"), 64240);
        assert_eq!(int(&d, "tcp.options.mss_val"), 1460);
        assert_eq!(int(&d, "tcp.options.wscale.shift"), 7);
        assert_eq!(d.field("tcp.options.mss_val").unwrap().range, 56..58);
        assert_eq!(
            d.field("tcp.options").unwrap().label,
            "Options: (20 bytes), Maximum segment size, SACK permitted, Timestamps, No-Operation (NOP), Window scale"
        );
        assert_eq!(d.field("tcp.checksum").unwrap().label, "Checksum: 0x7115 [correct]");
        assert_eq!(d.field("tcp.flags").unwrap().label, "Flags: 0x002 (SYN)");
        assert_eq!(d.layer("tcp").unwrap().range, 34..74);
        assert_eq!(d.layer("tcp").unwrap().info, "Src Port: 49152, Dst Port: 9, Seq: 1000, Len: 0");
    }

    #[test]
    fn udp_datagram() {
        let d = decode(&UDP_DATAGRAM);
        check_consistent(&UDP_DATAGRAM, &d);
        assert_eq!(abbrevs(&d), ["eth", "ip", "udp", "data"]);
        assert_eq!(d.summary.protocol, "UDP");
        assert_eq!(d.summary.info, "49152 → 9 Len=5");
        assert_eq!((int(&d, "udp.srcport"), int(&d, "udp.dstport"), int(&d, "udp.length")), (49152, 9, 13));
        assert_eq!(d.field("udp.checksum").unwrap().label, "Checksum: 0xe7f5 [correct]");
        assert_eq!(d.layer("data").unwrap().range, 42..47);
    }

    #[test]
    fn a_vlan_tag_is_read_and_its_payload_decoded() {
        let mut f = TCP_SYN[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00, 0x20, 0x0a]);
        f.extend_from_slice(&TCP_SYN[12..]);
        let d = decode(&f);
        check_consistent(&f, &d);
        assert_eq!(abbrevs(&d), ["eth", "vlan", "ip", "tcp"]);
        assert_eq!((int(&d, "vlan.id"), int(&d, "vlan.priority"), int(&d, "vlan.etype")), (10, 1, 0x0800));
        assert_eq!(d.summary.protocol, "TCP");
        assert_eq!(d.field("tcp.srcport").unwrap().range, 38..40);
    }

    #[test]
    fn short_layers_become_malformed() {
        let d = decode(&TCP_SYN[..10]);
        assert_eq!(abbrevs(&d), ["_ws.malformed"]);
        assert_eq!(d.summary.protocol, "Ethernet");
        assert_eq!(d.summary.info, "[Malformed Packet: 10 bytes, shorter than an Ethernet header (14)]");

        // Cut inside the TCP header: the IPv4 total length says there should be more.
        let d = decode(&TCP_SYN[..40]);
        assert_eq!(abbrevs(&d), ["eth", "_ws.malformed"]);
        assert_eq!(d.summary.info, "[Malformed Packet: truncated: total length 60, 26 bytes present]");
        assert_eq!(d.summary.protocol, "IPv4");
        assert!(d.is_malformed());

        // A TCP header length that points past the segment.
        let mut f = TCP_SYN;
        f[46] = 0xf0;
        let d = decode(&f);
        assert_eq!(abbrevs(&d), ["eth", "ip", "_ws.malformed"]);
        assert_eq!(d.summary.protocol, "TCP");
        assert_eq!(d.summary.info, "[Malformed Packet: header length 60, 40 bytes present]");
        assert_eq!(d.layer("_ws.malformed").unwrap().range, 34..74);
    }

    #[test]
    fn checksums_that_do_not_add_up_are_said_to_be_incorrect() {
        let mut f = UDP_DATAGRAM;
        f[46] ^= 1;
        let d = decode(&f);
        assert_eq!(d.field("udp.checksum").unwrap().label, "Checksum: 0xe7f5 [incorrect]");
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut f = UDP_DATAGRAM.to_vec();
        f.resize(60, 0);
        let d = decode(&f);
        assert_eq!(d.summary.info, "49152 → 9 Len=5");
        assert_eq!(d.layer("data").unwrap().range, 42..47);
    }

    #[test]
    fn an_unknown_ethertype_is_data() {
        let mut f = ARP_REQUEST;
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        let d = decode(&f);
        assert_eq!(abbrevs(&d), ["eth", "data"]);
        assert_eq!((d.summary.protocol, d.summary.info.as_str()), ("Ethernet", "EtherType 0x88b5"));
    }

    #[test]
    fn icmp_errors_say_what_they_quote() {
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&UDP_DATAGRAM[14..42]);
        let sum = checksum(&[&icmp]);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let f = ipv4_frame(false, 1, &icmp);
        let d = decode(&f);
        check_consistent(&f, &d);
        assert_eq!(abbrevs(&d), ["eth", "ip", "icmp", "data"]);
        assert_eq!(d.summary.info, "Destination unreachable (Port unreachable)");
        assert_eq!(d.field("icmp.checksum").unwrap().label, format!("Checksum: 0x{sum:04x} [correct]"));
        let quote = &d.layers[3];
        assert_eq!((quote.name, quote.info.as_str()), ("Original datagram", "10.0.0.1 → 10.0.0.2 UDP 49152 → 9"));
        assert_eq!(quote.range, 42..70);
    }

    #[test]
    fn fragments_are_data() {
        let mut f = UDP_DATAGRAM;
        f[20] = 0x20;
        let d = decode(&f);
        assert_eq!(abbrevs(&d), ["eth", "ip", "data"]);
        assert_eq!(
            (d.summary.protocol, d.summary.info.as_str()),
            ("IPv4", "Fragmented IP protocol (proto=UDP 17, off=0, ID=1c46)")
        );
        assert_eq!(value(&d, "ip.flags.mf"), Value::Bool(true));
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let ns = &ICMPV6_NEIGHBOR_SOLICIT;
        let mut f = ns[..54].to_vec();
        f[19] += 8;
        f[20] = 0;
        f.extend_from_slice(&[58, 0, 1, 4, 0, 0, 0, 0]);
        f.extend_from_slice(&ns[54..]);
        let d = decode(&f);
        check_consistent(&f, &d);
        assert_eq!(abbrevs(&d), ["eth", "ipv6", "icmpv6"]);
        assert_eq!(d.summary.info, "Neighbor Solicitation for fe80::2 from 02:00:00:00:00:01");
        assert_eq!((int(&d, "ipv6.nxt"), int(&d, "ipv6.hopopts")), (0, 8));
        assert_eq!(d.layer("ipv6").unwrap().range, 14..62);
        assert_eq!(d.layer("icmpv6").unwrap().range, 62..94);
        // An extension header that claims more than there is.
        f[55] = 9;
        let d = decode(&f);
        assert_eq!(abbrevs(&d), ["eth", "ipv6", "_ws.malformed"]);
        assert_eq!(d.summary.info, "[Malformed Packet: extension header cut short]");
    }

    #[test]
    fn neighbor_advertisement() {
        let mut f = ICMPV6_NEIGHBOR_SOLICIT;
        f[54] = 136;
        f[58] = 0x60;
        f[78] = 2;
        let d = decode(&f);
        check_consistent(&f, &d);
        assert_eq!(d.summary.info, "Neighbor Advertisement fe80::2 (sol, ovr) is at 02:00:00:00:00:01");
        assert_eq!(value(&d, "icmpv6.nd.na.flag.r"), Value::Bool(false));
        assert_eq!(value(&d, "icmpv6.nd.na.flag.s"), Value::Bool(true));
        assert_eq!(value(&d, "icmpv6.opt.target_linkaddr"), Value::Mac(MAC_A));
        assert_eq!(d.field("icmpv6.checksum").unwrap().label, "Checksum: 0x7a97 [incorrect]");
    }

    #[test]
    fn arp_reply() {
        let mut f = ARP_REQUEST;
        f[21] = 2;
        f[22..32].copy_from_slice(&[2, 0, 0, 0, 0, 2, 10, 0, 0, 2]);
        f[32..42].copy_from_slice(&[2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        let d = decode(&f);
        assert_eq!(d.summary.info, "10.0.0.2 is at 02:00:00:00:00:02");
        assert_eq!(d.layer("arp").unwrap().info, "(reply)");
        f[38..42].copy_from_slice(&[10, 0, 0, 2]);
        assert_eq!(decode(&f).summary.info, "Gratuitous ARP for 10.0.0.2 (Reply)");
    }

    #[test]
    fn a_bad_tcp_option_is_noted_not_fatal() {
        let mut f = TCP_SYN;
        f[55] = 0;
        let d = decode(&f);
        check_consistent(&f, &d);
        assert_eq!(abbrevs(&d), ["eth", "ip", "tcp"]);
        assert_eq!(d.summary.info, "49152 → 9 [SYN] Seq=1000 Win=64240 Len=0");
        assert_eq!(d.field("tcp.options").unwrap().label, "Options: (20 bytes), malformed option at byte 0");
    }

    #[test]
    fn value_display() {
        assert_eq!(Value::Mac(MAC_A).to_string(), "02:00:00:00:00:01");
        assert_eq!(Value::Bool(true).to_string(), "1");
        assert_eq!(Value::Int(7).to_string(), "7");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_decode_without_panic(frame in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let d = decode(&frame);
            check_consistent(&frame, &d);
        }

        /// Fixtures cut short and with bytes changed reach deep into every decoder.
        #[test]
        fn damaged_fixtures_decode_without_panic(
            which in 0..ALL.len(),
            cut in 0usize..100,
            changes in proptest::collection::vec((0usize..100, proptest::prelude::any::<u8>()), 0..6),
        ) {
            let mut f = ALL[which].to_vec();
            for (at, byte) in changes {
                if let Some(b) = f.get_mut(at) {
                    *b = byte;
                }
            }
            f.truncate(cut);
            let d = decode(&f);
            check_consistent(&f, &d);
            for line in crate::inspect::hex_dump(&f) {
                let _ = line.to_string();
            }
        }
    }

    #[test]
    fn every_prefix_of_every_fixture_decodes() {
        for f in ALL {
            for n in 0..=f.len() {
                let d = decode(&f[..n]);
                check_consistent(&f[..n], &d);
                assert!(!d.layers.is_empty());
            }
        }
    }
}
