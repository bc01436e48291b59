//! Markdown to terminal text, one pass over pulldown-cmark's events: lesson texts and hints
//! reflowed to a width, and sentences with inline markdown wrapped after their marker.

use super::wrap::{text_width, width, wrap};
use console::style;
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

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
    use crate::ui::wrap::with_width;

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
