//! Capture: an [`Observer`] that copies delivered frames into batches and hands them, through a
//! bounded channel, to a writer thread. The sim thread only copies bytes; the writer formats pcapng
//! (one interface per link, nanosecond timestamps) or classic pcap (one file per link) and flushes
//! whenever it runs out of work, so a run stopped by a signal leaves files that read whole.

mod writer;

pub use writer::make_parent_dir;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::sim::{Fate, FrameEvent, Observer};
use crate::topology::{CaptureFormat, Lab};

pub use writer::Sink;

/// Frames longer than this are cut (`original_len` keeps the true size).
pub const SNAPLEN: usize = 262_144;
const BATCH_BYTES: usize = 256 * 1024;
const BATCHES_IN_FLIGHT: usize = 16;
/// How long a stopping run waits for a writer whose reader does not read.
const GIVE_UP_AFTER: Duration = Duration::from_secs(2);

/// A frame's place in a batch.
#[derive(Debug, Clone, Copy)]
struct Record {
    ts_ns: u64,
    iface: u32,
    orig_len: u32,
    start: u32,
    len: u32,
}

#[derive(Debug, Default)]
struct Batch {
    data: Vec<u8>,
    records: Vec<Record>,
    /// Links whose capture started since the last batch: their interfaces come before the
    /// batch's frames.
    new_links: Vec<String>,
}

impl Batch {
    fn with_capacity() -> Self {
        Batch {
            data: Vec::with_capacity(BATCH_BYTES + 64 * 1024),
            records: Vec::with_capacity(BATCH_BYTES / 64),
            new_links: Vec::new(),
        }
    }
}

/// What a finished capture wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaptureInfo {
    pub files: Vec<String>,
    pub frames: u64,
    pub bytes: u64,
}

/// Where frames go.
pub enum Target {
    /// One pcapng file (or `-` for standard output).
    Pcapng(Sink),
    /// A folder of classic pcap files, one per link.
    PcapDir(PathBuf),
}

pub struct Capture {
    /// Interface number of each link, or `None` when it has none yet.
    iface_of: Vec<Option<u32>>,
    /// Whether each link is being captured now.
    on: Vec<bool>,
    /// Every link's name, for interfaces added while the capture runs.
    names: Vec<String>,
    next_iface: u32,
    files: Vec<String>,
    batch: Batch,
    epoch_ns: u64,
    tx: Option<SyncSender<Batch>>,
    recycled: Receiver<Batch>,
    thread: Option<JoinHandle<std::io::Result<CaptureInfo>>>,
    /// Once set (by a signal), a writer that cannot keep up is no longer waited for.
    give_up: Option<Arc<AtomicBool>>,
    /// Frames not written because the writer was given up on.
    abandoned: u64,
}

impl Capture {
    /// Starts the writer for the links `lab.capture.links`. `epoch_ns` is added to every timestamp:
    /// the Unix time of the run's start on the wall clock, 0 in virtual time.
    pub fn start(lab: &Lab, target: Target, epoch_ns: u64) -> std::io::Result<Capture> {
        let mut iface_of = vec![None; lab.links.len()];
        let mut names = Vec::new();
        for (i, id) in lab.capture.links.iter().enumerate() {
            iface_of[id.index()] = Some(u32::try_from(i).unwrap_or(u32::MAX));
            names.push(lab.link(*id).name.clone());
        }
        let mut w = match target {
            Target::Pcapng(sink) => writer::Writer::pcapng(sink, &names)?,
            Target::PcapDir(dir) => writer::Writer::pcap_dir(&dir, &names)?,
        };
        let files = w.files();
        let next_iface = u32::try_from(names.len()).unwrap_or(u32::MAX);
        let (tx, rx) = sync_channel::<Batch>(BATCHES_IN_FLIGHT);
        let (back_tx, back_rx) = sync_channel::<Batch>(BATCHES_IN_FLIGHT + 2);
        let thread = std::thread::Builder::new().name("netlab-capture".into()).spawn(move || {
            loop {
                // Flush whenever there is nothing to do, so that the file on disk is always whole.
                let batch = match rx.try_recv() {
                    Ok(b) => b,
                    Err(std::sync::mpsc::TryRecvError::Empty) => {
                        w.flush()?;
                        match rx.recv() {
                            Ok(b) => b,
                            Err(_) => break,
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                };
                for l in &batch.new_links {
                    w.add_link(l)?;
                }
                for r in &batch.records {
                    let data = &batch.data[r.start as usize..(r.start + r.len) as usize];
                    w.write(r.iface, r.ts_ns, r.orig_len, data)?;
                }
                let mut batch = batch;
                batch.data.clear();
                batch.records.clear();
                batch.new_links.clear();
                let _ = back_tx.try_send(batch);
            }
            w.finish()
        })?;
        Ok(Capture {
            on: iface_of.iter().map(Option::is_some).collect(),
            names: lab.links.iter().map(|l| l.name.clone()).collect(),
            next_iface,
            files,
            iface_of,
            batch: Batch::with_capacity(),
            epoch_ns,
            tx: Some(tx),
            recycled: back_rx,
            thread: Some(thread),
            give_up: None,
            abandoned: 0,
        })
    }

    /// The lab's default capture folder and file name for this run.
    #[must_use]
    pub fn default_target(lab: &Lab, run_name: &str) -> Target {
        match lab.capture.format {
            CaptureFormat::Pcapng => Target::Pcapng(Sink::File(lab.capture.dir.join(format!("{run_name}.pcapng")))),
            CaptureFormat::Pcap => Target::PcapDir(lab.capture.dir.join(run_name)),
        }
    }

    /// Hands the frames gathered so far to the writer.
    pub fn flush(&mut self) {
        if self.batch.records.is_empty() {
            return;
        }
        let fresh = self.recycled.try_recv().unwrap_or_else(|_| Batch::with_capacity());
        let mut full = std::mem::replace(&mut self.batch, fresh);
        let Some(tx) = &self.tx else { return };
        // A full channel is backpressure: the run waits for the writer, so no frame is lost. Only
        // once the run is being stopped, a writer stuck on a reader that does not read is let go.
        loop {
            match tx.try_send(full) {
                Ok(()) => return,
                // A writer that died has its error reported by `finish`.
                Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(b)) => {
                    if self.giving_up() {
                        self.abandoned += b.records.len() as u64;
                        return;
                    }
                    full = b;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }

    /// Has a stop been asked for, after which a blocked writer is not waited for?
    pub fn set_give_up_flag(&mut self, flag: Arc<AtomicBool>) {
        self.give_up = Some(flag);
    }

    fn giving_up(&self) -> bool {
        self.give_up.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Writes what is left, closes the files and reports what was written.
    pub fn finish(mut self) -> std::io::Result<CaptureInfo> {
        self.flush();
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return Err(std::io::Error::other("capture writer is gone"));
        };
        if self.giving_up() {
            // Stopping: give a slow reader a moment, then leave the writer blocked where it is.
            let deadline = std::time::Instant::now() + GIVE_UP_AFTER;
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if !thread.is_finished() || self.abandoned > 0 {
                let lost = if self.abandoned > 0 {
                    format!("at least {} frames were not written", self.abandoned)
                } else {
                    "the frames still queued were not written".to_string()
                };
                return Err(std::io::Error::other(format!("the capture's reader stopped reading; {lost}")));
            }
        }
        match thread.join() {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::other("capture writer thread panicked")),
        }
    }

    /// Starts or stops capturing a link while the run goes on. A link captured for the first time
    /// gets its interface (or its file) then.
    pub fn set_link(&mut self, link: crate::topology::LinkId, on: bool) {
        let Some(slot) = self.on.get_mut(link.index()) else { return };
        *slot = on;
        if on && self.iface_of[link.index()].is_none() {
            self.iface_of[link.index()] = Some(self.next_iface);
            self.next_iface += 1;
            self.batch.new_links.push(self.names[link.index()].clone());
        }
    }

    /// Which links are being captured now.
    #[must_use]
    pub fn links_on(&self) -> &[bool] {
        &self.on
    }

    /// The files being written (`-` for standard output).
    #[must_use]
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The writer has stopped early: its output failed (a full disk, a closed pipe).
    #[must_use]
    pub fn writer_stopped(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Observer for Capture {
    #[inline]
    fn frame(&mut self, ev: &FrameEvent<'_>) {
        if !matches!(ev.fate, Fate::Delivered | Fate::ToRemote) {
            return;
        }
        let Some(Some(iface)) = self.iface_of.get(ev.link.index()).copied() else { return };
        if !self.on[ev.link.index()] {
            return;
        }
        let len = ev.frame.len().min(SNAPLEN);
        let start = self.batch.data.len();
        self.batch.data.extend_from_slice(&ev.frame[..len]);
        self.batch.records.push(Record {
            ts_ns: self.epoch_ns.saturating_add(ev.time.as_nanos()),
            iface,
            orig_len: u32::try_from(ev.frame.len()).unwrap_or(u32::MAX),
            start: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(len).unwrap_or(u32::MAX),
        });
        if self.batch.data.len() >= BATCH_BYTES {
            self.flush();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.flush();
            self.tx = None;
            if let Some(t) = self.thread.take() {
                if !self.giving_up() || t.is_finished() {
                    let _ = t.join();
                }
            }
        }
    }
}

/// Makes sure standard output is flushed when it is the sink.
pub(crate) fn flush_stdout() {
    let _ = std::io::stdout().flush();
}
