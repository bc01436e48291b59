//! The terminal: colour when it is a terminal, plain text when piped, with `NO_COLOR` or
//! `--plain`. Everything the learner reads goes through here.

use console::{style, Term};
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Copy, Debug)]
pub struct Ui {
    /// No colour and no progress bars.
    pub plain: bool,
    /// Output is a terminal and `--plain` was not asked for: a view may be redrawn in
    /// place (with `NO_COLOR` too: that asks only for no colour).
    pub redraws: bool,
}

impl Ui {
    /// Decide plain vs colour once, for the whole run.
    pub fn new(plain_flag: bool) -> Ui {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let plain = plain_flag || no_color || !Term::stdout().is_term();
        if plain {
            console::set_colors_enabled(false);
            console::set_colors_enabled_stderr(false);
        }
        WIDTH.store(detect_width(), Ordering::Relaxed);
        Ui {
            plain,
            redraws: !plain_flag && Term::stdout().is_term(),
        }
    }

    pub fn out(&self, text: &str) {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = o.write_all(b"\n");
        }
        let _ = o.flush();
    }

    pub fn blank(&self) {
        self.out("");
    }

    pub fn title(&self, text: &str) {
        let text = wrap(text, width(), "", "");
        let rule = "=".repeat(text.lines().map(text_width).max().unwrap_or(0));
        self.out(&format!("{}{}", style(text).bold().cyan(), rule));
    }

    pub fn heading(&self, text: &str) {
        let text = wrap(text, width(), "", "");
        let rule = "-".repeat(text.lines().map(text_width).max().unwrap_or(0));
        self.out(&format!("\n{}{}", style(text).bold(), rule));
    }

    /// Markdown from a lesson text, rendered and reflowed to the width.
    pub fn markdown(&self, text: &str) {
        self.out(&render_markdown(text));
    }

    /// The shell command a learner would type for what happens next.
    pub fn command(&self, cmd: &str) {
        self.out(&render_command(cmd, width()));
    }

    /// The system calls nslab actually made, as strace prints them.
    pub fn syscalls(&self, calls: &[String]) {
        if calls.is_empty() {
            return;
        }
        let mut s = String::from("System calls made:\n");
        for c in calls {
            for l in wrap(c, width(), "  ", "      ").lines() {
                s.push_str(&format!("{}\n", style(l).yellow()));
            }
        }
        self.out(&s);
    }

    /// A captured view (table, diagram, diff), indented under a label.
    pub fn view(&self, label: &str, body: &str) {
        let mut s = String::new();
        for l in wrap(label, width(), "", "  ").lines() {
            s.push_str(&format!("{}\n", style(l).bold()));
        }
        for line in body.lines() {
            if !line.is_empty() {
                s.push_str("  ");
            }
            s.push_str(&self.colour_diff_line(line));
            s.push('\n');
        }
        self.out(&s);
    }

    fn colour_diff_line(&self, line: &str) -> String {
        if line.starts_with("+ ") {
            style(line).green().to_string()
        } else if line.starts_with("- ") {
            style(line).red().to_string()
        } else {
            line.to_string()
        }
    }

    /// A sentence computed from what was just observed.
    pub fn say(&self, text: &str) {
        self.out(&wrap_inline(text, &format!("{} ", style("»").cyan()), "  "));
    }

    pub fn good(&self, text: &str) {
        self.out(&wrap_inline(
            text,
            &format!("{} ", style("✓").green()),
            "  ",
        ));
    }

    pub fn bad(&self, text: &str) {
        self.out(&wrap_inline(text, &format!("{} ", style("✗").red()), "  "));
    }

    /// An error on stderr, with what to do about it.
    pub fn error(&self, message: &str, fix: Option<&str>) {
        let mut e = std::io::stderr().lock();
        let head = format!("{} ", style("error:").red().bold());
        let _ = write!(e, "{}", wrap(message, width(), &head, "  "));
        if let Some(fix) = fix {
            let head = format!("  {} ", style("fix:").bold());
            let _ = write!(e, "{}", wrap(fix, width(), &head, "       "));
        }
    }

    /// Ask a yes/no question on the terminal; anything but y or yes is no.
    pub fn confirm(&self, question: &str) -> bool {
        let mut o = std::io::stdout().lock();
        let _ = write!(
            o,
            "{}",
            wrap(&format!("{question} [y/N]"), width(), "", "").trim_end()
        );
        let _ = write!(o, " ");
        let _ = o.flush();
        drop(o);
        let mut line = String::new();
        match std::io::stdin().read_line(&mut line) {
            Ok(n) if n > 0 => matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
            _ => false,
        }
    }

    pub fn warn(&self, message: &str) {
        let head = format!("{} ", style("warning:").yellow().bold());
        let _ = write!(std::io::stderr(), "{}", wrap(message, width(), &head, "  "));
    }
}

/// A bar of `pos` out of `total` redrawn in place (indicatif, drawn on each update: no
/// ticking thread, which would break namespace work). Absent in plain output.
pub struct Gauge {
    bar: indicatif::ProgressBar,
}

impl Gauge {
    pub fn set(&self, pos: u64, message: String) {
        self.bar
            .set_position(pos.min(self.bar.length().unwrap_or(pos)));
        self.bar.set_message(message);
    }

    /// Leave the last state on screen.
    pub fn finish(self) {
        self.bar.abandon();
    }
}

/// A view redrawn in place while it changes (a live chart). Where that cannot work — plain
/// output, `--yes`, a terminal too short for the frame — nothing is drawn until
/// [`LiveView::finish`] shows the final state once.
pub struct LiveView {
    term: Term,
    title: String,
    live: bool,
    drawn: usize,
}

impl LiveView {
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Replace the previous frame with `body`.
    pub fn frame(&mut self, body: &str) {
        if !self.live {
            return;
        }
        let mut frame = format!("{}\n", style(&self.title).bold());
        for line in body.lines() {
            frame.push_str("  ");
            frame.push_str(line);
            frame.push('\n');
        }
        if self.drawn > 0 {
            let _ = self.term.clear_last_lines(self.drawn);
        }
        let _ = self.term.write_str(&frame);
        let _ = self.term.flush();
        self.drawn = frame.lines().count();
    }

    /// The final state: left on screen when live, otherwise shown now as a view.
    pub fn finish(self, ui: &Ui, body: &str) {
        if self.live {
            ui.blank();
        } else {
            ui.view(&self.title, body);
        }
    }
}

/// A frame that replaces the previous one on the terminal (`watch(1)`-like).
pub struct Redraw {
    term: Term,
    drawn: usize,
}

impl Default for Redraw {
    fn default() -> Self {
        Redraw {
            term: Term::stdout(),
            drawn: 0,
        }
    }
}

impl Redraw {
    pub fn show(&mut self, frame: &str) {
        let rows = self.term.size_checked().map_or(0, |(r, _)| r as usize);
        if self.drawn > 0 {
            // Lines that scrolled off cannot be cleared one by one.
            let _ = if self.drawn < rows {
                self.term.clear_last_lines(self.drawn)
            } else {
                self.term.clear_screen()
            };
        }
        let mut text = frame.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let _ = self.term.write_str(&text);
        let _ = self.term.flush();
        self.drawn = text.lines().count();
    }
}

impl Ui {
    /// A gauge on a terminal; `None` in plain output, where callers print lines instead.
    pub fn gauge(&self, total: u64) -> Option<Gauge> {
        if self.plain {
            return None;
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stdout(),
        );
        if let Ok(s) = indicatif::ProgressStyle::with_template("  {msg}\n  {wide_bar:.cyan/blue}") {
            bar.set_style(s.progress_chars("█▉▊▋▌▍▎▏ "));
        }
        Some(Gauge { bar })
    }

    /// A live view of `lines` lines under `title`; redrawn only on a terminal, without
    /// `--yes`, when the frame fits the screen.
    pub fn live_view(&self, title: &str, lines: usize, yes: bool) -> LiveView {
        let term = Term::stdout();
        let fits = term
            .size_checked()
            .is_some_and(|(rows, _)| rows as usize > lines + 1);
        LiveView {
            live: !(self.plain || yes) && fits,
            term,
            title: title.to_string(),
            drawn: 0,
        }
    }
}

/// The narrowest screen nslab lays its output out for.
pub const MIN_WIDTH: usize = 60;

/// The width set for this run ([`Ui::new`]); 0 before.
static WIDTH: AtomicUsize = AtomicUsize::new(0);

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

/// A sentence with inline markdown (`code`, **bold**, *emphasis*), rendered and wrapped to
/// the width after `first`, further lines after `rest`.
pub fn wrap_inline(text: &str, first: &str, rest: &str) -> String {
    let mut r = Renderer::new(width());
    r.pending_first = Some(first.to_string());
    r.indent = rest.to_string();
    for ev in Parser::new(text) {
        match ev {
            Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph) => {}
            ev => r.event(ev),
        }
    }
    r.flush_inline();
    r.out
}

/// Markdown rendered at `width` columns, its first line after `first` and every other line
/// after `rest` (a hint after `Hint: `).
pub fn render_markdown_after(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut r = Renderer::new(width);
    r.pending_first = Some(first.to_string());
    r.indent = rest.to_string();
    for ev in Parser::new(text) {
        r.event(ev);
    }
    r.flush_inline();
    r.out
}

/// What an inline span looks like.
#[derive(Clone, Copy, Default)]
struct Span {
    strong: bool,
    emphasis: bool,
}

struct List {
    next: Option<u64>,
}

/// Markdown to terminal text, one pass over pulldown-cmark's events.
struct Renderer {
    width: usize,
    out: String,
    /// The paragraph being collected, styled word by word so that wrapping never splits a
    /// style across lines.
    inline: String,
    span: Span,
    /// Prefix of every line of the current block (list nesting, quotes).
    indent: String,
    /// The first line's prefix when it differs (a list item's bullet).
    pending_first: Option<String>,
    lists: Vec<List>,
    indents: Vec<String>,
    heading: Option<HeadingLevel>,
    code: Option<String>,
    /// A blank line goes before the next block.
    gap: bool,
}

impl Renderer {
    fn new(width: usize) -> Renderer {
        Renderer {
            width,
            out: String::new(),
            inline: String::new(),
            span: Span::default(),
            indent: String::new(),
            pending_first: None,
            lists: Vec::new(),
            indents: Vec::new(),
            heading: None,
            code: None,
            gap: false,
        }
    }

    fn block_start(&mut self) {
        self.flush_inline();
        if self.gap && !self.out.is_empty() {
            self.out.push('\n');
        }
        self.gap = false;
    }

    fn styled_word(&self, word: &str) -> String {
        let mut s = style(word);
        if self.span.strong || self.heading.is_some() {
            s = s.bold();
        }
        if self.span.emphasis {
            s = s.italic();
        }
        s.to_string()
    }

    /// Text of the current span, each word styled on its own.
    fn push_text(&mut self, text: &str, code: bool) {
        let mut first = true;
        for word in text.split(' ') {
            if !first {
                self.inline.push(' ');
            }
            first = false;
            if word.is_empty() {
                continue;
            }
            let w = if code {
                style(word).cyan().to_string()
            } else {
                self.styled_word(word)
            };
            self.inline.push_str(&w);
        }
    }

    fn flush_inline(&mut self) {
        let text = std::mem::take(&mut self.inline);
        let text = text.trim();
        if text.is_empty() && self.pending_first.is_none() {
            return;
        }
        let first = self
            .pending_first
            .take()
            .unwrap_or_else(|| self.indent.clone());
        let rest = self.indent.clone();
        if text.is_empty() {
            self.out.push_str(first.trim_end());
            self.out.push('\n');
            return;
        }
        for (i, piece) in text.split('\n').enumerate() {
            let (f, r) = if i == 0 {
                (&first, &rest)
            } else {
                (&rest, &rest)
            };
            self.out.push_str(&wrap(piece.trim(), self.width, f, r));
        }
    }

    fn event(&mut self, ev: Event) {
        match ev {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => {
                if let Some(code) = &mut self.code {
                    code.push_str(&t);
                } else {
                    self.push_text(&t, false);
                }
            }
            Event::Code(t) => self.push_text(&t, true),
            Event::Html(t) | Event::InlineHtml(t) => self.push_text(&t, false),
            Event::SoftBreak => self.inline.push(' '),
            Event::HardBreak => self.inline.push('\n'),
            Event::Rule => {
                self.block_start();
                let w = self.width.saturating_sub(self.indent.len()).min(40);
                self.out
                    .push_str(&format!("{}{}\n", self.indent, "-".repeat(w)));
                self.gap = true;
            }
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag) {
        match tag {
            Tag::Paragraph => {
                let bullet = self.pending_first.take();
                self.block_start();
                self.pending_first = bullet;
            }
            Tag::Heading { level, .. } => {
                self.block_start();
                self.heading = Some(level);
            }
            Tag::CodeBlock(_) => {
                let bullet = self.pending_first.take();
                self.block_start();
                if let Some(b) = bullet {
                    self.out.push_str(b.trim_end());
                    self.out.push('\n');
                }
                self.code = Some(String::new());
            }
            Tag::List(start) => {
                let bullet = self.pending_first.take();
                self.block_start();
                if let Some(b) = bullet {
                    self.out.push_str(b.trim_end());
                    self.out.push('\n');
                }
                self.lists.push(List { next: start });
            }
            Tag::Item => {
                self.flush_inline();
                let list = self.lists.last_mut();
                let marker = match list {
                    Some(List { next: Some(n) }) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    _ => "- ".to_string(),
                };
                self.indents.push(self.indent.clone());
                self.pending_first = Some(format!("{}{marker}", self.indent));
                self.indent = format!("{}{}", self.indent, " ".repeat(marker.len()));
                self.gap = false;
            }
            Tag::BlockQuote(_) => {
                self.block_start();
                self.indents.push(self.indent.clone());
                self.indent.push_str("| ");
            }
            Tag::Strong => self.span.strong = true,
            Tag::Emphasis => self.span.emphasis = true,
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => {
                self.flush_inline();
                self.gap = true;
            }
            TagEnd::Heading(level) => {
                let text = std::mem::take(&mut self.inline);
                let text = text.trim().to_string();
                self.heading = None;
                let shown = wrap(&text, self.width, &self.indent, &self.indent);
                self.out.push_str(&shown);
                if level <= HeadingLevel::H2 {
                    let longest = shown.lines().map(text_width).max().unwrap_or(0);
                    let rule = if level == HeadingLevel::H1 { "=" } else { "-" };
                    self.out.push_str(&rule.repeat(longest.min(self.width)));
                    self.out.push('\n');
                }
                self.gap = true;
            }
            TagEnd::CodeBlock => {
                let code = self.code.take().unwrap_or_default();
                // Indented by four; by two, or none, when that is what lets every line fit.
                let widest = code.lines().map(text_width).max().unwrap_or(0);
                let room = self.width.saturating_sub(text_width(&self.indent));
                let lead = if widest + 4 <= room {
                    "    "
                } else if widest + 2 <= room || widest > room {
                    "  "
                } else {
                    ""
                };
                for line in code.lines() {
                    self.out.push_str(&self.indent);
                    self.out.push_str(lead);
                    self.out.push_str(&style(line).green().to_string());
                    self.out.push('\n');
                }
                self.gap = true;
            }
            TagEnd::List(_) => {
                self.flush_inline();
                self.lists.pop();
                self.gap = true;
            }
            TagEnd::Item => {
                self.flush_inline();
                self.indent = self.indents.pop().unwrap_or_default();
            }
            TagEnd::BlockQuote(_) => {
                self.flush_inline();
                self.indent = self.indents.pop().unwrap_or_default();
                self.gap = true;
            }
            TagEnd::Strong => self.span.strong = false,
            TagEnd::Emphasis => self.span.emphasis = false,
            _ => {}
        }
    }
}

/// Markdown to terminal text at the current [`width`]: paragraphs and list items reflowed
/// (items with a hanging indent), headings as headings, code blocks verbatim and indented,
/// inline code, bold and emphasis styled (and shown without their markers when plain).
pub fn render_markdown(text: &str) -> String {
    render_markdown_at(text, width())
}

/// A shell command under `Shell:`, each command after a `$` prompt; a line that goes on
/// from one ending in `\` is the same command and gets no prompt of its own.
pub fn render_command(cmd: &str, width: usize) -> String {
    let mut s = String::from("Shell:\n");
    let mut continues = false;
    for line in cmd.lines() {
        let (first, text) = if continues {
            ("      ".to_string(), line.trim_start())
        } else {
            (format!("  {} ", style("$").dim()), line)
        };
        for (i, l) in wrap(text, width.saturating_sub(4), "", "  ")
            .lines()
            .enumerate()
        {
            let lead = if i == 0 { first.as_str() } else { "    " };
            s.push_str(&format!("{lead}{}\n", style(l).green()));
        }
        continues = line.trim_end().ends_with('\\');
    }
    s
}

/// [`render_markdown`] at `width` columns.
pub fn render_markdown_at(text: &str, width: usize) -> String {
    let mut r = Renderer::new(width);
    for ev in Parser::new(text) {
        r.event(ev);
    }
    r.flush_inline();
    r.out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Title\n\nRun **this** with `unshare --pid --fork` and see *why* it matters; the words are \
reflowed to the width of the screen, whatever the source's own line breaks.\n\n\
```sh\nunshare --pid --fork bash   # a code line stays as written, however long it is\n```\n\n\
### A smaller heading\n\n\
- a list item long enough to wrap onto a second line, which hangs under its first word\n\
- 1. nested\n  2. numbered\n\n\
> quoted\n";

    #[test]
    fn markdown_reflows_and_drops_markers_when_plain() {
        console::set_colors_enabled(false);
        insta::assert_snapshot!(render_markdown_at(SAMPLE, 60));
    }

    #[test]
    fn a_continued_command_line_gets_no_prompt_of_its_own() {
        console::set_colors_enabled(false);
        let s = render_command(
            "sudo setpriv --no-new-privs \\\n    --bounding-set=-all -- sleep 1000\nid",
            80,
        );
        assert_eq!(
            s,
            "Shell:\n  $ sudo setpriv --no-new-privs \\\n      --bounding-set=-all -- sleep 1000\n  $ id\n"
        );
    }

    #[test]
    fn sentences_wrap_after_their_marker() {
        console::set_colors_enabled(false);
        let s = with_width(60, || {
            wrap_inline(
                "Its `pid` link did not change: PID 13286 stays where it was, and **only** its children move.",
                "» ",
                "  ",
            )
        });
        insta::assert_snapshot!(s);
    }
}
