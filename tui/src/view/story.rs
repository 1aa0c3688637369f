//! The story pane: the run so far in plain language, newest at the bottom, the same lines
//! `ksim run` prints (`ksim_sim::narrate::lines`), with the scenario's narration among them. It
//! scrolls with the cursor: the last line is the latest shown event at or before it.

use super::style;
use crate::model::Model;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let block = style::section("Story");
    let inner = block.inner(area);
    let lines = lines(model, inner.width, inner.height);
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }).block(block), area);
}

/// The newest story lines that fit in `height` rows of `width` columns, wrapped, oldest first.
fn lines(model: &Model, width: u16, height: u16) -> Vec<Line<'static>> {
    let story = &model.recording.story;
    let trace = model.trace();
    // The lines of the events applied so far: those before the cursor.
    let shown = story.partition_point(|(index, _)| *index < model.cursor);
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut used = 0;
    for (index, text) in story[..shown].iter().rev() {
        let event = &trace.events[*index];
        let (text, emphasis) = match text.strip_prefix("# ") {
            Some(narration) => (narration.to_string(), style::bold()),
            None => (text.clone(), Style::new()),
        };
        let line = Line::from(vec![
            Span::styled(format!(" {} {} ", style::time(event.time_us), trace.actor_name(event.actor)), style::dim()),
            Span::styled(text, emphasis),
        ]);
        let rows = style::rows(std::slice::from_ref(&line), width);
        if used + rows > height as usize {
            break;
        }
        used += rows;
        out.push(line);
    }
    if out.is_empty() && height > 0 {
        out.push(Line::styled(" nothing yet: step forward with → or n", style::dim()));
    }
    out.reverse();
    out
}
