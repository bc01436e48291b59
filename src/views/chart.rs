//! A time chart of CPU share: one column per sampling window, one row per 10% of a CPU,
//! drawn with block characters (eighths of a row), with the limit marked when there is one.

/// Rows of the chart: 10% of one CPU each.
const ROWS: usize = 10;
const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Mean, lowest and highest of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

pub fn stats(series: &[f64]) -> Option<Stats> {
    if series.is_empty() {
        return None;
    }
    let sum: f64 = series.iter().sum();
    Some(Stats {
        mean: sum / series.len() as f64,
        min: series.iter().copied().fold(f64::INFINITY, f64::min),
        max: series.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// The glyph for `value` (% of one CPU) in the row covering (`lo`, `lo` + 10].
fn cell(value: f64, lo: f64) -> char {
    let step = 100.0 / ROWS as f64;
    let filled = ((value - lo) / step * 8.0).round().clamp(0.0, 8.0) as usize;
    EIGHTHS[filled]
}

fn seconds(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Render `series` (share of one CPU in %, one value per window of `window_ms`) as a chart.
/// `limit` (in %) is marked on its row. Pure: the same input always gives the same text.
pub fn render(series: &[f64], window_ms: u64, limit: Option<f64>) -> String {
    let step = 100.0 / ROWS as f64;
    let mut out = String::new();
    for r in 0..ROWS {
        let top = 100.0 - step * r as f64;
        let lo = top - step;
        let label = if r % 2 == 0 || r + 1 == ROWS {
            format!("{:>4}% ┤", top as u32)
        } else {
            "      │".to_string()
        };
        let mut line = label;
        for &v in series {
            line.push(cell(v.min(100.0), lo));
        }
        if let Some(l) = limit.filter(|&l| l > lo && l <= top) {
            line.push_str(&format!("  ◂ limit {}", limit_label(l)));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!("   0% └{}\n", "─".repeat(series.len().max(1))));
    let end = seconds(series.len() as u64 * window_ms);
    let width = series.len().max(1);
    let gap = width.saturating_sub(3 + end.chars().count()).max(1);
    out.push_str(&format!("       0 s{}{end}\n", " ".repeat(gap)));
    out.push_str(&summary(series, window_ms));
    out
}

/// `mean 10.1%  min 8.0%  max 12.3%  (20 windows of 100 ms)`.
pub fn summary(series: &[f64], window_ms: u64) -> String {
    match stats(series) {
        None => "no samples yet\n".to_string(),
        Some(s) => format!(
            "mean {}  min {}  max {}  ({} window{} of {window_ms} ms)\n",
            percent(s.mean),
            percent(s.min),
            percent(s.max),
            series.len(),
            if series.len() == 1 { "" } else { "s" }
        ),
    }
}

/// `9.8%`, `10.0%`, `100%`: one decimal, so small shares near a 10% limit stay readable.
pub fn percent(v: f64) -> String {
    if v >= 99.95 {
        "100%".to_string()
    } else {
        format!("{v:.1}%")
    }
}

/// A limit as set: `10%`, `12.5%`.
fn limit_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}%")
    } else {
        percent(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_fill_by_eighths() {
        assert_eq!(cell(0.0, 0.0), ' ');
        assert_eq!(cell(10.0, 0.0), '█');
        assert_eq!(cell(5.0, 0.0), '▄');
        assert_eq!(cell(55.0, 40.0), '█');
        assert_eq!(cell(45.0, 50.0), ' ');
        assert_eq!(cell(1.25, 0.0), '▁');
    }

    #[test]
    fn shares_over_one_cpu_and_numbers() {
        // Values over one CPU (threads) fill the top row; the limit above it is not drawn.
        assert!(render(&[180.0], 250, Some(150.0)).starts_with(" 100% ┤█\n"));
        assert_eq!(percent(10.04), "10.0%");
        assert_eq!(limit_label(10.0), "10%");
        assert_eq!(percent(9.84), "9.8%");
        assert_eq!(percent(100.0), "100%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(
            stats(&[1.0, 3.0]),
            Some(Stats {
                mean: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
    }
}
