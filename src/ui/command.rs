//! A shell command as the learner would type it: under `Shell:`, each after a `$` prompt.

use super::wrap::wrap;
use console::style;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
