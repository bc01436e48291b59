//! The lessons, registered in one place. Each lesson is a folder: its steps (`mod.rs`), its
//! check, its bonus exercise; its texts are embedded from `lessons/NN-slug/`.

pub mod container;
pub mod cpu;
pub mod join;
pub mod mount;
pub mod net;
pub mod oom;
pub mod pid;
pub mod user;
pub mod uts_ipc;

use crate::lesson::LessonInfo;

/// Every lesson, in order.
pub static ALL: &[&LessonInfo] = &[
    &pid::INFO,
    &net::INFO,
    &oom::INFO,
    &cpu::INFO,
    &container::INFO,
    &uts_ipc::INFO,
    &mount::INFO,
    &user::INFO,
    &join::INFO,
];

/// The optional exercises, in lesson order (`nslab list` shows them after the lessons).
pub static BONUSES: &[&LessonInfo] = &[&net::BONUS, &oom::mystery::BONUS, &container::net::BONUS];

/// A lesson by number (`3`, `03`) or slug (`oom`).
pub fn find(key: &str) -> Option<&'static LessonInfo> {
    ALL.iter().copied().find(|l| l.is_named(key))
}

/// A bonus exercise by its key (`2b`, `03b`, `oom-3b`, `oom-b`).
pub fn bonus(key: &str) -> Option<&'static LessonInfo> {
    BONUSES.iter().copied().find(|b| b.is_named(key))
}

/// A bonus that nslab runs as a lesson of its own, having steps (`nslab lesson 3b`
/// prepares the mystery the learner solves); 2b and 5b are done by hand and have none.
pub fn bonus_lesson(key: &str) -> Option<&'static LessonInfo> {
    bonus(key).filter(|b| !b.step_list().is_empty())
}

/// Every lesson and bonus that has steps: whose options `nslab lesson` takes.
pub fn with_steps() -> impl Iterator<Item = &'static LessonInfo> {
    ALL.iter()
        .chain(BONUSES.iter())
        .copied()
        .filter(|l| !l.step_list().is_empty())
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
        assert!(find("2b").is_none(), "a bonus is not a lesson");
    }

    #[test]
    fn every_bonus_is_found_by_its_key_and_names_its_lesson() {
        for b in BONUSES {
            let parent = b.parent.expect("a bonus has a parent");
            for key in [
                b.key(),
                format!("0{}", b.key()),
                b.slug.to_string(),
                format!("{}-b", parent.slug),
            ] {
                let found = bonus(&key).unwrap_or_else(|| panic!("{} found by {key}", b.slug));
                assert!(std::ptr::eq(found, *b), "{key}");
            }
            assert!(b.is_bonus());
            assert!(std::ptr::eq(find(&b.number.to_string()).unwrap(), parent));
            assert!(b.slug.starts_with(parent.slug), "{}", b.slug);
            assert_ne!(b.summary, parent.summary, "{} has its own summary", b.slug);
            assert!(!b.expected_check.trim().is_empty());
            let (id, text) = b.general_hint().expect("a general hint");
            assert_eq!(id, format!("{}-general", b.key()), "its own: {}", b.slug);
            assert!(!text.is_empty());
        }
        assert!(bonus("4b").is_none());
        assert!(bonus("3").is_none());
        assert_eq!(find("3").unwrap().general_hint().unwrap().0, "general");
        for l in ALL {
            assert!(!l.is_bonus(), "{}", l.slug);
        }
    }

    /// A lesson is declared once: its step table and the `## Step x: Title` headings of its
    /// lesson.md are the same list.
    #[test]
    fn every_step_table_is_exactly_the_step_headings_of_its_text() {
        for l in ALL.iter().chain(BONUSES.iter()) {
            let table: Vec<(char, &str)> = l.step_list().iter().map(|s| (s.id, s.title)).collect();
            let headings: Vec<(char, &str)> =
                l.step_headings().iter().map(|h| (h.id, h.title)).collect();
            if l.step_list().is_empty() && l.is_bonus() {
                continue; // done by hand: the parent's text, no steps of its own
            }
            assert_eq!(
                table,
                headings,
                "lesson {}: step table vs lesson.md",
                l.key()
            );
        }
    }

    #[test]
    fn every_lesson_text_has_its_steps_exercise_and_hints() {
        for l in ALL {
            assert!(!l.intro().is_empty(), "lesson {} has an intro", l.number);
            for s in l.step_list() {
                let body = l.step_text(s.id).unwrap_or_default();
                assert!(!body.is_empty(), "lesson {} step {}", l.number, s.id);
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

    /// An option belongs to one lesson: `nslab lesson` takes them all, and the same name
    /// twice would be a clap panic at start.
    #[test]
    fn lesson_options_have_distinct_names() {
        let mut seen = std::collections::HashSet::new();
        for l in with_steps() {
            for a in l.steps.options() {
                assert!(
                    seen.insert(a.get_id().to_string()),
                    "{}: --{}",
                    l.slug,
                    a.get_id()
                );
            }
        }
    }
}
