//! The writer thread's formats: pcapng through pcap-file, with the options pcap-file leaves out.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, TsResolution};

use super::{CaptureInfo, SNAPLEN};
use crate::output::AtomicFile;

/// Where a pcapng stream goes.
#[derive(Debug, Clone)]
pub enum Sink {
    File(PathBuf),
    Stdout,
}

type Out = BufWriter<Box<dyn Write + Send>>;

pub(super) struct Writer {
    format: Format,
    /// The files, written under temporary names and put in place when the writer is done, however
    /// it ends: a capture is never seen cut short under its own name, and a failed one keeps what
    /// it wrote.
    outputs: Vec<AtomicFile>,
}

enum Format {
    Pcapng { w: PcapNgWriter<Out>, info: CaptureInfo },
    Pcap { files: Vec<BufWriter<File>>, info: CaptureInfo, dir: PathBuf, used: std::collections::BTreeSet<String> },
}

fn io(e: pcap_file::PcapError) -> std::io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// `laptop:eth0<->sw1` → `laptop_eth0--sw1`, safe in any file system.
#[must_use]
pub fn file_stem(link: &str) -> String {
    link.replace("<->", "--")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect()
}

/// An I/O error that names the file or folder it is about.
fn at(path: &Path, what: &str) -> impl FnOnce(std::io::Error) -> std::io::Error {
    let place = format!("{what} {}", path.display());
    move |e| std::io::Error::new(e.kind(), format!("{place}: {e}"))
}

fn make_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir).map_err(at(dir, "cannot create the folder"))
}

/// Makes the folder `path` goes in, if it is missing.
pub fn make_parent_dir(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => make_dir(dir),
        None => Ok(()),
    }
}

/// Creates `path` under a temporary name; returns the file to write and what puts it in place.
fn create(path: &Path) -> std::io::Result<(File, AtomicFile)> {
    make_parent_dir(path)?;
    let mut out = AtomicFile::create(path).map_err(at(path, "cannot create"))?;
    let file = out.file().try_clone().map_err(at(path, "cannot create"))?;
    Ok((file, out))
}

/// The interface of one link: named after it, with nanosecond timestamps.
fn idb(link: &str) -> InterfaceDescriptionBlock<'static> {
    InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: SNAPLEN as u32,
        options: vec![
            InterfaceDescriptionOption::IfName(Cow::Owned(link.to_string())),
            InterfaceDescriptionOption::IfDescription(Cow::Owned(format!("netlab link {link}"))),
            // pcap-file writes nanoseconds but leaves the resolution at the default microseconds.
            InterfaceDescriptionOption::IfTsResol(9),
        ],
    }
}

/// A classic pcap file's header: Ethernet, nanosecond timestamps.
fn pcap_header() -> PcapHeader {
    PcapHeader {
        snaplen: SNAPLEN as u32,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        endianness: Endianness::Little,
        ..Default::default()
    }
}

impl Writer {
    pub fn pcapng(sink: Sink, links: &[String]) -> std::io::Result<Writer> {
        let mut outputs = Vec::new();
        let (out, name): (Box<dyn Write + Send>, String) = match sink {
            Sink::File(p) => {
                let (file, output) = create(&p)?;
                outputs.push(output);
                (Box::new(file), p.display().to_string())
            }
            Sink::Stdout => (Box::new(std::io::stdout()), "-".to_string()),
        };
        let shb = SectionHeaderBlock {
            endianness: Endianness::Little,
            options: vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
                "netlab {}",
                env!("CARGO_PKG_VERSION")
            )))],
            ..Default::default()
        };
        let mut w = PcapNgWriter::with_section_header(BufWriter::with_capacity(1 << 20, out), shb).map_err(io)?;
        for l in links {
            w.write_pcapng_block(idb(l)).map_err(io)?;
        }
        w.get_mut().flush()?;
        let info = CaptureInfo { files: vec![name], frames: 0, bytes: 0 };
        Ok(Writer { format: Format::Pcapng { w, info }, outputs })
    }

    pub fn pcap_dir(dir: &Path, links: &[String]) -> std::io::Result<Writer> {
        make_dir(dir)?;
        let mut files = Vec::new();
        let mut outputs = Vec::new();
        let mut names = Vec::new();
        let mut used = std::collections::BTreeSet::new();
        for (i, l) in links.iter().enumerate() {
            // Distinct link names can make the same file name (`x y` and `x_y`); keep both files.
            let mut stem = file_stem(l);
            if !used.insert(stem.clone()) {
                stem = format!("{stem}-{i}");
                used.insert(stem.clone());
            }
            let path = dir.join(format!("{stem}.pcap"));
            let (file, output) = create(&path)?;
            outputs.push(output);
            let mut w = BufWriter::with_capacity(256 * 1024, file);
            pcap_header().write_to(&mut w).map_err(io)?;
            w.flush()?;
            files.push(w);
            names.push(path.display().to_string());
        }
        let info = CaptureInfo { files: names, frames: 0, bytes: 0 };
        Ok(Writer { format: Format::Pcap { files, info, dir: dir.to_path_buf(), used }, outputs })
    }

    pub fn write(&mut self, iface: u32, ts_ns: u64, orig_len: u32, data: &[u8]) -> std::io::Result<()> {
        match &mut self.format {
            Format::Pcapng { w, info } => {
                let epb = EnhancedPacketBlock {
                    interface_id: iface,
                    timestamp: Duration::from_nanos(ts_ns),
                    original_len: orig_len,
                    data: Cow::Borrowed(data),
                    options: vec![],
                };
                w.write_pcapng_block(epb).map_err(io)?;
                info.frames += 1;
                info.bytes += data.len() as u64;
            }
            Format::Pcap { files, info, .. } => {
                if let Some(w) = files.get_mut(iface as usize) {
                    PcapPacket { timestamp: Duration::from_nanos(ts_ns), orig_len, data: Cow::Borrowed(data) }
                        .write_to::<_, byteorder::LittleEndian>(w, TsResolution::NanoSecond, SNAPLEN as u32)
                        .map_err(io)?;
                    info.frames += 1;
                    info.bytes += data.len() as u64;
                }
            }
        }
        Ok(())
    }

    /// The files being written.
    pub fn files(&self) -> Vec<String> {
        match &self.format {
            Format::Pcapng { info, .. } | Format::Pcap { info, .. } => info.files.clone(),
        }
    }

    /// A link captured from now on: its interface (pcapng) or its file (pcap), numbered after the
    /// others.
    pub fn add_link(&mut self, link: &str) -> std::io::Result<()> {
        match &mut self.format {
            Format::Pcapng { w, .. } => w.write_pcapng_block(idb(link)).map(|_| ()).map_err(io),
            Format::Pcap { files, info, dir, used } => {
                let mut stem = file_stem(link);
                if !used.insert(stem.clone()) {
                    stem = format!("{stem}-{}", files.len());
                    used.insert(stem.clone());
                }
                let path = dir.join(format!("{stem}.pcap"));
                let (file, output) = create(&path)?;
                self.outputs.push(output);
                let mut w = BufWriter::with_capacity(256 * 1024, file);
                pcap_header().write_to(&mut w).map_err(io)?;
                files.push(w);
                info.files.push(path.display().to_string());
                Ok(())
            }
        }
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.format {
            Format::Pcapng { w, .. } => w.get_mut().flush(),
            Format::Pcap { files, .. } => files.iter_mut().try_for_each(Write::flush),
        }
    }

    pub fn finish(mut self) -> std::io::Result<CaptureInfo> {
        self.flush()?;
        super::flush_stdout();
        for o in std::mem::take(&mut self.outputs) {
            o.commit()?;
        }
        Ok(match &self.format {
            Format::Pcapng { info, .. } | Format::Pcap { info, .. } => info.clone(),
        })
    }
}

impl Drop for Writer {
    /// A writer that stopped on an error still puts what it wrote in place.
    fn drop(&mut self) {
        let _ = self.flush();
        for o in std::mem::take(&mut self.outputs) {
            let _ = o.commit();
        }
    }
}
