//! Two runs of one lesson at once: each claims a number under a lock, the first 1, a
//! second beside it 2, and names what it makes with it, so each removes only its own.

use super::record::{save, with_ledger};
use super::runfile::{read_run_file, run_dir};
use anyhow::{Context, Result};

/// Claim the smallest number of `key` (`lesson-2`) up to `max` that no live run holds, and
/// write it in this run's file, which keeps it until [`release`] or this run's end. `None`
/// when all are held.
pub fn claim(key: &str, max: u32, alive: &dyn Fn(i32, u64) -> bool) -> Result<Option<u32>> {
    let dir = run_dir();
    // Beside the run files, not among them: the directory holds run files only.
    let _lock = crate::fsutil::lock_beside(&dir.with_file_name("instances.lock"))
        .with_context(|| format!("locking {} to number this run", dir.display()))?;
    let taken: Vec<u32> = holders(key, alive).into_iter().map(|(_, n)| n).collect();
    let Some(n) = (1..=max).find(|n| !taken.contains(n)) else {
        return Ok(None);
    };
    with_ledger(|l| {
        l.run.instances.insert(key.to_string(), n);
        save(l)
    })
    .context("writing this run's number in its run file (is /run writable?)")?;
    Ok(Some(n))
}

/// Give back every number this run claimed (at its teardown).
pub fn release() {
    let _ = with_ledger(|l| {
        if l.run.instances.is_empty() {
            return Ok(());
        }
        l.run.instances.clear();
        save(l)
    });
}

/// The live runs holding `key`'s numbers, as (PID, number): for saying who else is
/// running.
pub fn holders(key: &str, alive: &dyn Fn(i32, u64) -> bool) -> Vec<(i32, u32)> {
    holders_in(&run_dir(), key, alive)
}

fn holders_in(
    dir: &std::path::Path,
    key: &str,
    alive: &dyn Fn(i32, u64) -> bool,
) -> Vec<(i32, u32)> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(i32, u32)> = entries
        .flatten()
        .filter(|e| e.path().extension().and_then(|x| x.to_str()) == Some("json"))
        .filter_map(|e| read_run_file(&e.path()))
        .filter(|run| run.owner_pid != me && alive(run.owner_pid, run.owner_start_time))
        .filter_map(|run| Some((run.owner_pid, *run.instances.get(key)?)))
        .collect();
    out.sort_by_key(|(_, n)| *n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_runs_hold_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let file = |pid: i32, n: u32| {
            let text = format!(
                r#"{{"owner_pid": {pid}, "owner_start_time": 7, "resources": [], "instances": {{"lesson-2": {n}, "lesson-3": 1}}}}"#
            );
            std::fs::write(dir.path().join(format!("{pid}-7.json")), text).unwrap();
        };
        file(100, 1);
        file(200, 3);
        file(300, 2);
        std::fs::write(dir.path().join("400-7.json"), "{ damaged").unwrap();
        let alive = |pid: i32, _| pid != 300;
        assert_eq!(
            holders_in(dir.path(), "lesson-2", &alive),
            vec![(100, 1), (200, 3)]
        );
        assert_eq!(holders_in(dir.path(), "lesson-4", &alive), vec![]);
    }
}
