//! The terminal: colour when it is a terminal, plain text when piped, with `NO_COLOR` or
//! `--plain`. Everything the learner reads goes through here.

use console::{style, Term};
use std::io::Write;

#[derive(Clone, Copy, Debug)]
pub struct Ui {
    /// No colour and no progress bars.
    pub plain: bool,
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
        Ui { plain }
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
        let rule = "=".repeat(text.chars().count().min(76));
        self.out(&format!("{}\n{}", style(text).bold().cyan(), rule));
    }

    pub fn heading(&self, text: &str) {
        let rule = "-".repeat(text.chars().count().min(76));
        self.out(&format!("\n{}\n{}", style(text).bold(), rule));
    }

    /// Markdown from a lesson text, lightly rendered: fences dropped, code indented.
    pub fn markdown(&self, text: &str) {
        self.out(&render_markdown(text));
    }

    /// The shell command a learner would type for what happens next.
    pub fn command(&self, cmd: &str) {
        let mut s = String::from("Shell:\n");
        for line in cmd.lines() {
            s.push_str(&format!("  {} {}\n", style("$").dim(), style(line).green()));
        }
        self.out(&s);
    }

    /// The system calls nslab actually made, as strace prints them.
    pub fn syscalls(&self, calls: &[String]) {
        if calls.is_empty() {
            return;
        }
        let mut s = String::from("System calls made:\n");
        for c in calls {
            s.push_str(&format!("  {}\n", style(c).yellow()));
        }
        self.out(&s);
    }

    /// A captured view (table, diagram, diff), indented under a label.
    pub fn view(&self, label: &str, body: &str) {
        let mut s = format!("{}\n", style(label).bold());
        for line in body.lines() {
            s.push_str("  ");
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
        self.out(&format!("{} {}", style("»").cyan(), text));
    }

    pub fn good(&self, text: &str) {
        self.out(&format!("{} {}", style("✓").green(), text));
    }

    pub fn bad(&self, text: &str) {
        self.out(&format!("{} {}", style("✗").red(), text));
    }

    /// An error on stderr, with what to do about it.
    pub fn error(&self, message: &str, fix: Option<&str>) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{} {message}", style("error:").red().bold());
        if let Some(fix) = fix {
            let _ = writeln!(e, "  {} {fix}", style("fix:").bold());
        }
    }

    pub fn warn(&self, message: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "{} {message}",
            style("warning:").yellow().bold()
        );
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

/// Markdown to terminal text: code fences removed and their lines indented; everything
/// else as written (it is meant to read well as plain text).
pub fn render_markdown(text: &str) -> String {
    let mut out = String::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            out.push_str("    ");
            out.push_str(&style(line).green().to_string());
        } else if let Some(h) = line.strip_prefix("### ") {
            out.push_str(&style(h).bold().to_string());
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_drops_fences_and_indents_code() {
        console::set_colors_enabled(false);
        let r = super::render_markdown(
            "Run this:\n\n```sh\nunshare --pid --fork bash\n```\nThen look.\n",
        );
        insta::assert_snapshot!(r, @r"
        Run this:

            unshare --pid --fork bash
        Then look.
        ");
    }
}
