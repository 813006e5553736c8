//! The driver driven from another thread, as a UI will: commands typed while the lab runs on the
//! wall clock are logged with their simulated times, and replaying the log in virtual time gives
//! the same frames. Pause, speed, snapshots and frames from outside go through the same channel.

mod common;

use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use netlab::runtime::CaptureChoice;

use common::read_pcapng;
use netlab::runtime::{Control, Driver, Ended, RunOptions, Speed};
use netlab::sim::{command::read_log, CommandSpec};
use netlab::topology::{self, Side};

fn two_site() -> topology::Lab {
    let text = std::fs::read_to_string(common::root().join("labs/two-site.json")).expect("lab");
    topology::load_str(&text, "two-site.json").expect("valid").in_memory()
}

#[test]
fn live_commands_replay_into_the_same_frames() {
    let lab = two_site();
    let dir = tempfile::tempdir().expect("tmp");
    let live_cap = dir.path().join("live.pcapng");
    let opts = RunOptions {
        speed: Speed::Factor(2.0),
        capture: CaptureChoice::File(live_cap.clone()),
        ..RunOptions::default()
    };
    let mut driver = Driver::new(&lab, &opts).expect("driver");
    let ctl = driver.control();
    let ui = std::thread::spawn(move || {
        let t0 = Instant::now();
        let at = |ms| std::thread::sleep(Duration::from_millis(ms).saturating_sub(t0.elapsed()));
        at(150);
        ctl.send(Control::Apply(CommandSpec::LinkDown { link: "wan".into() })).expect("send");
        at(200);
        ctl.send(Control::Pause).expect("send");
        let (tx, rx) = sync_channel(1);
        ctl.send(Control::Snapshot(tx)).expect("send");
        let paused = rx.recv_timeout(Duration::from_secs(5)).expect("a snapshot");
        at(400);
        let (tx, rx) = sync_channel(1);
        ctl.send(Control::Snapshot(tx)).expect("send");
        let still = rx.recv_timeout(Duration::from_secs(5)).expect("a snapshot");
        ctl.send(Control::Resume).expect("send");
        ctl.send(Control::Apply(CommandSpec::LinkUp { link: "wan".into() })).expect("send");
        ctl.send(Control::SetSpeed(Speed::Factor(5.0))).expect("send");
        // A runt from outside: the router at the far end counts it as malformed.
        ctl.send(Control::Frame {
            link: netlab::topology::LinkId(6),
            from: Side::B,
            packet: None,
            frame: vec![1, 2, 3],
        })
        .expect("send");
        (paused, still)
    });
    let ended = driver.run(&mut ());
    let (paused, still) = ui.join().expect("ui thread");
    let live = driver.finish(ended);
    assert_eq!(live.ended, Ended::AppsFinished);
    // Paused means paused: simulated time did not move between the two snapshots.
    assert!(paused.paused && still.paused);
    assert_eq!(paused.sim.now_ns, still.sim.now_ns);
    assert!(!paused.sim.links[6].up, "the WAN is down in the snapshot");
    let cmds = &live.commands;
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    // Typed 150 ms into a run at 2x: about 300 ms simulated (more on a loaded machine, never less
    // than the paced clock allows).
    assert!((200_000_000..1_000_000_000).contains(&cmds[0].at_ns), "{cmds:?}");
    assert!(cmds[1].at_ns >= cmds[0].at_ns);
    let wan = &live.links[6];
    assert_eq!(wan.b_to_a.drops.get("malformed"), Some(&1), "{wan:?}");

    // Replay the log in virtual time: the same frames, but for the runt that came from outside.
    let json = serde_json::to_string(&live).expect("report");
    let replay = read_log(&json).expect("the report is a command log");
    let virt_cap = dir.path().join("virtual.pcapng");
    let opts = RunOptions {
        speed: Speed::Max,
        capture: CaptureChoice::File(virt_cap.clone()),
        replay,
        ..RunOptions::default()
    };
    let report = netlab::runtime::run(&lab, &opts, &mut ()).expect("replay");
    assert_eq!(report.commands.len(), 2);
    let (a, b) = (read_pcapng(&live_cap), read_pcapng(&virt_cap));
    let a: Vec<_> = a.into_iter().filter(|f| f.data.len() >= 14).collect();
    assert_eq!(a.len(), b.len());
    let epoch = a[0].ts_ns - b[0].ts_ns;
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.link, x.ts_ns - epoch, &x.data), (&y.link, y.ts_ns, &y.data));
    }
}

#[test]
fn a_stop_control_ends_a_run_that_would_go_on() {
    // Servers only: on the wall clock this lab runs until something stops it.
    let text = r#"{ "name": "servers", "nodes": {
        "a": { "kind": "host", "interfaces": { "eth0": { "addresses": ["10.0.0.1/24"] } },
               "apps": [ { "kind": "tcp-sink", "port": 9 } ] } } }"#;
    let lab = topology::load_str(text, "servers.json").expect("valid");
    let mut driver = Driver::new(&lab, &RunOptions::default()).expect("driver");
    let ctl = driver.control();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        ctl.send(Control::Stop).expect("send");
    });
    let t0 = Instant::now();
    let ended = driver.run(&mut ());
    stopper.join().expect("thread");
    assert_eq!(ended, Ended::Stopped);
    assert!(t0.elapsed() < Duration::from_secs(5));
    let r = driver.finish(ended);
    assert!((0.2..2.0).contains(&r.wall_seconds), "{}", r.wall_seconds);
}

#[test]
fn capture_starts_and_stops_per_link_while_the_lab_runs() {
    let mut lab = two_site();
    let dir = tempfile::tempdir().expect("tmp");
    lab.capture.dir = dir.path().to_path_buf();
    let wan = lab.links.iter().find(|l| l.name == "wan").unwrap().id;
    let opts = RunOptions { speed: Speed::Max, capture: CaptureChoice::Off, ..RunOptions::default() };
    let mut driver = Driver::new(&lab, &opts).expect("driver");
    assert!(driver.snapshot().capture_files.is_empty(), "no capture yet");
    driver.set_capture(wan, true).expect("a capture starts");
    let snap = driver.snapshot();
    assert_eq!(snap.capture_files.len(), 1);
    assert_eq!(snap.capturing.iter().filter(|c| **c).count(), 1);
    let ended = driver.run(&mut ());
    let r = driver.finish(ended);
    let file = std::path::PathBuf::from(&r.capture.as_ref().expect("a capture").files[0]);
    assert!(file.starts_with(dir.path()), "in the lab's capture folder: {file:?}");
    let frames = read_pcapng(&file);
    assert!(frames.iter().all(|f| f.link == "wan"));
    let wan_counts = &r.links[wan.index()];
    assert_eq!(frames.len() as u64, wan_counts.a_to_b.delivered_frames + wan_counts.b_to_a.delivered_frames);
}

#[test]
fn a_link_added_to_a_running_capture_gets_its_interface() {
    let mut lab = two_site();
    let dir = tempfile::tempdir().expect("tmp");
    let cap = dir.path().join("some.pcapng");
    let wan = lab.links.iter().find(|l| l.name == "wan").unwrap().id;
    // Only the first link is captured from the start.
    lab.capture.links = vec![netlab::topology::LinkId(0)];
    let opts = RunOptions {
        speed: Speed::Max,
        capture: CaptureChoice::File(cap.clone()),
        duration: Some(Duration::from_millis(800)),
        ..RunOptions::default()
    };
    let mut driver = Driver::new(&lab, &opts).expect("driver");
    driver.set_capture(wan, true).expect("on");
    driver.set_capture(netlab::topology::LinkId(0), false).expect("off");
    let ended = driver.run(&mut ());
    let _ = driver.finish(ended);
    let frames = read_pcapng(&cap);
    assert!(!frames.is_empty() && frames.iter().all(|f| f.link == "wan"), "only the WAN, named as such");
}
