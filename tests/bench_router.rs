//! `netlab bench --router` and `netlab bench --scale --routers` run end to end at a tiny size, so
//! that the router benches keep working; their figures come from the release build.

mod common;

#[test]
fn bench_router_prints_both_measurements() {
    let out = common::netlab().args(["bench", "--router", "--bytes", "1MiB", "--reps", "1"]).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("  one router "), "{text}");
    assert!(text.contains("goal, labs/routed.json at 1000x real time or faster: "), "{text}");
}

#[test]
fn bench_scale_with_routers_runs_each_lab_in_its_own_process() {
    let out = common::netlab()
        .args(["bench", "--scale", "--routers", "--hosts", "20", "--per-switch", "5"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{text}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("each lab in a process of its own"), "{text}");
    assert!(text.lines().any(|l| l.split_whitespace().take(3).eq(["20", "routed", "1"])), "{text}");
    assert!(text.contains("20 hosts: the routed lab moves"), "{text}");
    // --routers belongs to the scale bench.
    let out = common::netlab().args(["bench", "--routers"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
}
