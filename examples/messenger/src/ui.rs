//! Drawing the full-screen UI from the [`App`] state (no IO here, so tests
//! draw into ratatui's `TestBackend`).

use chrono::{DateTime, Local};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, Gauge, List, ListItem, ListState, Paragraph, Wrap};
use ricochet_client::{ContactStatus, MessageDirection, MessageStatus};

use crate::app::{App, ChatLine, Focus, Item, Overlay, human_size, short_id, status_word};
use crate::command::HELP;

/// Draws everything.
pub fn draw(frame: &mut Frame<'_>, app: &App, transport: &str) {
    let area = frame.area();
    if app.my_id.is_none() {
        draw_starting(frame, app, transport, area);
        return;
    }
    let [top, middle, input, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_top(frame, app, transport, top);
    let [side, chat] =
        Layout::horizontal([Constraint::Length(32), Constraint::Min(20)]).areas(middle);
    draw_side(frame, app, side);
    draw_main(frame, app, chat);
    draw_input(frame, app, input);
    frame.render_widget(
        Paragraph::new(app.notice.as_str()).style(Style::new().fg(Color::Yellow)),
        status,
    );
    match app.overlay {
        Some(Overlay::Help) => draw_help(frame, area),
        Some(Overlay::Qr) => draw_qr(frame, app, area),
        None => {}
    }
}

fn draw_starting(frame: &mut Frame<'_>, app: &App, transport: &str, area: Rect) {
    let [_, title, gauge, phase, advice, _] = Layout::vertical([
        Constraint::Percentage(30),
        Constraint::Length(2),
        Constraint::Length(3),
        Constraint::Length(2),
        Constraint::Length(4),
        Constraint::Min(0),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(format!("Ricochet — connecting to Tor ({transport})"))
            .alignment(Alignment::Center)
            .style(Style::new().add_modifier(Modifier::BOLD)),
        title,
    );
    if let Some(message) = &app.fatal {
        frame.render_widget(
            Paragraph::new(message.as_str())
                .wrap(Wrap { trim: true })
                .alignment(Alignment::Center)
                .style(Style::new().fg(Color::Red)),
            advice,
        );
        frame.render_widget(
            Paragraph::new("Press any key to quit.").alignment(Alignment::Center),
            phase,
        );
        return;
    }
    let percent = app.bootstrap.percent.min(100);
    frame.render_widget(
        Gauge::default()
            .block(Block::bordered().title("Tor bootstrap"))
            .gauge_style(Style::new().fg(Color::Green))
            .percent(u16::from(percent)),
        centered(gauge, 60),
    );
    frame.render_widget(
        Paragraph::new(format!("{percent}% — {}", app.bootstrap.phase))
            .alignment(Alignment::Center),
        phase,
    );
    frame.render_widget(
        Paragraph::new(
            "This takes a few seconds to a minute. Without network access it cannot \
             finish; --direct runs without Tor. Ctrl-C quits.",
        )
        .wrap(Wrap { trim: true })
        .alignment(Alignment::Center)
        .style(Style::new().fg(Color::DarkGray)),
        advice,
    );
}

fn centered(area: Rect, width: u16) -> Rect {
    let width = width.min(area.width);
    Rect {
        x: area.x + (area.width - width) / 2,
        width,
        ..area
    }
}

fn draw_top(frame: &mut Frame<'_>, app: &App, transport: &str, area: Rect) {
    let id = app.my_id.map(|id| id.to_string()).unwrap_or_default();
    let reach = app.reach();
    let full = format!("  {transport}, {reach} · F1 help · F2 QR");
    // With requests off, strangers see us offline: that stays in sight
    // whatever the width, in the badge.
    let badge = if app.accepting_requests {
        Span::styled(" Ricochet ", Style::new().fg(Color::Black).bg(Color::Cyan))
    } else {
        Span::styled(
            " Ricochet · requests off ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        )
    };
    // The id must stay whole (people copy it); the hints go first.
    let used = badge.content.chars().count() + 10 + id.chars().count();
    let room = usize::from(area.width).saturating_sub(used);
    let hint = [full, "  F1 help · F2 QR".to_owned()]
        .into_iter()
        .find(|hint| hint.chars().count() <= room)
        .unwrap_or_default();
    let line = Line::from(vec![
        badge,
        Span::raw(" your id: "),
        Span::styled(id, Style::new().add_modifier(Modifier::BOLD)),
        Span::styled(hint, Style::new().fg(Color::DarkGray)),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

fn status_mark(status: ContactStatus) -> (&'static str, Color) {
    match status {
        ContactStatus::Online => ("●", Color::Green),
        ContactStatus::Offline => ("○", Color::DarkGray),
        ContactStatus::RequestPending => ("…", Color::Yellow),
        ContactStatus::Blocked => ("⊘", Color::Red),
        _ => ("✗", Color::Red),
    }
}

fn draw_side(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let mut items = Vec::new();
    for contact in &app.contacts {
        let (mark, color) = status_mark(contact.status);
        let mut spans = vec![
            Span::styled(format!("{mark} "), Style::new().fg(color)),
            Span::raw(contact.nickname.clone()),
        ];
        if let Some(unread) = app.unread.get(&contact.id).filter(|n| **n > 0) {
            spans.push(Span::styled(
                format!(" ({unread})"),
                Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            ));
        }
        if contact.status != ContactStatus::Online && contact.status != ContactStatus::Offline {
            spans.push(Span::styled(
                format!(" {}", status_word(contact.status)),
                Style::new().fg(Color::DarkGray),
            ));
        }
        items.push(ListItem::new(Line::from(spans)));
    }
    for request in &app.requests {
        items.push(ListItem::new(Line::from(vec![
            Span::styled("? ", Style::new().fg(Color::Magenta)),
            Span::raw(short_id(request.from)),
            Span::styled(" request", Style::new().fg(Color::Magenta)),
        ])));
    }
    let focused = app.focus == Focus::Contacts;
    let block = Block::bordered()
        .title(" Contacts ")
        .border_style(border(focused));
    if items.is_empty() {
        frame.render_widget(
            Paragraph::new("No contacts yet.\n\n/add <id> [message]\nasks someone.")
                .wrap(Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let mut state = ListState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(
        List::new(items)
            .block(block)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        area,
        &mut state,
    );
}

fn border(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new()
    }
}

fn clock(time: std::time::SystemTime) -> String {
    DateTime::<Local>::from(time).format("%H:%M").to_string()
}

fn delivery_mark(status: &MessageStatus) -> Span<'static> {
    match status {
        MessageStatus::Queued => Span::styled(" ⧗", Style::new().fg(Color::DarkGray)),
        MessageStatus::Sent => Span::styled(" ✓", Style::new().fg(Color::DarkGray)),
        MessageStatus::Acknowledged => Span::styled(" ✓✓", Style::new().fg(Color::Green)),
        MessageStatus::Failed(reason) => {
            Span::styled(format!(" ✗ {reason}"), Style::new().fg(Color::Red))
        }
        _ => Span::styled(" ✗ failed", Style::new().fg(Color::Red)),
    }
}

fn draw_main(frame: &mut Frame<'_>, app: &App, area: Rect) {
    match app.selected_item() {
        Some(Item::Request(id)) => {
            let Some(request) = app.requests.iter().find(|r| r.from == id) else {
                return;
            };
            let text = Text::from(vec![
                Line::styled("Contact request", Style::new().add_modifier(Modifier::BOLD)),
                Line::raw(""),
                Line::raw(format!("from: {}", request.from)),
                Line::raw(format!("suggested name: {}", request.nickname)),
                Line::raw(""),
                Line::raw(request.message.clone()),
                Line::raw(""),
                Line::styled(
                    "/accept [name] to add, /reject to refuse (and block), /block to block",
                    Style::new().fg(Color::Yellow),
                ),
            ]);
            frame.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(" Request ")),
                area,
            );
        }
        Some(Item::Contact(id)) => {
            let name = app.name_of(id);
            let status = app
                .contacts
                .iter()
                .find(|c| c.id == id)
                .map_or("", |c| status_word(c.status));
            let mut lines = Vec::new();
            for line in app.conversations.get(&id).into_iter().flatten() {
                match line {
                    ChatLine::Message {
                        time,
                        direction,
                        text,
                        status,
                        ..
                    } => {
                        let (who, color) = match direction {
                            MessageDirection::Outgoing => ("me".to_owned(), Color::Cyan),
                            MessageDirection::Incoming => (name.clone(), Color::Magenta),
                        };
                        let mut spans = vec![
                            Span::styled(
                                format!("{} ", clock(*time)),
                                Style::new().fg(Color::DarkGray),
                            ),
                            Span::styled(format!("{who}: "), Style::new().fg(color)),
                            Span::raw(text.clone()),
                        ];
                        if *direction == MessageDirection::Outgoing {
                            spans.push(delivery_mark(status));
                        }
                        lines.push(Line::from(spans));
                    }
                    ChatLine::Notice { time, text } => lines.push(Line::styled(
                        format!("{} — {text}", clock(*time)),
                        Style::new().fg(Color::Yellow),
                    )),
                }
            }
            let transfers: Vec<_> = app
                .transfers
                .iter()
                .filter(|(_, t)| t.contact == id)
                .collect();
            let transfer_rows = u16::try_from(transfers.len()).unwrap_or(u16::MAX).min(4);
            let [chat, bars] =
                Layout::vertical([Constraint::Min(1), Constraint::Length(transfer_rows)])
                    .areas(area);
            let inner_height = usize::from(chat.height.saturating_sub(2));
            let newest_first = lines.len().saturating_sub(inner_height);
            let skip = newest_first.saturating_sub(app.scroll);
            let visible: Vec<Line<'_>> = lines.into_iter().skip(skip).collect();
            frame.render_widget(
                Paragraph::new(visible)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(format!(" {name} ({status}) "))),
                chat,
            );
            for (row, (number, transfer)) in transfers.iter().take(4).enumerate() {
                let bar = Rect {
                    y: bars.y + u16::try_from(row).unwrap_or(0),
                    height: 1,
                    ..bars
                };
                let ratio = if transfer.total == 0 {
                    0.0
                } else {
                    (transfer.bytes as f64 / transfer.total as f64).clamp(0.0, 1.0)
                };
                let verb = match transfer.direction {
                    ricochet_client::FileDirection::Upload => "sending",
                    ricochet_client::FileDirection::Download => "receiving",
                };
                frame.render_widget(
                    Gauge::default()
                        .ratio(ratio)
                        .label(format!(
                            "#{} {verb} {} {}/{}",
                            number.get(),
                            transfer.name,
                            human_size(transfer.bytes),
                            human_size(transfer.total)
                        ))
                        .gauge_style(Style::new().fg(Color::Blue)),
                    bar,
                );
            }
        }
        None => frame.render_widget(
            Paragraph::new(
                "Welcome. Give your id (on top) to a friend, or /add theirs.\n\
                 F1 or /help shows every command.",
            )
            .wrap(Wrap { trim: true })
            .block(Block::bordered()),
            area,
        ),
    }
}

fn draw_input(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let focused = app.focus == Focus::Input;
    let title = match app.selected_contact() {
        Some(contact) => format!(" Message to {} (Enter sends) ", contact.nickname),
        None => " Command ".to_owned(),
    };
    frame.render_widget(
        Paragraph::new(app.input.as_str())
            .block(Block::bordered().title(title).border_style(border(focused))),
        area,
    );
    if focused && app.overlay.is_none() {
        let width = u16::try_from(app.input.chars().count()).unwrap_or(u16::MAX);
        frame.set_cursor_position((
            area.x
                .saturating_add(1)
                .saturating_add(width)
                .min(area.right().saturating_sub(2)),
            area.y + 1,
        ));
    }
}

fn popup(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    // As wide as the text allows, and wrapped by entry: a command's
    // description wraps under itself, never under the commands.
    let natural = HELP.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let width = (natural + 2).min(usize::from(area.width)).max(12);
    let lines = help_lines(width - 2);
    let rect = popup(
        area,
        u16::try_from(width).unwrap_or(u16::MAX),
        u16::try_from(lines.len() + 2).unwrap_or(u16::MAX),
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines.join("\n")).block(Block::bordered().title(" Help (Esc closes) ")),
        rect,
    );
}

/// Where [`HELP`]'s descriptions start.
const HELP_COLUMN: usize = 28;

/// One entry of [`HELP`]: a command and what it does, or a paragraph.
enum HelpItem {
    Command { command: String, text: String },
    Prose(String),
}

/// [`HELP`] as entries: continuation lines joined to the entry they
/// continue.
fn help_items() -> Vec<HelpItem> {
    let mut items: Vec<HelpItem> = Vec::new();
    for line in HELP.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if indent >= HELP_COLUMN - 4
            && let Some(HelpItem::Command { text: more, .. }) = items.last_mut()
        {
            if !more.is_empty() {
                more.push(' ');
            }
            more.push_str(text);
            continue;
        }
        if line.starts_with("  /") {
            let (command, text) = match text.find("  ") {
                Some(gap) => (text[..gap].to_owned(), text[gap..].trim().to_owned()),
                None => (text.to_owned(), String::new()),
            };
            items.push(HelpItem::Command { command, text });
        } else if indent > 0
            && let Some(HelpItem::Prose(prose)) = items.last_mut()
        {
            prose.push(' ');
            prose.push_str(text);
        } else {
            items.push(HelpItem::Prose(text.to_owned()));
        }
    }
    items
}

/// [`HELP`] for a screen `width` columns wide.
fn help_lines(width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for item in help_items() {
        match item {
            HelpItem::Command { command, text } => {
                let head = format!("  {command}");
                let room = width.saturating_sub(HELP_COLUMN);
                if head.chars().count() + 2 <= HELP_COLUMN && room >= 20 {
                    let pad = HELP_COLUMN - head.chars().count();
                    for (i, piece) in wrap_words(&text, room).into_iter().enumerate() {
                        if i == 0 {
                            lines.push(format!("{head}{}{piece}", " ".repeat(pad)));
                        } else {
                            lines.push(format!("{}{piece}", " ".repeat(HELP_COLUMN)));
                        }
                    }
                    if text.is_empty() {
                        lines.push(head);
                    }
                } else {
                    // Too narrow for two columns: the command, then its text.
                    lines.extend(
                        wrap_words(&command, width.saturating_sub(2))
                            .into_iter()
                            .map(|p| format!("  {p}")),
                    );
                    lines.extend(
                        wrap_words(&text, width.saturating_sub(6))
                            .into_iter()
                            .map(|piece| format!("      {piece}")),
                    );
                }
            }
            HelpItem::Prose(text) => {
                for (i, piece) in wrap_words(&text, width.saturating_sub(2))
                    .into_iter()
                    .enumerate()
                {
                    lines.push(if i == 0 { piece } else { format!("  {piece}") });
                }
            }
        }
    }
    lines
}

/// `text` in lines of at most `width` characters, broken between words (a
/// longer word stands alone).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The QR code of `text` in half blocks (two rows per line).
pub fn qr_lines(text: &str) -> Vec<String> {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return vec!["(cannot make a QR code)".to_owned()];
    };
    let width = code.width();
    let colors = code.to_colors();
    let dark = |x: isize, y: isize| -> bool {
        if x < 0 || y < 0 || x >= width as isize || y >= width as isize {
            return false;
        }
        colors
            .get(y as usize * width + x as usize)
            .is_some_and(|c| *c == qrcode::Color::Dark)
    };
    let quiet = 2isize;
    let size = width as isize;
    let mut lines = Vec::new();
    let mut y = -quiet;
    while y < size + quiet {
        let mut line = String::new();
        for x in -quiet..size + quiet {
            line.push(match (dark(x, y), dark(x, y + 1)) {
                (true, true) => ' ',
                (true, false) => '▄',
                (false, true) => '▀',
                (false, false) => '█',
            });
        }
        lines.push(line);
        y += 2;
    }
    lines
}

fn draw_qr(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let id = app.my_id.map(|id| id.to_string()).unwrap_or_default();
    let mut lines: Vec<Line<'_>> = qr_lines(&id).into_iter().map(Line::raw).collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(id));
    let height = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2);
    let rect = popup(area, 72, height);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .block(Block::bordered().title(" Your id (Esc closes) ")),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use ricochet_client::FailureReason;

    use super::*;

    #[test]
    fn help_wraps_by_entry() {
        let words = |text: &str| {
            let mut words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
            words.sort();
            words
        };
        for width in [50, 64, 80, 120] {
            let lines = help_lines(width);
            for line in &lines {
                assert!(line.chars().count() <= width, "{width}: {line:?}");
            }
            // Every word, none split.
            assert_eq!(words(&lines.join(" ")), words(HELP), "{width}");
            // Every command starts a line; descriptions never do.
            for item in help_items() {
                if let HelpItem::Command { command, .. } = item {
                    let first = command.split_whitespace().next().unwrap_or_default();
                    assert!(
                        lines.iter().any(|l| l.starts_with(&format!("  {first}"))),
                        "{width}: {command}"
                    );
                }
            }
        }
        // Wide enough: a description continues under itself.
        let lines = help_lines(80);
        let at = lines
            .iter()
            .position(|l| l.starts_with("  /requests off"))
            .unwrap();
        assert!(
            lines[at + 1].starts_with(&" ".repeat(HELP_COLUMN)),
            "{:?}",
            &lines[at..at + 3]
        );
    }

    #[test]
    fn requests_off_stays_in_sight() {
        let app = App {
            my_id: Some(
                ricochet_client::IdentityKey::generate(ricochet_client::Generation::V3)
                    .unwrap()
                    .ricochet_id(),
            ),
            accepting_requests: false,
            ..App::default()
        };
        for width in [90, 140] {
            let mut terminal =
                ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, 1)).unwrap();
            terminal
                .draw(|frame| draw_top(frame, &app, "direct TCP", frame.area()))
                .unwrap();
            let buffer = terminal.backend().buffer();
            let line: String = (0..width).map(|x| buffer[(x, 0)].symbol()).collect();
            assert!(line.contains("requests off"), "{width}: {line}");
        }
    }

    #[test]
    fn a_failed_message_shows_why() {
        let mark = delivery_mark(&MessageStatus::Failed(FailureReason::RefusedByPeer));
        assert!(
            mark.content.contains("✗ their client refused it"),
            "{mark:?}"
        );
    }
}
