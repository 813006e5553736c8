//! The JSON Schema (`netlab schema`) against `netlab check`: the invalid corpus fails the schema
//! wherever the schema can say why, the shipped labs pass it, and at every bound and for every
//! value form the two agree.

use std::fs;
use std::path::PathBuf;

use netlab::topology::{limits, load_str, parse};
use serde_json::{json, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&netlab::topology::schema()).expect("the schema is a valid JSON Schema")
}

/// The `.json` files of a folder, sorted.
fn json_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join(dir))
        .expect("folder exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name().expect("name").to_string_lossy().into_owned()
}

/// Corpus files that are not JSON at all: no schema applies to them.
const NOT_JSON: &[&str] = &[
    "01-json-syntax.json",
    "02-trailing-garbage.json",
    "47-empty-file.json",
    "48-trailing-comma.json",
    // Not UTF-8, a number too large for a float, or nested deeper than a JSON parser goes.
    "86-latin-1-text.json",
    "87-utf-16-text.json",
    "89-number-out-of-range.json",
    "90-nesting-too-deep.json",
];

/// Corpus files whose every problem is beyond what a JSON Schema can say: each is JSON of the right
/// shape, every value of the right form, and wrong only in what `check` works out from several
/// values or from the lab as a whole.
const BEYOND_THE_SCHEMA: &[&str] = &[
    // A duplicate key: a JSON parser keeps one of the two, and the schema sees only that one.
    "21-duplicate-json-key.json",
    // An address and its prefix together: the network or broadcast address of the subnet.
    "15-cidr-network-address.json",
    "16-cidr-broadcast-address.json",
    // Unique across the lab: addresses, MACs, link names, an interface in one link.
    "19-duplicate-ip.json",
    "20-duplicate-mac.json",
    "26-interface-in-two-links.json",
    "59-duplicate-link-name.json",
    "63-interface-reuse-after-bad-link.json",
    // Link ends that must name a node and its interface, or a switch.
    "22-link-missing-node.json",
    "23-link-missing-interface.json",
    "24-host-endpoint-without-interface.json",
    "25-named-switch-port.json",
    "27-link-to-itself.json",
    "73-switch-loop.json",
    // Gateways against the interface's own addresses and subnets, one per family.
    "28-gateway-outside-subnet.json",
    "29-two-ipv4-gateways.json",
    "61-gateway-own-address.json",
    // Targets resolved against the lab: the node, its addresses and family, the app's kind (a ping
    // takes no port, a TCP or UDP app needs one), ports in use, what the sender can reach.
    "30-app-target-no-node.json",
    "31-target-address-no-host.json",
    "32-tcp-echo-without-port.json",
    "33-ping-with-port.json",
    "34-family-ipv6-without-ipv6.json",
    "52-ipv6-target-without-port.json",
    "55-family-ipv4-without-ipv4.json",
    "56-target-is-a-switch.json",
    "71-family-contradicts-address.json",
    "82-targets-that-cannot-work.json",
    // An MTU or a payload against the interface: IPv6 needs 1280, a ping or datagram must fit.
    "36-ipv6-mtu-too-small.json",
    "74-probe-larger-than-mtu.json",
    // A size written as a string (`"512"`): the schema checks its form, not the number it reads as.
    "57-tcp-buffer-too-small.json",
    // Segments: a target must be reachable from the sender's segment; a gateway must not be its
    // subnet's network or broadcast address.
    "92-targets-off-segment.json",
    "93-gateway-reserved-address.json",
    // Captured links must name links of the lab.
    "42-capture-no-link.json",
    "49-capture-in-lab-without-links.json",
    "94-sites-and-tunnels.json",
    // Events and expectations name links, nodes, apps and their metrics: resolved against the lab.
    "95-events-naming-nothing.json",
    "98-expectations.json",
    // Routes and the interfaces of routers and multi-homed hosts: a next hop on a subnet of the
    // node, `dev` one of its interfaces, paths followed across routers and back; a link end on a
    // router must name an interface.
    "10-router-node-kind.json",
    "95-routes.json",
    "96-host-routes.json",
    "97-multi-homed-paths.json",
];

#[test]
fn the_corpus_fails_the_schema_wherever_the_schema_can_tell() {
    let v = validator();
    let files = json_files("tests/invalid_labs");
    let names: Vec<String> = files.iter().map(|p| file_name(p)).collect();
    for listed in NOT_JSON.iter().chain(BEYOND_THE_SCHEMA) {
        assert!(names.iter().any(|n| n == listed), "{listed} is listed but not in the corpus");
    }
    let mut wrong = Vec::new();
    for (path, name) in files.iter().zip(&names) {
        let bytes = fs::read(path).expect("read");
        let Ok(lab) = serde_json::from_slice::<Value>(&bytes) else {
            if !NOT_JSON.contains(&name.as_str()) {
                wrong.push(format!("{name}: not JSON, but not listed in NOT_JSON"));
            }
            continue;
        };
        assert!(!NOT_JSON.contains(&name.as_str()), "{name} is JSON; take it out of NOT_JSON");
        let errors: Vec<String> = v.iter_errors(&lab).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        match (errors.is_empty(), BEYOND_THE_SCHEMA.contains(&name.as_str())) {
            (true, false) => wrong.push(format!("{name}: passes the schema")),
            (false, true) => {
                wrong.push(format!("{name}: fails the schema, so take it out of BEYOND_THE_SCHEMA: {errors:?}"));
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_shipped_labs_pass_the_schema() {
    let v = validator();
    let labs = json_files("labs");
    assert!(labs.len() >= 2, "{labs:?}");
    for path in labs {
        let lab: Value = serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("JSON");
        let errors: Vec<String> = v.iter_errors(&lab).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

/// A small valid lab: two hosts joined by a link, a TCP echo and a transfer.
fn base() -> Value {
    json!({
        "name": "bounds",
        "nodes": {
            "a": {
                "kind": "host",
                "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } },
                "tcp": {},
                "apps": [
                    { "kind": "tcp-echo", "to": "b:7" },
                    { "kind": "tcp-transfer", "to": "b:9", "bytes": 1000 }
                ]
            },
            "b": {
                "kind": "host",
                "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } },
                "apps": [{ "kind": "tcp-echo-server", "port": 7 }, { "kind": "tcp-sink", "port": 9 }]
            }
        },
        "links": [{ "a": "a:eth0", "b": "b:eth0", "impair": {} }]
    })
}

/// Whether `check` and the schema accept `lab`, with the problems each found.
fn verdicts(v: &jsonschema::Validator, lab: &Value) -> (bool, bool, String) {
    let checked = load_str(&lab.to_string(), "bounds.json");
    let schema_errors: Vec<String> = v.iter_errors(lab).map(|e| e.to_string()).collect();
    let why = format!("check: {:?}\nschema: {schema_errors:?}", checked.as_ref().err().map(ToString::to_string));
    (checked.is_ok(), schema_errors.is_empty(), why)
}

#[test]
fn schema_and_check_agree_at_every_bound() {
    let v = validator();
    let (check, schema, why) = verdicts(&v, &base());
    assert!(check && schema, "the base lab must be valid\n{why}");

    let name = |n: usize| "n".repeat(n);
    // 10.0.0.1/24 and more subnets.
    let addresses = |n: usize| (0..n).map(|i| format!("10.0.{i}.1/24")).collect::<Vec<_>>();
    // (where, value, accepted)
    let cases: Vec<(&str, Value, bool)> = vec![
        ("/name", json!(name(limits::NAME_MAX_LEN)), true),
        ("/name", json!(name(limits::NAME_MAX_LEN + 1)), false),
        ("/name", json!("my lab"), false),
        ("/nodes/a/interfaces/eth0/mtu", json!(limits::MTU_MIN), true),
        ("/nodes/a/interfaces/eth0/mtu", json!(limits::MTU_MIN - 1), false),
        ("/nodes/a/interfaces/eth0/mtu", json!(limits::MTU_MAX), true),
        ("/nodes/a/interfaces/eth0/mtu", json!(limits::MTU_MAX + 1), false),
        ("/nodes/a/interfaces/eth0/addresses", json!(addresses(limits::ADDRESSES_MAX)), true),
        ("/nodes/a/interfaces/eth0/addresses", json!(addresses(limits::ADDRESSES_MAX + 1)), false),
        ("/nodes/a/tcp/rx_buffer", json!(limits::TCP_BUFFER_MIN), true),
        ("/nodes/a/tcp/rx_buffer", json!(limits::TCP_BUFFER_MIN - 1), false),
        ("/nodes/a/tcp/tx_buffer", json!(limits::TCP_BUFFER_MAX), true),
        ("/nodes/a/tcp/tx_buffer", json!(limits::TCP_BUFFER_MAX + 1), false),
        ("/nodes/a/apps/0/count", json!(limits::COUNT_MIN), true),
        ("/nodes/a/apps/0/count", json!(limits::COUNT_MIN - 1), false),
        ("/nodes/a/apps/0/count", json!(limits::COUNT_MAX), true),
        ("/nodes/a/apps/0/count", json!(limits::COUNT_MAX + 1), false),
        ("/nodes/a/apps/0/size", json!(limits::ECHO_SIZE_MIN), true),
        ("/nodes/a/apps/0/size", json!(limits::ECHO_SIZE_MIN - 1), false),
        ("/nodes/a/apps/0/size", json!(limits::TCP_ECHO_SIZE_MAX), true),
        ("/nodes/a/apps/0/size", json!(limits::TCP_ECHO_SIZE_MAX + 1), false),
        ("/nodes/a/apps/1/bytes", json!(limits::TRANSFER_BYTES_MIN), true),
        ("/nodes/a/apps/1/bytes", json!(limits::TRANSFER_BYTES_MIN - 1), false),
        ("/nodes/b/apps/0/port", json!(limits::PORT_MAX), true),
        ("/nodes/b/apps/0/port", json!(limits::PORT_MIN - 1), false),
        ("/links/0/impair/queue", json!(limits::QUEUE_MIN), true),
        ("/links/0/impair/queue", json!(limits::QUEUE_MIN - 1), false),
        ("/links/0/impair/queue", json!(limits::QUEUE_MAX), true),
        ("/links/0/impair/queue", json!(limits::QUEUE_MAX + 1), false),
        ("/links/0/impair/loss", json!(limits::LOSS_MIN), true),
        ("/links/0/impair/loss", json!(limits::LOSS_MIN - 0.001), false),
        ("/links/0/impair/loss", json!(limits::LOSS_MAX), true),
        ("/links/0/impair/loss", json!(limits::LOSS_MAX + 0.001), false),
        ("/links/0/impair/duplicate", json!(limits::LOSS_MAX), true),
        ("/links/0/impair/duplicate", json!(limits::LOSS_MAX + 0.001), false),
        ("/links/0/impair/corrupt", json!(limits::LOSS_MIN), true),
        ("/links/0/impair/corrupt", json!(limits::LOSS_MIN - 0.001), false),
        ("/links/0/impair/queue_bytes", json!(limits::QUEUE_BYTES_MIN), true),
        ("/links/0/impair/queue_bytes", json!(limits::QUEUE_BYTES_MIN - 1), false),
        ("/links/0/impair/queue_bytes", json!(limits::QUEUE_BYTES_MAX), true),
        ("/links/0/impair/queue_bytes", json!(limits::QUEUE_BYTES_MAX + 1), false),
        ("/links/0/impair/distribution", json!("paretonormal"), true),
        ("/links/0/impair/distribution", json!("gaussian"), false),
        ("/links/0/impair/loss_model", json!({ "kind": "gilbert-elliott", "p": 0.01, "r": 1.0 }), true),
        ("/links/0/impair/loss_model", json!({ "kind": "gilbert-elliott", "p": 0.01, "r": 1.001 }), false),
        (
            "/links/0/impair/loss_model",
            json!({ "kind": "gilbert-elliott", "p": 0.01, "r": 0.3, "loss_bad": -0.1 }),
            false,
        ),
        ("/links/0/b_to_a", json!({ "latency": "5ms", "jitter": "1ms" }), true),
        ("/links/0/state", json!("down"), true),
        ("/links/0/state", json!("off"), false),
        ("/links/0/name", json!("wan"), true),
        ("/links/0/name", json!(" "), false),
    ];
    let mut wrong = Vec::new();
    for (at, value, accepted) in cases {
        let mut lab = base();
        let (parent, key) = at.rsplit_once('/').expect("a path");
        lab.pointer_mut(parent).and_then(Value::as_object_mut).expect(parent).insert(key.into(), value.clone());
        let (check, schema, why) = verdicts(&v, &lab);
        if (check, schema) != (accepted, accepted) {
            wrong.push(format!("{at} = {value}: check {check}, schema {schema}, expected {accepted}\n{why}"));
        }
    }

    // Names as keys: a node's (`b`) and an interface's (`a`'s `eth0`), and the link ends and
    // targets that name them.
    for (n, accepted) in [(limits::NAME_MAX_LEN, true), (limits::NAME_MAX_LEN + 1, false)] {
        let long = name(n);
        let mut node = base();
        let b = node["nodes"].as_object_mut().unwrap().shift_remove("b").unwrap();
        node["nodes"][&long] = b;
        node["links"][0]["b"] = json!(format!("{long}:eth0"));
        for app in [0, 1] {
            let to = node["nodes"]["a"]["apps"][app]["to"].as_str().unwrap().replacen('b', &long, 1);
            node["nodes"]["a"]["apps"][app]["to"] = json!(to);
        }
        let mut iface = base();
        let eth0 = iface["nodes"]["a"]["interfaces"].as_object_mut().unwrap().shift_remove("eth0").unwrap();
        iface["nodes"]["a"]["interfaces"][&long] = eth0;
        iface["links"][0]["a"] = json!(format!("a:{long}"));
        for (what, lab) in [("node", node), ("interface", iface)] {
            let (check, schema, why) = verdicts(&v, &lab);
            if (check, schema) != (accepted, accepted) {
                wrong.push(format!("{what} name of {n} characters: check {check}, schema {schema}\n{why}"));
            }
        }
    }
    // Interfaces on a host, each on a subnet of its own; and routes on a host, within what its
    // interfaces hold.
    for (n, accepted) in [(limits::INTERFACES_MAX, true), (limits::INTERFACES_MAX + 1, false)] {
        let mut many = base();
        for k in 1..n {
            many["nodes"]["a"]["interfaces"][format!("eth{k}")] =
                json!({ "addresses": [format!("10.0.{}.1/24", 10 + k)] });
        }
        let (check, schema, why) = verdicts(&v, &many);
        if (check, schema) != (accepted, accepted) {
            wrong.push(format!("{n} interfaces on a host: check {check}, schema {schema}\n{why}"));
        }
    }
    for (n, accepted) in [(limits::HOST_IFACE_ROUTES_MAX, true), (limits::HOST_IFACE_ROUTES_MAX + 1, false)] {
        let mut routed = base();
        let routes: Vec<Value> =
            (0..n).map(|k| json!({ "to": format!("10.{}.0.0/16", 100 + k), "via": "10.0.0.254" })).collect();
        routed["nodes"]["a"]["routes"] = Value::Array(routes);
        let (check, _, why) = verdicts(&v, &routed);
        // The schema cannot count routes by interface: it bounds them all.
        if check != accepted {
            wrong.push(format!("{n} routes on one interface of a host: check {check}\n{why}"));
        }
    }
    let mut too_many = base();
    too_many["nodes"]["a"]["routes"] = Value::Array(
        (0..=limits::HOST_ROUTES_MAX)
            .map(|k| json!({ "to": format!("10.{}.{}.0/24", 100 + k / 200, k % 200), "via": "10.0.0.254" }))
            .collect(),
    );
    let (check, schema, why) = verdicts(&v, &too_many);
    if check || schema {
        wrong.push(format!("{} routes on a host: check {check}, schema {schema}\n{why}", limits::HOST_ROUTES_MAX + 1));
    }

    // A UDP datagram is bounded more tightly than a TCP message.
    let mut udp = base();
    udp["nodes"]["a"]["apps"][0] = json!({ "kind": "udp-echo", "to": "b:7", "size": limits::UDP_ECHO_SIZE_MAX + 1 });
    let (check, schema, why) = verdicts(&v, &udp);
    if check || schema {
        wrong.push(format!("udp-echo size {}: check {check}, schema {schema}\n{why}", limits::UDP_ECHO_SIZE_MAX + 1));
    }
    assert!(why.contains(&format!("1 to {}", limits::UDP_ECHO_SIZE_MAX)), "{why}");

    // The IPv6 minimum depends on the addresses, which the schema does not relate to the MTU:
    // `check` alone refuses it.
    let mut v6 = base();
    v6["nodes"]["a"]["interfaces"]["eth0"] = json!({ "addresses": ["fd00::1/64"], "mtu": limits::MTU_MIN_IPV6 - 1 });
    let (check, schema, why) = verdicts(&v, &v6);
    assert!(!check && schema, "{why}");
    assert!(why.contains(&format!("out of range {} to {}", limits::MTU_MIN_IPV6, limits::MTU_MAX)), "{why}");

    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// A schema holding one string to `pattern`.
fn matcher(pattern: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&json!({ "type": "string", "pattern": pattern })).expect("a valid pattern")
}

/// Holds a pattern to its parser: `good` values both accept; `bad_form` values both refuse; the
/// pattern lets `left_to_check` through, and the parser refuses them for what a pattern does not
/// see (a range, a network address, an IPv6 address's exact form), which `check` reports.
fn agree<T: std::fmt::Debug, E: std::fmt::Debug>(
    what: &str,
    pattern: &str,
    parser: impl Fn(&str) -> Result<T, E>,
    good: &[&str],
    bad_form: &[&str],
    left_to_check: &[&str],
) {
    let m = matcher(pattern);
    let mut wrong = Vec::new();
    for s in good {
        if !(m.is_valid(&json!(s)) && parser(s).is_ok()) {
            wrong.push(format!("`{s}` should pass both: pattern {}, parser {:?}", m.is_valid(&json!(s)), parser(s)));
        }
    }
    for s in bad_form {
        if m.is_valid(&json!(s)) || parser(s).is_ok() {
            wrong.push(format!("`{s}` should fail both: pattern {}, parser {:?}", m.is_valid(&json!(s)), parser(s)));
        }
    }
    for s in left_to_check {
        if !m.is_valid(&json!(s)) || parser(s).is_ok() {
            wrong.push(format!(
                "`{s}` should pass the pattern only: pattern {}, parser {:?}",
                m.is_valid(&json!(s)),
                parser(s)
            ));
        }
    }
    assert!(wrong.is_empty(), "{what} ({pattern}):\n{}", wrong.join("\n"));
}

#[test]
fn patterns_agree_with_the_parsers() {
    agree(
        "durations",
        &limits::duration_pattern(),
        parse::duration,
        &[
            "0",
            " 0 ",
            "500ms",
            "2s",
            "1.5s",
            "1m 30s",
            "1m30s",
            "1s2ms",
            "1 s",
            "10 µs",
            "10us",
            "3 days",
            "2 hours",
            "1h 1min 1sec",
            "1. 5s",
            "1 .5s",
            "1 2s",
            "250 millis",
            "5nsec",
            " 2s ",
        ],
        &[
            "",
            "fast",
            "5",
            "00",
            "1.s",
            ".5s",
            "1s 2",
            "1w",
            "2M",
            "1y",
            "3 weeks",
            "1 fortnight",
            "-1s",
            "1s,2s",
            "s",
            "1e3ms",
            "2 S",
        ],
        &["99999999999999999999s", "1.5ns"],
    );
    agree(
        "rates",
        &limits::rate_pattern(),
        parse::rate_bps,
        &["100Mbit", "1Gbit", "1.5Gbps", "64kbit", "1000000", " 1 GBIT/S ", "1.", ".5kbit", "10 Mbit/s", "1000Tbit"],
        &["", ".", "fast", "100Mbyte", "1Pbit", "1.2.3Mbit", "1e6", "-1Mbit", "1 G bit", "Mbit"],
        &["0", "0bit", "1001Tbit", "0.1bit"],
    );
    agree(
        "byte sizes",
        &limits::byte_size_pattern(),
        parse::bytes,
        &["1500", "64KiB", "4MiB", "1GB", "10kB", "10KB", "1.5MiB", " 16 M ", "0", "1K", "2G", "3B"],
        &["", "16Mb", "4MiBs", "1kb", "x", "-1", "1e3"],
        &["1000000000GB"],
    );
    agree(
        "MAC addresses",
        limits::MAC_PATTERN,
        parse::mac,
        &["02:00:00:00:00:01", "02-00-00-00-00-0a", "AE:BB:CC:DD:EE:FF", "02:00-00:00-00:00"],
        &[
            "02:00:00:00:01",
            "zz:00:00:00:00:01",
            "01:00:5e:00:00:01",
            "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00",
            "02:00:00:00:00:+1",
            " 02:00:00:00:00:01",
            "02:00:00:00:00:001",
            "0200.0000.0001",
        ],
        &[],
    );
    agree(
        "interface addresses",
        &limits::cidr_pattern(),
        parse::cidr,
        &[
            "10.0.0.1/24",
            "fd00::1/64",
            " 10.0.0.1 / 24 ",
            "10.0.0.1/+24",
            "10.0.0.1/024",
            "10.0.0.1/32",
            "fd00::1/128",
            "::ffff:10.0.0.1/96",
        ],
        &[
            "10.0.0.2",
            "10.0.0.256/24",
            "10.0.0.2/33",
            "fd00::1/129",
            "10.0.0.01/24",
            "10.0.0/24",
            "host/24",
            "10.0.0.1/-1",
            "10.0.0.1/",
        ],
        &["10.0.0.0/24", "10.0.0.255/24", "0.0.0.0/8", "127.0.0.1/8", "fd00:::1/64", "ff02::1/64"],
    );
    agree(
        "gateways",
        &limits::ip_pattern(),
        |s: &str| s.trim().parse::<std::net::IpAddr>(),
        &["10.0.0.254", " fd00::1 ", "::1"],
        &["10.0.0.254/24", "gateway", "10.0.0.256", ""],
        &["fd00:::1", "1:2:3:4:5:6:7:8:9"],
    );
    agree(
        "targets",
        &limits::target_pattern(),
        parse::target,
        &[
            "server",
            "server:7",
            "server:+7",
            "server:007",
            "10.0.0.2",
            "10.0.0.2:7",
            "fd00::2",
            "[fd00::2]",
            "[fd00::2]:7",
            " server:65535 ",
            "my-host.lan_1",
        ],
        &["", "a b", "server:0", "10.0.0.2:0", "server:", ":7", "server:65536", "[fd00::2]:0", "lab:pc:7", "💻"],
        &[],
    );
}

/// The HTTP, UDP stream and traceroute apps: at each bound and just past it, `check` and the
/// schema agree.
#[test]
fn schema_and_check_agree_on_the_http_stream_and_traceroute_apps() {
    let v = validator();
    let base = json!({
        "name": "more-apps",
        "nodes": {
            "a": {
                "kind": "host",
                "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } },
                "apps": [
                    { "kind": "http-get", "to": "b:80" },
                    { "kind": "udp-stream", "to": "b:5001", "count": 10 },
                    { "kind": "traceroute", "to": "b" }
                ]
            },
            "b": {
                "kind": "host",
                "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } },
                "apps": [{ "kind": "http-server", "port": 80 }, { "kind": "udp-stream-server", "port": 5001 }]
            }
        },
        "links": [{ "a": "a:eth0", "b": "b:eth0" }]
    });
    let (check, schema, why) = verdicts(&v, &base);
    assert!(check && schema, "the base lab must be valid\n{why}");
    let path = |n: usize| format!("/{}", "p".repeat(n - 1));
    let cases: Vec<(&str, Value, bool)> = vec![
        ("/nodes/b/apps/0/status", json!(limits::HTTP_STATUS_MIN), true),
        ("/nodes/b/apps/0/status", json!(limits::HTTP_STATUS_MIN - 1), false),
        ("/nodes/b/apps/0/status", json!(limits::HTTP_STATUS_MAX), true),
        ("/nodes/b/apps/0/status", json!(limits::HTTP_STATUS_MAX + 1), false),
        ("/nodes/b/apps/0/body", json!("1MiB"), true),
        ("/nodes/b/apps/0/body", json!("1 parsec"), false),
        ("/nodes/a/apps/0/count", json!(limits::HTTP_COUNT_MAX), true),
        ("/nodes/a/apps/0/count", json!(limits::HTTP_COUNT_MAX + 1), false),
        ("/nodes/a/apps/0/path", json!("/a/b?c=d"), true),
        ("/nodes/a/apps/0/path", json!("index.html"), false),
        ("/nodes/a/apps/0/path", json!("/a b"), false),
        ("/nodes/a/apps/0/path", json!(path(limits::HTTP_PATH_MAX_LEN)), true),
        ("/nodes/a/apps/0/path", json!(path(limits::HTTP_PATH_MAX_LEN + 1)), false),
        ("/nodes/a/apps/1/size", json!(limits::STREAM_SIZE_MIN), true),
        ("/nodes/a/apps/1/size", json!(limits::STREAM_SIZE_MIN - 1), false),
        ("/nodes/a/apps/1/rate", json!("250kbit"), true),
        ("/nodes/a/apps/1/rate", json!("fast"), false),
        ("/nodes/a/apps/1/count", json!(limits::COUNT_MAX), true),
        ("/nodes/a/apps/1/count", json!(limits::COUNT_MAX + 1), false),
        ("/nodes/a/apps/2/max_hops", json!(1), true),
        ("/nodes/a/apps/2/max_hops", json!(0), false),
        ("/nodes/a/apps/2/max_hops", json!(limits::TRACE_HOPS_MAX), true),
        ("/nodes/a/apps/2/max_hops", json!(limits::TRACE_HOPS_MAX + 1), false),
        ("/nodes/a/apps/2/probes", json!(1), true),
        ("/nodes/a/apps/2/probes", json!(0), false),
        ("/nodes/a/apps/2/probes", json!(limits::TRACE_PROBES_MAX), true),
        ("/nodes/a/apps/2/probes", json!(limits::TRACE_PROBES_MAX + 1), false),
        ("/nodes/a/apps/2/proto", json!("icmp"), true),
        ("/nodes/a/apps/2/proto", json!("tcp"), false),
    ];
    let mut wrong = Vec::new();
    for (at, value, accepted) in cases {
        let mut lab = base.clone();
        let (parent, key) = at.rsplit_once('/').expect("a path");
        lab.pointer_mut(parent).and_then(Value::as_object_mut).expect(parent).insert(key.into(), value.clone());
        let (check, schema, why) = verdicts(&v, &lab);
        if (check, schema) != (accepted, accepted) {
            wrong.push(format!("{at} = {value}: check {check}, schema {schema}, expected {accepted}\n{why}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
