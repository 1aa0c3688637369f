//! The help overlay: every key (from [`crate::keys::KEYS`]) and every symbol the panes use.

use super::style;
use crate::keys::KEYS;
use crate::markers::MarkerKind;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

pub fn render(frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(keys, what)| Line::from(vec![Span::styled(format!(" {keys:<6} "), style::bold()), Span::raw(*what)]))
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(" L leader  * in ISR  l believes it leads (stale)  ? registering"));
    lines.push(Line::raw(" ● up  x killed  o no power  z paused  f fenced  c cut off the network"));
    lines.push(Line::raw(format!(
        " {} committed (below HW)  {} uncommitted  {} truncated  {} missing  {} older",
        style::COMMITTED,
        style::UNCOMMITTED,
        style::TRUNCATED,
        style::MISSING,
        style::OLDER
    )));
    lines.push(Line::raw(format!(
        " {} compacted away  [3/cell] each cell of a log strip stands for 3 offsets",
        style::CLEANED
    )));
    // The timeline letters, four to a line.
    let markers: Vec<String> = MarkerKind::ALL.iter().map(|k| format!("{} {}", k.glyph(), k.name())).collect();
    for (i, chunk) in markers.chunks(4).enumerate() {
        let lead = if i == 0 { " timeline: " } else { "           " };
        lines.push(Line::raw(format!("{lead}{}", chunk.join("  "))));
    }

    let width = area.width.saturating_sub(2).min(84);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    let block = Block::bordered().title(" Help: keys and symbols (any key closes) ");
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), popup);
}
