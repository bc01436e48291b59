//! The learner's progress: which steps they have seen, which lessons they finished, which
//! checks passed. Saved for the person who invoked nslab, also under sudo (the file belongs
//! to them, not root), written atomically, and recovered from its backup if damaged.

use crate::fsutil::write_atomic;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    #[serde(default)]
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

fn backup_path(file: &std::path::Path) -> PathBuf {
    file.with_extension("json.bak")
}

/// Load progress. A damaged file is set aside as `progress.json.damaged` and the last good
/// copy (`progress.json.bak`) is used; the returned note says what happened.
pub fn load() -> (Progress, Option<String>) {
    let owner = owner();
    let text = match std::fs::read_to_string(&owner.file) {
        Ok(t) => t,
        Err(_) => return (Progress::default(), None),
    };
    match serde_json::from_str::<Progress>(&text) {
        Ok(p) => (p, None),
        Err(e) => {
            let aside = owner.file.with_extension("json.damaged");
            let _ = std::fs::rename(&owner.file, &aside);
            let restored = std::fs::read_to_string(backup_path(&owner.file))
                .ok()
                .and_then(|b| serde_json::from_str::<Progress>(&b).ok());
            let note = format!(
                "your progress file {} was damaged ({e}); it was kept as {} and {}",
                owner.file.display(),
                aside.display(),
                if restored.is_some() {
                    "the last good copy was restored"
                } else {
                    "progress starts afresh"
                }
            );
            let p = restored.unwrap_or_default();
            let _ = save(&p);
            (p, Some(note))
        }
    }
}

/// Save atomically, keep the previous good version as a backup, and hand both files to
/// the learner (under sudo nslab runs as root).
pub fn save(p: &Progress) -> Result<()> {
    let owner = owner();
    let dir = owner
        .file
        .parent()
        .context("progress file has no directory")?;
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        chown(dir, &owner);
    }
    if let Ok(old) = std::fs::read(&owner.file) {
        if serde_json::from_slice::<Progress>(&old).is_ok() {
            let bak = backup_path(&owner.file);
            write_atomic(&bak, &old)?;
            chown(&bak, &owner);
        }
    }
    write_atomic(&owner.file, serde_json::to_string_pretty(p)?.as_bytes())?;
    chown(&owner.file, &owner);
    Ok(())
}

fn chown(path: &std::path::Path, owner: &Owner) {
    if nix::unistd::geteuid().is_root() {
        let _ = nix::unistd::chown(path, Some(owner.uid.into()), Some(owner.gid.into()));
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn update(lesson: u32, f: impl FnOnce(&mut LessonProgress)) {
    let (mut p, note) = load();
    if let Some(n) = note {
        let _ = writeln!(std::io::stderr(), "warning: {n}");
    }
    let entry = p.lessons.entry(lesson).or_default();
    f(entry);
    entry.updated = now();
    if let Err(e) = save(&p) {
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
    let (mut p, note) = load();
    if let Some(n) = note {
        let _ = writeln!(std::io::stderr(), "warning: {n}");
    }
    let had = match lesson {
        Some(n) => p.lessons.remove(&n).is_some(),
        None => !std::mem::take(&mut p.lessons).is_empty(),
    };
    if had {
        save(&p)?;
    }
    Ok(had)
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
        std::env::remove_var("NSLAB_PROGRESS");
    }
}
