//! A plain text table: columns padded to their widest cell, two spaces apart. When it is
//! wider than the screen, its last column (the free text) is wrapped; when even that
//! cannot fit, every row is shown as a block of `NAME: value` lines.

use crate::ui::{text_width, wrap};

/// The narrowest a wrapped free-text column may become before the table is stacked.
const MIN_FREE_TEXT: usize = 12;

/// Render `rows` under `header` to fit a view ([`crate::ui::view_width`]).
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    render_at(header, rows, crate::ui::view_width())
}

/// Render `rows` under `header` in at most `width` columns. Cells may be any width; the
/// last column is not padded.
pub fn render_at(header: &[&str], rows: &[Vec<String>], width: usize) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| text_width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(text_width(cell));
        }
    }
    let total: usize = widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
    if total <= width || cols == 0 {
        return columns(header, rows, &widths, None);
    }
    // Wrap the free text (the last column) into what the others leave.
    let last = cols - 1;
    let others: usize = widths[..last].iter().sum::<usize>() + 2 * last;
    let room = width.saturating_sub(others);
    let longest_word = rows
        .iter()
        .filter_map(|r| r.get(last))
        .chain(std::iter::once(&header[last].to_string()))
        .flat_map(|c| c.split(' ').map(text_width).collect::<Vec<_>>())
        .max()
        .unwrap_or(0);
    if cols > 1 && room >= MIN_FREE_TEXT.max(longest_word) {
        widths[last] = room;
        return columns(header, rows, &widths, Some(room));
    }
    stacked(header, rows, width)
}

/// Padded columns; with `wrap_last`, the last column's cells wrapped to that width, their
/// further lines under the column.
fn columns(
    header: &[&str],
    rows: &[Vec<String>],
    widths: &[usize],
    wrap_last: Option<usize>,
) -> String {
    let cols = header.len();
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(cell);
            if i + 1 < cols {
                s.push_str(&" ".repeat(widths[i].saturating_sub(text_width(cell))));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    let all = std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .chain(rows.iter().cloned());
    for row in all {
        let cells: Vec<&str> = row.iter().map(String::as_str).take(cols).collect();
        match (wrap_last, cells.len() == cols) {
            (Some(w), true) => {
                let text = wrap(cells[cols - 1], w, "", "");
                let mut parts = text.lines();
                let mut first = cells.clone();
                first[cols - 1] = parts.next().unwrap_or("");
                line(&first);
                for more in parts {
                    let mut cont = vec![""; cols];
                    cont[cols - 1] = more;
                    line(&cont);
                }
            }
            _ => line(&cells),
        }
    }
    out
}

/// One block per row: `NAME: value` lines (a value alone where the column has no name),
/// values aligned and wrapped under themselves, a blank line between blocks.
fn stacked(header: &[&str], rows: &[Vec<String>], width: usize) -> String {
    let name_w = header.iter().map(|h| text_width(h) + 2).max().unwrap_or(0);
    let align = if name_w * 2 <= width { name_w } else { 0 };
    let mut out = String::new();
    for (r, row) in rows.iter().enumerate() {
        if r > 0 {
            out.push('\n');
        }
        for (i, cell) in row.iter().enumerate().take(header.len()) {
            let name = header[i];
            if name.is_empty() {
                out.push_str(&wrap(cell, width, "", ""));
                continue;
            }
            let head = format!("{name}: ");
            let first = format!(
                "{head}{}",
                " ".repeat(align.saturating_sub(text_width(&head)))
            );
            let rest = " ".repeat(if align > 0 { align } else { 2 });
            let one_word = !cell.contains(' ');
            if one_word && text_width(&first) + text_width(cell) > width {
                // A long path: whole on a line of its own rather than cut.
                out.push_str(&format!("{}\n", head.trim_end()));
                out.push_str(&wrap(cell, width, "  ", "  "));
            } else {
                out.push_str(&wrap(cell, width, &first, &rest));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::views::fixtures::namespace_columns;

    #[test]
    fn stacks_a_table_that_cannot_fit() {
        let (h, rows) = namespace_columns();
        let narrow = super::render_at(&h, &rows, 60);
        assert!(narrow.lines().all(|l| crate::ui::text_width(l) <= 60));
        insta::assert_snapshot!("stacked_at_60", narrow);
    }
}
