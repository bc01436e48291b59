//! The terminal: colour when it is a terminal, plain text when piped, with `NO_COLOR` or
//! `--plain`. Everything the learner reads goes through here.

use console::{style, Term};
use std::io::Write;

#[derive(Clone, Copy, Debug)]
pub struct Ui {
    /// No colour and no progress bars.
    #[allow(dead_code)] // read by lessons with live views
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
