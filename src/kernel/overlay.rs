//! overlayfs layers as they lie on disk: what each directory of an overlay holds, a
//! whiteout (a character device 0/0 in the upper layer) told from a file.
//!
//! Reading only. A learner's layers are reached through `/proc/PID/root` (or `cwd`), so a
//! path resolves in the learner's mount namespace; nothing is ever written there, no file
//! is opened (a FIFO would block), and a walk stops at a bound.

use serde::{Deserialize, Serialize};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// At most this many entries are read from one layer.
pub const MAX_ENTRIES: usize = 2000;
/// And no deeper than this below its top.
pub const MAX_DEPTH: usize = 16;
/// A preview of a file of nslab's own: its first lines, at most this many bytes.
const PREVIEW_BYTES: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    /// A character device 0/0: overlayfs's mark of a name deleted through the overlay.
    Whiteout,
    Other,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Dir => "directory",
            EntryKind::File => "file",
            EntryKind::Symlink => "symlink",
            EntryKind::Whiteout => "whiteout (char 0/0)",
            EntryKind::Other => "other",
        }
    }
}

/// One name in a layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative to the layer's top.
    pub path: PathBuf,
    pub kind: EntryKind,
    pub size: u64,
    /// Last status change, in nanoseconds since the epoch.
    pub ctime_ns: i128,
    /// The first lines of a file, joined by ` | ` (nslab's own layers only).
    pub preview: Option<String>,
}

/// What one layer directory holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The directory as the mount options name it.
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
    /// The walk stopped at [`MAX_ENTRIES`] or [`MAX_DEPTH`].
    pub truncated: bool,
    /// Why the directory could not be read, if it could not.
    pub unreadable: Option<String>,
    /// The directory's own last modification, in nanoseconds since the epoch.
    pub mtime_ns: Option<i128>,
}

impl Layer {
    pub fn entry(&self, path: &Path) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }

    pub fn whiteouts(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::Whiteout)
    }
}

fn ns_of(secs: i64, nsec: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nsec)
}

/// Where `path`, as process `pid` names it, is reached from nslab's side: through the
/// process's root (absolute) or its working directory (relative: a mount made with
/// `lowerdir=A:B` from that directory).
pub fn seen_by(pid: i32, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(rel) => PathBuf::from(format!("/proc/{pid}/root")).join(rel),
        Err(_) => PathBuf::from(format!("/proc/{pid}/cwd")).join(path),
    }
}

/// Read the layer directory `actual` (named `shown` in the mount options). With
/// `previews`, the first line of each small file too: only for nslab's own layers.
pub fn read_layer(shown: &Path, actual: &Path, previews: bool) -> Layer {
    let mut layer = Layer {
        dir: shown.to_path_buf(),
        ..Layer::default()
    };
    match std::fs::symlink_metadata(actual) {
        Ok(m) if m.is_dir() => layer.mtime_ns = Some(ns_of(m.mtime(), m.mtime_nsec())),
        Ok(_) => {
            layer.unreadable = Some("not a directory".into());
            return layer;
        }
        Err(e) => {
            layer.unreadable = Some(e.to_string());
            return layer;
        }
    }
    walk(actual, Path::new(""), 0, previews, &mut layer);
    layer.entries.sort_by(|a, b| a.path.cmp(&b.path));
    layer
}

fn walk(dir: &Path, rel: &Path, depth: usize, previews: bool, layer: &mut Layer) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<_> = read.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        if layer.entries.len() >= MAX_ENTRIES {
            layer.truncated = true;
            return;
        }
        let full = dir.join(&name);
        let Ok(m) = std::fs::symlink_metadata(&full) else {
            continue;
        };
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_file() {
            EntryKind::File
        } else if ft.is_char_device() && m.rdev() == 0 {
            EntryKind::Whiteout
        } else {
            EntryKind::Other
        };
        let preview = (previews && kind == EntryKind::File)
            .then(|| first_line(&full))
            .flatten();
        let path = rel.join(&name);
        layer.entries.push(Entry {
            path: path.clone(),
            kind,
            size: m.len(),
            ctime_ns: ns_of(m.ctime(), m.ctime_nsec()),
            preview,
        });
        if kind == EntryKind::Dir {
            if depth + 1 >= MAX_DEPTH {
                layer.truncated = true;
            } else {
                walk(&full, &path, depth + 1, previews, layer);
            }
        }
    }
}

fn first_line(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut buf = vec![0u8; PREVIEW_BYTES];
    let mut f = std::fs::File::open(path).ok()?;
    let n = f.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    Some(text.lines().take(3).collect::<Vec<_>>().join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tree_in_order_with_kinds_and_previews() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("etc/deep")).unwrap();
        std::fs::write(
            tmp.path().join("a.txt"),
            "first line\nsecond\nthird\nfourth\n",
        )
        .unwrap();
        std::fs::write(tmp.path().join("etc/deep/z"), "").unwrap();
        std::os::unix::fs::symlink("a.txt", tmp.path().join("link")).unwrap();
        let l = read_layer(Path::new("L"), tmp.path(), true);
        let names: Vec<String> = l
            .entries
            .iter()
            .map(|e| format!("{} {:?}", e.path.display(), e.kind))
            .collect();
        assert_eq!(
            names,
            [
                "a.txt File",
                "etc Dir",
                "etc/deep Dir",
                "etc/deep/z File",
                "link Symlink"
            ]
        );
        assert_eq!(
            l.entries[0].preview.as_deref(),
            Some("first line | second | third")
        );
        assert!(l.mtime_ns.is_some() && l.unreadable.is_none() && !l.truncated);
        let quiet = read_layer(Path::new("L"), tmp.path(), false);
        assert!(quiet.entries.iter().all(|e| e.preview.is_none()));
    }

    #[test]
    fn a_missing_layer_says_so() {
        let l = read_layer(Path::new("x"), Path::new("/nonexistent/nslab-x"), false);
        assert!(l.unreadable.is_some() && l.entries.is_empty());
    }

    #[test]
    fn paths_resolve_in_the_processs_namespace() {
        assert_eq!(seen_by(7, Path::new("/a/b")), Path::new("/proc/7/root/a/b"));
        assert_eq!(seen_by(7, Path::new("a")), Path::new("/proc/7/cwd/a"));
    }
}
