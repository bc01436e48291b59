//! The learner's progress: which steps they have seen, which lessons they finished, which
//! checks passed. Saved for the person who invoked nslab, also under sudo, where it is read
//! and written with the learner's own file rights (never root's through the learner's
//! paths); written atomically under a lock, in nslab's own versioned format only, and
//! recovered from its backup if damaged.

use crate::fsutil::write_atomic;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LessonProgress {
    /// Step letters seen, in order.
    #[serde(default)]
    pub steps_seen: String,
    #[serde(default)]
    pub lesson_done: bool,
    #[serde(default)]
    pub check_passed: bool,
    /// Unix time of the last change.
    #[serde(default)]
    pub updated: u64,
}

/// The format nslab writes; the first format had no version field (read as 0).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    #[serde(default)]
    pub version: u32,
    pub lessons: BTreeMap<u32, LessonProgress>,
}

/// Whose progress this is and where it lives.
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub file: PathBuf,
}

/// The learner: `SUDO_UID`'s user under sudo, otherwise the caller. `NSLAB_PROGRESS`
/// names the file directly (tests, shared classroom machines).
pub fn owner() -> Owner {
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let sudo_uid = std::env::var("SUDO_UID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    let (uid, gid, home) = match sudo_uid.filter(|_| euid == 0) {
        Some(uid) => match nix::unistd::User::from_uid(uid.into()) {
            Ok(Some(u)) => (uid, u.gid.as_raw(), Some(u.dir)),
            // A static nslab asks the system's user databases through plug-ins that must
            // match the C library it was built with; /etc/passwd needs none.
            _ => match std::fs::read_to_string("/etc/passwd")
                .ok()
                .and_then(|text| passwd_entry(&text, uid))
            {
                Some((gid, dir)) => (uid, gid, Some(dir)),
                None => (euid, egid, None),
            },
        },
        None => (euid, egid, None),
    };
    let file = if let Some(p) = std::env::var_os("NSLAB_PROGRESS") {
        PathBuf::from(p)
    } else {
        let data = match (&home, std::env::var_os("XDG_DATA_HOME")) {
            (None, Some(x)) if !x.is_empty() => PathBuf::from(x),
            _ => home
                .clone()
                .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("/root"))
                .join(".local/share"),
        };
        data.join("nslab/progress.json")
    };
    Owner { uid, gid, file }
}

/// The group and home directory of `uid` in passwd(5) text.
fn passwd_entry(text: &str, uid: u32) -> Option<(u32, PathBuf)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid))
            .then(|| Some((f[3].parse().ok()?, PathBuf::from(f[5]))))?
    })
}

fn backup_path(file: &Path) -> PathBuf {
    file.with_extension("json.bak")
}

fn lock_path(file: &Path) -> PathBuf {
    file.with_extension("json.lock")
}

/// Progress files are small; anything bigger is not nslab's.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The learner's file system rights for the length of `f`: under sudo nslab is root, and the
/// progress file's directory is the learner's, where a planted symlink could otherwise make
/// root read or overwrite any file.
fn as_learner<T>(owner: &Owner, f: impl FnOnce() -> T) -> T {
    crate::kernel::sys::with_file_rights_of(owner.uid, owner.gid, f)
}

/// Open without following a symlink: the file must be a regular file of its own.
fn read_plain(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(std::io::Error::other("larger than any progress file"));
    }
    let mut data = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut data)?;
    Ok(data)
}

/// What a progress file holds.
enum Read {
    Missing,
    Good(Progress),
    Damaged(String),
}

/// nslab's own format only: the version it writes (or the first, which had none) and no
/// field it does not know.
fn parse(data: &[u8]) -> std::result::Result<Progress, String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("not UTF-8: {e}"))?;
    let p: Progress = serde_json::from_str(text).map_err(|e| e.to_string())?;
    match p.version {
        0 | FORMAT_VERSION => Ok(p),
        v => Err(format!("format version {v}, not {FORMAT_VERSION}")),
    }
}

fn read(path: &Path) -> Read {
    match read_plain(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Read::Missing,
        Err(e) => Read::Damaged(e.to_string()),
        Ok(data) => match parse(&data) {
            Ok(p) => Read::Good(p),
            Err(e) => Read::Damaged(e),
        },
    }
}

/// Held while progress is read, changed and written, so that a check in one terminal and a
/// lesson in another do not lose each other's update.
fn lock(owner: &Owner) -> Option<std::fs::File> {
    crate::fsutil::lock_beside(&lock_path(&owner.file))
}

/// Load progress. A damaged file (unreadable, a symlink, not nslab's format) is set aside as
/// `progress.json.damaged` and the last good copy (`progress.json.bak`) is used; the
/// returned note says what happened.
pub fn load() -> (Progress, Option<String>) {
    let owner = owner();
    as_learner(&owner, || {
        let _lock = lock(&owner);
        load_locked(&owner)
    })
}

fn load_locked(owner: &Owner) -> (Progress, Option<String>) {
    let why = match read(&owner.file) {
        Read::Missing => return (Progress::default(), None),
        Read::Good(p) => return (p, None),
        Read::Damaged(why) => why,
    };
    let aside = owner.file.with_extension("json.damaged");
    let set_aside = std::fs::rename(&owner.file, &aside).is_ok();
    let restored = match read(&backup_path(&owner.file)) {
        Read::Good(p) => Some(p),
        _ => None,
    };
    let note = format!(
        "your progress file {} was damaged ({why}); {} and {}",
        owner.file.display(),
        if set_aside {
            format!("it was kept as {}", aside.display())
        } else {
            "it could not be moved aside".to_string()
        },
        if restored.is_some() {
            "the last good copy was restored"
        } else {
            "progress starts afresh"
        }
    );
    let p = restored.unwrap_or_default();
    if set_aside {
        let _ = save_locked(owner, &p);
    }
    (p, Some(note))
}

fn save_locked(owner: &Owner, p: &Progress) -> Result<()> {
    let dir = owner
        .file
        .parent()
        .context("progress file has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Ok(old) = read_plain(&owner.file) {
        if parse(&old).is_ok() {
            write_atomic(&backup_path(&owner.file), &old)?;
        }
    }
    let mut p = p.clone();
    p.version = FORMAT_VERSION;
    write_atomic(&owner.file, serde_json::to_string_pretty(&p)?.as_bytes())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Read, change and write under the lock; a lesson never fails because of progress.
fn modify<T>(f: impl FnOnce(&mut Progress) -> T) -> Result<T> {
    let owner = owner();
    as_learner(&owner, || {
        let _lock = lock(&owner);
        let (mut p, note) = load_locked(&owner);
        if let Some(n) = note {
            let _ = writeln!(std::io::stderr(), "warning: {n}");
        }
        let r = f(&mut p);
        save_locked(&owner, &p).map(|()| r)
    })
}

fn update(lesson: u32, f: impl FnOnce(&mut LessonProgress)) {
    let r = modify(|p| {
        let entry = p.lessons.entry(lesson).or_default();
        f(entry);
        entry.updated = now();
    });
    if let Err(e) = r {
        // Progress is a convenience; a lesson never fails because of it.
        let _ = writeln!(std::io::stderr(), "warning: could not save progress: {e:#}");
    }
}

pub fn record_step(lesson: u32, step: char) {
    update(lesson, |l| {
        if !l.steps_seen.contains(step) {
            l.steps_seen.push(step);
        }
    });
}

pub fn record_lesson_done(lesson: u32) {
    update(lesson, |l| l.lesson_done = true);
}

pub fn record_check(lesson: u32, passed: bool) {
    update(lesson, |l| l.check_passed |= passed);
}

/// Forget what was recorded for `lesson` (every lesson when `None`); returns whether there
/// was anything to forget. The system is not touched, only the progress file.
pub fn forget(lesson: Option<u32>) -> Result<bool> {
    modify(|p| match lesson {
        Some(n) => p.lessons.remove(&n).is_some(),
        None => !std::mem::take(&mut p.lessons).is_empty(),
    })
}

/// The one-word status of a lesson for `nslab list`.
pub fn status(p: &Progress, lesson: u32) -> &'static str {
    match p.lessons.get(&lesson) {
        Some(l) if l.check_passed => "passed",
        Some(l) if l.lesson_done => "exercise open",
        Some(l) if !l.steps_seen.is_empty() => "started",
        _ => "new",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_user_in_passwd_text() {
        let text = "root:x:0:0:root:/root:/bin/bash\n\
                    # a comment\n\
                    ada:x:1000:1000:Ada,,,:/home/ada:/bin/bash\n\
                    bad:x:notanumber:1:::\n";
        assert_eq!(
            passwd_entry(text, 1000),
            Some((1000, PathBuf::from("/home/ada")))
        );
        assert_eq!(passwd_entry(text, 0), Some((0, PathBuf::from("/root"))));
        assert_eq!(passwd_entry(text, 1001), None);
    }

    // One test owns NSLAB_PROGRESS so parallel tests never race on it.
    #[test]
    fn saves_loads_and_recovers_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/progress.json");
        std::env::set_var("NSLAB_PROGRESS", &file);

        assert_eq!(load().0, Progress::default());
        record_step(1, 'a');
        record_step(1, 'b');
        record_step(1, 'a');
        assert_eq!(load().0.lessons[&1].steps_seen, "ab");
        record_check(1, true);
        let good = load().0;
        assert!(good.lessons[&1].check_passed);
        assert_eq!(status(&good, 1), "passed");
        assert_eq!(status(&good, 2), "new");

        // A torn or hand-edited file: the backup (the state before the last save) comes back.
        std::fs::write(&file, "{ this is not json").unwrap();
        let (restored, note) = load();
        assert!(note.unwrap().contains("damaged"));
        assert_eq!(restored.lessons[&1].steps_seen, "ab");
        assert!(file.with_extension("json.damaged").exists());
        // And it was saved back, so the next load is clean.
        assert!(load().1.is_none());
        assert!(std::fs::read_to_string(&file)
            .unwrap()
            .contains("\"version\": 1"));

        // Any read error, not only bad JSON, takes the same path: bad UTF-8 …
        std::fs::write(&file, b"{\"lessons\": {\"1\": \xff}}").unwrap();
        let (p, note) = load();
        assert!(note.unwrap().contains("not UTF-8"));
        assert_eq!(p.lessons[&1].steps_seen, "ab");
        // … another program's JSON, or a format nslab does not know …
        for foreign in [
            r#"{"lessons": {}, "owner": "root"}"#,
            r#"{"version": 7, "lessons": {}}"#,
            r#"{"something": "else"}"#,
        ] {
            std::fs::write(&file, foreign).unwrap();
            let (p, note) = load();
            assert!(note.is_some(), "{foreign} is not nslab's");
            assert_eq!(p.lessons[&1].steps_seen, "ab", "{foreign}");
        }
        // … and a symlink planted where the file is: never followed, never copied.
        let secret = dir.path().join("secret.json");
        std::fs::write(&secret, r#"{"lessons": {"9": {"steps_seen": "secret"}}}"#).unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(&secret, &file).unwrap();
        let (p, note) = load();
        assert!(note.is_some());
        assert!(!p.lessons.contains_key(&9), "the symlink's target was read");
        record_step(2, 'a');
        let bak = std::fs::read_to_string(file.with_extension("json.bak")).unwrap();
        assert!(!bak.contains("secret"), "{bak}");
        assert!(std::fs::read_to_string(&secret).unwrap().contains("secret"));

        // The first format (no version field) is nslab's own and still read.
        std::fs::write(&file, r#"{"lessons": {"4": {"steps_seen": "a"}}}"#).unwrap();
        let (p, note) = load();
        assert!(note.is_none());
        assert_eq!(p.lessons[&4].steps_seen, "a");

        // Updates from several places at once are all kept (the lock).
        let writers: Vec<_> = (10..18)
            .map(|lesson| {
                std::thread::spawn(move || {
                    for step in ['a', 'b', 'c', 'd', 'e'] {
                        record_step(lesson, step);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let p = load().0;
        for lesson in 10..18 {
            assert_eq!(p.lessons[&lesson].steps_seen, "abcde", "lesson {lesson}");
        }
        assert_eq!(p.lessons[&4].steps_seen, "a");
        std::env::remove_var("NSLAB_PROGRESS");
    }

    fn lesson_progress() -> impl proptest::strategy::Strategy<Value = LessonProgress> {
        use proptest::prelude::*;
        ("[a-h]{0,8}", any::<bool>(), any::<bool>(), any::<u64>()).prop_map(
            |(steps_seen, lesson_done, check_passed, updated)| LessonProgress {
                steps_seen,
                lesson_done,
                check_passed,
                updated,
            },
        )
    }

    proptest::proptest! {
        /// Any bytes where progress should be: nslab's format or refused as damaged.
        #[test]
        fn any_bytes_parse_as_progress_or_are_refused(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse(&data);
        }

        /// What nslab writes it reads back the same; a field it does not write is refused.
        #[test]
        fn saved_progress_reads_back_and_a_foreign_field_is_refused(
            lessons in proptest::collection::btree_map(1u32..10, lesson_progress(), 0..9),
            field in "[a-z_]{1,10}"
        ) {
            let p = Progress { version: FORMAT_VERSION, lessons };
            let text = serde_json::to_string_pretty(&p).unwrap();
            proptest::prop_assert_eq!(parse(text.as_bytes()), Ok(p));
            if !["version", "lessons"].contains(&field.as_str()) {
                let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
                v[&field] = serde_json::Value::from(1);
                proptest::prop_assert!(parse(v.to_string().as_bytes()).is_err());
            }
        }
    }
}
