//! Sites and tunnels: which process each node runs in, which links cross between sites, and how
//! each pair of sites joined by links reaches the other (who calls, who waits, over what).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use indexmap::IndexMap;

use super::Cx;
use crate::topology::diag::{did_you_mean, listing, shown, JsonPath};
use crate::topology::model::{Link, LinkId, Node, Site, Transport, Tunnel};
use crate::topology::parse;
use crate::topology::spec::{ConnectSpec, LinkSpec, SiteSpec};

/// What `sites` validation needs besides the sites object.
pub(super) struct SiteInput<'a> {
    pub sites: Option<&'a IndexMap<String, SiteSpec>>,
    pub insecure: bool,
    pub nodes: &'a [Node],
    pub links: &'a [Link],
    /// The index in the lab file's `links` of each link.
    pub spec_index: &'a [usize],
    pub specs: &'a [Option<LinkSpec>],
}

const LISTEN_HINT: &str = "an IP address and a port to listen on: `0.0.0.0:7450`, `[::]:7450` or `127.0.0.1:7450`";
const CONNECT_HINT: &str = "a host and a port: `branch.example.net:7450`, `192.0.2.7:7450` or `[2001:db8::7]:7450`";

impl Cx {
    pub(super) fn sites(&mut self, input: &SiteInput<'_>) -> (Vec<Site>, Vec<Tunnel>) {
        let root = JsonPath::root();
        let spec_path = root.key("sites");
        let empty = IndexMap::new();
        let specs = input.sites.unwrap_or(&empty);
        // Sites in order of first mention by a node.
        let mut sites: Vec<Site> = Vec::new();
        for n in input.nodes {
            if let Some(s) = &n.site {
                if !sites.iter().any(|x| &x.name == s) {
                    sites.push(Site { name: s.clone(), ..Site::default() });
                }
            }
        }
        let node_path = |n: &Node| root.key("nodes").key(&n.name);
        for n in input.nodes {
            match &n.site {
                Some(s) if !parse::valid_name(s) => self.err(
                    node_path(n).key("site"),
                    format!("`{}` is not a valid site name", shown(s)),
                    Some(parse::name_hint(s, "use letters, digits, `-`, `_` and `.`")),
                ),
                None if !sites.is_empty() => self.err(
                    node_path(n),
                    format!(
                        "node `{}` has no `site`, but the lab's nodes run in sites: {}",
                        shown(&n.name),
                        listing(sites.iter().map(|s| s.name.as_str()))
                    ),
                    Some(format!("add `\"site\": \"{}\"` to say which process runs it", shown(&sites[0].name))),
                ),
                _ => {}
            }
        }
        for (name, s) in specs {
            let path = spec_path.key(name);
            let Some(site) = sites.iter_mut().find(|x| &x.name == name) else {
                let hint = did_you_mean(name, sites.iter().map(|s| s.name.as_str())).or_else(|| {
                    Some(if sites.is_empty() {
                        "no node names a site: give nodes `\"site\": …` first".into()
                    } else {
                        format!("the nodes' sites: {}", listing(sites.iter().map(|s| s.name.as_str())))
                    })
                });
                self.err_key(path, format!("site `{}` has no nodes", shown(name)), hint);
                continue;
            };
            if let Some(l) = &s.listen {
                match l.trim().parse::<SocketAddr>() {
                    Ok(a) if a.port() == 0 => self.err(
                        path.key("listen"),
                        "a site listens on a fixed port, not port 0",
                        Some("its peers connect to this port: pick one, such as 7450".into()),
                    ),
                    Ok(_) => site.listen = Some(l.trim().to_string()),
                    Err(_) => self.err(
                        path.key("listen"),
                        format!("`{}` is not an address to listen on", shown(l)),
                        Some(LISTEN_HINT.into()),
                    ),
                }
            }
            match &s.exec {
                Some(c) if c.trim().is_empty() => {
                    self.err(path.key("exec"), "`exec` is an empty command", Some(exec_hint(name)));
                }
                Some(c) => site.exec = Some(c.clone()),
                None => {}
            }
            match &s.connect {
                Some(ConnectSpec::One(a)) => self.connect_address(a, &path.key("connect")),
                Some(ConnectSpec::Each(m)) => {
                    for (peer, a) in m {
                        self.connect_address(a, &path.key("connect").key(peer));
                    }
                }
                None => {}
            }
        }

        // Each link: within a site in memory, between sites over a tunnel.
        let site_of =
            |node: usize| input.nodes[node].site.as_deref().and_then(|s| sites.iter().position(|x| x.name == s));
        // Pairs of sites (lower index first) → their transport and links.
        let mut pairs: BTreeMap<(usize, usize), (Transport, Vec<LinkId>)> = BTreeMap::new();
        let mut pair_order: Vec<(usize, usize)> = Vec::new();
        for l in input.links {
            let at = input.spec_index.get(l.id.index()).copied().unwrap_or(l.id.index());
            let path = root.key("links").index(at);
            let explicit = input.specs.get(at).and_then(|s| s.as_ref()).and_then(|s| s.transport).is_some();
            let (a, b) = (site_of(l.ends[0].node().index()), site_of(l.ends[1].node().index()));
            match (a, b) {
                (Some(a), Some(b)) if a != b => {
                    if l.transport == Transport::Mem {
                        let (p, said) = if explicit {
                            (path.key("transport"), "`mem` passes frames within one process")
                        } else {
                            (path, "links default to `mem`, within one process")
                        };
                        self.err(
                            p,
                            format!(
                                "link `{}` joins sites `{}` and `{}`, so it needs a tunnel: {said}",
                                shown(&l.name),
                                shown(&sites[a].name),
                                shown(&sites[b].name)
                            ),
                            Some(
                                "write `\"transport\": \"udp\"` (or `tcp`, or `exec` to run over a command such as \
                                 ssh); or put both ends in one site"
                                    .into(),
                            ),
                        );
                        continue;
                    }
                    let key = (a.min(b), a.max(b));
                    match pairs.get_mut(&key) {
                        Some((t, links)) if *t == l.transport => links.push(l.id),
                        Some((t, links)) => {
                            let first = &input.links[links[0].index()].name;
                            self.err(
                                path.key("transport"),
                                format!(
                                    "links between `{}` and `{}` share one connection, so one transport: `{}` is \
                                     `{}`, this one `{}`",
                                    shown(&sites[key.0].name),
                                    shown(&sites[key.1].name),
                                    shown(first),
                                    t.as_str(),
                                    l.transport.as_str()
                                ),
                                Some(format!("write `\"transport\": \"{}\"` here too", t.as_str())),
                            );
                        }
                        None => {
                            pairs.insert(key, (l.transport, vec![l.id]));
                            pair_order.push(key);
                        }
                    }
                }
                // A node without a site is reported already.
                (None, _) | (_, None) if !sites.is_empty() => {}
                _ if l.transport != Transport::Mem => {
                    let within = a.map_or_else(
                        || "in one process".to_string(),
                        |a| format!("in site `{}`", shown(&sites[a].name)),
                    );
                    self.err(
                        path.key("transport"),
                        format!(
                            "link `{}` is `{}`, but both its ends run {within}",
                            shown(&l.name),
                            l.transport.as_str()
                        ),
                        Some(
                            "a link within a site passes frames in memory: leave `transport` out, or give the ends' \
                             nodes different `site`s"
                                .into(),
                        ),
                    );
                }
                _ => {}
            }
        }

        // Who calls whom.
        let socket_peers: Vec<Vec<usize>> = (0..sites.len())
            .map(|s| {
                pairs
                    .iter()
                    .filter(|(_, (t, _))| matches!(t, Transport::Udp | Transport::Tcp))
                    .filter_map(|(&(x, y), _)| {
                        if x == s {
                            Some(y)
                        } else if y == s {
                            Some(x)
                        } else {
                            None
                        }
                    })
                    .collect()
            })
            .collect();
        let peers_by_socket = |s: usize| -> &[usize] { &socket_peers[s] };
        // The address `from` connects to `to` at, if its `connect` says so.
        let connect_to = |from: usize, to: usize| -> Option<String> {
            match &specs.get(&sites[from].name)?.connect {
                Some(ConnectSpec::One(a)) if peers_by_socket(from).len() == 1 => Some(a.trim().to_string()),
                Some(ConnectSpec::Each(m)) => m.get(&sites[to].name).map(|a| a.trim().to_string()),
                _ => None,
            }
        };
        for (i, site) in sites.iter().enumerate() {
            let Some(spec) = specs.get(&site.name) else { continue };
            let path = spec_path.key(&site.name).key("connect");
            let peers = peers_by_socket(i);
            match &spec.connect {
                Some(ConnectSpec::One(_)) if peers.len() > 1 => self.err(
                    path,
                    format!(
                        "site `{}` has {} peers over udp or tcp ({}): say which address is which",
                        shown(&site.name),
                        peers.len(),
                        listing(peers.iter().map(|p| sites[*p].name.as_str()))
                    ),
                    Some("write `\"connect\": { \"<peer site>\": \"host:port\", … }`".into()),
                ),
                Some(ConnectSpec::One(_)) if peers.is_empty() => self.err(
                    path,
                    format!(
                        "site `{}` has no udp or tcp link to another site, so nothing to connect",
                        shown(&site.name)
                    ),
                    Some("remove `connect`, or give a link between sites `\"transport\": \"udp\"`".into()),
                ),
                Some(ConnectSpec::Each(m)) => {
                    for peer in m.keys() {
                        if !peers.iter().any(|p| &sites[*p].name == peer) {
                            let hint =
                                did_you_mean(peer, peers.iter().map(|p| sites[*p].name.as_str())).or_else(|| {
                                    Some(format!(
                                        "its peers over udp or tcp: {}",
                                        if peers.is_empty() {
                                            "none".to_string()
                                        } else {
                                            listing(peers.iter().map(|p| sites[*p].name.as_str()))
                                        }
                                    ))
                                });
                            self.err_key(
                                path.key(peer),
                                format!(
                                    "site `{}` has no udp or tcp link to a site `{}`",
                                    shown(&site.name),
                                    shown(peer)
                                ),
                                hint,
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        let mut tunnels = Vec::new();
        for key in pair_order {
            let Some((transport, links)) = pairs.remove(&key) else { continue };
            let (x, y) = key;
            let (nx, ny) = (shown(&sites[x].name).to_string(), shown(&sites[y].name).to_string());
            let link_path =
                |l: LinkId| root.key("links").index(input.spec_index.get(l.index()).copied().unwrap_or(l.index()));
            let first = link_path(links[0]);
            let (caller, callee, connect) = if transport == Transport::Exec {
                match (sites[x].exec.is_some(), sites[y].exec.is_some()) {
                    (true, true) => {
                        self.err(
                            first,
                            format!("sites `{nx}` and `{ny}` both have an `exec` command, so neither knows which starts the other"),
                            Some("keep `exec` on the site that is started by the command; the other runs it".into()),
                        );
                        continue;
                    }
                    (false, false) => {
                        self.err(
                            first,
                            format!("no way to reach: the link is `exec`, but neither `{nx}` nor `{ny}` has an `exec` command"),
                            Some(format!("under `sites`, give one of them {}", exec_hint(&sites[y].name))),
                        );
                        continue;
                    }
                    (true, false) => (y, x, None),
                    (false, true) => (x, y, None),
                }
            } else {
                match (connect_to(x, y), connect_to(y, x)) {
                    (Some(_), Some(_)) => {
                        self.err(
                            spec_path.key(&sites[y].name).key("connect"),
                            format!("sites `{nx}` and `{ny}` both connect to each other; one of them must wait for the call"),
                            Some(format!("remove `connect` from one of them, and give it `\"listen\"`: {LISTEN_HINT}")),
                        );
                        continue;
                    }
                    (Some(a), None) => (x, y, Some(a)),
                    (None, Some(a)) => (y, x, Some(a)),
                    (None, None) => {
                        let both_listen = sites[x].listen.is_some() && sites[y].listen.is_some();
                        let message = if both_listen {
                            format!("sites `{nx}` and `{ny}` both wait for the other to call: each has `listen` and neither `connect`s")
                        } else {
                            format!("no way to reach: sites `{nx}` and `{ny}` share a {} link, but neither `connect`s to the other", transport.as_str())
                        };
                        self.err(
                            first,
                            message,
                            Some(format!(
                                "under `sites`, give `{ny}` `\"listen\": \"0.0.0.0:7450\"` and `{nx}` `\"connect\": \"<{ny}'s host>:7450\"`"
                            )),
                        );
                        continue;
                    }
                }
            };
            if connect.is_some() && sites[callee].listen.is_none() {
                let (cn, ce) = (shown(&sites[caller].name).to_string(), shown(&sites[callee].name).to_string());
                let p = if specs.contains_key(&sites[callee].name) {
                    spec_path.key(&sites[callee].name)
                } else {
                    spec_path.clone()
                };
                self.err(
                    p,
                    format!("site `{ce}` is called by `{cn}`, but has no `listen` address"),
                    Some(format!("give `{ce}` `\"listen\"`: {LISTEN_HINT}")),
                );
                continue;
            }
            tunnels.push(Tunnel { caller, callee, transport, connect, links });
        }
        if input.insecure && !tunnels.is_empty() {
            self.warn(
                root.key("insecure"),
                "tunnels between sites carry frames in plaintext: anyone who reaches a tunnel's port can read and inject them",
                Some("remove `\"insecure\": true` and share a key through NETLAB_KEY (make one with `netlab key`)".into()),
            );
        }
        (sites, tunnels)
    }

    fn connect_address(&mut self, a: &str, path: &JsonPath) {
        if !valid_host_port(a.trim()) {
            self.err(
                path.clone(),
                format!("`{}` is not a host and port to connect to", shown(a)),
                Some(CONNECT_HINT.into()),
            );
        }
    }
}

fn exec_hint(site: &str) -> String {
    format!(
        "`\"exec\": \"ssh <host> netlab tunnel <lab file> --site {}\"`: a command that starts the site and carries its \
         links over its standard input and output",
        shown(site)
    )
}

/// `host:port`, with an IPv6 host in brackets and a port from 1 to 65535.
#[must_use]
pub fn valid_host_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else { return false };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    };
    port_ok && host_ok
}
