//! The lessons: metadata as data (texts embedded from `lessons/NN-slug/`), one Rust module
//! per lesson for what it does and how its exercise is checked.

pub mod container;
pub mod container_net;
pub mod cpu;
pub mod net;
pub mod oom;
pub mod oom_mystery;
pub mod pid;

use crate::checks::Observation;
use crate::engine::Stage;
use anyhow::Result;

/// One step of a lesson: its letter (the `## Step a: …` section of lesson.md) and whether
/// it needs a person at a terminal (skipped under `--yes`).
#[derive(Clone, Copy, Debug)]
pub struct StepSpec {
    pub id: char,
    pub interactive: bool,
}

/// What `nslab check` was told on the command line.
#[derive(Clone, Debug, Default)]
pub struct CheckArgs {
    /// Judge the namespace / cgroup of this PID instead of searching.
    pub pid: Option<i32>,
    /// Judge this cgroup (lesson 3): a name, a cgroup path or a directory.
    pub cgroup: Option<String>,
}

/// Everything about a lesson that is data: texts, steps, expected check snapshot.
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
    pub steps: &'static [StepSpec],
    pub make: fn() -> Box<dyn Lesson>,
    /// Observe the learner's work on the live system (needs no lesson state).
    pub check: fn(&CheckArgs) -> Result<Observation>,
}

/// What a lesson does: its steps, with the state they carry from one to the next.
pub trait Lesson {
    /// Run step `id`, showing through `stage` what happens.
    fn run_step(&mut self, id: char, stage: &mut Stage) -> Result<()>;
}

/// What `run_step` gives for an id its lesson has no step for: a step listed in the
/// lesson's data without code behind it is a bug, not something to skip.
pub fn no_such_step(info: &LessonInfo, id: char) -> anyhow::Error {
    anyhow::anyhow!(
        "internal error: lesson {} lists step {id} but has no code for it",
        info.number
    )
}

/// Every lesson, in order.
pub static ALL: &[&LessonInfo] = &[
    &pid::INFO,
    &net::INFO,
    &oom::INFO,
    &cpu::INFO,
    &container::INFO,
];

/// A lesson by number (`3`, `03`) or slug (`oom`).
pub fn find(key: &str) -> Option<&'static LessonInfo> {
    let key = key.trim();
    if let Ok(n) = key.parse::<u32>() {
        return ALL.iter().copied().find(|l| l.number == n);
    }
    ALL.iter()
        .copied()
        .find(|l| l.slug.eq_ignore_ascii_case(key))
}

/// The optional exercises, in lesson order (`nslab list` shows them after the lessons).
pub static BONUSES: &[&LessonInfo] = &[&net::BONUS, &oom_mystery::BONUS, &container_net::BONUS];

/// A bonus exercise by its key (`2b`, `3b`, `5b`): its own expected facts; its lesson's hints
/// and solution.
pub fn bonus(key: &str) -> Option<&'static LessonInfo> {
    match key.trim().to_ascii_lowercase().as_str() {
        "2b" | "02b" | "net-b" | "net-2b" => Some(&net::BONUS),
        "3b" | "03b" | "oom-b" | "oom-3b" => Some(&oom_mystery::BONUS),
        "5b" | "05b" | "container-b" | "container-5b" => Some(&container_net::BONUS),
        _ => None,
    }
}

/// A bonus that nslab runs as a lesson of its own, having steps (`nslab lesson 3b`
/// prepares the mystery the learner solves); 2b and 5b are done by hand and have none.
pub fn bonus_lesson(key: &str) -> Option<&'static LessonInfo> {
    bonus(key).filter(|b| !b.steps.is_empty())
}

/// The `## ` sections of a markdown text: (heading, body).
fn sections(text: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    let mut offset = 0;
    let mut in_fence = false;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence && line.starts_with("## ") {
            starts.push(offset);
        }
        offset += line.len();
    }
    for (i, &s) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        let chunk = &text[s..end];
        let (head, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
        out.push((
            head.trim_start_matches("## ").trim(),
            body.trim_matches('\n'),
        ));
    }
    out
}

impl LessonInfo {
    /// A bonus (`2b`, `3b`, `5b`) rather than one of the numbered lessons.
    pub fn is_bonus(&self) -> bool {
        !ALL.iter().any(|l| std::ptr::eq(*l, self))
    }

    /// What the learner types after `nslab lesson` / `nslab check`: `3`, or `3b`.
    pub fn key(&self) -> String {
        if self.is_bonus() {
            format!("{}b", self.number)
        } else {
            self.number.to_string()
        }
    }

    /// The text before the first step: what the lesson is about.
    pub fn intro(&self) -> &'static str {
        let body = self.text.split_once('\n').map(|(_, b)| b).unwrap_or("");
        let end = body.find("\n## ").unwrap_or(body.len());
        body[..end].trim_matches('\n')
    }

    /// (title, body) of step `id` from `## Step a: Title`.
    pub fn step_text(&self, id: char) -> Option<(&'static str, &'static str)> {
        let prefix = format!("Step {id}:");
        sections(self.text)
            .into_iter()
            .find(|(h, _)| h.starts_with(&prefix))
            .map(|(h, b)| (h[prefix.len()..].trim(), b))
    }

    /// The `## Exercise…` section: heading and body.
    pub fn exercise(&self) -> Option<(&'static str, &'static str)> {
        sections(self.text)
            .into_iter()
            .find(|(h, _)| h.starts_with("Exercise"))
    }

    /// The hint for problem `id` (a `## id` section of hints.md).
    pub fn hint(&self, id: &str) -> Option<&'static str> {
        sections(self.hints)
            .into_iter()
            .find(|(h, _)| *h == id)
            .map(|(_, b)| b)
    }

    /// The hint for when nothing more particular applies: a bonus's own (`## 3b-general`),
    /// else the lesson's `## general`. (id, text)
    pub fn general_hint(&self) -> Option<(&'static str, &'static str)> {
        let own = format!("{}-general", self.key());
        let all = sections(self.hints);
        all.iter()
            .find(|(h, _)| *h == own)
            .or_else(|| all.iter().find(|(h, _)| *h == "general"))
            .copied()
    }

    /// Hint ids in the order hints.md gives them.
    pub fn hint_ids(&self) -> Vec<&'static str> {
        sections(self.hints).into_iter().map(|(h, _)| h).collect()
    }
}

/// For the lessons' tests: every hint a check can name exists, and the expected snapshot
/// lists exactly these facts, in this order.
#[cfg(test)]
pub(crate) fn assert_hints_and_facts(info: &LessonInfo, hint_ids: &[&str], facts: &[&str]) {
    for id in hint_ids {
        assert!(info.hint(id).is_some(), "{}: no hint {id}", info.slug);
    }
    let names: Vec<&str> = info
        .expected_check
        .lines()
        .map(|l| l.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(names, facts, "{}: the facts of a passing check", info.slug);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_number_and_slug() {
        assert_eq!(find("1").unwrap().slug, "pid");
        assert_eq!(find("01").unwrap().slug, "pid");
        assert_eq!(find("PID").unwrap().number, 1);
        assert!(find("99").is_none());
        assert!(find("nope").is_none());
    }

    #[test]
    fn every_bonus_is_found_by_its_key_and_names_its_lesson() {
        for b in BONUSES {
            let found = bonus(&b.key()).expect("found by its key");
            assert!(std::ptr::eq(found, *b), "{}", b.slug);
            assert!(bonus(b.slug).is_some(), "found by its slug {}", b.slug);
            assert!(b.is_bonus());
            let lesson = find(&b.number.to_string()).expect("its lesson exists");
            assert!(b.slug.starts_with(lesson.slug), "{}", b.slug);
            assert_ne!(b.summary, lesson.summary, "{} has its own summary", b.slug);
            assert!(!b.expected_check.trim().is_empty());
        }
        assert!(bonus("4b").is_none());
        for b in BONUSES {
            let (id, text) = b.general_hint().expect("a general hint");
            assert_eq!(id, format!("{}-general", b.key()), "its own: {}", b.slug);
            assert!(!text.is_empty());
        }
        assert_eq!(find("3").unwrap().general_hint().unwrap().0, "general");
    }

    #[test]
    fn every_lesson_text_has_its_steps_exercise_and_hints() {
        for l in ALL {
            assert!(!l.intro().is_empty(), "lesson {} has an intro", l.number);
            for s in l.steps {
                let (title, body) = l
                    .step_text(s.id)
                    .unwrap_or_else(|| panic!("lesson {} step {}", l.number, s.id));
                assert!(
                    !title.is_empty() && !body.is_empty(),
                    "lesson {} step {}",
                    l.number,
                    s.id
                );
            }
            assert!(
                l.exercise().is_some(),
                "lesson {} has an exercise",
                l.number
            );
            assert!(
                l.hint("general").is_some(),
                "lesson {} has a general hint",
                l.number
            );
            assert!(!l.expected_check.trim().is_empty());
        }
    }
}
