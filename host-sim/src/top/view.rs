//! What `top` shows: a row per socket, each ring as a bar with `used/capacity`, bytes in
//! and out per second, and the counters of trouble (blocks, zero windows, drops,
//! truncations). Drawn with ratatui on a terminal, or as plain text.

use std::io;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::{describe, Frame, Source, TopConfig};

/// Width of a ring's bar, in characters.
const BAR: usize = 16;

/// A ring as a bar of `BAR` characters: `#` for used, `-` for free.
pub fn bar(used: u64, capacity: u64) -> String {
    let filled = if capacity == 0 {
        0
    } else {
        // Any byte in use shows as at least one mark; only a full ring fills the bar.
        let exact = used.min(capacity) as f64 * BAR as f64 / capacity as f64;
        let marks = exact.floor() as usize;
        if used > 0 && marks == 0 {
            1
        } else if used < capacity && marks == BAR {
            BAR - 1
        } else {
            marks
        }
    };
    format!("{}{}", "#".repeat(filled), "-".repeat(BAR - filled))
}

/// Bytes per second, short: `512 B/s`, `4.1 kB/s`, `12.3 MB/s`.
pub fn rate(bytes_per_second: f64) -> String {
    if bytes_per_second >= 1e6 {
        format!("{:.1} MB/s", bytes_per_second / 1e6)
    } else if bytes_per_second >= 1e3 {
        format!("{:.1} kB/s", bytes_per_second / 1e3)
    } else {
        format!("{bytes_per_second:.0} B/s")
    }
}

const COLUMNS: [&str; 10] = [
    "socket", "port", "rx ring", "tx ring", "in", "out", "blocks", "zwin", "drops", "trunc",
];

fn cells(frame: &Frame) -> Vec<[String; 10]> {
    let Ok(snapshot) = &frame.snapshot else {
        return Vec::new();
    };
    snapshot
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (rate_in, rate_out) = frame.rates.get(i).copied().unwrap_or((0.0, 0.0));
            [
                r.socket.clone(),
                r.port.to_string(),
                format!("{} {}/{}", bar(r.rx.0, r.rx.1), r.rx.0, r.rx.1),
                format!("{} {}/{}", bar(r.tx.0, r.tx.1), r.tx.0, r.tx.1),
                rate(rate_in),
                rate(rate_out),
                format!("{}+{} {}ms", r.blocks.0, r.blocks.1, r.blocked_ms),
                r.zero_windows.to_string(),
                r.drops.to_string(),
                r.truncations.to_string(),
            ]
        })
        .collect()
}

/// One snapshot as plain text: a heading, the host's line, then a row per socket.
pub fn plain_text(source: &Source, frame: &Frame) -> String {
    let mut out = format!(
        "ringnet top: {}, snapshot {}\n",
        describe(source),
        frame.taken
    );
    match &frame.snapshot {
        Err(why) => out.push_str(&format!("no answer: {why}\n")),
        Ok(snapshot) => {
            out.push_str(&snapshot.host);
            out.push('\n');
            let rows = cells(frame);
            let widths: Vec<usize> = (0..COLUMNS.len())
                .map(|c| {
                    rows.iter()
                        .map(|r| r[c].len())
                        .chain([COLUMNS[c].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |fields: &[&str]| {
                let mut text = String::new();
                for (c, field) in fields.iter().enumerate() {
                    text.push_str(&format!("{field:<w$}  ", w = widths[c]));
                }
                text.trim_end().to_string() + "\n"
            };
            out.push_str(&line(&COLUMNS));
            for row in &rows {
                let fields: Vec<&str> = row.iter().map(String::as_str).collect();
                out.push_str(&line(&fields));
            }
        }
    }
    out
}

fn ring_style(used: u64, capacity: u64, color: Color) -> Style {
    if capacity > 0 && used >= capacity {
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::default().fg(color)
    }
}

fn draw(frame: &mut ratatui::Frame<'_>, config: &TopConfig, shown: &Frame) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let host = match &shown.snapshot {
        Ok(s) => Span::styled(
            s.host.clone(),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Err(why) => Span::styled(format!("no answer: {why}"), Style::default().fg(Color::Red)),
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(format!("ringnet top: {}", describe(&config.source))),
            Line::from(host),
        ]),
        head,
    );
    let rows_data = match &shown.snapshot {
        Ok(s) => s.rows.clone(),
        Err(_) => Vec::new(),
    };
    let rows = cells(shown).into_iter().zip(rows_data).map(|(text, r)| {
        let styles = [
            Style::default().add_modifier(Modifier::BOLD),
            Style::default(),
            ring_style(r.rx.0, r.rx.1, Color::Blue),
            ring_style(r.tx.0, r.tx.1, Color::Yellow),
            Style::default().fg(Color::Green),
            Style::default().fg(Color::Green),
            Style::default(),
            Style::default(),
            if r.drops > 0 {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            },
            Style::default(),
        ];
        Row::new(
            text.into_iter()
                .zip(styles)
                .map(|(t, s)| Cell::from(t).style(s)),
        )
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(BAR as u16 + 12),
        Constraint::Length(BAR as u16 + 12),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Length(14),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(COLUMNS).style(Style::default().add_modifier(Modifier::UNDERLINED)))
        .block(Block::default().borders(Borders::TOP));
    frame.render_widget(table, body);
    frame.render_widget(
        Paragraph::new(format!(
            "q quits · every {} ms · snapshot {}",
            config.interval.as_millis(),
            shown.taken
        )),
        foot,
    );
}

/// Draws snapshots on the terminal until `q` (or Esc, or Ctrl-C) or `count`; returns how
/// many were answered.
pub fn interactive(config: &TopConfig, next: &mut impl FnMut() -> (Frame, u64)) -> io::Result<u64> {
    let mut terminal = ratatui::try_init()?;
    let result = (|| {
        loop {
            let started = Instant::now();
            let (frame, answered) = next();
            terminal.draw(|f| draw(f, config, &frame))?;
            if config.count.is_some_and(|n| frame.taken >= n) {
                return Ok(answered);
            }
            // Keys are read while waiting for the next refresh.
            loop {
                let left = config.interval.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break;
                }
                if event::poll(left.min(Duration::from_millis(50)))? {
                    if let Event::Key(key) = event::read()? {
                        let ctrl_c = key.code == KeyCode::Char('c')
                            && key.modifiers.contains(KeyModifiers::CONTROL);
                        if key.kind == KeyEventKind::Press
                            && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c)
                        {
                            return Ok(answered);
                        }
                    }
                }
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_is_full_only_when_the_ring_is_and_never_empty_while_bytes_wait() {
        assert_eq!(bar(0, 256), "-".repeat(BAR));
        assert_eq!(bar(256, 256), "#".repeat(BAR));
        assert_eq!(bar(1, 65536).matches('#').count(), 1);
        assert_eq!(bar(65535, 65536).matches('#').count(), BAR - 1);
        assert_eq!(bar(128, 256).matches('#').count(), BAR / 2);
        assert_eq!(bar(5, 0), "-".repeat(BAR));
        assert_eq!(rate(0.0), "0 B/s");
        assert_eq!(rate(4100.0), "4.1 kB/s");
        assert_eq!(rate(12_345_678.0), "12.3 MB/s");
    }
}
