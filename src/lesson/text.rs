//! A lesson's texts, cut into the sections the engine and the commands show.

use super::LessonInfo;

/// A `## Step a: Title` heading of a lesson.md.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepHeading {
    pub id: char,
    pub title: &'static str,
}

/// The `## ` sections of a markdown text, outside code fences: (heading, body).
fn sections(text: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut starts: Vec<usize> = Vec::new();
    let mut offset = 0;
    let mut in_fence = false;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence && line.starts_with("## ") {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let end = starts.get(i + 1).copied().unwrap_or(text.len());
            let chunk = &text[s..end];
            let (head, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            (
                head.trim_start_matches("## ").trim(),
                body.trim_matches('\n'),
            )
        })
        .collect()
}

/// `Step a: Title` → ('a', "Title").
fn step_heading(heading: &'static str) -> Option<(char, &'static str)> {
    let rest = heading.strip_prefix("Step ")?;
    let (id, title) = rest.split_once(':')?;
    let mut chars = id.chars();
    match (chars.next(), chars.next()) {
        (Some(id), None) => Some((id, title.trim())),
        _ => None,
    }
}

impl LessonInfo {
    /// The text before the first step: what the lesson is about.
    pub fn intro(&self) -> &'static str {
        let body = self.text.split_once('\n').map(|(_, b)| b).unwrap_or("");
        let end = body.find("\n## ").unwrap_or(body.len());
        body[..end].trim_matches('\n')
    }

    /// Every `## Step x: Title` heading of the text, in order (held against the step table).
    #[cfg(test)]
    pub fn step_headings(&self) -> Vec<StepHeading> {
        sections(self.text)
            .into_iter()
            .filter_map(|(h, _)| step_heading(h))
            .map(|(id, title)| StepHeading { id, title })
            .collect()
    }

    /// The body of step `id`'s section.
    pub fn step_text(&self, id: char) -> Option<&'static str> {
        sections(self.text)
            .into_iter()
            .find(|(h, _)| step_heading(h).is_some_and(|(s, _)| s == id))
            .map(|(_, b)| b)
    }

    /// The `## Exercise…` section: heading and body.
    pub fn exercise(&self) -> Option<(&'static str, &'static str)> {
        sections(self.text)
            .into_iter()
            .find(|(h, _)| h.starts_with("Exercise"))
    }

    /// The hint for problem `id` (a `## id` section of hints.md).
    pub fn hint(&self, id: &str) -> Option<&'static str> {
        sections(self.hints)
            .into_iter()
            .find(|(h, _)| *h == id)
            .map(|(_, b)| b)
    }

    /// The hint for when nothing more particular applies: a bonus's own (`## 3b-general`),
    /// else the lesson's `## general`. (id, text)
    pub fn general_hint(&self) -> Option<(&'static str, &'static str)> {
        let own = format!("{}-general", self.key());
        let all = sections(self.hints);
        all.iter()
            .find(|(h, _)| *h == own)
            .or_else(|| all.iter().find(|(h, _)| *h == "general"))
            .copied()
    }

    /// Hint ids in the order hints.md gives them.
    pub fn hint_ids(&self) -> Vec<&'static str> {
        sections(self.hints).into_iter().map(|(h, _)| h).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_headings_are_read_outside_code_fences_only() {
        let text = "# T\nintro\n## Step a: One\nx\n```\n## Step z: not a heading\n```\n## Step b: Two: more\ny\n## Exercise 1\nz\n";
        let hs: Vec<(char, &str)> = sections(text)
            .into_iter()
            .filter_map(|(h, _)| step_heading(h))
            .collect();
        assert_eq!(hs, [('a', "One"), ('b', "Two: more")]);
        assert_eq!(step_heading("Step ab: x"), None);
        assert_eq!(step_heading("Stepping"), None);
    }
}

#[cfg(test)]
mod width_tests {
    use crate::ui::{render_markdown_at, text_width};
    use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

    /// Every markdown text of every lesson, read from `lessons/`.
    fn texts() -> Vec<(String, String)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons");
        let mut out = Vec::new();
        let mut dirs: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect();
            files.sort();
            for f in files {
                let name = f.strip_prefix(&root).unwrap().display().to_string();
                out.push((name, std::fs::read_to_string(&f).unwrap()));
            }
        }
        out
    }

    /// The lines of the code blocks of `text`, as written.
    fn code_lines(text: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let mut in_code = false;
        for ev in Parser::new(text) {
            match ev {
                Event::Start(Tag::CodeBlock(
                    CodeBlockKind::Fenced(_) | CodeBlockKind::Indented,
                )) => in_code = true,
                Event::End(TagEnd::CodeBlock) => in_code = false,
                Event::Text(t) if in_code => lines.extend(t.lines().map(str::to_string)),
                _ => {}
            }
        }
        lines
    }

    #[test]
    fn every_lesson_text_fits_60_80_and_120_columns() {
        console::set_colors_enabled(false);
        let texts = texts();
        assert!(texts.iter().any(|(n, _)| n.ends_with("lesson.md")));
        assert!(texts.iter().any(|(n, _)| n.ends_with("hints.md")));
        let mut too_wide = Vec::new();
        let mut code_wider = Vec::new();
        for width in [60, 80, 120] {
            for (name, text) in &texts {
                let code = code_lines(text);
                for line in render_markdown_at(text, width).lines() {
                    if text_width(line) <= width {
                        continue;
                    }
                    let src = line.trim_start();
                    // A code line is verbatim: over the width only when it is, with the
                    // least indent, in the source.
                    let verbatim = code.iter().any(|c| c.trim_start() == src);
                    if verbatim && text_width(src) + 2 > width {
                        code_wider.push(format!("{name} at {width}: {src}"));
                    } else {
                        too_wide.push(format!("{name} at {width}: {line}"));
                    }
                }
            }
        }
        for c in &code_wider {
            println!("code line wider in the source: {c}");
        }
        assert!(
            too_wide.is_empty(),
            "lines over the width:\n{}",
            too_wide.join("\n")
        );
    }

    #[test]
    fn lesson_code_lines_fit_60_columns() {
        let long: Vec<String> = texts()
            .iter()
            .filter(|(n, _)| n.ends_with("lesson.md"))
            .flat_map(|(n, t)| {
                code_lines(t)
                    .into_iter()
                    .filter(|l| 4 + text_width(l) > 60)
                    .map(move |l| format!("{n}: {l}"))
            })
            .collect();
        for l in &long {
            println!("code line over 60 columns once indented: {l}");
        }
    }
}
