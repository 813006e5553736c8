//! A host's interfaces: addresses, MAC, MTU and gateways. Addresses and MACs are unique across
//! the whole lab, so each interface is checked against those seen before it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Address, Ipv6Address};

use super::Cx;
use crate::topology::diag::{shown, JsonPath};
use crate::topology::model::{Interface, Node};
use crate::topology::parse;
use crate::topology::spec::InterfaceSpec;

impl Cx {
    /// The interface as checked, and whether every one of its addresses was accepted: a host
    /// with an address missing is not checked again for what the address would have settled.
    pub(super) fn interface(
        &mut self,
        node: &str,
        iname: &str,
        spec: &InterfaceSpec,
        path: &JsonPath,
        seen_ip: &mut BTreeMap<IpAddress, JsonPath>,
        seen_mac: &mut BTreeMap<EthernetAddress, JsonPath>,
    ) -> (Interface, bool) {
        let mut addresses: Vec<IpCidr> = Vec::new();
        // Whether every address was accepted; if not, targets naming this node are not checked again.
        let mut all_addresses = true;
        if spec.addresses.len() > 4 {
            self.err(
                path.key("addresses"),
                format!("{} addresses on one interface; at most 4", spec.addresses.len()),
                Some(
                    "a host's stack keeps four addresses per interface; one IPv4 and one IPv6 address is usual".into(),
                ),
            );
        }
        for (k, a) in spec.addresses.iter().enumerate() {
            let p = path.key("addresses").index(k);
            match parse::cidr(a) {
                Ok(c) => {
                    if let Some(first) = seen_ip.get(&c.address()) {
                        self.err(
                            p,
                            format!("address {} is already used at {first}", c.address()),
                            Some("every interface address in a lab must be unique".into()),
                        );
                        all_addresses = false;
                    } else {
                        seen_ip.insert(c.address(), p);
                        addresses.push(c);
                    }
                }
                Err(e) => {
                    let hint = match address_part(a) {
                        Some(ip) if !a.contains('/') => {
                            format!("add the prefix length: `{ip}/{}`", if ip.is_ipv4() { 24 } else { 64 })
                        }
                        _ if e.contains("network address") || e.contains("broadcast address") => {
                            "the first and last addresses of an IPv4 subnet are reserved; use one in between".into()
                        }
                        _ => "write an address and prefix length: `10.0.0.1/24` or `fd00::1/64`".into(),
                    };
                    self.err(p, e, Some(hint));
                    all_addresses = false;
                    self.unaccepted_ips.extend(address_part(a));
                }
            }
        }
        let mac = match &spec.mac {
            None => parse::derived_mac(node, iname),
            Some(m) => match parse::mac(m) {
                Ok(m) => m,
                Err(e) => {
                    self.err(path.key("mac"), e, Some("or leave `mac` out for a stable derived one".into()));
                    parse::derived_mac(node, iname)
                }
            },
        };
        if let Some(first) = seen_mac.get(&mac) {
            self.err(
                if spec.mac.is_some() { path.key("mac") } else { path.clone() },
                format!("MAC {} is already used at {first}", parse::mac_text(mac)),
                Some("every interface in a lab needs its own MAC".into()),
            );
        } else {
            seen_mac.insert(mac, path.clone());
        }
        let has_v6 = addresses.iter().any(|c| matches!(c, IpCidr::Ipv6(_)));
        let mtu = spec.mtu.unwrap_or(1500);
        let min = if has_v6 { 1280 } else { 576 };
        if !(min..=9000).contains(&mtu) {
            let why = if has_v6 && mtu < 1280 { " (IPv6 needs at least 1280)" } else { "" };
            self.err(
                path.key("mtu"),
                format!("MTU {mtu} is out of range {min} to 9000{why}"),
                Some("1500 is the Ethernet default".into()),
            );
        }
        let mut gateway_v4: Option<Ipv4Address> = None;
        let mut gateway_v6: Option<Ipv6Address> = None;
        for (k, g) in spec.gateways.iter().enumerate() {
            let p = path.key("gateways").index(k);
            let Ok(ip) = g.trim().parse::<IpAddr>() else {
                self.err(
                    p,
                    format!("`{}` is not an IP address", shown(g)),
                    Some("a gateway is a bare address such as `10.0.0.254`".into()),
                );
                continue;
            };
            let ip = IpAddress::from(ip);
            if !addresses.iter().any(|c| c.contains_addr(&ip)) {
                let subnets: Vec<String> = addresses.iter().map(ToString::to_string).collect();
                self.err(
                    p,
                    format!("gateway {ip} is outside every subnet of this interface"),
                    Some(format!(
                        "a gateway must be on-link; this interface has {}",
                        if subnets.is_empty() { "no addresses".into() } else { subnets.join(", ") }
                    )),
                );
                continue;
            }
            if addresses.iter().any(|c| c.address() == ip) {
                self.err(
                    p,
                    format!("gateway {ip} is this interface's own address"),
                    Some("a gateway is another host on the subnet, such as a router's address".into()),
                );
                continue;
            }
            // The first and last addresses of an IPv4 subnet (up to /30) address no host.
            if let Some((which, subnet, last_host)) = reserved_v4(&addresses, ip) {
                self.err(
                    p,
                    format!("gateway {ip} is the {which} address of {subnet}"),
                    Some(format!(
                        "the first and last addresses of an IPv4 subnet are reserved; a gateway is a host between \
                         them, such as {last_host}"
                    )),
                );
                continue;
            }
            // The first gateway of each family is kept; a later one is reported against it.
            let first = match ip {
                IpAddress::Ipv4(v4) => match gateway_v4 {
                    Some(g) => Some(("IPv4", g.to_string())),
                    None => {
                        gateway_v4 = Some(v4);
                        None
                    }
                },
                IpAddress::Ipv6(v6) => match gateway_v6 {
                    Some(g) => Some(("IPv6", g.to_string())),
                    None => {
                        gateway_v6 = Some(v6);
                        None
                    }
                },
            };
            if let Some((family, first)) = first {
                self.err(
                    p,
                    format!("gateway {ip} is a second {family} gateway (the first is {first})"),
                    Some("give at most one IPv4 and one IPv6 gateway per interface".into()),
                );
            }
        }
        let iface = Interface {
            name: iname.to_string(),
            mac,
            mtu: mtu as usize,
            addresses,
            gateway_v4,
            gateway_v6,
            link: None,
        };
        (iface, all_addresses)
    }
}

/// Whether `ip` is the network or broadcast address of one of the IPv4 `subnets` shorter than /31:
/// which it is, that subnet, and the last host address of the subnet.
fn reserved_v4(subnets: &[IpCidr], ip: IpAddress) -> Option<(&'static str, IpCidr, Ipv4Address)> {
    let IpAddress::Ipv4(v4) = ip else { return None };
    subnets.iter().find_map(|c| {
        let IpCidr::Ipv4(c4) = c else { return None };
        let len = c4.prefix_len();
        if len >= 31 || !c4.contains_addr(&v4) {
            return None;
        }
        let hosts = u32::MAX >> len;
        let network = u32::from(v4) & !hosts;
        let subnet = IpCidr::new(IpAddress::Ipv4(Ipv4Address::from(network)), len);
        let last_host = Ipv4Address::from(network | (hosts - 1));
        match u32::from(v4) & hosts {
            0 => Some(("network", subnet, last_host)),
            h if h == hosts => Some(("broadcast", subnet, last_host)),
            _ => None,
        }
    })
}

/// The IP address before any `/prefix` of an address as written, if it is one.
pub(super) fn address_part(s: &str) -> Option<IpAddr> {
    s.split('/').next()?.trim().parse().ok()
}

pub(super) fn host_addrs(n: &Node) -> impl Iterator<Item = IpCidr> + '_ {
    let ifaces: &[Interface] = n.kind.interfaces();
    ifaces.iter().flat_map(|i| i.addresses.iter().copied())
}
