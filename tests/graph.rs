//! `netlab graph`: the three formats of the shipped labs, dot read back by Graphviz where it is
//! installed, names that try to break out of their format, the text picture's width, and a bad lab.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// `netlab graph` with `args`: (exit code, standard output, standard error).
fn graph(args: &[&str]) -> (i32, String, String) {
    let out = common::netlab().arg("graph").args(args).output().expect("netlab runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The output of `netlab graph`, which must succeed.
fn ok(args: &[&str]) -> String {
    let (code, out, err) = graph(args);
    assert_eq!(code, 0, "netlab graph {args:?}: {err}");
    assert!(err.is_empty(), "netlab graph {args:?} wrote to standard error: {err}");
    out
}

const LABS: [&str; 2] = ["labs/single-lan.json", "labs/two-site.json"];

#[test]
fn shipped_labs_in_every_format() {
    for lab in LABS {
        let stem = Path::new(lab).file_stem().and_then(|s| s.to_str()).expect("a file name");
        for format in ["dot", "mermaid", "text"] {
            let out = ok(&[lab, "--format", format, "--width", "100"]);
            insta::assert_snapshot!(format!("{stem}_{format}"), out);
        }
    }
}

#[test]
fn text_is_the_default_format_and_100_columns_off_a_terminal() {
    assert_eq!(ok(&["labs/two-site.json"]), ok(&["labs/two-site.json", "--format", "text", "--width", "100"]));
}

/// Graphviz's reading of a dot graph, as JSON; `None` (with a line saying so) without Graphviz.
fn dot_json(text: &str) -> Option<Value> {
    if !common::tool("dot") {
        return None;
    }
    let mut child = Command::new("dot")
        .arg("-Tjson")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dot starts");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), text.as_bytes()).expect("dot reads");
    let out = child.wait_with_output().expect("dot runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "dot rejects the graph: {err}\n{text}");
    Some(serde_json::from_slice(&out.stdout).expect("dot -Tjson writes JSON"))
}

/// Node names and edge labels of Graphviz's reading.
fn dot_contents(g: &Value) -> (Vec<String>, Vec<String>) {
    let objects = g["objects"].as_array().cloned().unwrap_or_default();
    let nodes = objects
        .iter()
        .filter(|o| o.get("nodes").is_none())
        .map(|o| o["name"].as_str().expect("a name").to_string())
        .collect();
    let edges = g["edges"].as_array().cloned().unwrap_or_default();
    let labels = edges.iter().map(|e| e["label"].as_str().expect("a label").to_string()).collect();
    (nodes, labels)
}

#[test]
fn graphviz_reads_the_dot_of_the_shipped_labs() {
    for lab in LABS {
        let Some(g) = dot_json(&ok(&[lab, "--format", "dot"])) else { return };
        let l = netlab::topology::load_file(Path::new(lab)).expect("a valid lab");
        let (mut nodes, labels) = dot_contents(&g);
        nodes.sort();
        let mut names: Vec<String> = l.nodes.iter().map(|n| n.name.clone()).collect();
        names.sort();
        assert_eq!(nodes, names, "{lab}");
        // Graphviz lists edges in an order of its own.
        let mut named: Vec<&str> = labels.iter().map(|l| l.split("\\n").next().unwrap_or_default()).collect();
        named.sort_unstable();
        let mut links: Vec<&str> = l.links.iter().map(|k| k.name.as_str()).collect();
        links.sort_unstable();
        assert_eq!(named, links, "{lab}");
    }
}

/// A lab whose link name holds what each format must escape.
fn hostile_lab(dir: &Path) -> std::path::PathBuf {
    let lab = json!({
        "name": "hostile",
        "nodes": {
            "sw1": { "kind": "switch" },
            "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } } },
            "b": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.2/24"] } } }
        },
        "links": [
            { "a": "a:eth0", "b": "sw1",
              "name": "x\" -- \"b\" [label=\"pwned\"]; \\N\n<br/>%% #35; `md` \u{7}\u{1b}[31m\u{202e}evil end",
              "impair": { "latency": "1ms" } },
            { "a": "b:eth0", "b": "sw1", "name": "日本語 name" }
        ]
    });
    let path = dir.join("hostile.json");
    std::fs::write(&path, serde_json::to_string_pretty(&lab).expect("JSON")).expect("written");
    path
}

#[test]
fn names_cannot_break_out_of_any_format() {
    // Link names follow the name rule, so a lab with such a name is refused, as by `check`, and
    // the refusal shows the name escaped. (Each format's own escaping, kept as a second line of
    // defence, is unit-tested in `src/graph.rs`.)
    let dir = tempfile::tempdir().expect("temp dir");
    let lab = hostile_lab(dir.path());
    let lab = lab.to_str().expect("utf-8");
    for format in ["dot", "mermaid", "text"] {
        let out = common::netlab().args(["graph", lab, "--format", format]).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{format}");
        assert!(out.stdout.is_empty(), "{format}: nothing drawn");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a valid link name"), "{err}");
        let bad = err.chars().find(|&c| (c.is_control() && c != '\n') || c == '\u{202e}');
        assert_eq!(bad, None, "{format} lets a control or override character through:\n{err}");
    }
}

/// The widest line of `text`, in columns (every character of the picture is one column wide).
fn widest(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

#[test]
fn the_text_picture_fits_its_width() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scale = dir.path().join("scale.json");
    std::fs::write(&scale, netlab::bench_scale::scale_lab(300, 50)).expect("written");
    // A chain of 12 switches, each with a host: deep rather than wide.
    let mut nodes = serde_json::Map::new();
    let mut links = Vec::new();
    for i in 0..12 {
        nodes.insert(format!("switch-{i}"), json!({ "kind": "switch" }));
        nodes.insert(
            format!("host-{i}"),
            json!({ "kind": "host", "interfaces": { "eth0": { "addresses": [format!("10.0.0.{}/24", i + 1)] } } }),
        );
        links.push(json!({ "a": format!("host-{i}:eth0"), "b": format!("switch-{i}") }));
        if i > 0 {
            links.push(
                json!({ "name": format!("trunk-{i}"), "a": format!("switch-{}", i - 1), "b": format!("switch-{i}") }),
            );
        }
    }
    let chain = dir.path().join("chain.json");
    std::fs::write(&chain, json!({ "name": "chain", "nodes": nodes, "links": links }).to_string()).expect("written");

    for lab in [LABS[0], LABS[1], scale.to_str().expect("utf-8"), chain.to_str().expect("utf-8")] {
        for width in [20, 33, 60, 100, 250] {
            let out = ok(&[lab, "--width", &width.to_string()]);
            assert!(widest(&out) <= width, "{lab} at --width {width}:\n{out}");
        }
    }
    // The two-site picture needs far less than 100 columns, and takes no more than it needs.
    let wide = ok(&["labs/two-site.json", "--width", "250"]);
    assert_eq!(wide, ok(&["labs/two-site.json", "--width", "100"]));
    // A picture too wide for its width says so.
    let cut = ok(&[chain.to_str().expect("utf-8"), "--width", "20"]);
    assert!(cut.contains("\n(cut: "), "{cut}");
}

#[test]
fn a_bad_lab_gets_the_diagnostics_of_check_and_exit_code_2() {
    let lab = "tests/invalid_labs/45-many-problems.json";
    let (code, out, err) = graph(&[lab, "--format", "dot"]);
    let check = common::netlab().args(["check", lab]).output().expect("netlab runs");
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert_eq!(err, String::from_utf8_lossy(&check.stderr));
    assert!(err.ends_with("12 problems found\n"), "{err}");

    let (code, _, err) = graph(&["no-such-lab.json"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: cannot read"), "{err}");
}

#[test]
fn a_width_below_20_is_a_command_line_error() {
    let (code, out, err) = graph(&["labs/two-site.json", "--width", "19"]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("--width"), "{err}");
}
