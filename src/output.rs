//! Output files that are never seen half-written: each is written to a temporary file in the same
//! folder and renamed over its name once whole, so that a run killed, a full disk, or two runs
//! writing the same path never leave a cut-short file behind. And a run's outputs never share a
//! path with each other or with its lab file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file being written under a temporary name, renamed to its own name by [`AtomicFile::commit`].
/// Dropped without a commit, it leaves no trace. A path that names something other than a regular
/// file (a device such as `/dev/null`, a pipe) is written in place: it cannot be replaced.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    temp: Option<PathBuf>,
    file: File,
}

/// A temporary name beside `path`: hidden, and distinct for each process.
#[must_use]
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.part", std::process::id()))
}

/// Whether `path` exists and is something other than a regular file.
fn special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file())
}

impl AtomicFile {
    /// Creates the temporary file now, so that a path that cannot be written fails before a run.
    pub fn create(path: &Path) -> std::io::Result<AtomicFile> {
        crate::capture::make_parent_dir(path)?;
        if special(path) {
            let file = std::fs::OpenOptions::new().write(true).open(path)?;
            return Ok(AtomicFile { path: path.to_path_buf(), temp: None, file });
        }
        let temp = temp_path(path);
        let file = File::create(&temp)?;
        Ok(AtomicFile { path: path.to_path_buf(), temp: Some(temp), file })
    }

    /// The file to write to.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Writes `bytes` as the whole file and puts it in place.
    pub fn write_all_and_commit(mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.commit()
    }

    /// Flushes the file to disk and renames it over its name.
    pub fn commit(mut self) -> std::io::Result<()> {
        self.file.flush()?;
        if let Some(temp) = self.temp.take() {
            self.file.sync_all()?;
            if let Err(e) = std::fs::rename(&temp, &self.path) {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// A path as the file system knows it: symbolic links resolved, and for a file that does not exist
/// yet, its folder resolved and its name kept.
#[must_use]
pub fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let parent = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// The first pair of uses (by their labels) that name the same file, once paths are resolved.
/// `-` (standard output) is compared as a name of its own.
#[must_use]
pub fn clash<'a>(uses: &[(&'a str, &Path)]) -> Option<(&'a str, &'a str, PathBuf)> {
    let keyed: Vec<(&str, PathBuf)> = uses
        .iter()
        .map(|(what, p)| (*what, if p.as_os_str() == "-" { PathBuf::from("-") } else { resolved(p) }))
        .collect();
    for (i, (a, pa)) in keyed.iter().enumerate() {
        if let Some((b, _)) = keyed[i + 1..].iter().find(|(_, pb)| pb == pa) {
            return Some((a, b, pa.clone()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("report.json");
        std::fs::write(&path, "old").expect("write");
        let f = AtomicFile::create(&path).expect("create");
        // Until the commit, the old file stands and the new one is hidden.
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        f.write_all_and_commit(b"new").expect("commit");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        // Dropped without a commit: no trace, the file stands.
        drop(AtomicFile::create(&path).expect("create"));
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
    }

    #[test]
    fn a_device_is_written_in_place() {
        let f = AtomicFile::create(Path::new("/dev/null")).expect("create");
        f.write_all_and_commit(b"gone").expect("commit");
        assert!(Path::new("/dev/null").exists());
    }

    #[test]
    fn paths_that_resolve_to_one_file_clash() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = dir.path().join("out");
        let link = dir.path().join("link");
        std::fs::write(&a, "x").expect("write");
        std::os::unix::fs::symlink(&a, &link).expect("symlink");
        let dotted = dir.path().join("sub").join("..").join("out");
        std::fs::create_dir(dir.path().join("sub")).expect("dir");
        assert_eq!(
            clash(&[("--capture", &a), ("--report", &link)]).map(|c| (c.0, c.1)),
            Some(("--capture", "--report"))
        );
        assert!(clash(&[("--capture", &dotted), ("--report", &a)]).is_some());
        let new = dir.path().join("new.json");
        assert!(clash(&[("--capture", &new), ("--report", &dir.path().join("sub/../new.json"))]).is_some());
        assert!(clash(&[("--capture", &a), ("--report", &new)]).is_none());
        assert!(clash(&[("--capture", Path::new("-")), ("--report", &new)]).is_none());
    }
}
