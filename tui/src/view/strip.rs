//! A log drawn as a strip of cells, one offset (or a few) to a cell, shared by the partitions
//! pane and the log picture.
//!
//! All strips of a partition share one [`Window`] of offsets, so replicas line up by offset and a
//! replica that is behind, or that lost its tail, shows it. Per cell, most telling first:
//! - `C` / `A`: a transaction marker (COMMIT or ABORT control record);
//! - `░`: a record at or above that replica's high watermark (not yet committed: an unclean
//!   election or a truncation may still take it);
//! - `▒`: a committed record at or above the last stable offset (in a transaction not yet decided,
//!   or whose marker is not yet committed: `read_committed` consumers wait for it);
//! - `█`: a committed, stable record;
//! - `╌`: offsets the log no longer holds although later ones remain (a gap, as compaction leaves);
//! - `x`: an offset it just lost to a truncation; `·`: an offset another replica has and it does
//!   not; `…`: older offsets, not drawn.

use super::style;
use crate::fold::ReplicaLog;
use ksim_cluster::record::ControlType;
use ksim_cluster::topic::BrokerId;
use ratatui::style::Style;
use ratatui::text::Span;

/// The offsets a replica just lost, while they are still missing from its log.
pub fn lost(log: &ReplicaLog) -> Option<(i64, i64)> {
    let t = log.last_truncation?;
    let end = t.to_offset + t.removed;
    (log.log_end_offset < end).then_some((t.to_offset, end))
}

/// Which offsets the strips of one partition show. When every replica's log end (and any offsets
/// just lost) fit, one cell is one offset and the window ends at the furthest log end: the
/// committed/uncommitted boundary is drawn exactly. When replicas are too far apart for that (one
/// is far behind, or lost a long tail), the whole log is drawn, several offsets to a cell, so the
/// gap itself shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub start: i64,
    /// The furthest log end (or lost offset) of the partition: cells past it are blank.
    pub end: i64,
    pub offsets_per_cell: i64,
    pub cells: usize,
}

impl Window {
    pub fn fit(rows: &[(BrokerId, &ReplicaLog)], cells: usize) -> Window {
        let end =
            rows.iter().map(|(_, log)| log.log_end_offset.max(lost(log).map_or(0, |l| l.1))).max().unwrap_or(0).max(0);
        let low =
            rows.iter().map(|(_, log)| lost(log).map_or(log.log_end_offset, |l| l.0.min(log.log_end_offset))).min();
        let width = cells.max(1) as i64;
        if end - low.unwrap_or(end) < width - 1 {
            return Window { start: (end - width).max(0), end, offsets_per_cell: 1, cells };
        }
        let start = rows.iter().map(|(_, log)| log.log_start_offset).min().unwrap_or(0).clamp(0, end);
        let per_cell = (end - start + width - 1) / width;
        Window { start, end, offsets_per_cell: per_cell.max(1), cells }
    }

    /// The whole log, from the lowest log start to the furthest log end, as few offsets to a cell
    /// as fit, with room for one offset more: the log end, the next offset to be written, gets a
    /// cell of its own to be marked at.
    pub fn whole(rows: &[(BrokerId, &ReplicaLog)], cells: usize) -> Window {
        let end = rows.iter().map(|(_, log)| log.log_end_offset.max(lost(log).map_or(0, |l| l.1))).max().unwrap_or(0);
        let start = rows.iter().map(|(_, log)| log.log_start_offset).min().unwrap_or(0).clamp(0, end.max(0));
        let cells = cells.max(1);
        let span = end + 1 - start;
        let per_cell = ((span + cells as i64 - 1) / cells as i64).max(1);
        // No cells past the log end's.
        let cells = ((span + per_cell - 1) / per_cell).clamp(1, cells as i64) as usize;
        Window { start, end, offsets_per_cell: per_cell, cells }
    }

    /// The cell an offset falls in, if the window shows it.
    pub fn cell_of(&self, offset: i64) -> Option<usize> {
        if offset < self.start {
            return None;
        }
        let cell = ((offset - self.start) / self.offsets_per_cell) as usize;
        (cell < self.cells).then_some(cell)
    }

    /// The cell an offset is drawn at: its own, or the first (older) or last (past the end).
    pub fn clamped_cell(&self, offset: i64) -> usize {
        self.cell_of(offset).unwrap_or(if offset < self.start { 0 } else { self.cells.saturating_sub(1) })
    }

    /// The offset the cell begins with.
    pub fn offset_of(&self, cell: usize) -> i64 {
        self.start + cell as i64 * self.offsets_per_cell
    }

    /// One replica's strip, consecutive equal cells merged into one span.
    pub fn strip(&self, log: &ReplicaLog) -> Vec<Span<'static>> {
        let lost = lost(log);
        let k = self.offsets_per_cell;
        let hw = log.high_watermark.min(log.log_end_offset);
        let lso = log.last_stable_offset().min(hw);
        let markers: Vec<(i64, ControlType)> = log.markers().collect();
        let cell = |a: i64| -> (char, Style) {
            let b = a + k;
            if b <= log.log_start_offset {
                (' ', Style::new())
            } else if a < log.log_end_offset {
                let held: Vec<i64> = (a.max(log.log_start_offset)..b.min(log.log_end_offset)).collect();
                if !held.iter().any(|o| log.holds(*o)) {
                    return (style::GAP, style::dim());
                }
                if let Some((_, control)) = markers.iter().find(|(o, _)| (a..b).contains(o)) {
                    return match control {
                        ControlType::Commit => (style::COMMIT_MARKER, style::good()),
                        ControlType::Abort => (style::ABORT_MARKER, style::bad()),
                    };
                }
                // Any uncommitted offset in the cell shows: the tail is the interesting part.
                if a.max(hw) < b.min(log.log_end_offset) {
                    (style::UNCOMMITTED, Style::new())
                } else if a.max(lso) < b.min(hw) {
                    (style::UNSTABLE, style::good())
                } else {
                    (style::COMMITTED, style::good())
                }
            } else if lost.is_some_and(|(from, to)| a < to && b > from) {
                (style::TRUNCATED, style::bad())
            } else {
                (style::MISSING, style::dim())
            }
        };
        let mut cells: Vec<(char, Style)> = Vec::with_capacity(self.cells);
        let mut a = self.start;
        while a < self.end && cells.len() < self.cells {
            cells.push(cell(a));
            a += k;
        }
        if self.start > 0 && k == 1 {
            if let Some(first) = cells.first_mut() {
                *first = (style::OLDER, style::dim());
            }
        }
        // Pad short strips so the numbers after them line up.
        cells.resize(self.cells, (' ', Style::new()));
        merge(cells)
    }

    /// The offset ruler: a number at every tick, ticks spaced so that the numbers fit.
    pub fn ruler(&self) -> String {
        let k = self.offsets_per_cell;
        // The widest number drawn, plus a space, per tick at least.
        let digits = self.offset_of(self.cells).max(1).to_string().len() as i64 + 1;
        let mut step = 1;
        for candidate in [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 100_000, 1_000_000] {
            step = candidate;
            if candidate >= digits * k {
                break;
            }
        }
        let mut out: Vec<char> = vec![' '; self.cells];
        let mut next_free = 0;
        for cell in 0..self.cells {
            let from = self.offset_of(cell);
            // The first multiple of `step` in this cell's offsets.
            let tick = (from + step - 1) / step * step;
            if tick >= from + k || cell < next_free {
                continue;
            }
            let label: Vec<char> = tick.to_string().chars().collect();
            if cell + label.len() > self.cells {
                break;
            }
            out[cell..cell + label.len()].copy_from_slice(&label);
            next_free = cell + label.len() + 1;
        }
        out.into_iter().collect::<String>().trim_end().to_string()
    }
}

/// Cells as spans, consecutive equal styles merged.
pub fn merge(cells: Vec<(char, Style)>) -> Vec<Span<'static>> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut run = String::new();
    let mut run_style = Style::new();
    for (c, st) in cells {
        if st != run_style && !run.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut run), run_style));
        }
        run_style = st;
        run.push(c);
    }
    if !run.is_empty() {
        spans.push(Span::styled(run, run_style));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(spans: &[Span]) -> String {
        spans.iter().map(|s| s.content.as_ref()).collect()
    }

    fn log(start: i64, hw: i64, leo: i64) -> ReplicaLog {
        ReplicaLog { log_start_offset: start, high_watermark: hw, log_end_offset: leo, ..ReplicaLog::default() }
    }

    #[test]
    fn committed_uncommitted_and_missing_cells() {
        let (a, b) = (log(0, 6, 8), log(0, 6, 6));
        let window = Window::fit(&[(1, &a), (2, &b)], 10);
        assert_eq!(text(&window.strip(&a)), "██████░░  ");
        assert_eq!(text(&window.strip(&b)), "██████··  ");
    }

    /// An aborted transaction at 1..=2, then one open from offset 3: committed but not stable.
    #[test]
    fn an_open_transaction_is_unstable_and_markers_show() {
        let mut a = log(0, 8, 9);
        a.txn_batches.insert(1, (7, None));
        a.txn_batches.insert(2, (7, Some(ControlType::Abort)));
        a.txn_batches.insert(3, (9, None));
        assert_eq!(a.last_stable_offset(), 3);
        let window = Window::fit(&[(1, &a)], 10);
        assert_eq!(text(&window.strip(&a)), "██A▒▒▒▒▒░ ");
        a.txn_batches.insert(8, (9, Some(ControlType::Commit)));
        // The marker is at the high watermark, not below it: the transaction is not stable yet.
        assert_eq!(a.last_stable_offset(), 3);
        a.high_watermark = 9;
        assert_eq!(a.last_stable_offset(), 9);
        assert_eq!(text(&window.strip(&a)), "██A█████C ");
    }

    /// Offsets a log no longer holds between its start and its end are drawn as a gap.
    #[test]
    fn a_gap_in_the_log_is_drawn() {
        let mut a = log(0, 10, 10);
        a.absent = vec![(2, 5), (7, 8)];
        let window = Window::fit(&[(1, &a)], 10);
        assert_eq!(text(&window.strip(&a)), "██╌╌╌██╌██");
        assert!(a.holds(5) && !a.holds(4) && !a.holds(10));
    }

    #[test]
    fn the_whole_log_fits_with_a_cell_for_the_log_end() {
        let (a, b) = (log(4, 30, 40), log(0, 30, 35));
        let window = Window::whole(&[(1, &a), (2, &b)], 10);
        assert_eq!((window.start, window.end, window.offsets_per_cell), (0, 40, 5));
        assert_eq!(window.cell_of(40), Some(8), "the log end has a cell");
        assert_eq!(text(&window.strip(&b)), "██████░· ", "no cells past the log end's");
    }

    #[test]
    fn the_ruler_numbers_fit_between_ticks() {
        let window = Window { start: 0, end: 40, offsets_per_cell: 1, cells: 40 };
        assert_eq!(window.ruler(), "0    5    10   15   20   25   30   35");
        let wide = Window { start: 0, end: 400, offsets_per_cell: 10, cells: 40 };
        assert_eq!(wide.ruler(), "0    50   100  150  200  250  300  350");
        assert_eq!(wide.cell_of(95), Some(9));
        assert_eq!(wide.clamped_cell(4000), 39);
    }
}
