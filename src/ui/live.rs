//! Output redrawn in place on a terminal: a gauge, a live view that settles into a plain
//! view, and frames that replace each other (`watch(1)`-like).

use super::{Ui, VIEW_INDENT};
use console::{style, Term};

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
            frame.push_str(VIEW_INDENT);
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
