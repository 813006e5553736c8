//! Large labs made in code, for the scale test and the `check_scale` bench.

use std::fmt::Write as _;

/// A valid lab of `nodes` nodes: one switch for every 50 nodes, joined in a tree, and hosts
/// spread over them; each host pings the one before it. Written on one line.
pub fn valid(nodes: usize) -> String {
    let switches = (nodes / 50).max(1);
    let hosts = nodes - switches;
    let mut text = String::from(r#"{"name":"scale","nodes":{"#);
    for s in 0..switches {
        let _ = write!(text, r#""sw{s}":{{"kind":"switch"}},"#);
    }
    for h in 0..hosts {
        let ping = if h == 0 { String::new() } else { format!(r#","apps":[{{"kind":"ping","to":"h{}"}}]"#, h - 1) };
        let ip = 0x0a00_0001 + u32::try_from(h).expect("fewer than 2^32 hosts");
        let ip = std::net::Ipv4Addr::from(ip);
        let _ = write!(text, r#""h{h}":{{"kind":"host","interfaces":{{"eth0":{{"addresses":["{ip}/8"]}}}}{ping}}},"#);
    }
    text.pop();
    text.push_str(r#"},"links":["#);
    for s in 1..switches {
        let _ = write!(text, r#"{{"a":"sw{}","b":"sw{s}"}},"#, (s - 1) / 2);
    }
    for h in 0..hosts {
        let _ = write!(text, r#"{{"a":"h{h}:eth0","b":"sw{}"}},"#, h % switches);
    }
    text.pop();
    text.push_str("]}");
    text
}

/// A lab of `nodes` switches in a chain, with mistakes that each ask for a suggestion among every
/// node or link: every switch has a link to a node that does not exist (`sw-7` for `sw7`), the
/// capture names a link that does not exist for every link (`l-7` for `l7`), and every tenth switch
/// has a name with a space. [`mistakes`]`(nodes)` problems in all.
pub fn with_mistakes(nodes: usize) -> String {
    let name = |s: usize| if s % 10 == 9 { format!("sw {s}") } else { format!("sw{s}") };
    let mut text = String::from("{\"name\": \"scale\", \"nodes\": {\n");
    for s in 0..nodes {
        let _ = writeln!(text, "  \"{}\": {{ \"kind\": \"switch\" }},", name(s));
    }
    text.truncate(text.len() - 2);
    text.push_str("\n}, \"links\": [\n");
    for s in 1..nodes {
        let _ = writeln!(text, "  {{ \"a\": \"{}\", \"b\": \"{}\", \"name\": \"l{s}\" }},", name(s - 1), name(s));
    }
    for s in 0..nodes {
        let _ = writeln!(text, "  {{ \"a\": \"{}\", \"b\": \"sw-{s}\" }},", name(s));
    }
    text.truncate(text.len() - 2);
    text.push_str("\n], \"capture\": { \"links\": [");
    for s in 1..nodes {
        let _ = write!(text, "\"l-{s}\", ");
    }
    text.truncate(text.len() - 2);
    text.push_str("] } }\n");
    text
}

/// The problems in [`with_mistakes`]`(nodes)`: every misnamed switch, every link end `sw-N`, and
/// every capture of `l-N`.
pub fn mistakes(nodes: usize) -> usize {
    nodes / 10 + nodes + (nodes - 1)
}
