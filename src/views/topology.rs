//! The network drawn from its real state: each namespace a box listing its links (state
//! and addresses), each veth pair a cable between the boxes holding its two ends.

use crate::kernel::net::{Address, Link};

/// One namespace as captured: its name and what `ip link` / `ip addr` showed in it.
#[derive(Clone, Debug)]
pub struct NsBox {
    pub name: String,
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
}

/// A veth pair: (box, ifindex) of each end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cable {
    pub a: (usize, u32),
    pub b: (usize, u32),
}

/// Find the veth pairs between boxes: an end whose peer index names a veth in another
/// box that names it back. `netns_of(box, netnsid)` says which box a netnsid seen from
/// `box` refers to.
pub fn cables(boxes: &[NsBox], netns_of: &dyn Fn(usize, i32) -> Option<usize>) -> Vec<Cable> {
    let mut out = Vec::new();
    for (i, bx) in boxes.iter().enumerate() {
        for l in bx.links.iter().filter(|l| l.kind == "veth") {
            let (Some(peer), Some(id)) = (l.peer_index, l.link_netnsid) else {
                continue;
            };
            let Some(j) = netns_of(i, id) else { continue };
            let back = boxes
                .get(j)
                .and_then(|o| o.links.iter().find(|p| p.index == peer && p.kind == "veth"));
            if let Some(p) = back {
                if p.peer_index == Some(l.index) && (j, p.index) > (i, l.index) {
                    out.push(Cable {
                        a: (i, l.index),
                        b: (j, p.index),
                    });
                }
            }
        }
    }
    out
}

fn rows(bx: &NsBox) -> Vec<(u32, String)> {
    let wn = bx.links.iter().map(|l| l.name.len()).max().unwrap_or(0);
    bx.links
        .iter()
        .map(|l| {
            let addrs: Vec<String> = bx
                .addresses
                .iter()
                .filter(|a| a.index == l.index && a.family == "inet")
                .map(|a| format!("{}/{}", a.address, a.prefix_len))
                .collect();
            let text = format!(
                "{:<wn$}  {:<4}  {}",
                l.name,
                l.state_word(),
                addrs.join(" ")
            );
            (l.index, text.trim_end().to_string())
        })
        .collect()
}

/// A box as lines, `width` inside; the row of ifindex `port` (if any) ends in `o` on
/// the side the cable leaves from.
fn draw_box(bx: &NsBox, width: usize, port: Option<u32>, right: bool) -> Vec<String> {
    let title = format!("-- netns {} ", bx.name);
    let mut out = vec![format!(
        "+{title}{}+",
        "-".repeat(width + 2 - title.len().min(width + 2))
    )];
    for (index, text) in rows(bx) {
        let body = format!(" {text:<width$} ");
        if Some(index) == port {
            out.push(if right {
                format!("|{body}o")
            } else {
                format!("o{body}|")
            });
        } else {
            out.push(format!("|{body}|"));
        }
    }
    if bx.links.is_empty() {
        out.push(format!("| {:<width$} |", "(no links)"));
    }
    out.push(format!("+{}+", "-".repeat(width + 2)));
    out
}

fn inner_width(bx: &NsBox) -> usize {
    let title = bx.name.len() + 10;
    rows(bx)
        .iter()
        .map(|(_, t)| t.len())
        .max()
        .unwrap_or(10)
        .max(title)
}

fn link_name(bx: &NsBox, index: u32) -> String {
    bx.links
        .iter()
        .find(|l| l.index == index)
        .map(|l| l.name.clone())
        .unwrap_or_else(|| format!("if{index}"))
}

/// The diagram. Two boxes joined by one cable are drawn side by side with the cable
/// between the rows of its ends; anything else as boxes one under another, each cable
/// listed below them.
pub fn diagram(boxes: &[NsBox], cables: &[Cable]) -> String {
    diagram_at(boxes, cables, crate::ui::width().saturating_sub(2))
}

/// [`diagram`] in at most `width` columns: side by side with a cable of up to eight
/// columns (at least two) when that fits, else one box under another.
pub fn diagram_at(boxes: &[NsBox], cables: &[Cable], width: usize) -> String {
    let mut out = String::new();
    let side_by_side = boxes.len() == 2
        && cables.len() == 1
        && inner_width(&boxes[0]) + inner_width(&boxes[1]) + 8 + 2 <= width;
    if side_by_side {
        let c = cables[0];
        let (l, r) = if c.a.0 == 0 { (c.a, c.b) } else { (c.b, c.a) };
        let left = draw_box(&boxes[0], inner_width(&boxes[0]), Some(l.1), true);
        let right = draw_box(&boxes[1], inner_width(&boxes[1]), Some(r.1), false);
        let row_of = |lines: &[String], side_right: bool| {
            lines
                .iter()
                .position(|s| {
                    if side_right {
                        s.ends_with('o')
                    } else {
                        s.starts_with('o')
                    }
                })
                .unwrap_or(1)
        };
        let (lr, rr) = (row_of(&left, true), row_of(&right, false));
        // Shift the box whose cable row is higher, so both ends sit on one line.
        let (lpad, rpad) = (rr.saturating_sub(lr), lr.saturating_sub(rr));
        let lw = left[0].chars().count();
        let rw = right[0].chars().count();
        let cable = "=".repeat(width.saturating_sub(lw + rw).clamp(2, 8));
        let n = (left.len() + lpad).max(right.len() + rpad);
        for i in 0..n {
            let lcell = i
                .checked_sub(lpad)
                .and_then(|k| left.get(k))
                .cloned()
                .unwrap_or_else(|| " ".repeat(lw));
            let rcell = i
                .checked_sub(rpad)
                .and_then(|k| right.get(k))
                .cloned()
                .unwrap_or_default();
            let mid = if i == lr + lpad {
                cable.clone()
            } else {
                " ".repeat(cable.len())
            };
            out.push_str(format!("{lcell}{mid}{rcell}").trim_end());
            out.push('\n');
        }
        let pair = format!(
            "veth pair: {} ({}) <-> {} ({})",
            link_name(&boxes[l.0], l.1),
            boxes[l.0].name,
            link_name(&boxes[r.0], r.1),
            boxes[r.0].name
        );
        out.push_str(&crate::ui::wrap(&pair, width, "", "  "));
        return out;
    }
    let columns = width;
    let width = boxes.iter().map(inner_width).max().unwrap_or(10);
    for bx in boxes {
        for line in draw_box(bx, width, None, true) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if cables.is_empty() {
        out.push_str("no veth pair joins these namespaces\n");
    }
    for c in cables {
        let pair = format!(
            "veth pair: {} ({}) <-> {} ({})",
            link_name(&boxes[c.a.0], c.a.1),
            boxes[c.a.0].name,
            link_name(&boxes[c.b.0], c.b.1),
            boxes[c.b.0].name
        );
        out.push_str(&crate::ui::wrap(&pair, columns, "", "  "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::fixtures::{other_box, red_blue};

    #[test]
    fn two_namespaces_and_their_cable() {
        let boxes = red_blue(true);
        let c = cables(&boxes, &other_box);
        assert_eq!(
            c,
            [Cable {
                a: (0, 5),
                b: (1, 4)
            }]
        );
        let wide = crate::ui::with_width(120, || diagram(&boxes, &c));
        assert!(wide.contains("o========o"), "a full cable at 120 columns");
        let narrow = diagram_at(&boxes, &c, 58);
        assert!(narrow.lines().all(|l| crate::ui::text_width(l) <= 58));
        insta::assert_snapshot!("two_namespaces_at_60", narrow);
    }

    #[test]
    fn no_cable_when_the_peer_does_not_name_it_back() {
        let mut boxes = red_blue(true);
        boxes[1].links[0].peer_index = Some(9);
        assert!(cables(&boxes, &other_box).is_empty());
    }
}
