//! The terminal UI: a front end beside `headless`, drawing a running lab with ratatui and crossterm.
//!
//! The lab runs on a thread of its own, in a [`Driver`]; the UI never holds it. The UI talks to it
//! through the driver's bounded control channel (commands, pause, step, speed, snapshots) and reads
//! a bounded feed of frame events: a UI that falls behind loses events (counted), never slows the
//! lab. The model (`app`), the keymap (`keymap`) and the views (`view`) know nothing of the terminal;
//! this module owns it, and gives it back whole on every way out: quit, a signal, a panic, a failed
//! start.
//!
//! Never imported here: the core's internals. The UI sees the lab through snapshots and events.

pub mod app;
pub mod keymap;
pub mod prompt;
pub mod view;

use std::io::Stdout;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::crossterm::event::{self, Event, KeyEventKind, MouseEventKind};
use ratatui::crossterm::{execute, terminal};
use ratatui::Terminal;

use crate::runtime::{Control, Driver, FeedEvent, LabSnapshot, Report, RunOptions};
use crate::topology::Lab;
use app::App;
use keymap::Action;
use view::Screen;

/// Frame events the feed holds for the UI.
const FEED: usize = 1 << 16;
/// How often the UI asks for a snapshot.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);
/// Snapshots per rate sample of the sparklines (one a second).
const SAMPLE_EVERY: u32 = 10;
/// At most ~30 frames a second, and only when something changed.
const FRAME: Duration = Duration::from_millis(33);

/// Puts the terminal back as it was: cooked mode, the main screen, the cursor, no mouse reports.
fn restore() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        ratatui::crossterm::event::DisableMouseCapture,
        ratatui::crossterm::cursor::Show
    );
}

/// The terminal in raw mode on the alternate screen, for as long as it lives.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn new() -> anyhow::Result<Self> {
        // A panic anywhere restores the terminal before the message is printed.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        let guard = TerminalGuard {
            terminal: Terminal::new(CrosstermBackend::new(std::io::stdout())).context("cannot use the terminal")?,
        };
        execute!(std::io::stdout(), terminal::EnterAlternateScreen, ratatui::crossterm::event::EnableMouseCapture)
            .context("cannot use the terminal")?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// The driver on its thread, and the UI's ends of its channels.
struct Running {
    control: SyncSender<Control>,
    feed: Receiver<FeedEvent>,
    feed_dropped: Arc<std::sync::atomic::AtomicU64>,
    thread: std::thread::JoinHandle<Report>,
}

fn start(lab: &Lab, opts: &RunOptions) -> anyhow::Result<(Running, u64)> {
    let mut driver = Driver::new(lab, opts)?;
    let seed = driver.seed();
    let control = driver.control();
    let (feed, feed_dropped) = driver.feed(FEED);
    let thread = std::thread::Builder::new()
        .name("netlab-lab".into())
        .spawn(move || {
            let ended = driver.run(&mut ());
            driver.finish(ended)
        })
        .context("cannot start the lab's thread")?;
    Ok((Running { control, feed, feed_dropped, thread }, seed))
}

/// Asks the driver for a snapshot and waits a little for it.
fn snapshot(control: &SyncSender<Control>) -> Option<LabSnapshot> {
    let (tx, rx) = sync_channel(1);
    control.try_send(Control::Snapshot(tx)).ok()?;
    rx.recv_timeout(Duration::from_secs(1)).ok()
}

/// Runs `lab` with the terminal UI until the user quits (or a signal, or the run's duration), and
/// returns its report.
pub fn run(lab: &Lab, opts: &RunOptions) -> anyhow::Result<Report> {
    let mut opts = opts.clone();
    // In the UI the lab stays up when its apps are done: the user decides when it ends.
    opts.keep_running = true;
    let (lab2, seed) = start(lab, &opts)?;
    let mut app = App::new(lab, seed, opts.speed);
    let result = TerminalGuard::new().and_then(|mut term| ui_loop(&mut term.terminal, &mut app, &lab2, &opts));
    // However the loop ended, the lab stops and its report is written.
    let _ = lab2.control.send(Control::Stop);
    let report = lab2.thread.join().map_err(|_| anyhow::anyhow!("the lab's thread panicked"))?;
    result?;
    Ok(report)
}

/// The loop: input, snapshots, events, drawing. Generic over the backend, so that tests can drive
/// it on a `TestBackend`.
fn ui_loop<B: Backend>(term: &mut Terminal<B>, app: &mut App, lab: &Running, opts: &RunOptions) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut last_snapshot = Instant::now() - SNAPSHOT_EVERY;
    let mut snapshots = 0u32;
    let mut last_draw = Instant::now() - FRAME;
    let mut dirty = true;
    loop {
        if opts.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if event::poll(FRAME).context("cannot read the terminal")? {
            match event::read().context("cannot read the terminal")? {
                Event::Key(k) if k.kind != KeyEventKind::Release && app.input.is_some() => {
                    for c in app.on_input_key(&k) {
                        let _ = lab.control.send(c);
                    }
                    dirty = true;
                }
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    if let Some(a) = keymap::action(&k) {
                        for c in app.update(a) {
                            let _ = lab.control.send(c);
                        }
                        if a == Action::Quit {
                            return Ok(());
                        }
                        dirty = true;
                    }
                }
                Event::Mouse(m) => {
                    let a = match m.kind {
                        MouseEventKind::ScrollUp => Some(Action::Up),
                        MouseEventKind::ScrollDown => Some(Action::Down),
                        // A click on the tab bar picks that screen; on a row, that row.
                        MouseEventKind::Down(_) if m.row == 0 => view::tab_at(app, m.column).map(Action::Tab),
                        MouseEventKind::Down(_) => {
                            app.click(m.column, m.row);
                            dirty = true;
                            None
                        }
                        _ => None,
                    };
                    if let Some(a) = a {
                        app.update(a);
                        dirty = true;
                    }
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        if lab.thread.is_finished() {
            if app.ended.is_none() {
                app.ended = Some("ended · q to quit".into());
                dirty = true;
            }
        } else if last_snapshot.elapsed() >= SNAPSHOT_EVERY {
            last_snapshot = Instant::now();
            if let Some(s) = snapshot(&lab.control) {
                snapshots += 1;
                app.on_snapshot(s, snapshots.is_multiple_of(SAMPLE_EVERY));
                dirty = true;
            }
        }
        let events: Vec<FeedEvent> = lab.feed.try_iter().take(FEED).collect();
        if !events.is_empty() {
            app.on_events(events);
            dirty = true;
        }
        app.feed_dropped = lab.feed_dropped.load(Ordering::Relaxed);
        if dirty && last_draw.elapsed() >= FRAME {
            term.draw(|f| f.render_widget(Screen(app), f.area()))?;
            last_draw = Instant::now();
            dirty = false;
        }
    }
}
