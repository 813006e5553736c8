//! What a newcomer reads: the README's first commands and how to install, and every flag of every
//! command in the documentation.

mod common;

use std::fs;

fn read(path: &str) -> String {
    fs::read_to_string(common::root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The commands of the first ```sh block, without their comments.
fn first_commands(readme: &str) -> Vec<String> {
    let block = readme.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("a ```sh block");
    block.lines().map(|l| l.split(" #").next().unwrap_or_default().trim().to_string()).collect()
}

#[test]
fn the_readme_starts_with_two_commands_then_says_how_to_install() {
    let readme = read("README.md");
    assert_eq!(first_commands(&readme), ["cargo run --release -- run labs/two-site.json", "cargo test"]);
    let install = readme.find("\n## Install\n").expect("an Install section");
    let tour = readme.find("\n## A quick tour").expect("the tour");
    let first_block = readme.find("```sh\n").expect("a block");
    assert!(first_block < install && install < tour, "Install comes after the first commands, before the tour");
    assert!(readme[install..tour].contains("cargo install --path ."), "{}", &readme[install..tour]);
}

/// `(short, long)` of every option in a help text, but `--help` and `--version`.
fn options(help: &str) -> Vec<(Option<String>, String)> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            let mut short = None;
            for word in l.split([' ', ',']).filter(|w| !w.is_empty()) {
                if let Some(long) = word.strip_prefix("--") {
                    return Some((short, format!("--{long}")));
                }
                if word.starts_with('-') {
                    short = Some(word.to_string());
                } else {
                    break;
                }
            }
            None
        })
        .filter(|(_, long)| long != "--help" && long != "--version")
        .collect()
}

#[test]
fn every_option_of_every_command_is_documented() {
    let mut docs = read("README.md");
    for doc in fs::read_dir(common::root().join("docs")).expect("docs") {
        let path = doc.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push_str(&fs::read_to_string(path).expect("read"));
        }
    }
    let documented = |flag: &str| {
        docs.match_indices(flag).any(|(i, _)| {
            let next = docs[i + flag.len()..].chars().next();
            !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    let mut missing = Vec::new();
    let mut seen = 0;
    for command in ["check", "run", "tunnel", "key", "schema", "bench", "graph"] {
        let out = common::netlab().args([command, "--help"]).output().expect("netlab runs");
        for (short, long) in options(&String::from_utf8_lossy(&out.stdout)) {
            seen += 1;
            if !documented(&long) && !short.as_deref().is_some_and(documented) {
                missing.push(format!("netlab {command} {long}"));
            }
        }
    }
    assert!(seen >= 10, "only {seen} options found in the help texts");
    assert!(missing.is_empty(), "not in README.md or docs/: {missing:?}");
}
