//! The lesson model: what a lesson is. Its texts and facts as data, its steps as one table,
//! its check as observe then judge, its bonus exercises with a parent. The engine, the checks
//! and every lesson depend on this module; it depends on none of them.

mod check;
pub mod instance;
mod stage;
mod steps;
mod text;

pub use check::{run_check, Check, CheckArgs, Fact, Observation, MEASURING};
pub use stage::Stage;
pub use steps::{Lesson, NoSteps, Run, Step, StepInfo, Steps, Table};

use anyhow::Result;

/// Everything about a lesson or a bonus exercise: texts, steps, how its exercise is checked.
pub struct LessonInfo {
    pub number: u32,
    pub slug: &'static str,
    pub title: &'static str,
    /// One line for `nslab list`.
    pub summary: &'static str,
    /// lessons/NN-slug/lesson.md: intro, `## Step x: …` sections, `## Exercise…`.
    pub text: &'static str,
    /// lessons/NN-slug/hints.md: `## id` sections, chosen by what a check found wrong.
    pub hints: &'static str,
    /// lessons/NN-slug/solution.md.
    pub solution: &'static str,
    /// lessons/NN-slug/expected/check.txt: the facts of a passing check.
    pub expected_check: &'static str,
    /// The lesson a bonus exercise belongs to; `None` for a numbered lesson.
    pub parent: Option<&'static LessonInfo>,
    /// The steps (`&Table::<MyLesson>::OF`), or `&NoSteps` for an exercise done by hand only.
    pub steps: &'static dyn Steps,
    /// Observe the learner's work on the live system and judge it (`run_check::<MyCheck>`).
    pub check: fn(&CheckArgs) -> Result<Observation>,
    /// Its lesson and check need root (`sudo nslab …`); lesson 8's do not: that is its point.
    pub needs_root: bool,
    /// The names of what its steps make, as its texts write them (`nslab-red`,
    /// `nslab/oom`): a run beside another of the same lesson gives them its number.
    pub names: &'static [&'static str],
}

impl LessonInfo {
    /// A bonus (`2b`, `3b`, `5b`) rather than one of the numbered lessons.
    pub fn is_bonus(&self) -> bool {
        self.parent.is_some()
    }

    /// What the learner types after `nslab lesson` / `nslab check`: `3`, or `3b`.
    pub fn key(&self) -> String {
        if self.is_bonus() {
            format!("{}b", self.number)
        } else {
            self.number.to_string()
        }
    }

    /// Whether `key` names this lesson: `3`, `03`, `oom`; a bonus also by `3b`, `03b`, its
    /// slug and `oom-b`.
    pub fn is_named(&self, key: &str) -> bool {
        let key = key.trim().to_ascii_lowercase();
        let own = self.key();
        key == own
            || key.strip_prefix('0') == Some(own.as_str())
            || key == self.slug
            || self.parent.is_some_and(|p| key == format!("{}-b", p.slug))
    }

    /// How the learner runs `nslab VERB KEY`: with sudo when the lesson needs root.
    pub fn command(&self, verb: &str) -> String {
        let sudo = if self.needs_root { "sudo " } else { "" };
        format!("{sudo}nslab {verb} {}", self.key())
    }

    /// The steps, in order.
    pub fn step_list(&self) -> Vec<StepInfo> {
        self.steps.list()
    }
}
