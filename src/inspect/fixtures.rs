//! Frames for the tests of `inspect`, written out byte by byte as smoltcp's own `wire` tests do.
//! Their checksums are right (the decoder's tests say so), and Wireshark reads them as their
//! names say.

/// The source of every fixture: 02:00:00:00:00:01, 10.0.0.1, fe80::1.
pub(crate) const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// Who has 10.0.0.2? Tell 10.0.0.1.
pub(crate) static ARP_REQUEST: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06,
    0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x0a, 0x00, 0x00, 0x02,
];

/// 10.0.0.1 → 10.0.0.2: echo request, id 0x1234, seq 3, 8 bytes of data.
pub(crate) static ICMP_ECHO_REQUEST: [u8; 50] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x24, 0x1c,
    0x46, 0x40, 0x00, 0x40, 0x01, 0x0a, 0x91, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x08, 0x00, 0x54, 0x33,
    0x12, 0x34, 0x00, 0x03, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
];

/// 10.0.0.1:49152 → 10.0.0.2:9: SYN, seq 1000, window 64240; options MSS 1460, SACK permitted,
/// timestamps, NOP, window scale 7 (Linux's order).
pub(crate) static TCP_SYN: [u8; 74] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x3c, 0x1c,
    0x46, 0x40, 0x00, 0x40, 0x06, 0x0a, 0x74, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0xc0, 0x00, 0x00, 0x09,
    0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x71, 0x15, 0x00, 0x00, 0x02, 0x04, 0x05,
    0xb4, 0x04, 0x02, 0x08, 0x0a, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
];

/// 10.0.0.1:49152 → 10.0.0.2:9: "hello".
pub(crate) static UDP_DATAGRAM: [u8; 47] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x21, 0x1c,
    0x46, 0x40, 0x00, 0x40, 0x11, 0x0a, 0x84, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0xc0, 0x00, 0x00, 0x09,
    0x00, 0x0d, 0xe7, 0xf5, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
];

/// fe80::1 → ff02::1:ff00:2: who has fe80::2, with the source link-layer address option.
pub(crate) static ICMPV6_NEIGHBOR_SOLICIT: [u8; 86] = [
    0x33, 0x33, 0xff, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, 0x60, 0x00, 0x00, 0x00, 0x00,
    0x20, 0x3a, 0xff, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x02, 0x87, 0x00, 0x7a,
    0x97, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x02, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
];

/// Every fixture.
pub(crate) static ALL: [&[u8]; 5] =
    [&ARP_REQUEST, &ICMP_ECHO_REQUEST, &TCP_SYN, &UDP_DATAGRAM, &ICMPV6_NEIGHBOR_SOLICIT];

/// 02:00:00:00:00:02, 10.0.0.2: the other end of the fixtures.
pub(crate) const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// The options of [`TCP_SYN`].
pub(crate) const SYN_OPTIONS: [u8; 20] =
    [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, 1, 3, 3, 7];

/// A TCP segment between 10.0.0.1:49152 (`from_a`) and 10.0.0.2:9, built with the layout and
/// checksums of the static fixtures (a test checks that it rebuilds [`TCP_SYN`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seg {
    pub from_a: bool,
    pub seq: u32,
    pub ack: u32,
    pub flags: u16,
    pub window: u16,
    pub options: &'static [u8],
    pub payload: usize,
}

impl Default for Seg {
    fn default() -> Self {
        Seg { from_a: true, seq: 0, ack: 0, flags: 0, window: 64240, options: &[], payload: 0 }
    }
}

pub(crate) const FIN: u16 = 0x001;
pub(crate) const SYN: u16 = 0x002;
pub(crate) const RST: u16 = 0x004;
pub(crate) const PSH: u16 = 0x008;
pub(crate) const ACK: u16 = 0x010;

pub(crate) fn checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u32 = bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame with an IPv4 packet from 10.0.0.1 (`from_a`) or 10.0.0.2 to the other.
pub(crate) fn ipv4_frame(from_a: bool, proto: u8, l4: &[u8]) -> Vec<u8> {
    let (smac, dmac, src, dst) = if from_a {
        (MAC_A, MAC_B, [10, 0, 0, 1], [10, 0, 0, 2])
    } else {
        (MAC_B, MAC_A, [10, 0, 0, 2], [10, 0, 0, 1])
    };
    let total = u16::try_from(20 + l4.len()).unwrap();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0x1c, 0x46, 0x40, 0x00, 64, proto, 0, 0]);
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut l4 = l4.to_vec();
    let sum_at = match proto {
        6 => Some(16),
        17 => Some(6),
        _ => None,
    };
    if let Some(at) = sum_at {
        let len = u16::try_from(l4.len()).unwrap().to_be_bytes();
        let sum = checksum(&[&src, &dst, &[0, proto], &len, &l4]);
        l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    }
    [&dmac[..], &smac, &[0x08, 0x00], &ip, &l4].concat()
}

pub(crate) fn tcp_frame(s: Seg) -> Vec<u8> {
    let (sport, dport): (u16, u16) = if s.from_a { (49152, 9) } else { (9, 49152) };
    let hl = 20 + s.options.len();
    let mut t = Vec::with_capacity(hl + s.payload);
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&s.seq.to_be_bytes());
    t.extend_from_slice(&s.ack.to_be_bytes());
    t.extend_from_slice(&((u16::try_from(hl / 4).unwrap() << 12) | s.flags).to_be_bytes());
    t.extend_from_slice(&s.window.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(s.options);
    t.resize(hl + s.payload, b'x');
    ipv4_frame(s.from_a, 6, &t)
}

/// A UDP datagram between 10.0.0.1:`sport` (`from_a`) and 10.0.0.2:`dport`.
pub(crate) fn udp_frame(from_a: bool, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap();
    let u = [&sport.to_be_bytes()[..], &dport.to_be_bytes(), &len.to_be_bytes(), &[0, 0], payload].concat();
    ipv4_frame(from_a, 17, &u)
}

/// An ICMP echo request or reply between 10.0.0.1 (`from_a`) and 10.0.0.2.
pub(crate) fn echo_frame(from_a: bool, request: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![if request { 8 } else { 0 }, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(b"abcdefgh");
    let sum = checksum(&[&m]);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    ipv4_frame(from_a, 1, &m)
}

#[test]
fn the_builders_rebuild_the_static_fixtures() {
    let syn = Seg { seq: 1000, flags: SYN, options: &SYN_OPTIONS, ..Seg::default() };
    assert_eq!(tcp_frame(syn), TCP_SYN);
    assert_eq!(udp_frame(true, 49152, 9, b"hello"), UDP_DATAGRAM);
    assert_eq!(echo_frame(true, true, 0x1234, 3), ICMP_ECHO_REQUEST);
}
