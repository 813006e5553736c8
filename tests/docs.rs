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

/// The `args` of each container in a Kubernetes manifest, in order.
fn manifest_args(yaml: &str) -> Vec<Vec<String>> {
    yaml.split("args: ")
        .skip(1)
        .map(|rest| {
            let array = &rest[..=rest.find(']').expect("an args array ends")];
            serde_json::from_str::<Vec<String>>(&array.replace('\n', " ")).expect("args are a JSON array")
        })
        .collect()
}

/// The two pods of docs/k8s/two-site.yaml, run as they are written (but on loopback, with a file for
/// the secret and the lab from `labs/`): both sites come up, run the lab's apps and end cleanly.
#[test]
fn the_kubernetes_manifest_runs_its_two_sites() {
    let yaml = read("docs/k8s/two-site.yaml");
    let pods = manifest_args(&yaml);
    assert_eq!(pods.len(), 2, "{pods:?}");
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("key");
    let out = common::netlab().arg("key").output().expect("netlab key");
    fs::write(&key, &out.stdout).expect("key");
    let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a free port").port();
    let mut children = Vec::new();
    for (i, args) in pods.iter().enumerate() {
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                a.replace("/lab/two-site.json", "labs/two-site.json")
                    .replace("/key/key", key.to_str().expect("utf-8"))
                    .replace("/tmp/report.json", dir.path().join(format!("report{i}.json")).to_str().expect("utf-8"))
                    .replace("0.0.0.0:7450", &format!("127.0.0.1:{port}"))
                    .replace("netlab-hq:7450", &format!("127.0.0.1:{port}"))
            })
            .collect();
        let child = common::netlab()
            .args(&args)
            .arg("--no-capture")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("netlab runs");
        children.push(Killed(child));
    }
    for (i, c) in children.iter_mut().enumerate() {
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(s) = c.0.try_wait().expect("wait") {
                break s;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(60), "pod {i} still runs after 60 s");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(status.success(), "pod {i}: {status}");
        let report: serde_json::Value =
            serde_json::from_str(&read_abs(&dir.path().join(format!("report{i}.json")))).expect("a JSON report");
        assert_eq!(report["ended"], "apps-finished", "{report}");
        let tunnel = &report["tunnels"][0];
        assert_eq!(tunnel["encrypted"], true, "{tunnel}");
        assert!(tunnel["frames_in"].as_u64().unwrap_or(0) > 100, "{tunnel}");
        for app in report["apps"].as_array().expect("apps") {
            if let Some(received) = app["received"].as_u64() {
                assert_eq!(app["received"], app["sent"], "{app}");
                assert!(received > 0, "{app}");
            }
        }
    }
}

fn read_abs(path: &std::path::Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A child process killed when the test lets go of it, pass or fail.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
