//! A host: one smoltcp `Interface` and `SocketSet` over a [`NetDevice`], and its apps.

use std::cell::RefCell;
use std::collections::VecDeque;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::wire::HardwareAddress;

use super::apps::{self, App, AppCx, HostIds};
use super::device::{FramePool, NetDevice};
use super::link::Direction;
use super::observe::Observer;
use crate::time::SimTime;
use crate::topology::{self, LinkId, Side, TcpConfig};

/// Frames a host's input queue holds; smoltcp drains it at every poll, so only a flood fills it.
pub const RX_QUEUE: usize = 4096;

/// Rounds of apps-then-stack in one poll of a host.
const POLL_ROUNDS: usize = 4;

/// An app with what the report needs to know of it.
pub struct AppSlot {
    pub label: String,
    pub server: bool,
    pub start: SimTime,
    pub app: Box<dyn App>,
}

pub struct HostState {
    pub name: String,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub rx: VecDeque<Vec<u8>>,
    pub link: Option<(LinkId, Side)>,
    pub mtu: usize,
    pub checksum_offload: bool,
    pub apps: Vec<AppSlot>,
    ids: HostIds,
    tcp: TcpConfig,
    /// When the host next needs a poll even without traffic.
    pub wake: Option<SimTime>,
    /// The last poll could not transmit: the link queue was full.
    pub blocked: bool,
}

impl HostState {
    pub fn new(name: &str, h: &topology::Host, seed: u64, checksum_offload: bool, pool: &RefCell<FramePool>) -> Self {
        // Validation guarantees at most one interface; a host without one still runs its apps.
        let ifc = h.interfaces.first();
        let mac = ifc.map_or(smoltcp::wire::EthernetAddress([2, 0, 0, 0, 0, 1]), |i| i.mac);
        let mut config = Config::new(HardwareAddress::Ethernet(mac));
        config.random_seed = seed;
        let mut rx = VecDeque::new();
        let mut obs = ();
        let mtu = ifc.map_or(1500, |i| i.mtu);
        let mut dev = NetDevice {
            now: SimTime::ZERO,
            rx: &mut rx,
            tx: None,
            pool,
            obs: &mut obs,
            mtu,
            checksum_offload,
            blocked: false,
            frames: 0,
        };
        let mut iface = Interface::new(config, &mut dev, SimTime::ZERO.to_smoltcp());
        if let Some(i) = ifc {
            iface.update_ip_addrs(|addrs| {
                for a in &i.addresses {
                    // Validation caps addresses at the smoltcp limit.
                    let _ = addrs.push(*a);
                }
            });
            if let Some(g) = i.gateway_v4 {
                let _ = iface.routes_mut().add_default_ipv4_route(g);
            }
            if let Some(g) = i.gateway_v6 {
                let _ = iface.routes_mut().add_default_ipv6_route(g);
            }
        }
        let apps = h
            .apps
            .iter()
            .map(|a| AppSlot {
                label: a.label.clone(),
                server: a.kind.is_server(),
                start: SimTime::from_duration(a.start),
                app: apps::build(&a.kind, a.start),
            })
            .collect();
        HostState {
            name: name.to_string(),
            iface,
            sockets: SocketSet::new(Vec::new()),
            rx: VecDeque::new(),
            link: ifc.and_then(|i| i.link),
            mtu,
            checksum_offload,
            apps,
            ids: HostIds::new(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_a995)),
            tcp: h.tcp,
            wake: Some(SimTime::ZERO),
            blocked: false,
        }
    }

    /// Whether this host has anything to do at `now`.
    #[must_use]
    pub fn due(&self, now: SimTime) -> bool {
        !self.rx.is_empty() || self.wake.is_some_and(|w| w <= now)
    }

    /// Runs apps and the stack at `now`; returns the number of frames received and sent.
    pub fn poll<O: Observer>(
        &mut self,
        now: SimTime,
        tx: Option<&mut Direction>,
        pool: &RefCell<FramePool>,
        obs: &mut O,
    ) -> usize {
        let ts = now.to_smoltcp();
        let mut dev = NetDevice {
            now,
            rx: &mut self.rx,
            tx,
            pool,
            obs,
            mtu: self.mtu,
            checksum_offload: self.checksum_offload,
            blocked: false,
            frames: 0,
        };
        // Apps, then the stack, again while frames move: what the stack just received (an echo,
        // an ACK that frees buffer space) is for the apps to act on at once. The rounds are
        // bounded; if frames still moved in the last one, the host asks to be polled again now.
        let mut app_wake = None;
        let mut moved = false;
        for _ in 0..POLL_ROUNDS {
            let mut cx =
                AppCx { now, iface: &mut self.iface, sockets: &mut self.sockets, ids: &mut self.ids, tcp: &self.tcp };
            app_wake = None;
            for slot in &mut self.apps {
                app_wake = apps::min_wake(app_wake, slot.app.poll(&mut cx));
            }
            let before = dev.frames;
            self.iface.poll(ts, &mut dev, &mut self.sockets);
            moved = dev.frames != before;
            if !moved {
                break;
            }
        }
        self.blocked = dev.blocked;
        let stack = self.iface.poll_at(ts, &self.sockets).map(SimTime::from_smoltcp);
        self.wake = apps::min_wake(apps::min_wake(stack, app_wake), moved.then_some(now));
        dev.frames
    }

    /// Every app is done (servers excepted, which never are).
    #[must_use]
    pub fn clients_done(&self) -> bool {
        self.apps.iter().all(|a| a.server || a.app.done())
    }
}
