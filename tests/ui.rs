//! Every screen of the terminal UI through ratatui's `TestBackend`, at 80x24 and 160x48, fed by a
//! deterministic virtual-time run of `labs/two-site.json`.

mod common;

use netlab::runtime::{Driver, RunOptions, Speed};
use netlab::ui::app::{App, Tab};
use netlab::ui::keymap::Action;
use netlab::ui::view::Screen;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn lab() -> netlab::topology::Lab {
    let text = std::fs::read_to_string(common::root().join("labs/two-site.json")).expect("lab");
    netlab::topology::load_str(&text, "two-site.json").expect("valid").in_memory()
}

/// The lab run in virtual time to `ms`; its snapshot, and its frame events.
fn run_to(ms: u64) -> (netlab::runtime::LabSnapshot, Vec<netlab::runtime::FeedEvent>) {
    run_with(ms, Vec::new())
}

/// The same, with commands applied at their times.
fn run_with(
    ms: u64,
    replay: Vec<netlab::sim::LoggedCommand>,
) -> (netlab::runtime::LabSnapshot, Vec<netlab::runtime::FeedEvent>) {
    let lab = lab();
    let opts = RunOptions {
        speed: Speed::Max,
        duration: Some(std::time::Duration::from_millis(ms)),
        replay,
        ..RunOptions::default()
    };
    let mut d = Driver::new(&lab, &opts).expect("driver");
    let (rx, dropped) = d.feed(1 << 20);
    d.run(&mut ());
    assert_eq!(dropped.load(std::sync::atomic::Ordering::Relaxed), 0);
    (d.snapshot(), rx.try_iter().collect())
}

/// The app as a UI would hold it 700 ms into the lab, the transfer running.
fn app() -> App {
    let (early, _) = run_to(600);
    let (now, events) = run_to(700);
    let mut app = App::new(&lab(), 1, Speed::Factor(1.0));
    app.on_snapshot(early, true);
    app.on_snapshot(now, true);
    app.on_events(events);
    app
}

fn draw(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| f.render_widget(Screen(app), f.area())).expect("draw");
    let buf = t.backend().buffer();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_screen_at_two_sizes() {
    let mut app = app();
    for (i, tab) in Tab::ALL.iter().enumerate() {
        app.update(Action::Tab(i));
        assert_eq!(app.tab, *tab);
        for (w, h) in [(80, 24), (160, 48)] {
            insta::assert_snapshot!(format!("{}-{w}x{h}", tab.title().to_lowercase()), draw(&app, w, h));
        }
    }
    app.update(Action::Help);
    insta::assert_snapshot!("help-80x24", draw(&app, 80, 24));
}

#[test]
fn the_overview_shows_rates_and_a_link_taken_down() {
    let app = app();
    let screen = draw(&app, 160, 48);
    // The WAN carries the transfer at most at its 50 Mbit/s.
    // The table stands right of the map.
    let wan = screen.lines().find_map(|l| l.split('│').nth(1).filter(|r| r.starts_with("wan"))).expect("the wan row");
    assert!(wan.contains("Mbit/s") && wan.contains(" up "), "{wan}");
    let (_, events) = run_to(700);
    assert!(!events.is_empty());
}

#[test]
fn a_packet_s_journey_follows_it_through_the_switches_and_routers() {
    let mut app = app();
    app.update(Action::Tab(2));
    // Walk back to a packet that crossed the WAN and reached the far host, and open its journey.
    let wan_packet = app
        .packets
        .iter()
        .rev()
        .find(|p| app.links[p.event.link.index()] == "wan" && app.journey(p.event.packet).len() == 5)
        .map(|p| p.no)
        .expect("a WAN packet");
    app.update(Action::Follow);
    while app.current_packet().map(|p| p.no) != Some(wan_packet) {
        app.update(Action::Up);
    }
    app.update(Action::Journey);
    assert_eq!(app.tab, Tab::Journey);
    let screen = draw(&app, 160, 48);
    let hops: Vec<&str> = screen.lines().filter(|l| l.contains("delivered")).collect();
    // Host → switch → router → WAN → router → switch → host: five links for a packet between the
    // sites, one packet id all the way.
    assert_eq!(hops.len(), 5, "{screen}");
    assert!(hops[2].contains("wan"), "{screen}");
    // The WAN hop takes its 10 ms of latency, and any wait in its queue: from the time the packet
    // entered the link to the time it left it.
    let cols: Vec<&str> = hops[2].split_whitespace().collect();
    let on_link: f64 = cols[2].parse().expect("time on the link");
    assert_eq!(cols[3], "ms");
    assert!(on_link >= 10.0, "{screen}");
    let (entered, left): (f64, f64) = (cols[0].parse().unwrap(), cols[1].parse().unwrap());
    assert!(((left - entered) * 1e3 - on_link).abs() < 0.01, "{screen}");
    assert!(screen.contains("sent by laptop") || screen.contains("sent by fileserver"), "{screen}");
}

#[test]
fn a_link_taken_down_is_marked_on_the_map_and_in_the_table() {
    let down = netlab::sim::LoggedCommand {
        at_ns: 650_000_000,
        command: netlab::sim::CommandSpec::LinkDown { link: "wan".into() },
        event: None,
    };
    let (early, _) = run_with(600, vec![down.clone()]);
    let (now, events) = run_with(700, vec![down]);
    let mut app = App::new(&lab(), 1, Speed::Factor(1.0));
    app.on_snapshot(early, true);
    app.on_snapshot(now, true);
    app.on_events(events);
    let screen = draw(&app, 160, 48);
    assert!(screen.contains('✗'), "{screen}");
    let wan = screen.lines().find_map(|l| l.split('│').nth(1).filter(|r| r.starts_with("wan"))).expect("the wan row");
    assert!(wan.contains(" down ") && wan.contains(" link-"), "{wan}");
    // The log says when the link went down.
    assert!(app.log.iter().any(|l| l.contains("link wan is down")), "{:?}", app.log);
    // Dropped frames show in the packet list with their reason.
    app.update(Action::Tab(2));
    assert!(app.packets.iter().any(|p| matches!(p.event.fate, netlab::sim::Fate::Dropped(_))));
}

#[test]
fn flows_count_each_packet_once_and_open_their_packets() {
    let mut app = app();
    app.update(Action::Tab(1));
    // The transfer's conversation carries the most bytes, established, with an RTT of the WAN's.
    let top = app.sorted_flows()[0].clone();
    let tcp = top.tcp.as_ref().expect("a TCP flow");
    assert_eq!(tcp.state.as_str(), "established");
    let hs = tcp.handshake_rtt_ns.expect("a handshake RTT");
    assert!((20_000_000..21_000_000).contains(&hs), "two 10 ms WAN crossings and four LAN hops: {hs}");
    // Each packet once, though it crossed three links: as many data segments as the sender's link
    // carried from the laptop.
    let (_, events) = run_to(700);
    let laptop_tcp = events
        .iter()
        .filter(|e| e.fate == netlab::sim::Fate::Sent && e.link.0 == 0 && e.from == netlab::topology::Side::A)
        .filter(|e| netlab::inspect::flows::FlowKey::of(&e.frame) == Some(top.key))
        .count() as u64;
    assert_eq!(top.a_to_b.packets.max(top.b_to_a.packets), laptop_tcp);
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("flows · ") && screen.contains("established"), "{screen}");
    // Enter: the packets of that flow alone.
    app.update(Action::Journey);
    assert_eq!(app.tab, Tab::Packets);
    let visible = app.visible_packets();
    assert!(!visible.is_empty() && visible.iter().all(|p| p.flow == Some(top.key)));
    let shown = visible.len();
    app.update(Action::ClearFlow);
    assert!(app.visible_packets().len() > shown);
}

#[test]
fn a_click_on_a_tab_title_picks_its_screen() {
    let app = app();
    let screen = draw(&app, 160, 48);
    let bar = screen.lines().next().expect("the tab bar");
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let title = format!("{} {}", i + 1, tab.title());
        let col = bar.find(&title).map(|b| bar[..b].chars().count()).expect("the title on the bar");
        for c in [col, col + title.chars().count() - 1] {
            assert_eq!(netlab::ui::view::tab_at(&app, c as u16), Some(i), "{title} at column {c}");
        }
    }
    assert_eq!(netlab::ui::view::tab_at(&app, 2), None, "the lab's name is no tab");
}

#[test]
fn a_dropped_packet_s_journey_ends_with_its_reason() {
    let down = netlab::sim::LoggedCommand {
        at_ns: 650_000_000,
        command: netlab::sim::CommandSpec::LinkDown { link: "wan".into() },
        event: None,
    };
    let (now, events) = run_with(700, vec![down]);
    let mut app = App::new(&lab(), 1, Speed::Factor(1.0));
    app.on_snapshot(now, true);
    app.on_events(events);
    app.update(Action::Tab(2));
    app.update(Action::Follow);
    let dropped = app
        .packets
        .iter()
        .rev()
        .find(|p| matches!(p.event.fate, netlab::sim::Fate::Dropped(_)))
        .map(|p| p.no)
        .expect("a dropped frame");
    while app.current_packet().map(|p| p.no) != Some(dropped) {
        app.update(Action::Up);
    }
    app.update(Action::Journey);
    let screen = draw(&app, 160, 48);
    let last = screen.lines().rfind(|l| l.contains("delivered") || l.contains("dropped")).expect("hops");
    assert!(last.contains("wan") && last.contains("dropped: link-down"), "{screen}");
}

#[test]
fn a_display_filter_narrows_packets_and_flows() {
    let mut app = app();
    let all = app.visible_packets().len();
    app.set_filter(r#"tcp.port == 9 && link == "wan""#).expect("a valid filter");
    let shown = app.visible_packets();
    assert!(!shown.is_empty() && shown.len() < all);
    assert!(shown.iter().all(|p| app.links[p.event.link.index()] == "wan"));
    assert!(shown.iter().all(|p| netlab::inspect::decode(&p.event.frame).summary.protocol == "TCP"));
    drop(shown);
    // Flows: only the transfer's conversation has packets the filter lets through.
    assert_eq!(app.sorted_flows().len(), 1);
    app.update(Action::Tab(2));
    assert!(draw(&app, 160, 48).contains("matching `tcp.port == 9 && link == \"wan\"`"));
    // A filter that does not parse says where, and changes nothing.
    let before = shown_len(&app);
    let e = app.set_filter("tcp.prot == 9").expect_err("an unknown field");
    assert!(e.message.contains("tcp.port") && e.at == 0, "{e:?}");
    assert_eq!(shown_len(&app), before);
    // Typed at `/` (which starts from the filter applied): checked at every key.
    app.update(Action::Filter);
    assert_eq!(app.input.as_ref().map(|i| i.text.as_str()), Some(r#"tcp.port == 9 && link == "wan""#));
    app.input = None;
    app.set_filter("").expect("empty");
    app.update(Action::Filter);
    let key = |c| ratatui::crossterm::event::KeyEvent::new(c, ratatui::crossterm::event::KeyModifiers::NONE);
    for c in "ip.ttl >".chars() {
        app.on_input_key(&key(ratatui::crossterm::event::KeyCode::Char(c)));
    }
    assert!(app.input.as_ref().and_then(|i| i.error.clone()).is_some(), "an unfinished filter is flagged");
    for c in " 0".chars() {
        app.on_input_key(&key(ratatui::crossterm::event::KeyCode::Char(c)));
    }
    assert!(app.input.as_ref().is_some_and(|i| i.error.is_none()), "a whole filter is not");
    app.on_input_key(&key(ratatui::crossterm::event::KeyCode::Enter));
    assert!(app.input.is_none());
    assert_eq!(app.filter.as_ref().map(|f| f.0.as_str()), Some("ip.ttl > 0"));
    app.set_filter("").expect("empty");
    assert_eq!(app.visible_packets().len(), all);
}

fn shown_len(app: &App) -> usize {
    app.visible_packets().len()
}

#[test]
fn a_switch_shows_its_ports_and_their_counters() {
    let mut app = app();
    app.update(Action::Tab(4));
    let hosts = app.snapshot.as_ref().unwrap().sim.hosts.len();
    for _ in 0..hosts {
        app.update(Action::Down);
    }
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("hq-sw (switch)"), "{screen}");
    // Its port towards the router carries the traffic to the other site.
    let up = screen.lines().find(|l| l.contains("  hq-r:lan<->hq-sw: in ")).expect("the router's port");
    assert!(up.contains("frames") && up.contains("dropped 0"), "{up}");
    assert!(screen.contains("MAC table"), "{screen}");
}

#[test]
fn a_click_on_a_row_selects_it() {
    let mut app = app();
    // Overview: the WAN's row in the links table (right of the map).
    let screen = draw(&app, 160, 48);
    let (y, line) = screen
        .lines()
        .enumerate()
        .find(|(_, l)| l.split('│').nth(1).is_some_and(|r| r.starts_with("wan")))
        .expect("wan");
    let x = line.chars().position(|c| c == '│').expect("the map's edge") + 2;
    app.click(x as u16, y as u16);
    assert_eq!(app.links[app.selected_link], "wan");
    // Packets: a row some way up the list.
    app.update(Action::Tab(2));
    let screen = draw(&app, 160, 48);
    let (y, line) =
        screen.lines().enumerate().filter(|(_, l)| l.starts_with(|c: char| c.is_ascii_digit())).nth(5).expect("a row");
    let no: u64 = line.split_whitespace().next().unwrap().parse().unwrap();
    app.click(3, y as u16);
    assert_eq!(app.current_packet().map(|p| p.no), Some(no));
    assert!(!app.follow, "a click stops following");
}

/// A lab with a tunnel: its link's state column says the transport and the tunnel's state, and the
/// tunnels panel lists each tunnel end (bold while it is not up).
#[test]
fn the_overview_shows_each_tunnel_and_its_state() {
    use netlab::transport::{Role, State, TunnelStatus};
    let (mut snap, _) = run_to(700);
    let wan = lab().links.iter().position(|l| l.name == "wan").expect("wan") as u32;
    snap.tunnels.push(TunnelStatus {
        name: "hq<->branch".into(),
        local: "hq".into(),
        peer: "branch".into(),
        transport: "udp",
        links: vec![wan],
        role: Role::Callee,
        encrypted: true,
        state: State::Down,
        since_s: 65.0,
        retries: 3,
        sessions: 1,
        frames_out: 1200,
        bytes_out: 3 << 20,
        frames_in: 900,
        bytes_in: 100 << 10,
        rx_dropped: 0,
        lost_out: 2,
        refused: [("wrong-key".to_string(), 4)].into_iter().collect(),
        send_errors: std::collections::BTreeMap::new(),
        peer_addr: Some("127.0.0.1:40000".into()),
        detail: "nothing heard from the peer for 5 s".into(),
        peer_done: false,
    });
    let mut app = App::new(&lab(), 1, Speed::Factor(1.0));
    app.on_snapshot(snap, true);
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("udp down"), "{screen}");
    assert!(screen.contains("hq<->branch udp down 1m05s, 3.0 MiB out, 100.0 KiB in, 3 retries, 4 refused"), "{screen}");
    insta::assert_snapshot!("overview-tunnel-160x48", screen);
}

/// The nodes screen lists each app of the selected host with its outcome: HTTP, UDP stream and
/// traceroute too.
#[test]
fn the_nodes_screen_shows_the_outcomes_of_http_stream_and_traceroute_apps() {
    let text = std::fs::read_to_string(common::root().join("labs/services.json")).expect("lab");
    let lab = netlab::topology::load_str(&text, "services.json").expect("valid");
    let opts = RunOptions { speed: Speed::Max, ..RunOptions::default() };
    let mut d = Driver::new(&lab, &opts).expect("driver");
    d.run(&mut ());
    let mut app = App::new(&lab, 1, Speed::Max);
    app.on_snapshot(d.snapshot(), true);
    app.update(Action::Tab(4));
    let client = draw(&app, 200, 60);
    for want in [
        "client/traceroute (finished)",
        "traceroute 10.0.0.2 (udp): reached after 1 hop:  1  10.0.0.2",
        "traceroute fd00::2 (icmp): reached after 1 hop",
        "http-get 10.0.0.2:80/files/big.bin: 3 of 3 answered (3× 200), 3.0 MiB of body, ttfb",
        "http-get 10.0.0.2:8080/missing: 1 of 1 answered (1× 404), 24 B of body",
        "udp-stream 10.0.0.2:5001: 500 of 500 datagrams sent at 2.0 Mbit/s",
    ] {
        assert!(client.contains(want), "`{want}` not on the screen:\n{client}");
    }
    app.update(Action::Down);
    let server = draw(&app, 200, 60);
    for want in [
        "server/http-server (serving)",
        "http-server :80: 1 connection(s), 3 requests, answered 3× 200, 3.0 MiB of body sent",
        "udp-stream-server :5001: 1 stream(s), 500 received, 0 lost (0.0%), jitter 0.0 us",
    ] {
        assert!(server.contains(want), "`{want}` not on the screen:\n{server}");
    }
}

#[test]
fn a_router_shows_its_routes_neighbours_and_counters_and_a_journey_crosses_it() {
    let text = std::fs::read_to_string(common::root().join("labs/routed.json")).expect("lab");
    let lab = netlab::topology::load_str(&text, "routed.json").expect("valid");
    let opts = RunOptions {
        speed: Speed::Max,
        duration: Some(std::time::Duration::from_millis(400)),
        ..RunOptions::default()
    };
    let mut d = Driver::new(&lab, &opts).expect("driver");
    let (rx, _) = d.feed(1 << 20);
    d.run(&mut ());
    let mut app = App::new(&lab, 1, Speed::Factor(1.0));
    app.on_snapshot(d.snapshot(), true);
    app.on_events(rx.try_iter().collect::<Vec<_>>());
    // The map marks routers apart from hosts and switches.
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("⊕ r1") && screen.contains("⊕ r2") && screen.contains("◆ sw1"), "{screen}");
    // Nodes: hosts, switches, then routers; r2 is the last.
    app.update(Action::Tab(4));
    let s = app.snapshot.as_ref().unwrap();
    let n = s.sim.hosts.len() + s.sim.switches.len() + s.sim.routers.len();
    for _ in 0..n {
        app.update(Action::Down);
    }
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("r2 (router)"), "{screen}");
    assert!(screen.contains("10.1.0.0/24 via 10.0.12.1 dev eth0"), "{screen}");
    assert!(screen.contains("10.3.0.0/24 on-link dev eth2"), "{screen}");
    assert!(screen.lines().any(|l| l.contains("forwarded") && !l.contains("forwarded 0,")), "{screen}");
    assert!(screen.contains("neighbours") && screen.contains("on eth0"), "{screen}");
    // A ping from h1 to h2 keeps its packet id across both routers: five links, one journey.
    let crossing = app
        .packets
        .iter()
        .find(|p| app.links[p.event.link.index()] == "transit" && app.journey(p.event.packet).len() >= 4)
        .map(|p| app.journey(p.event.packet).len());
    assert!(crossing.is_some(), "a packet followed across the routers");
}

#[test]
fn a_multi_homed_host_shows_its_interfaces_routes_and_where_each_socket_is() {
    let text = std::fs::read_to_string(common::root().join("tests/multi-homed.json")).expect("lab");
    let lab = netlab::topology::load_str(&text, "multi-homed.json").expect("valid");
    let opts = RunOptions {
        speed: Speed::Max,
        duration: Some(std::time::Duration::from_millis(605)),
        ..RunOptions::default()
    };
    let mut d = Driver::new(&lab, &opts).expect("driver");
    d.run(&mut ());
    let mut app = App::new(&lab, 1, Speed::Factor(1.0));
    app.on_snapshot(d.snapshot(), true);
    app.update(Action::Tab(4));
    // mh is the first host.
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("eth0 ") && screen.contains("mtu 1500: 10.1.0.10/24, fd00:1::10/64"), "{screen}");
    assert!(screen.contains("eth1 ") && screen.contains("mtu 1500: 10.2.0.10/24"), "{screen}");
    for line in
        ["  10.9.0.0/16 via 10.2.0.1 dev eth1", "  10.2.0.0/24 on-link dev eth1", "  10.1.0.0/24 on-link dev eth0"]
    {
        assert!(screen.lines().any(|l| l.ends_with(line)), "no `{line}` in\n{screen}");
    }
    assert!(screen.contains("10.2.0.20 at ") && screen.contains(" on eth1 ("), "{screen}");
    assert!(screen.contains("tcp on eth0 10.1.0.10:") && screen.contains("→ 10.1.0.20:9 ESTABLISHED"), "{screen}");
    assert!(screen.contains("tcp on eth1 10.2.0.10:") && screen.contains("→ 10.2.0.20:9 ESTABLISHED"), "{screen}");
}

#[test]
fn a_gateway_and_a_forward_host_list_their_real_flows() {
    use netlab::bench_gateway::{fetch, lab, Server};
    // A real server, and a lab whose forward reaches it through r1 and the gateway.
    let server = Server::start(4096).expect("server");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let lab = lab(&[(port, server.addr.port())], None).expect("lab");
    let opts = RunOptions { duration: Some(std::time::Duration::from_secs(3)), ..RunOptions::default() };
    let mut d = Driver::new(&lab, &opts).expect("driver");
    let run = std::thread::spawn(move || {
        d.run(&mut ());
        d
    });
    let forward: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while fetch(forward, 4096).is_err() {
        assert!(std::time::Instant::now() < until, "the forward answered");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let d = run.join().expect("the run");
    let mut app = App::new(&lab, 1, Speed::Factor(1.0));
    app.on_snapshot(d.snapshot(), true);
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("⊗ gw") && screen.contains("■ client") && screen.contains("⊕ r1"), "{screen}");
    app.update(Action::Tab(4));
    // client is the first host: its forward's flow, from the real client into the lab.
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("gw (gateway)"), "{screen}");
    assert!(screen.contains("forward client: 1 flows"), "{screen}");
    let target = format!("→ 10.99.0.1:{}", server.addr.port());
    assert!(
        screen.lines().any(|l| l.contains("tcp 127.0.0.1:") && l.contains(&target) && l.contains("closed")),
        "{screen}"
    );
    // gw, the second host: the flow it dialled, and the real address it dialled.
    app.update(Action::Down);
    let screen = draw(&app, 160, 48);
    assert!(screen.contains("gateway gw: 1 flows, 1 dials"), "{screen}");
    let real = format!("⇒ 127.0.0.1:{}", server.addr.port());
    assert!(screen.lines().any(|l| l.contains(&target) && l.contains(&real) && l.contains("4.0 KiB")), "{screen}");
}
