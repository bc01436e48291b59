//! `/proc/PID/mountinfo` (proc(5)), parsed in one place for every reader: the cgroup
//! layout, the container's mount tables, the named network namespaces and the removal of
//! a directory tree with mounts inside it.
//!
//! A line is
//! `id parent major:minor root mount_point options [optional...] - fstype source super_options`.
//! The kernel writes space, tab, newline and backslash in paths as octal escapes (`\040`);
//! any other byte of a path appears as it is, so a path need not be UTF-8 and the text is
//! parsed as bytes.

use anyhow::{Context, Result};
use serde::Serialize;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// One mount: one line of mountinfo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Unique id of the mount (may be reused after it is unmounted).
    pub mount_id: u32,
    /// The mount this one is mounted on (itself for the root of the namespace's tree).
    pub parent_id: u32,
    /// The device (`st_dev`) of the filesystem: `major:minor`.
    pub major: u32,
    pub minor: u32,
    /// The directory of the filesystem mounted here (a bind mount's source subtree).
    pub root: PathBuf,
    /// Where it is mounted, relative to the reader's root.
    pub mount_point: PathBuf,
    /// Per-mount options: `rw,nosuid,relatime`.
    pub options: String,
    /// The optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`;
    /// empty when the mount is private.
    pub propagation: Vec<String>,
    /// `ext4`, `proc`, `cgroup2`, `fuse.sshfs`…
    pub fs_type: String,
    /// Filesystem-specific source: `/dev/vda1`, `tmpfs`, `none`.
    pub source: String,
    /// Per-superblock options: `rw,errors=remount-ro`; a v1 cgroup's controllers.
    pub super_options: String,
    /// The same options one by one, split where the kernel wrote a comma (a comma inside
    /// a value, such as an overlay layer's path, is escaped and stays in its option).
    pub super_option_list: Vec<String>,
}

/// The layers of an overlay mount, from its `lowerdir=`, `upperdir=`, `workdir=` options
/// (`lowerdir+=` and `datadir+=` too, one layer each), as the mounter wrote them: absolute,
/// or relative to the directory it mounted from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OverlayLayers {
    /// Topmost first, as in `lowerdir=TOP:…:BOTTOM`.
    pub lower: Vec<PathBuf>,
    pub upper: Option<PathBuf>,
    pub work: Option<PathBuf>,
}

impl Mount {
    /// The mount is a peer in a shared group (`shared:N` among its optional fields).
    pub fn is_shared(&self) -> bool {
        self.propagation.iter().any(|p| p.starts_with("shared:"))
    }

    /// The peer group it propagates to and from (`shared:N`).
    pub fn peer_group(&self) -> Option<u32> {
        self.tagged("shared:")
    }

    /// The peer group it receives from as a slave (`master:N`).
    pub fn master(&self) -> Option<u32> {
        self.tagged("master:")
    }

    fn tagged(&self, tag: &str) -> Option<u32> {
        self.propagation
            .iter()
            .find_map(|p| p.strip_prefix(tag)?.parse().ok())
    }

    /// `shared:3`, `master:3`, `shared:4 master:3` or `private`, as a learner reads it.
    pub fn propagation_text(&self) -> String {
        if self.propagation.is_empty() {
            "private".into()
        } else {
            self.propagation.join(" ")
        }
    }

    /// An overlay's layers; `None` for any other filesystem.
    pub fn overlay(&self) -> Option<OverlayLayers> {
        if self.fs_type != "overlay" {
            return None;
        }
        let mut layers = OverlayLayers::default();
        for o in &self.super_option_list {
            let Some((key, value)) = o.split_once('=') else {
                continue;
            };
            match key {
                "lowerdir" => layers.lower.extend(split_layers(value)),
                "lowerdir+" | "datadir+" => layers.lower.push(unescape_layer(value)),
                "upperdir" => layers.upper = Some(unescape_layer(value)),
                "workdir" => layers.work = Some(unescape_layer(value)),
                _ => {}
            }
        }
        Some(layers)
    }
}

/// `lowerdir=A:B\:C` → `A`, `B:C`: overlay separates layers by `:` and takes `\` before
/// a character as that character itself (the mounter's own escapes, kept as given).
fn split_layers(value: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            ':' => out.push(PathBuf::from(std::mem::take(&mut cur))),
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() || !out.is_empty() {
        out.push(PathBuf::from(cur));
    }
    out.retain(|p| !p.as_os_str().is_empty());
    out
}

fn unescape_layer(value: &str) -> PathBuf {
    let mut cur = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            _ => cur.push(c),
        }
    }
    PathBuf::from(cur)
}

/// Decode mountinfo's octal escapes (`\040` → space). A backslash not followed by three
/// octal digits, or by three that make more than 255 (`\400`), is kept as it is.
pub fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 <= field.len() {
            let digits = &field[i + 1..i + 4];
            if digits.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// Escape a path as the kernel writes it in mountinfo (space, tab, newline, backslash).
#[cfg(test)]
pub fn escape(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\\') {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

fn path_of(field: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(field)))
}

fn text_of(field: &[u8]) -> String {
    String::from_utf8_lossy(&unescape(field)).into_owned()
}

fn number<T: std::str::FromStr>(field: &[u8]) -> Option<T> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// One line; `None` when it is not a mountinfo line.
pub fn parse_line(line: &[u8]) -> Option<Mount> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let sep = fields.iter().position(|f| *f == b"-")?;
    if sep < 6 || fields.len() < sep + 3 {
        return None;
    }
    let dev = std::str::from_utf8(fields[2]).ok()?;
    let (major, minor) = dev.split_once(':')?;
    Some(Mount {
        mount_id: number(fields[0])?,
        parent_id: number(fields[1])?,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root: path_of(fields[3]),
        mount_point: path_of(fields[4]),
        options: text_of(fields[5]),
        propagation: fields[6..sep].iter().map(|f| text_of(f)).collect(),
        fs_type: text_of(fields[sep + 1]),
        source: text_of(fields[sep + 2]),
        super_options: fields.get(sep + 3).map(|f| text_of(f)).unwrap_or_default(),
        super_option_list: fields
            .get(sep + 3)
            .map(|f| f.split(|&b| b == b',').map(text_of).collect())
            .unwrap_or_default(),
    })
}

/// Parse mountinfo text; lines that do not parse are skipped.
pub fn parse_bytes(text: &[u8]) -> Vec<Mount> {
    text.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

/// Parse mountinfo text; lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    parse_bytes(text.as_bytes())
}

/// The mount table `pid` sees.
pub fn of_pid(pid: i32) -> Result<Vec<Mount>> {
    read(&format!("/proc/{pid}/mountinfo"))
}

/// The mount table nslab itself sees.
pub fn own() -> Result<Vec<Mount>> {
    read("/proc/self/mountinfo")
}

fn read(path: &str) -> Result<Vec<Mount>> {
    // A read-only query, not one of the lesson's actions: not traced.
    let text = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    Ok(parse_bytes(&text))
}

/// The mount points at or below `dir`, the last mounted first (children before the
/// mounts they sit on), so each can be unmounted in turn.
pub fn points_under(mounts: &[Mount], dir: &Path) -> Vec<PathBuf> {
    mounts
        .iter()
        .rev()
        .filter(|m| m.mount_point.starts_with(dir))
        .map(|m| m.mount_point.clone())
        .collect()
}

/// The raw mountinfo line whose mount point is `point` (as the learner would `grep` it).
pub fn line_at(text: &[u8], point: &Path) -> Option<String> {
    text.split(|&b| b == b'\n')
        .find(|l| parse_line(l).is_some_and(|m| m.mount_point.as_os_str() == point.as_os_str()))
        .map(|l| String::from_utf8_lossy(l).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::os::unix::ffi::OsStrExt;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
101 27 254:0 /var/tmp/nslab-rootfs-1 /var/tmp/my\\040root rw,relatime master:1 propagate_from:1 - ext4 /dev/vda rw
garbage line
";

    #[test]
    fn parses_every_field() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[1],
            Mount {
                mount_id: 27,
                parent_id: 1,
                major: 254,
                minor: 0,
                root: "/".into(),
                mount_point: "/".into(),
                options: "rw,relatime".into(),
                propagation: vec!["shared:1".into()],
                fs_type: "ext4".into(),
                source: "/dev/vda".into(),
                super_options: "rw,discard".into(),
                super_option_list: vec!["rw".into(), "discard".into()],
            }
        );
        assert!(m[1].is_shared() && !m[0].is_shared());
        assert_eq!(m[0].mount_point, Path::new("/proc"));
        assert!(m[0].propagation.is_empty());
        assert_eq!(m[2].mount_point, Path::new("/var/tmp/my root"));
        assert_eq!(m[2].root, Path::new("/var/tmp/nslab-rootfs-1"));
        assert_eq!(m[2].propagation, vec!["master:1", "propagate_from:1"]);
    }

    #[test]
    fn an_overlays_layers_and_propagation() {
        let m = parse(
            "72 68 0:41 / /mnt/m rw,relatime shared:7 master:3 - overlay none \
             rw,lowerdir=a\\134\\054b:c\\134\\072d:/x\\040y,upperdir=/u\\054v,workdir=w,uuid=on\n\
             73 68 0:42 / /mnt/n rw - overlay none ro,lowerdir+=/l1,lowerdir+=/l2,datadir+=/d\n\
             74 68 0:43 / /mnt/o rw - tmpfs tmpfs rw\n",
        );
        let o = m[0].overlay().unwrap();
        assert_eq!(
            o.lower,
            vec![
                PathBuf::from("a,b"),
                PathBuf::from("c:d"),
                PathBuf::from("/x y")
            ]
        );
        assert_eq!(o.upper, Some(PathBuf::from("/u,v")));
        assert_eq!(o.work, Some(PathBuf::from("w")));
        assert_eq!(
            m[0].super_option_list.len(),
            5,
            "a comma in a path splits nothing"
        );
        assert_eq!((m[0].peer_group(), m[0].master()), (Some(7), Some(3)));
        assert_eq!(m[0].propagation_text(), "shared:7 master:3");
        let n = m[1].overlay().unwrap();
        assert_eq!(
            n.lower,
            vec![
                PathBuf::from("/l1"),
                PathBuf::from("/l2"),
                PathBuf::from("/d")
            ]
        );
        assert_eq!((n.upper, n.work), (None, None));
        assert!(m[2].overlay().is_none());
        assert_eq!(m[2].propagation_text(), "private");
    }

    #[test]
    fn unescapes_what_the_kernel_escapes_and_keeps_the_rest() {
        assert_eq!(unescape(b"a\\040b\\011c\\012d\\134e"), b"a b\tc\nd\\e");
        // A trailing escape is decoded too.
        assert_eq!(unescape(b"/mnt/x\\040"), b"/mnt/x ");
        assert_eq!(unescape(b"\\040"), b" ");
        // More than 255: kept literally, neither wrapped nor a panic.
        assert_eq!(unescape(b"\\400\\777x"), b"\\400\\777x");
        // Not three octal digits: kept.
        assert_eq!(unescape(b"\\08\\04\\"), b"\\08\\04\\");
        assert_eq!(unescape(b"\\377"), [0xff]);
    }

    #[test]
    fn a_mount_below_a_directory_with_a_space_is_found() {
        let text = "\
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
300 27 254:0 /var/tmp/a /var/tmp/my\\040lab rw - ext4 /dev/vda rw
301 300 0:90 / /var/tmp/my\\040lab/proc rw,nosuid - proc proc rw
302 300 0:91 / /var/tmp/my\\040lab/dev rw,nosuid - tmpfs tmpfs rw
303 27 0:92 / /var/tmp/my\\040labx rw - tmpfs tmpfs rw
304 27 0:93 / /var/tmp/my rw - tmpfs tmpfs rw
";
        let points = points_under(&parse(text), Path::new("/var/tmp/my lab"));
        assert_eq!(
            points,
            vec![
                PathBuf::from("/var/tmp/my lab/dev"),
                PathBuf::from("/var/tmp/my lab/proc"),
                PathBuf::from("/var/tmp/my lab"),
            ]
        );
    }

    #[test]
    fn finds_the_line_of_a_mount_point() {
        let l = line_at(SAMPLE.as_bytes(), Path::new("/var/tmp/my root")).unwrap();
        assert!(l.starts_with("101 27 "));
        assert!(line_at(SAMPLE.as_bytes(), Path::new("/var/tmp/my")).is_none());
    }

    #[test]
    fn reads_its_own_table() {
        let m = of_pid(std::process::id() as i32).unwrap();
        assert!(m.iter().any(|e| e.mount_point == Path::new("/")));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_bytes(&line);
        }

        #[test]
        fn parsing_never_panics_on_near_lines(
            fields in proptest::collection::vec(
                prop_oneof![
                    Just(b"-".to_vec()),
                    Just(b"\\".to_vec()),
                    Just(b"\\7".to_vec()),
                    Just(b"\\777".to_vec()),
                    Just(b"1:2".to_vec()),
                    Just(b":".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..8),
                ],
                0..14,
            )
        ) {
            let _ = parse_bytes(&fields.join(&b' '));
        }

        #[test]
        fn unescape_undoes_escape(path in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(unescape(&escape(&path)), path);
        }

        #[test]
        fn a_mount_point_comes_back_from_its_line(
            path in proptest::collection::vec(any::<u8>().prop_filter("not NUL", |b| *b != 0), 1..64)
        ) {
            let mut line = b"40 27 0:32 / ".to_vec();
            line.extend(escape(&path));
            line.extend_from_slice(b" rw shared:3 - tmpfs tmpfs rw\n");
            let m = parse_bytes(&line);
            prop_assert_eq!(m.len(), 1);
            prop_assert_eq!(m[0].mount_point.as_os_str().as_bytes(), &path[..]);
        }
    }
}
