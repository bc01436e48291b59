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
/// `--mount-proc`, unless the word alone is wider), the first line after `first`, the rest
/// after `rest`.
pub fn wrap(text: &str, width: usize, first: &str, rest: &str) -> String {
    let opts = textwrap::Options::new(width.max(text_width(first) + 1).max(text_width(rest) + 1))
        .initial_indent(first)
        .subsequent_indent(rest)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .wrap_algorithm(textwrap::WrapAlgorithm::FirstFit);
    let mut out = String::new();
    for line in textwrap::wrap(text, opts) {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str(first.trim_end());
        out.push('\n');
    }
    out
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
