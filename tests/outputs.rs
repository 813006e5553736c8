//! Output files are never lost to each other, to a second run, or to a killed run: a path used
//! twice is refused, and captures and reports appear whole under their names or not at all.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{netlab, read_pcapng};

fn run(args: &[&str]) -> std::process::Output {
    netlab().args(args).output().expect("netlab runs")
}

#[test]
fn an_output_path_used_twice_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let same = dir.path().join("same.out");
    let s = same.to_str().unwrap();
    let out = run(&["run", "labs/single-lan.json", "--virtual-time", "--capture", s, "--report", s]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: --capture and --report are the same file"), "{err}");
    assert!(!same.exists(), "nothing was written");

    // Through a symbolic link, and through `..`.
    std::fs::write(&same, "keep me").unwrap();
    let link = dir.path().join("link.out");
    std::os::unix::fs::symlink(&same, &link).unwrap();
    let dotted = dir.path().join("sub").join("..").join("same.out");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    for other in [&link, &dotted] {
        let out = run(&[
            "run",
            "labs/single-lan.json",
            "--virtual-time",
            "--capture",
            s,
            "--report",
            other.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(std::fs::read_to_string(&same).unwrap(), "keep me");

    // Over the lab file itself.
    let lab = dir.path().join("lab.json");
    std::fs::copy(common::root().join("labs/single-lan.json"), &lab).unwrap();
    let out = run(&["run", lab.to_str().unwrap(), "--virtual-time", "--no-capture", "--report", lab.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the lab file and --report are the same file"));
}

#[test]
fn two_runs_on_one_capture_path_leave_a_whole_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("shared.pcapng");
    let spawn = |report: &str| {
        netlab()
            .args(["run", "labs/single-lan.json", "-q", "--speed", "4", "--capture"])
            .arg(&cap)
            .arg("--report")
            .arg(dir.path().join(report))
            .stdout(Stdio::null())
            .spawn()
            .expect("netlab")
    };
    let (mut a, mut b) = (spawn("a.json"), spawn("b.json"));
    assert!(a.wait().expect("a").success() && b.wait().expect("b").success());
    // One run's capture, whole: as many frames as that run's report says it wrote.
    let frames = read_pcapng(&cap).len();
    let written: Vec<u64> = ["a.json", "b.json"]
        .iter()
        .map(|r| {
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.path().join(r)).unwrap()).unwrap();
            r["capture"]["frames"].as_u64().unwrap()
        })
        .collect();
    assert!(written.contains(&(frames as u64)), "{frames} frames; the runs wrote {written:?}");
    // No temporary file is left behind.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.ends_with(".part")), "{names:?}");
}

#[test]
fn a_killed_run_leaves_no_empty_report_and_keeps_an_old_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let fresh = dir.path().join("fresh.json");
    let old = dir.path().join("old.json");
    std::fs::write(&old, "{\"old\": true}").unwrap();
    for report in [&fresh, &old] {
        let mut child = netlab()
            .args(["run", "labs/two-site.json", "-q", "--duration", "60s", "--no-capture", "--report"])
            .arg(report)
            .stdout(Stdio::null())
            .spawn()
            .expect("netlab");
        std::thread::sleep(Duration::from_millis(500));
        assert!(Command::new("kill").args(["-KILL", &child.id().to_string()]).status().unwrap().success());
        let _ = child.wait();
    }
    assert!(!fresh.exists(), "no report, rather than an empty one");
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "{\"old\": true}", "the old report stands");
}
