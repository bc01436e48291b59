//! What a step uses to show its work: the shell command, the system calls, the views.

use crate::kernel::trace;
use crate::ui::Ui;
use crate::views;

pub struct Stage<'a> {
    pub ui: &'a Ui,
    /// Under `--yes`: no live redraws, no waiting for the learner.
    pub yes: bool,
}

impl Stage<'_> {
    /// The command a learner would type for the next action.
    pub fn command(&self, cmd: &str) {
        self.ui.command(cmd);
    }

    /// Show the system calls made since the last call; returns them.
    pub fn syscalls(&self) -> Vec<String> {
        let calls = trace::take();
        self.ui.syscalls(&calls);
        calls
    }

    pub fn view(&self, label: &str, body: &str) {
        self.ui.view(label, body);
    }

    /// A before/after view of the same rendering, as a line diff.
    pub fn before_after(&self, label: &str, before: &str, after: &str) {
        self.ui
            .view(label, &views::diff::before_after(before, after));
    }

    pub fn say(&self, text: &str) {
        self.ui.say(text);
    }
}
