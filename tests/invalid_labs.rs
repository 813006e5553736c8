//! The invalid-lab corpus: every file under `tests/invalid_labs/` is aimed at one kind of mistake
//! (one file, `45-many-problems.json`, at many at once). For each, the full rendered diagnostics are
//! snapshotted, and `netlab check` must fail with exit code 2 and a `file:line:col: error:` line.
//! The labs under `tests/warning_labs/` load, with warnings: those are snapshotted too, and
//! `netlab check` prints them and succeeds, unless `--deny-warnings` is given.
//! A property test feeds arbitrary and mutated text to the loader, which must never panic.

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use netlab::topology::{load_bytes, load_str, Diagnostics, Severity};
use proptest::prelude::*;

const CORPUS: &str = "tests/invalid_labs";
const WARNING_CORPUS: &str = "tests/warning_labs";
const VALID: &str = "labs/single-lan.json";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_files() -> Vec<PathBuf> {
    json_files(CORPUS)
}

fn json_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(manifest_dir().join(dir))
        .expect("the corpus folder exists")
        .map(|e| e.expect("a readable folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().expect("a file name").to_string_lossy().into_owned()
}

/// Loads a corpus file, naming it by its bare file name, and checks what every failure must satisfy.
fn load_invalid(path: &Path) -> Diagnostics {
    let name = file_name(path);
    let bytes = fs::read(path).expect("a readable corpus file");
    let diags = match load_bytes(&bytes, &name) {
        Ok(lab) => panic!("{name}: expected diagnostics, but the lab loaded: {lab}"),
        Err(d) => d,
    };
    assert!(!diags.0.is_empty(), "{name}: an error with no diagnostics");
    for d in &diags.0 {
        assert_eq!(d.file, name, "{name}: diagnostic names another file");
        assert!(d.line >= 1 && d.col >= 1, "{name}: diagnostic at {}:{} is not 1-based: {d}", d.line, d.col);
        assert!(!d.message.is_empty(), "{name}: empty message");
        assert!(!d.path.is_empty(), "{name}: empty JSON path");
        if let Some(h) = &d.hint {
            assert!(!h.trim().is_empty() && !h.trim_end().ends_with(':'), "{name}: empty hint `{h}`");
        }
    }
    // Every problem is reported at once, in file order.
    let places: Vec<(usize, usize)> = diags.0.iter().map(|d| (d.line, d.col)).collect();
    let mut sorted = places.clone();
    sorted.sort_unstable();
    assert_eq!(places, sorted, "{name}: diagnostics are not in file order");
    diags
}

#[test]
fn corpus_is_large_enough() {
    assert!(corpus_files().len() >= 30, "the corpus should keep at least 30 files");
}

#[test]
fn corpus_diagnostics() {
    insta::glob!("invalid_labs/*.json", |path| {
        let diags = load_invalid(path);
        insta::assert_snapshot!(diags.to_string());
    });
}

#[test]
fn many_problems_are_reported_at_once() {
    let diags = load_invalid(&manifest_dir().join(CORPUS).join("45-many-problems.json"));
    assert!(diags.0.len() >= 5, "only {} problems reported:\n{diags}", diags.0.len());
}

#[test]
fn check_rejects_every_corpus_file() {
    for path in corpus_files() {
        let rel = format!("{CORPUS}/{}", file_name(&path));
        let first = load_invalid(&path).0.remove(0);
        let out = Command::cargo_bin("netlab")
            .expect("the netlab binary")
            .current_dir(manifest_dir())
            .args(["check", &rel])
            .output()
            .expect("netlab runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{rel}: exit status {:?}\n{stderr}", out.status);
        let place = format!("{rel}:{}:{}: error:", first.line, first.col);
        assert!(stderr.contains(&place), "{rel}: stderr lacks `{place}`:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{rel}: panic:\n{stderr}");
        assert!(out.stdout.is_empty(), "{rel}: unexpected stdout: {}", String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn warning_diagnostics() {
    insta::glob!("warning_labs/*.json", |path| {
        let name = file_name(path);
        let text = fs::read_to_string(path).expect("a readable lab");
        let lab = load_str(&text, &name).unwrap_or_else(|d| panic!("{name} does not load:\n{d}"));
        assert!(!lab.warnings.is_empty(), "{name}: no warnings");
        for w in &lab.warnings {
            assert_eq!((w.severity, w.file.as_str()), (Severity::Warning, name.as_str()), "{w}");
        }
        let shown: Vec<String> = lab.warnings.iter().map(ToString::to_string).collect();
        assert_printable(&shown.join("\n"));
        insta::assert_snapshot!(shown.join("\n"));
    });
}

/// How many warnings the lab at `path` has.
fn lab_warnings(path: &Path) -> usize {
    let text = fs::read_to_string(path).expect("a readable lab");
    load_str(&text, "lab.json").map_or(0, |lab| lab.warnings.len())
}

#[test]
fn check_prints_warnings_and_fails_on_them_only_when_asked() {
    let files = json_files(WARNING_CORPUS);
    assert!(!files.is_empty());
    for path in files {
        let rel = format!("{WARNING_CORPUS}/{}", file_name(&path));
        let check = |args: &[&str]| {
            Command::cargo_bin("netlab")
                .expect("the netlab binary")
                .current_dir(manifest_dir())
                .arg("check")
                .args(args)
                .arg(&rel)
                .output()
                .expect("netlab runs")
        };
        let out = check(&[]);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{rel}: {stderr}");
        assert!(stderr.contains(&format!("{rel}:")) && stderr.contains(": warning: "), "{rel}: {stderr}");
        assert!(!stderr.contains("error"), "{rel}: {stderr}");
        let n = lab_warnings(&path);
        let ok = format!(", {n} warning{}\n", if n == 1 { "" } else { "s" });
        assert!(stdout.starts_with("ok: ") && stdout.ends_with(&ok), "{rel}: {stdout}");
        assert_eq!(stderr.matches(": warning: ").count(), n, "{rel}: {stderr}");
        let out = check(&["--deny-warnings"]);
        let denied = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{rel}: {denied}");
        assert!(out.stdout.is_empty(), "{rel}");
        assert!(
            denied.starts_with(stderr.as_ref()) && denied.contains("found (denied by --deny-warnings)"),
            "{denied}"
        );
    }
    // A lab without warnings passes either way.
    let out = Command::cargo_bin("netlab")
        .expect("the netlab binary")
        .current_dir(manifest_dir())
        .args(["check", "--deny-warnings", VALID])
        .output()
        .expect("netlab runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
}

#[test]
fn check_accepts_the_valid_example() {
    let out = Command::cargo_bin("netlab")
        .expect("the netlab binary")
        .current_dir(manifest_dir())
        .args(["check", VALID])
        .output()
        .expect("netlab runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim_end(), "ok: 4 nodes, 3 links, 9 expectations");
}

/// One byte-level edit at a position given as a fraction of the text.
#[derive(Debug, Clone)]
enum Edit {
    Delete(f64),
    Insert(f64, char),
    Replace(f64, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Characters that matter to JSON and to the lab format, plus anything at all.
    let ch = prop_oneof![
        3 => proptest::sample::select(vec!['{', '}', '[', ']', '"', ',', ':', '/', '.', '0', '9', '-', 'e', ' ', '\n', '\\']),
        1 => any::<char>(),
    ];
    let at = 0.0..1.0f64;
    prop_oneof![
        at.clone().prop_map(Edit::Delete),
        (at.clone(), ch.clone()).prop_map(|(a, c)| Edit::Insert(a, c)),
        (at, ch).prop_map(|(a, c)| Edit::Replace(a, c)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let pos = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
        match *e {
            Edit::Delete(f) if !chars.is_empty() => {
                let i = pos(f, chars.len() - 1);
                chars.remove(i);
            }
            Edit::Delete(_) => {}
            Edit::Insert(f, c) => {
                let i = pos(f, chars.len());
                chars.insert(i, c);
            }
            Edit::Replace(f, c) if !chars.is_empty() => {
                let i = pos(f, chars.len() - 1);
                chars[i] = c;
            }
            Edit::Replace(_, c) => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

/// The loader's contract on any input: no panic, and an error always says something, somewhere,
/// in text that cannot drive a terminal.
fn assert_loads_or_explains(text: &str) {
    if let Err(d) = load_str(text, "fuzz.json") {
        assert!(!d.0.is_empty(), "an error with no diagnostics for:\n{text}");
        for x in &d.0 {
            assert!(x.line >= 1 && x.col >= 1, "diagnostic at {}:{} for:\n{text}", x.line, x.col);
        }
        assert_printable(&d.to_string());
    }
}

/// Diagnostics hold no control character but line breaks, nor an invisible one that reorders text.
fn assert_printable(shown: &str) {
    let invisible = |c: &char| matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}');
    let bad = shown.chars().find(|c| (c.is_control() && *c != '\n') || invisible(c));
    assert!(bad.is_none(), "{bad:?} printed raw in:\n{shown}");
}

#[test]
fn lab_text_is_escaped_in_every_message() {
    for path in corpus_files() {
        assert_printable(&load_invalid(&path).to_string());
    }
    let d = load_invalid(&manifest_dir().join(CORPUS).join("84-control-characters-in-names.json")).to_string();
    assert!(d.contains("`\\u{1b}]0;pwned\\u{7}` is not a valid node name"), "{d}");
    assert!(d.contains("`wan\\nfake: error\\u{1b}[2J` is not a valid link name"), "{d}");
}

/// A value of megabytes is shown cut: its diagnostics stay a few lines long, not megabytes.
#[test]
fn huge_values_are_cut_in_diagnostics() {
    let huge = "x".repeat(10 << 20);
    let text = format!(
        r#"{{ "name": "huge", "nodes": {{
  "{huge}:": {{ "kind": "switch" }},
  "h": {{ "kind": "host", "interfaces": {{ "eth0": {{ "addresses": ["10.0.0.1/24"], "{huge}": 1 }} }},
         "apps": [ {{ "kind": "ping", "to": "{huge}", "count": "{huge}" }}, {{ "kind": "{huge}" }} ] }} }},
  "links": [ {{ "a": "h:eth0", "b": "{huge}", "name": "{huge}" }} ] }}"#
    );
    let d = load_str(&text, "huge.json").expect_err("invalid").to_string();
    assert!(d.len() < 8 << 10, "{} bytes of diagnostics:\n{}", d.len(), &d[..d.len().min(4000)]);
    assert!(d.contains(&format!("`{}… (10485761 characters)` is not a valid node name", "x".repeat(60))), "{d}");
    assert!(d.contains("string \"xxxxxxxxxx"), "{d}");
    assert!(d.matches("… (10485760 characters)").count() >= 5, "{d}");
}

proptest! {
    // 256 cases keep the test fast in debug builds; set PROPTEST_CASES for a longer hunt.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        assert_loads_or_explains(&text);
    }

    #[test]
    fn mutated_valid_lab_never_panics(edits in proptest::collection::vec(edit(), 1..8)) {
        let valid = fs::read_to_string(manifest_dir().join(VALID)).expect("the valid example");
        assert_loads_or_explains(&apply(&valid, &edits));
    }
}
