//! What nslab and the two processes say to each other: an order one line of JSON, every
//! answer with the system calls made for it.

use super::MapFile;
use crate::kernel::sys::{Channel, ChildIo};
use crate::kernel::trace;
use anyhow::{anyhow, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize)]
pub(super) enum Order {
    // To the learner's process.
    WriteMap { file: MapFile, text: String },
    TryUnshare { flags: i32 },
    RunIdTool { tool: String, args: Vec<String> },
    // To the process inside.
    Whoami,
    TmpFile,
    TryOpen { path: PathBuf },
    TryMountTmpfs { target: PathBuf },
    Unshare { flags: i32 },
    Pid1Proc,
    LinksUp,
}

/// Every answer from a child carries the system calls it made for the order.
#[derive(Serialize, Deserialize)]
struct Reply {
    trace: Vec<String>,
    result: std::result::Result<serde_json::Value, String>,
}

pub(super) fn reply<T: Serialize>(io: &mut ChildIo, result: Result<T>) {
    let result = result.and_then(|v| serde_json::to_value(v).map_err(anyhow::Error::from));
    io.send(&Reply {
        trace: trace::take(),
        result: result.map_err(|e| format!("{e:#}")),
    });
}

pub(super) fn receive<T: DeserializeOwned>(channel: &mut Channel) -> Result<T> {
    let r: Reply = channel.recv(REPLY_TIMEOUT)?;
    trace::extend(r.trace);
    let value = r.result.map_err(|e| anyhow!(e))?;
    serde_json::from_value(value).context("an answer that does not fit the order")
}

pub(super) fn ask<T: DeserializeOwned>(channel: &mut Channel, order: &Order) -> Result<T> {
    channel.order(&serde_json::to_string(order)?)?;
    receive(channel)
}
