//! `netlab check` on large labs. Every step of the check is linear, or n·log n, in the size of the
//! lab: a step that compared each node (or each problem) with every other would take minutes
//! here, not a second. Timings for 10k to 100k nodes come from `cargo bench --bench check_scale`.

mod common;

use netlab::topology::load_str;

const NODES: usize = 20_000;

#[test]
fn a_large_valid_lab_checks_ok() {
    let lab = load_str(&common::scale::valid(NODES), "scale.json").unwrap_or_else(|d| panic!("{}", d.0[0]));
    assert_eq!(lab.nodes.len(), NODES);
    assert_eq!(lab.links.len(), NODES - 1);
    assert!(lab.warnings.is_empty(), "{}", lab.warnings[0]);
}

/// Tens of thousands of problems, each placed on its line and each with a hint found among every
/// node or link; the hints name a few candidates, not all of them.
#[test]
fn a_large_lab_with_many_mistakes_reports_each_once() {
    let d = load_str(&common::scale::with_mistakes(NODES), "scale.json").expect_err("mistakes");
    assert_eq!(d.0.len(), common::scale::mistakes(NODES));
    let near = d.0.iter().filter(|d| d.hint.as_deref().is_some_and(|h| h.starts_with("did you mean"))).count();
    assert!(near >= NODES, "{near} suggestions");
    let first = d.0.iter().find(|d| d.path == "links[19999].b").expect("the first link to `sw-0`");
    assert_eq!(
        (first.message.as_str(), first.hint.as_deref()),
        ("link end `sw-0` names no node", Some("did you mean `sw0`?"))
    );
    let text = d.to_string();
    assert!(text.len() < d.0.len() * 200, "{} bytes for {} problems", text.len(), d.0.len());
}
