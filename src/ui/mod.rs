//! The terminal: colour when it is a terminal, plain text when piped, with `NO_COLOR` or
//! `--plain`. Everything the learner reads goes through here.
//!
//! This file holds [`Ui`] and what it prints; the pieces it uses, one job each:
//!
//! - [`wrap`]: the screen's width, and plain text wrapped to it.
//! - [`markdown`]: lesson markdown (and inline markdown in sentences) rendered to it.
//! - [`command`]: a shell command as the learner would type it.
//! - [`live`]: output redrawn in place (gauges, live views, `watch`-like frames).
//! - [`events`]: the outline of what was shown, for a test's snapshot.

mod command;
mod events;
mod live;
mod markdown;
mod wrap;

pub use live::Redraw;
pub use markdown::render_markdown_after;
// Reached from outside ui only by tests.
#[cfg(test)]
pub use markdown::render_markdown_at;
#[cfg(test)]
pub use wrap::with_width;
pub use wrap::{text_width, view_width, width, wrap, wrap_at_commas};

use command::render_command;
use console::{style, Term};
use markdown::{render_markdown, wrap_inline};
use std::io::Write;
use std::sync::atomic::Ordering;
use wrap::{detect_width, WIDTH};

/// What [`Ui::view`] puts before each line of a view's body.
pub const VIEW_INDENT: &str = "  ";

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
        events::open_from_env();
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
        events::emit("title", text);
        let text = wrap(text, width(), "", "");
        let rule = "=".repeat(text.lines().map(text_width).max().unwrap_or(0));
        self.out(&format!("{}{}", style(text).bold().cyan(), rule));
    }

    pub fn heading(&self, text: &str) {
        events::emit("heading", text);
        let text = wrap(text, width(), "", "");
        let rule = "-".repeat(text.lines().map(text_width).max().unwrap_or(0));
        self.out(&format!("\n{}{}", style(text).bold(), rule));
    }

    /// Markdown from a lesson text, rendered and reflowed to the width.
    pub fn markdown(&self, text: &str) {
        events::emit("text", "");
        self.out(&render_markdown(text));
    }

    /// The shell command a learner would type for what happens next.
    pub fn command(&self, cmd: &str) {
        events::emit("command", cmd.lines().next().unwrap_or(""));
        self.out(&render_command(cmd, width()));
    }

    /// The system calls nslab actually made, as strace prints them.
    pub fn syscalls(&self, calls: &[String]) {
        if calls.is_empty() {
            return;
        }
        events::emit("syscalls", &events::call_names(calls));
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
        events::emit("view", label);
        let mut s = String::new();
        for l in wrap(label, width(), "", "  ").lines() {
            s.push_str(&format!("{}\n", style(l).bold()));
        }
        for line in body.lines() {
            if !line.is_empty() {
                s.push_str(VIEW_INDENT);
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
        events::emit("say", "");
        self.out(&wrap_inline(text, &format!("{} ", style("»").cyan()), "  "));
    }

    pub fn good(&self, text: &str) {
        events::emit("good", "");
        self.out(&wrap_inline(
            text,
            &format!("{} ", style("✓").green()),
            "  ",
        ));
    }

    pub fn bad(&self, text: &str) {
        events::emit("bad", "");
        self.out(&wrap_inline(text, &format!("{} ", style("✗").red()), "  "));
    }

    /// An error on stderr, with what to do about it.
    pub fn error(&self, message: &str, fix: Option<&str>) {
        events::emit("error", message);
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
        events::emit("warning", message);
        let head = format!("{} ", style("warning:").yellow().bold());
        let _ = write!(std::io::stderr(), "{}", wrap(message, width(), &head, "  "));
    }
}
