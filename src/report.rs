//! A check's result as plain data: the facts observed and the report made of them. Below
//! both the checks that make it and the views that draw it, so neither imports the other.

use serde::Serialize;

/// The value of a fact a check will measure over a while, shown by a quick judgement before
/// the full one follows (`nslab check 4 --watch`, as a process joins a cgroup).
pub const MEASURING: &str = "(measuring)";

/// One observed property of the learner's work, already normalized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fact {
    pub name: String,
    pub value: String,
}

impl Fact {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Fact {
        Fact {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A check's verdict on the learner's work, as `nslab check` shows it and `--json` writes it.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub lesson: u32,
    /// What was checked, as typed after `nslab check`: `3`, or a bonus such as `3b`.
    pub exercise: String,
    pub slug: &'static str,
    pub passed: bool,
    pub verdict: &'static str,
    pub judged: String,
    pub facts: Vec<Fact>,
    pub observed: String,
    pub expected: String,
    /// Changed lines only, `- expected …` / `+ observed …`; empty on a pass.
    pub diff: String,
    pub hint_id: Option<&'static str>,
    pub hint: Option<String>,
    pub verify: Vec<String>,
    pub notes: Vec<String>,
    /// Some facts are [`MEASURING`]: a full judgement follows at once.
    pub measuring: bool,
}
