//! The timeline: the whole run as a bar of virtual time, with a letter over each interesting
//! event (`F` fault, `E` election, `U` unclean election, `O` offline, `I` ISR change, `T`
//! truncation, `R` rebalance, `!` finding), the play head, and where we are in words.

use super::style;
use crate::markers::MarkerKind;
use crate::model::Model;
use crate::update::speed_label;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let width = area.width.saturating_sub(2) as usize;
    if width == 0 {
        return;
    }
    let recording = &model.recording;
    let end = recording.end_time_us().max(1);
    let column = |time_us: u64| ((time_us.min(end) as u128 * (width as u128 - 1)) / end as u128) as usize;

    let mut marks: Vec<Option<MarkerKind>> = vec![None; width];
    for (index, kind) in &recording.markers.events {
        if let Some(event) = recording.trace.events.get(*index) {
            let slot = &mut marks[column(event.time_us)];
            *slot = (*slot).max(Some(*kind));
        }
    }
    let head = column(model.time_us());
    let mark_spans: Vec<Span> = std::iter::once(Span::raw(" "))
        .chain(marks.iter().map(|m| match m {
            Some(kind) => Span::styled(kind.glyph().to_string(), marker_style(*kind)),
            None => Span::raw(" "),
        }))
        .collect();
    let played = "━".repeat(head);
    let to_play = "─".repeat(width.saturating_sub(head + 1));
    let bar = Line::from(vec![
        Span::raw(" "),
        Span::styled(played, style::bold()),
        Span::styled("●", style::bold()),
        Span::styled(to_play, style::dim()),
    ]);

    let mut info = vec![Span::styled(
        format!(
            " {} of {}  step {} of {}",
            style::time(model.time_us()),
            style::time(recording.end_time_us()),
            model.cursor,
            recording.len()
        ),
        style::bold(),
    )];
    info.push(Span::raw(if model.playing {
        format!("  ▶ PLAYING {}", speed_label(model.speed))
    } else {
        format!("  ‖ paused {}", speed_label(model.speed))
    }));
    // At a stop of the jumps, the moment it is about (an election, even when its narration came
    // after it); elsewhere, the event at the cursor if it is interesting.
    let stop = recording.markers.stops.binary_search_by_key(&model.cursor, |(s, _)| *s).ok();
    let kind = match stop {
        Some(i) => Some(recording.markers.stops[i].1),
        None => model.cursor.checked_sub(1).and_then(|i| recording.markers.at(i)),
    };
    if let Some(kind) = kind {
        info.push(Span::styled(format!("  {} {}", kind.glyph(), kind.name()), marker_style(kind)));
    }
    if model.view.findings > 0 {
        info.push(Span::styled(
            match model.view.bugs {
                0 => format!("  findings {} ({} violation(s))", model.view.findings, model.view.violations),
                bugs => format!(
                    "  findings {} ({} violation(s), {bugs} ksim bug(s))",
                    model.view.findings, model.view.violations
                ),
            },
            style::finding(),
        ));
    }
    if model.branch.is_some() {
        info.push(Span::styled("  BRANCH", style::branch()));
    }
    let lines = vec![Line::from(mark_spans), bar, Line::from(info)];
    frame.render_widget(Paragraph::new(lines), area);
}

fn marker_style(kind: MarkerKind) -> Style {
    match kind {
        MarkerKind::Fault | MarkerKind::UncleanElection | MarkerKind::Offline | MarkerKind::Truncation => style::bad(),
        MarkerKind::Finding => style::finding(),
        _ => style::bold(),
    }
}
