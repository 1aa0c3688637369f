//! The verdict, at the end of a run: each expectation of the scenario with `ok` or `FAILED`, and
//! every finding in full, as `ksim run` prints them (`ksim_sim::report::Report::render`). On a
//! what-if branch, what turned out differently from the original run comes first.

use super::style;
use crate::model::Model;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// Whether the verdict is what the body shows: at the end of a run whose report is at hand.
pub fn shown(model: &Model) -> bool {
    model.cursor >= model.recording.len() && model.recording.report.is_some()
}

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let Some(report) = &model.recording.report else { return };
    let title = if report.passed() { "Verdict: passed" } else { "Verdict: FAILED" };
    let block = style::section(title);
    let inner = block.inner(area);
    let mut lines: Vec<Line<'static>> = Vec::new();
    // A branch's verdict starts with how its run differs from the original.
    if let Some(branch) = &model.branch {
        lines.push(Line::styled(" Unlike the original run:", style::bold()));
        for difference in &branch.differences {
            lines.push(Line::styled(format!(" - {difference}"), style::finding()));
        }
    }
    // The header already names the scenario and seed, and the title says pass or fail.
    let keep = |text: &&str| !["scenario:", "overrides:", "seed:", "result:"].iter().any(|p| text.starts_with(p));
    for text in report.render().lines().filter(keep) {
        let st = if text.contains("[FAILED]") || text.contains("VIOLATION") || text.contains("BUG") {
            style::bad()
        } else if text.ends_with(':') {
            style::bold()
        } else {
            ratatui::style::Style::new()
        };
        lines.push(Line::styled(format!(" {text}"), st));
    }
    // Too long for the screen: say how much is left out and where to read it all.
    if style::rows(&lines, inner.width) > inner.height as usize && inner.height > 0 {
        let mut kept = Vec::new();
        let mut used = 0;
        for line in &lines {
            let rows = style::rows(std::slice::from_ref(line), inner.width);
            if used + rows >= inner.height as usize {
                break;
            }
            used += rows;
            kept.push(line.clone());
        }
        let hidden = lines.len() - kept.len();
        kept.push(Line::styled(format!(" +{hidden} more lines: `ksim run` prints the whole report"), style::dim()));
        lines = kept;
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}
