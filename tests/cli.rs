//! The command line: help text, schema, and errors that are not about the lab's content.

mod common;

use common::netlab;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = netlab().args(args).output().expect("netlab runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `netlab run labs/single-lan.json --virtual-time -q` with more arguments.
fn run_single_lan(extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["run", "labs/single-lan.json", "--virtual-time", "-q"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn help_texts() {
    insta::assert_snapshot!("help", run(&["--help"]).1);
    insta::assert_snapshot!("run_help", run(&["run", "--help"]).1);
}

#[test]
fn schema_describes_the_lab_format() {
    let (code, out, _) = run(&["schema"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out).expect("schema is JSON");
    assert_eq!(schema["title"], "LabSpec");
    let props = schema["properties"].as_object().expect("properties");
    for key in ["name", "description", "seed", "checksum_offload", "nodes", "links", "capture"] {
        assert!(props.contains_key(key), "schema lacks `{key}`");
    }
    assert_eq!(schema["required"], serde_json::json!(["name", "nodes"]));
    // Every app kind is in the schema, as the `kind` tag of a variant.
    let text = out.as_str();
    for kind in [
        "ping",
        "tcp-echo-server",
        "tcp-echo",
        "udp-echo-server",
        "udp-echo",
        "tcp-sink",
        "tcp-transfer",
        "http-server",
        "http-get",
        "udp-stream",
        "udp-stream-server",
        "traceroute",
    ] {
        assert!(text.contains(&format!("\"const\": \"{kind}\"")), "schema lacks app kind {kind}");
    }
    // Every key used by the shipped labs is described.
    for lab in ["labs/single-lan.json", "labs/two-site.json"] {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(common::root().join(lab)).unwrap()).unwrap();
        for k in v.as_object().unwrap().keys() {
            assert!(props.contains_key(k), "{lab}: `{k}` not in schema");
        }
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let (code, _, err) = run(&["run", "labs/does-not-exist.json"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: cannot read labs/does-not-exist.json:"), "{err}");
}

#[test]
fn conflicting_flags_are_refused() {
    let (code, _, err) = run(&["run", "labs/single-lan.json", "--capture", "x.pcapng", "--no-capture"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, _, err) = run(&["run", "labs/single-lan.json", "--duration", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'soon'"), "{err}");
}

#[test]
fn report_file_matches_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (out, r) =
        common::run_lab("labs/single-lan.json", &["--virtual-time", "--no-capture", "--seed", "3"], dir.path());
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(r["seed"], 3);
    assert_eq!(r["lab"], "single-lan");
    assert_eq!(r["description"], "Three hosts on one switch: a ping, a TCP echo and a bulk transfer.");
    assert!(summary.starts_with("lab single-lan (virtual-time, seed 3): every app finished"), "{summary}");
    for a in r["apps"].as_array().unwrap() {
        assert!(summary.contains(a["app"].as_str().unwrap()));
    }
    assert_eq!(r["capture"], serde_json::Value::Null);
}

/// Runs netlab with its standard output on a pipe whose reader is already gone, as in
/// `netlab … | head -1` once head has exited.
fn run_into_closed_pipe(args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = netlab().args(args).stdout(writer).output().expect("netlab runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_reader_that_goes_away_is_not_a_crash() {
    for args in [&["schema"][..], &["check", "labs/single-lan.json"], &["bench", "--help"]] {
        let (code, err) = run_into_closed_pipe(args);
        assert_eq!((code, err.as_str()), (0, ""), "netlab {args:?}");
    }
    // A run does its work, and its report is written, whoever reads the summary.
    let dir = tempfile::tempdir().expect("tmp");
    let report = dir.path().join("r.json");
    let report_arg = report.to_str().unwrap();
    let (code, err) = run_into_closed_pipe(&[
        "run",
        "labs/single-lan.json",
        "--virtual-time",
        "--no-capture",
        "-q",
        "--report",
        report_arg,
    ]);
    assert_eq!((code, err.as_str()), (0, ""));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(r["ended"], "apps-finished");
}

#[test]
fn report_to_standard_output() {
    let (code, out, err) = run_single_lan(&["--no-capture", "--report", "-"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("standard output is the JSON report alone");
    assert_eq!(r["ended"], "apps-finished");
    assert!(err.contains("every app finished"), "the summary goes to standard error: {err}");
    assert!(!std::path::Path::new("-").exists() && !common::root().join("-").exists(), "no file named `-`");
    let (code, _, err) = run(&["run", "labs/single-lan.json", "--virtual-time", "--capture", "-", "--report", "-"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot both write to standard output"), "{err}");
}

#[test]
fn report_path_is_checked_before_the_run() {
    let dir = tempfile::tempdir().expect("tmp");
    // A missing folder is made, as for captures.
    let nested = dir.path().join("a/b/r.json");
    let (code, _, err) = run_single_lan(&["--no-capture", "--report", nested.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(nested.is_file());
    // A path that cannot be written fails at once: no run, no summary.
    let blocked = dir.path().join("a/b/r.json/inside.json");
    let (code, out, err) =
        run(&["run", "labs/two-site.json", "--no-capture", "-q", "--report", blocked.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("error: cannot write the report to") && err.contains("inside.json"), "{err}");
    assert_eq!(out, "", "the lab did not run");
}

#[test]
fn capture_errors_name_the_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").expect("write");
    let inside = file.join("run.pcapng");
    let (code, out, err) = run(&["run", "labs/two-site.json", "-q", "--capture", inside.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(out, "", "the lab did not run");
    assert!(
        err.contains("error: cannot start the capture: cannot create the folder") && err.contains("plain-file"),
        "{err}"
    );
}

#[test]
fn a_failed_run_keeps_the_previous_report() {
    let dir = tempfile::tempdir().expect("tmp");
    let report = dir.path().join("r.json");
    std::fs::write(&report, "{\"previous\": true}\n").expect("write");
    let blocked = dir.path().join("r.json/x.pcapng");
    let (code, _, err) =
        run_single_lan(&["--capture", blocked.to_str().unwrap(), "--report", report.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "{\"previous\": true}\n");
    // A report the run would have made is not left behind empty.
    let fresh = dir.path().join("fresh.json");
    let (code, _, _) = run_single_lan(&["--capture", blocked.to_str().unwrap(), "--report", fresh.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(!fresh.exists());
    // A successful run replaces the old report whole.
    let (code, _, err) = run_single_lan(&["--no-capture", "--report", report.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).expect("json");
    assert_eq!(r["ended"], "apps-finished");
}

/// Runs netlab with its standard output and standard error on one pipe whose reader is already
/// gone, as in `netlab … 2>&1 | head -1` once head has exited. Returns the exit code.
fn run_into_closed_pipes(args: &[&str]) -> i32 {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let stderr = writer.try_clone().expect("clone");
    let status = netlab().args(args).stdout(writer).stderr(stderr).status().expect("netlab runs");
    status.code().unwrap_or(-1)
}

/// A lab with `n` problems: hosts whose MTU is out of range.
fn lab_with_problems(dir: &std::path::Path, n: usize) -> String {
    let nodes: serde_json::Map<String, serde_json::Value> = (0..n)
        .map(|i| (format!("h{i}"), serde_json::json!({ "kind": "host", "interfaces": { "eth0": { "mtu": 1 } } })))
        .collect();
    let path = dir.join("problems.json");
    std::fs::write(&path, serde_json::json!({ "name": "problems", "nodes": nodes }).to_string()).expect("write");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn closed_standard_output_and_error_are_not_a_crash() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab = lab_with_problems(dir.path(), 3000);
    let (_, _, err) = run(&["check", &lab]);
    assert!(err.contains("3000 problems found"), "{}", &err[err.len().saturating_sub(300)..]);
    let report = dir.path().join("r.json");
    let report = report.to_str().unwrap();
    let missing_log = dir.path().join("missing-log.json");
    let cases: [(&[&str], i32); 10] = [
        (&["check", &lab], 2),
        (&["check", "labs/single-lan.json"], 0),
        (&["schema"], 0),
        (&["bench", "--bytes", "10furlongs"], 2),
        // The bench stops at its first line, which nobody reads.
        (&["bench", "--bytes", "1MiB", "--reps", "1"], 0),
        (&["run", &lab], 2),
        (&["run", "labs/single-lan.json", "--replay", missing_log.to_str().unwrap()], 2),
        (&["run", "labs/single-lan.json", "--virtual-time", "--no-capture", "-q", "--report", "-"], 0),
        (&["run", "labs/single-lan.json", "--virtual-time", "--no-capture", "-q", "--report", report], 0),
        // With its progress line, paced for more than a second so that the line is printed.
        (&["run", "labs/two-site.json", "--in-memory", "--speed", "1.5", "--no-capture", "--duration", "1500ms"], 0),
    ];
    for (args, code) in cases {
        assert_eq!(run_into_closed_pipes(args), code, "netlab {args:?}");
    }
    assert!(std::path::Path::new(report).is_file(), "the run still writes its report");
}

#[test]
fn a_report_that_cannot_be_written_says_why_in_words() {
    let dir = tempfile::tempdir().expect("tmp");
    // A folder.
    let folder = dir.path().to_str().unwrap();
    let (code, out, err) = run_single_lan(&["--no-capture", "--report", folder]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains(&format!("error: cannot write the report to {folder}: it is a folder")), "{err}");
    assert!(err.contains(&format!("hint: name a file in it: `--report {folder}/report.json`")), "{err}");
    assert!(!err.contains("os error"), "{err}");
    // A full device: the run happens, and writing its report fails.
    let full = std::path::Path::new("/dev/full");
    if full.exists() {
        let (code, _, err) = run_single_lan(&["--no-capture", "--report", "/dev/full"]);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("error: cannot write the report to /dev/full: the disk or device is full"), "{err}");
        assert!(err.contains("hint: free some space"), "{err}");
        assert!(!err.contains("os error") && !err.contains("Invalid argument"), "{err}");
    }
    // A device that takes anything: the report is written to it.
    let (code, _, err) = run_single_lan(&["--no-capture", "--report", "/dev/null"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn command_line_errors_exit_2() {
    for (args, says) in [
        (
            &["bench", "--bytes", "0"][..],
            "invalid value '0' for '--bytes <BYTES>': measure at least 1 MiB, not 0 bytes",
        ),
        (&["bench", "--bytes", "512KiB"], "measure at least 1 MiB, not 524288 bytes"),
        (&["bench", "--bytes", "10furlongs"], "unknown size unit `furlongs`"),
        (&["bench", "--reps", "0", "--bytes", "0"], "invalid value '0' for '--reps <REPS>'"),
        (&["run", "labs/single-lan.json", "--speed", "0"], "invalid value '0' for '--speed <SPEED>'"),
    ] {
        let (code, out, err) = run(args);
        assert_eq!((code, out.as_str()), (2, ""), "netlab {args:?}: {err}");
        assert!(err.contains(says), "netlab {args:?}: {err}");
    }
}

/// A lab with tunnels runs on the wall clock at speed 1, and says how to run it otherwise; a site
/// that does not exist, or a missing key, is a clear error before anything runs.
#[test]
fn tunnels_refuse_what_they_cannot_do_with_a_hint() {
    for args in [
        &["run", "labs/two-site.json", "--virtual-time", "--no-capture"][..],
        &["run", "labs/two-site.json", "--speed", "2", "--no-capture"][..],
        &["run", "labs/two-site.json", "--speed", "max", "--no-capture"][..],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("tunnels, which run on the wall clock at speed 1") && err.contains("--in-memory"),
            "{err}"
        );
    }
    let (code, _, err) = run(&["run", "labs/two-site.json", "--site", "hqq", "--no-capture"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no site `hqq`") && err.contains("its sites: hq, branch"), "{err}");
    let out = netlab()
        .args(["run", "labs/two-site.json", "--site", "hq", "--no-capture", "--headless"])
        .env_remove("NETLAB_KEY")
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("need a key shared by every site") && err.contains("netlab key"), "{err}");
    let (code, _, err) =
        run(&["run", "labs/two-site.json", "--site", "branch", "--connect", "hq=nowhere", "--no-capture"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not HOST:PORT or SITE=HOST:PORT"), "{err}");
    // `check` says how a lab's sites are joined.
    let (code, out, _) = run(&["check", "labs/two-site-tcp.json"]);
    assert_eq!((code, out.trim_end()), (0, "ok: 8 nodes, 7 links, 2 sites, 1 tunnel (tcp), 10 expectations"));
    // A key is 64 hex digits, new each time.
    let (code, a, _) = run(&["key"]);
    let (_, b, _) = run(&["key"]);
    assert_eq!(code, 0);
    assert_eq!(a.trim().len(), 64, "{a}");
    assert!(a.trim().chars().all(|c| c.is_ascii_hexdigit()), "{a}");
    assert_ne!(a, b);
}
