//! The screen's width (detected once, or set for one thread in tests) and plain text
//! wrapped to it.

use console::Term;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The narrowest screen nslab lays its output out for.
pub const MIN_WIDTH: usize = 60;

/// The width set for this run ([`Ui::new`](super::Ui::new)); 0 before.
pub(super) static WIDTH: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// A width for this thread only (tests render the same view at 80 and 120 columns).
    static LOCAL_WIDTH: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The screen's width: the terminal's when stdout is one, else `COLUMNS`, else 80; at least
/// [`MIN_WIDTH`].
pub fn detect_width() -> usize {
    let term = Term::stdout();
    let w = if term.is_term() {
        term.size_checked().map(|(_, cols)| cols as usize)
    } else {
        None
    };
    let w = w.or_else(|| {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c > 0)
    });
    w.unwrap_or(80).max(MIN_WIDTH)
}

/// The width everything printed fits in.
pub fn width() -> usize {
    if let Some(w) = LOCAL_WIDTH.with(Cell::get) {
        return w;
    }
    if cfg!(test) {
        // Unit tests lay out for the projector's 80 columns, whatever runs them.
        return 80;
    }
    match WIDTH.load(Ordering::Relaxed) {
        0 => {
            let w = detect_width();
            WIDTH.store(w, Ordering::Relaxed);
            w
        }
        w => w,
    }
}

/// The width of a view's body: a view is indented by two columns, and a before/after view
/// prefixes each line with two more (`- `, `+ `).
pub fn view_width() -> usize {
    width().saturating_sub(4).max(20)
}

/// Run `f` with the width set to `w` on this thread.
#[cfg(test)]
pub fn with_width<T>(w: usize, f: impl FnOnce() -> T) -> T {
    let old = LOCAL_WIDTH.with(|c| c.replace(Some(w)));
    let r = f();
    LOCAL_WIDTH.with(|c| c.set(old));
    r
}

/// The columns `s` takes on screen (escape sequences take none).
pub fn text_width(s: &str) -> usize {
    console::measure_text_width(s)
}

/// `text` wrapped to `width` columns at spaces (never inside a word such as
/// `--mount-proc`), the first line after `first`, the rest after `rest`. A word wider than a
/// line alone (a cgroup path, a system call's flags) is broken after a `/`, `,`, `:`, `|` or
/// `=`, so each line ends at a part of its own; only a part wider than a line is cut.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let width = width.max(text_width(first) + 1).max(text_width(rest) + 1);
    let opts = textwrap::Options::new(width)
        .initial_indent(first)
        .subsequent_indent(rest)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .break_words(false)
        .wrap_algorithm(textwrap::WrapAlgorithm::FirstFit);
    let mut out = String::new();
    for line in textwrap::wrap(text, opts) {
        break_long_line(line.trim_end(), width, rest, &mut out);
    }
    if out.is_empty() {
        out.push_str(first.trim_end());
        out.push('\n');
    }
    out
}

/// Where a word too wide for a line may be broken: after one of these.
const BREAK_AFTER: [char; 5] = ['/', ',', ':', '|', '='];

/// `line` onto `out` in lines of at most `width` columns: broken after the last
/// [`BREAK_AFTER`] character that fits, else at the width; further lines after `rest`.
fn break_long_line(line: &str, width: usize, rest: &str, out: &mut String) {
    let mut line = line.to_string();
    // The indent the line starts with: a break inside it would leave an empty line.
    let mut indent = line.len() - line.trim_start().len();
    while text_width(&line) > width {
        let mut at_break = None;
        let mut at_width = None;
        for (i, c) in line.char_indices().skip_while(|&(i, _)| i < indent) {
            let end = i + c.len_utf8();
            if text_width(&line[..end]) > width {
                break;
            }
            at_width = Some(end);
            if BREAK_AFTER.contains(&c) {
                at_break = Some(end);
            }
        }
        let Some(cut) = at_break.or(at_width) else {
            break;
        };
        out.push_str(line[..cut].trim_end());
        out.push('\n');
        line = format!("{rest}{}", line[cut..].trim_start());
        indent = rest.len();
    }
    out.push_str(&line);
    out.push('\n');
}

/// A long line without much room for spaces (a kernel log line, a rule): broken after a
/// comma or at a space to fit `width`, further lines after `rest`.
pub fn wrap_at_commas(text: &str, width: usize, rest: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for piece in text.split_inclusive([',', ' ']) {
        if !line.trim().is_empty() && text_width(&line) + text_width(piece.trim_end()) > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_string();
        }
        line.push_str(piece);
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_wider_than_a_line_breaks_after_a_slash() {
        let path = "/sys/fs/cgroup/memory/process_api/f94b8604809a6a478ff465b61cb6adeb/nslab/oom/memory.limit_in_bytes";
        let shown = wrap(&format!("the limit is in {path} now"), 60, "  ", "      ");
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(
            lines,
            [
                "  the limit is in",
                "      /sys/fs/cgroup/memory/process_api/",
                "      f94b8604809a6a478ff465b61cb6adeb/nslab/oom/",
                "      memory.limit_in_bytes",
                "      now",
            ]
        );
        let joined: String = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join("");
        assert!(joined.contains(path), "{shown}");
    }

    #[test]
    fn flags_break_after_a_bar_and_a_part_too_wide_is_cut_at_the_width() {
        let shown = wrap(
            "clone(flags=CLONE_NEWIPC|CLONE_NEWNS|CLONE_NEWNET|CLONE_NEWPID|CLONE_NEWUTS|SIGCHLD)",
            60,
            "  ",
            "      ",
        );
        assert_eq!(
            shown,
            "  clone(flags=CLONE_NEWIPC|CLONE_NEWNS|CLONE_NEWNET|\n      CLONE_NEWPID|CLONE_NEWUTS|SIGCHLD)\n"
        );
        let shown = wrap(&"x".repeat(70), 60, "", "  ");
        assert_eq!(shown, format!("{}\n  {}\n", "x".repeat(60), "x".repeat(10)));
    }

    #[test]
    fn words_that_fit_are_never_broken() {
        let shown = wrap(
            "mount --bind /dev/null /proc/keys and --mount-proc",
            30,
            "",
            "",
        );
        assert_eq!(
            shown,
            "mount --bind /dev/null\n/proc/keys and --mount-proc\n"
        );
    }
}
