//! `nslab check N --watch`: the check's facts as a frame redrawn in place (✓ or ✗ per fact,
//! the hint for the first one that differs), or one line per change when piped.

use crate::kernel::watch::Sources;
use crate::report::{CheckReport, MEASURING};
use crate::ui::{render_markdown_after, wrap};
use console::style;

/// What a fact reads when the check stopped before it (the checks write `-`).
const NOT_REACHED: &str = "(not reached)";

/// What the watch listens to, as a sentence part: "120 cgroup directories, 2 network
/// namespace(s) and process events", or why it has no process events.
pub fn sources(s: &Sources) -> String {
    let watched = format!(
        "{} cgroup directories, {} network namespace(s)",
        s.cgroup_dirs, s.namespaces
    );
    match &s.processes {
        Ok(()) => format!("{watched} and process events"),
        Err(why) => format!(
            "{watched}; no process events ({why}), so a process starting or ending is seen \
             at the next look"
        ),
    }
}

/// A fact's value as the watch shows it.
fn shown(value: &str) -> &str {
    if value == "-" {
        NOT_REACHED
    } else {
        value
    }
}

/// One fact as the watch shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FactState {
    pub name: String,
    /// What was observed; `None` when the check did not get as far as this fact.
    pub seen: Option<String>,
    /// What a passing check shows; `None` for a fact the expected result does not have.
    pub expected: Option<String>,
}

impl FactState {
    pub fn as_expected(&self) -> bool {
        self.seen.is_some() && self.seen == self.expected
    }

    /// Being measured: neither as expected nor not yet.
    pub fn measuring(&self) -> bool {
        self.seen.as_deref() == Some(MEASURING)
    }
}

fn name_value(line: &str) -> Option<(&str, &str)> {
    line.split_once(": ")
        .or_else(|| line.strip_suffix(':').map(|n| (n, "")))
}

/// Every expected fact in order, each with what was seen, then any fact seen that a
/// passing check would not show.
pub fn fact_states(r: &CheckReport) -> Vec<FactState> {
    let mut states: Vec<FactState> = r
        .expected
        .lines()
        .filter_map(name_value)
        .map(|(name, value)| FactState {
            name: name.to_string(),
            seen: r
                .facts
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.value.clone()),
            expected: Some(value.to_string()),
        })
        .collect();
    for f in &r.facts {
        if !states.iter().any(|s| s.name == f.name) {
            states.push(FactState {
                name: f.name.clone(),
                seen: Some(f.value.clone()),
                expected: None,
            });
        }
    }
    states
}

/// The frame shown on a terminal, at most `width` columns wide.
pub fn frame(r: &CheckReport, width: usize) -> String {
    let mut out = String::new();
    let verdict = if r.passed {
        style("PASS").green().bold().to_string()
    } else {
        style("NOT YET").yellow().bold().to_string()
    };
    out.push_str(&wrap(
        &format!("Check {} ({}): {verdict}", r.exercise, r.slug),
        width,
        "",
        "  ",
    ));
    if !r.judged.is_empty() {
        out.push_str(&wrap(&r.judged, width, "Judged: ", "  "));
    }
    out.push('\n');
    for s in fact_states(r) {
        let (mark, seen) = match (s.seen.as_deref(), s.as_expected()) {
            (Some(v), true) => (style("✓").green().to_string(), v),
            (Some("-"), false) => (style("·").dim().to_string(), NOT_REACHED),
            (Some(MEASURING), false) => (style("…").dim().to_string(), MEASURING),
            (Some(v), false) => (style("✗").red().to_string(), v),
            (None, _) => (style("✗").red().to_string(), "(not seen)"),
        };
        out.push_str(&wrap(
            &format!("{}: {seen}", s.name),
            width,
            &format!("  {mark} "),
            "      ",
        ));
        if !s.as_expected() && !s.measuring() {
            let expected = s.expected.as_deref().unwrap_or("(not part of a pass)");
            out.push_str(&wrap(expected, width, "      expected: ", "        "));
        }
    }
    if !r.passed {
        if let Some(h) = &r.hint {
            out.push('\n');
            out.push_str(&render_markdown_after(h.trim(), width, "Hint: ", "  "));
        }
    }
    out
}

/// What has changed between two judgements, for deciding whether to show a new one.
pub fn same_judgement(a: &CheckReport, b: &CheckReport) -> bool {
    a.passed == b.passed && a.facts == b.facts && a.hint_id == b.hint_id && a.judged == b.judged
}

/// Does a quick judgement (`b`, some facts still being measured) say nothing new beside
/// `a`: every fact it did not leave to measure as `a` had it?
pub fn same_so_far(a: &CheckReport, b: &CheckReport) -> bool {
    b.facts.iter().filter(|f| f.value != MEASURING).all(|f| {
        a.facts
            .iter()
            .any(|g| g.name == f.name && g.value == f.value)
    })
}

/// One line for a change, when the output is not a terminal.
pub fn line(r: &CheckReport) -> String {
    let states = fact_states(r);
    let good = states.iter().filter(|s| s.as_expected()).count();
    let mut out = format!(
        "check {}: {}: {good} of {} facts as expected",
        r.exercise,
        r.verdict,
        states.len()
    );
    if let Some(s) = states.iter().find(|s| !s.as_expected() && !s.measuring()) {
        out.push_str(&format!(
            "; {}: {} (expected {})",
            s.name,
            s.seen.as_deref().map_or("not seen", shown),
            s.expected.as_deref().unwrap_or("nothing")
        ));
    }
    if let Some(id) = r.hint_id.filter(|_| !r.passed) {
        out.push_str(&format!("; hint: nslab hint {} {id}", r.exercise));
    }
    let measuring = states.iter().filter(|s| s.measuring()).count();
    if measuring > 0 {
        out.push_str(&format!("; measuring {measuring}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Fact;
    use crate::ui::text_width;
    use crate::views::fixtures::{expected_facts, judged, last_fact_wrong};

    #[test]
    fn a_pass_marks_every_fact() {
        let r = judged(expected_facts(), None);
        let states = fact_states(&r);
        assert!(states.iter().all(FactState::as_expected), "{states:?}");
        let f = frame(&r, 80);
        assert!(
            f.contains("PASS") && !f.contains('✗') && !f.contains("Hint"),
            "{f}"
        );
        assert_eq!(f.matches('✓').count(), states.len(), "{f}");
        assert!(line(&r).starts_with("check 1: pass: "), "{}", line(&r));
    }

    #[test]
    fn a_fact_that_differs_is_marked_with_its_expected_value_and_the_hint() {
        let expected = expected_facts().last().unwrap().value.clone();
        let r = judged(last_fact_wrong(), Some("no-mount-proc"));
        let f = frame(&r, 80);
        assert_eq!(f.matches('✗').count(), 1, "{f}");
        assert!(f.contains("expected:") && f.contains("Hint: "), "{f}");
        let l = line(&r);
        assert!(l.starts_with("check 1: not yet: "), "{l}");
        assert!(l.contains(&format!("(expected {expected})")), "{l}");
        assert!(l.ends_with("hint: nslab hint 1 no-mount-proc"), "{l}");
    }

    #[test]
    fn facts_not_seen_and_facts_not_expected_are_both_shown() {
        let mut facts = vec![expected_facts()[0].clone()];
        facts.push(Fact::new("stray", "something"));
        let r = judged(facts, Some("nothing-found"));
        let states = fact_states(&r);
        assert_eq!(states.len(), expected_facts().len() + 1);
        assert!(states.iter().any(|s| s.seen.is_none()));
        assert!(states.last().unwrap().expected.is_none());
        let f = frame(&r, 80);
        assert!(
            f.contains("(not seen)") && f.contains("(not part of a pass)"),
            "{f}"
        );
    }

    #[test]
    fn facts_the_check_did_not_reach_read_so() {
        let mut facts = expected_facts();
        facts[0].value = "not found".into();
        for f in &mut facts[1..] {
            f.value = "-".into();
        }
        let r = judged(facts, Some("nothing-found"));
        let f = frame(&r, 80);
        assert_eq!(
            f.matches('✗').count(),
            1,
            "only the fact judged is wrong: {f}"
        );
        assert_eq!(
            f.matches("(not reached)").count(),
            expected_facts().len() - 1,
            "{f}"
        );
        assert!(!f.contains(": -\n"), "{f}");
        let mut first_unreached = expected_facts();
        first_unreached[0].value = "-".into();
        let l = line(&judged(first_unreached, Some("nothing-found")));
        assert!(l.contains(": (not reached) (expected "), "{l}");
    }

    #[test]
    fn the_sources_say_whether_process_events_are_heard() {
        let mut s = Sources {
            cgroup_dirs: 120,
            namespaces: 2,
            processes: Ok(()),
        };
        assert_eq!(
            sources(&s),
            "120 cgroup directories, 2 network namespace(s) and process events"
        );
        s.processes = Err("they need root".into());
        let text = sources(&s);
        assert!(
            text.contains("no process events (they need root)") && !text.contains(" and process"),
            "{text}"
        );
    }

    #[test]
    fn the_frame_fits_the_width() {
        let mut facts = expected_facts();
        facts[0].value = "x ".repeat(100);
        let r = judged(facts, Some("no-mount-proc"));
        for w in [60, 80, 120] {
            for l in frame(&r, w).lines() {
                assert!(text_width(l) <= w, "{w}: {l:?}");
            }
        }
    }

    #[test]
    fn only_a_new_judgement_counts_as_a_change() {
        let a = judged(expected_facts(), None);
        let b = judged(expected_facts(), None);
        assert!(same_judgement(&a, &b));
        let mut facts = expected_facts();
        facts[0].value = "other".into();
        assert!(!same_judgement(&a, &judged(facts, Some("nothing-found"))));
    }

    #[test]
    fn a_fact_being_measured_is_neither_a_tick_nor_a_cross() {
        console::set_colors_enabled(false);
        let mut facts = expected_facts();
        let last = facts.len() - 1;
        facts[last].value = MEASURING.into();
        let quick = judged(facts, None);
        assert!(
            quick.measuring && !quick.passed && quick.hint.is_none(),
            "{quick:?}"
        );
        let frame = frame(&quick, 80);
        assert!(
            frame.contains(&format!("… {}: {MEASURING}", quick.facts[last].name)),
            "{frame}"
        );
        assert!(
            !frame.contains('✗') && !frame.contains("expected:"),
            "{frame}"
        );
        let l = line(&quick);
        assert!(
            l.ends_with("; measuring 1") && !l.contains("(expected"),
            "{l}"
        );
        // Beside the full judgement it came from it says nothing new; beside another, it does.
        let full = judged(expected_facts(), None);
        assert!(same_so_far(&full, &quick));
        assert!(!same_so_far(&judged(last_fact_wrong(), None), &{
            let mut f = last_fact_wrong();
            f[0].value = "something else".into();
            f[last].value = MEASURING.into();
            judged(f, None)
        }));
    }
}
