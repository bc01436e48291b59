//! IPC namespaces' objects as `ipcs` lists them, POSIX queues as their mqueue filesystem
//! shows them, and hostnames side by side.

use super::table;
use crate::kernel::ipc::{key_text, Objects};
use crate::kernel::ipcns::QueueFile;

/// `ipcs -m -q` of one IPC namespace: its segments, then its queues.
pub fn objects(o: &Objects) -> String {
    let mut out = String::from("Shared memory segments (ipcs -m)\n");
    if o.segments.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = o
            .segments
            .iter()
            .map(|s| {
                vec![
                    key_text(s.key),
                    s.id.to_string(),
                    format!("{:o}", s.perms),
                    s.bytes.to_string(),
                    s.attached.to_string(),
                    s.creator.to_string(),
                ]
            })
            .collect();
        out.push_str(&indented(&table::render(
            &["KEY", "SHMID", "PERMS", "BYTES", "NATTCH", "CREATOR PID"],
            &rows,
        )));
    }
    out.push_str("Message queues (ipcs -q)\n");
    if o.queues.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = o
            .queues
            .iter()
            .map(|q| {
                vec![
                    key_text(q.key),
                    q.id.to_string(),
                    format!("{:o}", q.perms),
                    q.bytes.to_string(),
                    q.messages.to_string(),
                ]
            })
            .collect();
        out.push_str(&indented(&table::render(
            &["KEY", "MSQID", "PERMS", "USED-BYTES", "MESSAGES"],
            &rows,
        )));
    }
    out
}

fn indented(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// An mqueue filesystem's listing: `ls DIR` and each file's contents.
pub fn mqueue(dir: &str, files: &[QueueFile]) -> String {
    if files.is_empty() {
        return format!("{dir}: (no queues)\n");
    }
    let rows: Vec<Vec<String>> = files
        .iter()
        .map(|f| {
            let contents: Vec<&str> = f.contents.split_whitespace().collect();
            vec![format!("{dir}/{}", f.name), contents.join(" ")]
        })
        .collect();
    table::render(&["FILE", "CONTENTS"], &rows)
}

/// One row per process: who it is, its UTS namespace, the hostname it sees.
pub fn hostnames(rows: &[(String, Option<u64>, String)]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(who, ns, name)| {
            vec![
                who.clone(),
                ns.map(|i| format!("uts:[{i}]"))
                    .unwrap_or_else(|| "?".into()),
                name.clone(),
            ]
        })
        .collect();
    table::render(&["PROCESS", "UTS NAMESPACE", "HOSTNAME (uname -n)"], &rows)
}
