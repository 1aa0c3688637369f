//! The top line: which scenario, which seed, and whether this is the original run or a what-if
//! branch (in words, not only in colour).

use super::style;
use crate::model::Model;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn render(model: &Model, frame: &mut Frame, area: Rect) {
    let header = &model.trace().header;
    let right = match &model.branch {
        None if model.live && model.follow => Span::styled(" LIVE: following the run ", style::branch()),
        None if model.live => Span::styled(" LIVE: stopped following (space) ", style::branch()),
        Some(branch) => {
            Span::styled(format!(" BRANCH: what if we {}? (b: back) ", branch.labels.join(", then ")), style::branch())
        }
        None => Span::styled(" original run ", style::dim()),
    };
    // The branch marker wins the space; the title gives way.
    let right_width = (right.width() as u16).min(area.width * 2 / 3);
    let [left_area, right_area] = Layout::horizontal([Constraint::Min(0), Constraint::Length(right_width)]).areas(area);
    let left = Line::from(vec![
        Span::styled(" ksim ", style::bold()),
        Span::raw(format!("{} ", header.title)),
        Span::styled(format!("({}, seed {})", header.scenario, header.seed), style::dim()),
    ]);
    frame.render_widget(Paragraph::new(left), left_area);
    frame.render_widget(Paragraph::new(Line::from(right)), right_area);
}
