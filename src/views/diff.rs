//! Before/after views: a line diff of two renderings of the same thing.

use similar::{ChangeTag, TextDiff};

/// A unified line diff, `-` for lines only before, `+` for lines only after, two spaces
/// for unchanged ones. Identical inputs render as the text with a note.
pub fn before_after(before: &str, after: &str) -> String {
    if before == after {
        let mut out = String::from("  (no change)\n");
        for line in before.lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        return out;
    }
    let diff = TextDiff::from_lines(before, after);
    let mut out = String::new();
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            ChangeTag::Delete => "- ",
            ChangeTag::Insert => "+ ",
            ChangeTag::Equal => "  ",
        };
        out.push_str(sign);
        out.push_str(change.value().trim_end_matches('\n'));
        out.push('\n');
    }
    out
}

/// Only the changed lines, for compact check reports; empty when equal.
pub fn changes_only(expected: &str, observed: &str) -> String {
    if expected == observed {
        return String::new();
    }
    let diff = TextDiff::from_lines(expected, observed);
    let mut out = String::new();
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            ChangeTag::Delete => "- expected  ",
            ChangeTag::Insert => "+ observed  ",
            ChangeTag::Equal => continue,
        };
        out.push_str(sign);
        out.push_str(change.value().trim_end_matches('\n'));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_inputs_say_so() {
        assert!(before_after("a\n", "a\n").starts_with("  (no change)"));
        assert_eq!(changes_only("a\n", "a\n"), "");
    }
}
