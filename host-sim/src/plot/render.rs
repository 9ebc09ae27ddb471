//! Drawing a [`Timeline`] as an SVG: one panel per socket, time on x, bytes on y.
//!
//! Each device socket's panel has its rx and tx ring occupancy (steps: the value holds
//! until the next change) with each ring's capacity as a thin line of the same hue, the
//! advertised window, zero-window intervals shaded red and blocked calls shaded grey,
//! drops as red crosses and truncations as purple triangles. A Linux-side panel has the
//! kernel's receive and send queues (SIOCINQ, SIOCOUTQ) in bytes and, on a second axis in
//! segments, TCP_INFO's unacknowledged segments and congestion window, with a cross at
//! each retransmission. Labelled marks (the demo's scenarios) are vertical lines through
//! every panel, labelled in the first.
//!
//! Drawn with plotters' SVG backend and its built-in text layout: no font files needed;
//! text is left to the viewer's sans-serif font.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::model::{Clock, Steps, Timeline, Track};

/// The hues of the series; tests find the series in the SVG by them.
pub mod colors {
    use plotters::style::RGBColor;
    /// rx occupancy.
    pub const RX: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
    /// rx capacity.
    pub const RX_CAPACITY: RGBColor = RGBColor(0x7f, 0xb8, 0xe0);
    /// tx occupancy.
    pub const TX: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
    /// tx capacity.
    pub const TX_CAPACITY: RGBColor = RGBColor(0xff, 0xc0, 0x80);
    /// Advertised window.
    pub const WINDOW: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
    /// Zero-window shading.
    pub const ZERO_WINDOW: RGBColor = RGBColor(0xd6, 0x27, 0x28);
    /// Blocked-call shading.
    pub const BLOCKED: RGBColor = RGBColor(0x70, 0x70, 0x70);
    /// Drop markers.
    pub const DROP: RGBColor = RGBColor(0xc0, 0x00, 0x00);
    /// Truncation markers.
    pub const TRUNCATION: RGBColor = RGBColor(0x94, 0x67, 0xbd);
    /// Linux: unacknowledged segments.
    pub const UNACKED: RGBColor = RGBColor(0x8c, 0x56, 0x4b);
    /// Linux: congestion window.
    pub const CWND: RGBColor = RGBColor(0xe3, 0x77, 0xc2);
    /// Scenario marks.
    pub const MARK: RGBColor = RGBColor(0x40, 0x40, 0x40);
}

/// Room right of each panel for its legend, in pixels.
const LEGEND_WIDTH: u32 = 250;

/// What to draw and how big.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// Only the tracks these names select (see [`Track::matches`]); empty: every track.
    pub sockets: Vec<String>,
    /// Start of the time axis, ms (on the axis the plot shows: virtual time for a
    /// simulated trace, time since the earliest event for a monotonic one).
    pub from_ms: Option<f64>,
    /// End of the time axis, ms.
    pub to_ms: Option<f64>,
    /// Width in pixels.
    pub width: u32,
    /// Height of one panel in pixels.
    pub panel_height: u32,
    /// A title over the whole plot.
    pub title: Option<String>,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            sockets: Vec::new(),
            from_ms: None,
            to_ms: None,
            width: 1400,
            panel_height: 230,
            title: None,
        }
    }
}

/// Why a plot could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlotError {
    /// The traces hold no event.
    Empty,
    /// A `--socket` name selects no track; the names there are.
    NoSuchSocket(String, Vec<String>),
    /// `--from` is not before `--to`, or a bound is not a finite number.
    BadRange(String),
    /// plotters failed.
    Draw(String),
}

impl std::fmt::Display for PlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlotError::Empty => f.write_str("the traces hold no socket event to plot"),
            PlotError::NoSuchSocket(name, names) => write!(
                f,
                "no socket named '{name}' in the traces; they have: {}",
                names.join(", ")
            ),
            PlotError::BadRange(why) => write!(f, "bad time range: {why}"),
            PlotError::Draw(why) => write!(f, "drawing failed: {why}"),
        }
    }
}

impl std::error::Error for PlotError {}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Steps as a polyline: each value holds until the next, the last until `end`; clipped
/// to `[from, to]` (x already in ms).
fn step_points(steps: &Steps, origin: f64, from: f64, to: f64, end: f64) -> Vec<(f64, f64)> {
    let ms = |ts: f64| (ts - origin) / 1000.0;
    let mut points = Vec::new();
    let mut last: Option<f64> = None;
    for &(ts, value) in steps {
        let x = ms(ts);
        if x < from {
            last = Some(value);
            continue;
        }
        if x > to {
            break;
        }
        if let Some(previous) = last {
            // The value in force when the window opens starts the line at `from`.
            if points.is_empty() {
                points.push((from, previous));
            }
            points.push((x, previous));
        }
        points.push((x, value));
        last = Some(value);
    }
    if let Some(value) = last {
        if points.is_empty() {
            points.push((from, value));
        }
        let end = ms(end).clamp(from, to);
        if points.last().is_some_and(|&(x, _)| x < end) {
            points.push((end, value));
        }
    }
    points
}

fn max_of(steps: &Steps) -> f64 {
    steps.iter().map(|&(_, v)| v).fold(0.0, f64::max)
}

/// Draws `timeline` as an SVG document.
pub fn render(timeline: &Timeline, options: &PlotOptions) -> Result<String, PlotError> {
    let tracks = select(timeline, &options.sockets)?;
    // The axis covers what is drawn: the chosen tracks (and the marks among them).
    let (first, last) = tracks
        .iter()
        .filter_map(|t| t.span)
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
        .ok_or(PlotError::Empty)?;
    // A simulated trace's axis is its virtual time; a monotonic one starts at its first event.
    let origin = match timeline.clock {
        Some(Clock::Monotonic) => first,
        _ => 0.0,
    };
    let from = options.from_ms.unwrap_or((first - origin) / 1000.0);
    let mut to = options.to_ms.unwrap_or((last - origin) / 1000.0);
    if !from.is_finite() || !to.is_finite() {
        return Err(PlotError::BadRange(
            "--from and --to must be numbers".into(),
        ));
    }
    if options.to_ms.is_some() && to <= from {
        return Err(PlotError::BadRange(format!(
            "--from {from} ms is not before --to {to} ms"
        )));
    }
    if to <= from {
        to = from + 1.0;
    }
    let section = Section {
        title: None,
        from_ms: from,
        to_ms: to,
        tracks,
    };
    draw_sections(timeline, &[section], origin, true, options)
}

/// One stretch of time with its own heading and the panels of the sockets active in it.
struct Section<'t> {
    title: Option<String>,
    from_ms: f64,
    to_ms: f64,
    tracks: Vec<&'t Track>,
}

/// A labelled stretch of time, for [`render_sections`]: `[from_ms, to_ms)` on the axis
/// the plot shows.
#[derive(Debug, Clone)]
pub struct Stretch {
    /// Its heading (e.g. the demo's scenario).
    pub title: String,
    /// Start, ms.
    pub from_ms: f64,
    /// End, ms.
    pub to_ms: f64,
}

/// Draws `timeline` as stretches of time one under the other, each with its heading and
/// only the sockets that have an event in it, zoomed to it (the demo's scenarios).
/// Stretches in which no socket did anything are left out.
pub fn render_sections(
    timeline: &Timeline,
    stretches: &[Stretch],
    options: &PlotOptions,
) -> Result<String, PlotError> {
    let tracks = select(timeline, &options.sockets)?;
    let origin = match (timeline.clock, timeline.span()) {
        (Some(Clock::Monotonic), Some((first, _))) => first,
        _ => 0.0,
    };
    let sections: Vec<Section> = stretches
        .iter()
        .filter(|s| s.to_ms > s.from_ms)
        .map(|s| Section {
            title: Some(s.title.clone()),
            from_ms: s.from_ms,
            to_ms: s.to_ms,
            tracks: tracks
                .iter()
                .copied()
                .filter(|t| t.active_in(origin + s.from_ms * 1000.0, origin + s.to_ms * 1000.0))
                .collect(),
        })
        .filter(|s| !s.tracks.is_empty())
        .collect();
    if sections.is_empty() {
        return Err(PlotError::Empty);
    }
    draw_sections(timeline, &sections, origin, false, options)
}

fn draw_sections(
    timeline: &Timeline,
    sections: &[Section<'_>],
    origin: f64,
    with_marks: bool,
    options: &PlotOptions,
) -> Result<String, PlotError> {
    let title_height = if options.title.is_some() { 40 } else { 0 };
    let marks_height = if with_marks && !timeline.marks.is_empty() {
        20
    } else {
        0
    };
    let heading = |s: &Section| if s.title.is_some() { 34 } else { 0 };
    let height = title_height
        + marks_height
        + sections
            .iter()
            .map(|s| heading(s) + options.panel_height * s.tracks.len() as u32)
            .sum::<u32>()
        + 10;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (options.width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let (head, mut rest) = root.split_vertically(title_height + marks_height);
        if let Some(title) = &options.title {
            head.draw(&Text::new(
                title.clone(),
                (20, 10),
                ("sans-serif", 22).into_font().color(&BLACK),
            ))
            .map_err(draw_err)?;
        }
        for section in sections {
            let (top, below) = rest.split_vertically(heading(section));
            rest = below;
            if let Some(title) = &section.title {
                top.fill(&RGBColor(0xf0, 0xf4, 0xf8)).map_err(draw_err)?;
                top.draw(&Text::new(
                    title.clone(),
                    (20, 9),
                    ("sans-serif", 18).into_font().color(&BLACK),
                ))
                .map_err(draw_err)?;
            }
            for (i, track) in section.tracks.iter().enumerate() {
                let (area, below) = rest.split_vertically(options.panel_height);
                rest = below;
                let context = Panel {
                    origin,
                    from: section.from_ms,
                    to: section.to_ms,
                    marks: if with_marks { &timeline.marks } else { &[] },
                    label_marks: with_marks && i == 0,
                    clock: timeline.clock,
                };
                context.draw(track, &area)?;
            }
        }
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

fn select<'t>(timeline: &'t Timeline, names: &[String]) -> Result<Vec<&'t Track>, PlotError> {
    let drawable: Vec<&Track> = timeline.tracks.iter().filter(|t| !t.is_empty()).collect();
    if drawable.is_empty() {
        return Err(PlotError::Empty);
    }
    if names.is_empty() {
        return Ok(drawable);
    }
    for name in names {
        if !drawable.iter().any(|t| t.matches(name)) {
            return Err(PlotError::NoSuchSocket(
                name.clone(),
                drawable.iter().map(|t| t.name()).collect(),
            ));
        }
    }
    Ok(drawable
        .into_iter()
        .filter(|t| names.iter().any(|n| t.matches(n)))
        .collect())
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Swatch {
    /// A line of this colour and width.
    Line(RGBColor, u32),
    /// A filled box of this colour and opacity.
    Area(RGBColor, f64),
    /// A cross.
    Cross(RGBColor),
    /// A triangle.
    Triangle(RGBColor),
}

struct Panel<'m> {
    origin: f64,
    from: f64,
    to: f64,
    marks: &'m [(f64, String)],
    label_marks: bool,
    clock: Option<Clock>,
}

impl Panel<'_> {
    fn ms(&self, ts: f64) -> f64 {
        (ts - self.origin) / 1000.0
    }

    fn visible(&self, a: f64, b: f64) -> Option<(f64, f64)> {
        let (a, b) = (self.ms(a).max(self.from), self.ms(b).min(self.to));
        (a <= b).then_some((a, b))
    }

    fn draw(
        &self,
        track: &Track,
        area: &DrawingArea<SVGBackend<'_>, Shift>,
    ) -> Result<(), PlotError> {
        let end = track.span.map_or(0.0, |(_, b)| b);
        let device_top = [
            track.rx.capacity,
            track.tx.capacity,
            max_of(&track.rx.used),
            max_of(&track.tx.used),
            max_of(&track.window),
        ]
        .into_iter()
        .fold(1.0, f64::max);
        let kernel_used = max_of(&track.rx.used).max(max_of(&track.tx.used)).max(1.0);
        // A kernel's buffers (often megabytes) would flatten its queues; its capacity
        // lines show when they are within reach of what was queued.
        let y_top = if track.kernel {
            kernel_used * 1.15
        } else {
            device_top * 1.12
        };
        let title = if track.kernel {
            format!(
                "{}: {} (Linux kernel socket; SO_RCVBUF {}, SO_SNDBUF {})",
                track.process, track.socket, track.rx.capacity, track.tx.capacity
            )
        } else {
            format!(
                "{} {}: rx ring {} B, tx ring {} B",
                track.process, track.socket, track.rx.capacity, track.tx.capacity
            )
        };
        let x_desc = match self.clock {
            Some(Clock::Simulated) => "virtual time (ms)",
            Some(Clock::Device) => "device time since boot (ms)",
            _ => "time since the first event (ms, CLOCK_MONOTONIC)",
        };
        let segments_top = max_of(&track.unacked).max(max_of(&track.cwnd)).max(1.0) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .margin_right(LEGEND_WIDTH)
            .caption(title, ("sans-serif", 16))
            .x_label_area_size(32)
            .y_label_area_size(62)
            // Every panel keeps room for the kernel's second axis: the time axes line up.
            .right_y_label_area_size(62)
            .build_cartesian_2d(self.from..self.to, 0.0..y_top)
            .map_err(draw_err)?
            .set_secondary_coord(self.from..self.to, 0.0..segments_top);
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("bytes")
            .x_labels(12)
            .y_labels(if track.rx.used.is_empty() && track.tx.used.is_empty() {
                0
            } else {
                6
            })
            .max_light_lines(2)
            .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
            .y_label_formatter(&|v| format!("{v:.0}"))
            // Ticks such as 5019.200000000001 read as 5019.2.
            .x_label_formatter(&|v| format!("{}", (v * 1000.0).round() / 1000.0))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(draw_err)?;
        if track.kernel {
            chart
                .configure_secondary_axes()
                .y_desc("segments")
                .y_label_formatter(&|v| format!("{v:.0}"))
                .label_style(("sans-serif", 13))
                .draw()
                .map_err(draw_err)?;
        }

        let mut legend: Vec<(&'static str, Swatch)> = Vec::new();
        // Shading first, so the lines are drawn over it.
        let mut zero_label = true;
        for &(a, b) in &track.zero_windows {
            if let Some((a, b)) = self.visible(a, b) {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(a, 0.0), (b, y_top)],
                        colors::ZERO_WINDOW.mix(0.18).filled(),
                    )))
                    .map_err(draw_err)?;
                if std::mem::take(&mut zero_label) {
                    legend.push((
                        "zero window advertised",
                        Swatch::Area(colors::ZERO_WINDOW, 0.3),
                    ));
                }
            }
        }
        let mut block_label = true;
        for (a, b, _call) in &track.blocks {
            if let Some((a, b)) = self.visible(*a, *b) {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(a, 0.0), (b, y_top)],
                        colors::BLOCKED.mix(0.22).filled(),
                    )))
                    .map_err(draw_err)?;
                if std::mem::take(&mut block_label) {
                    legend.push(("call blocked", Swatch::Area(colors::BLOCKED, 0.35)));
                }
            }
        }
        for &(ts, _) in self.marks {
            let x = self.ms(ts);
            if x >= self.from && x <= self.to {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, 0.0), (x, y_top)],
                        colors::MARK.mix(0.5).stroke_width(1),
                    )))
                    .map_err(draw_err)?;
            }
        }

        let (first, _) = track.span.unwrap_or((0.0, 0.0));
        let capacity_line = |capacity: f64| {
            let a = self.ms(first).max(self.from);
            let b = self.ms(end).min(self.to);
            vec![(a, capacity), (b.max(a), capacity)]
        };
        let mut line = |legend: &mut Vec<(&'static str, Swatch)>,
                        steps: &Steps,
                        color: RGBColor,
                        width: u32,
                        label: &'static str| {
            let points = step_points(steps, self.origin, self.from, self.to, end);
            if points.is_empty() {
                return Ok::<(), PlotError>(());
            }
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(width)))
                .map_err(draw_err)?;
            legend.push((label, Swatch::Line(color, 3)));
            Ok(())
        };
        let rx_name = if track.kernel {
            "receive queue (SIOCINQ)"
        } else {
            "rx ring used"
        };
        let tx_name = if track.kernel {
            "send queue (SIOCOUTQ)"
        } else {
            "tx ring used"
        };
        // The window first: the rings' lines stay visible where it runs along them.
        line(
            &mut legend,
            &track.window,
            colors::WINDOW,
            1,
            "advertised window",
        )?;
        line(&mut legend, &track.rx.used, colors::RX, 2, rx_name)?;
        line(&mut legend, &track.tx.used, colors::TX, 2, tx_name)?;
        for (capacity, color, label) in [
            (track.rx.capacity, colors::RX_CAPACITY, "rx capacity"),
            (track.tx.capacity, colors::TX_CAPACITY, "tx capacity"),
        ] {
            if capacity > 0.0
                && capacity <= y_top
                && !track.rx.used.is_empty() | !track.tx.used.is_empty()
            {
                chart
                    .draw_series(LineSeries::new(
                        capacity_line(capacity),
                        color.stroke_width(1),
                    ))
                    .map_err(draw_err)?;
                legend.push((label, Swatch::Line(color, 1)));
            }
        }
        let marker_y = y_top * 0.96;
        let drops: Vec<f64> = track
            .drops
            .iter()
            .map(|&(ts, _)| self.ms(ts))
            .filter(|x| (self.from..=self.to).contains(x))
            .collect();
        if !drops.is_empty() {
            chart
                .draw_series(
                    drops
                        .into_iter()
                        .map(|x| Cross::new((x, marker_y), 5, colors::DROP.stroke_width(2))),
                )
                .map_err(draw_err)?;
            legend.push(("dropped", Swatch::Cross(colors::DROP)));
        }
        let truncations: Vec<f64> = track
            .truncations
            .iter()
            .map(|&(ts, _)| self.ms(ts))
            .filter(|x| (self.from..=self.to).contains(x))
            .collect();
        if !truncations.is_empty() {
            chart
                .draw_series(truncations.into_iter().map(|x| {
                    TriangleMarker::new((x, marker_y * 0.92), 6, colors::TRUNCATION.filled())
                }))
                .map_err(draw_err)?;
            legend.push(("truncated", Swatch::Triangle(colors::TRUNCATION)));
        }
        if track.kernel {
            for (steps, color, label) in [
                (
                    &track.unacked,
                    colors::UNACKED,
                    "unacked segments (TCP_INFO)",
                ),
                (&track.cwnd, colors::CWND, "cwnd, segments (TCP_INFO)"),
            ] {
                let points = step_points(steps, self.origin, self.from, self.to, end);
                if !points.is_empty() {
                    chart
                        .draw_secondary_series(LineSeries::new(points, color.stroke_width(1)))
                        .map_err(draw_err)?;
                    legend.push((label, Swatch::Line(color, 2)));
                }
            }
            let retransmits: Vec<f64> = track
                .retrans
                .windows(2)
                .filter(|w| w[1].1 > w[0].1)
                .map(|w| self.ms(w[1].0))
                .filter(|x| (self.from..=self.to).contains(x))
                .collect();
            if !retransmits.is_empty() {
                chart
                    .draw_series(
                        retransmits
                            .into_iter()
                            .map(|x| Cross::new((x, marker_y), 5, colors::DROP.stroke_width(2))),
                    )
                    .map_err(draw_err)?;
                legend.push(("retransmission", Swatch::Cross(colors::DROP)));
            }
        }
        // The legend, right of the plotting area (drawn on the panel: plotters would clip
        // it to the plotting area).
        let (right, top) = {
            let (px, py) = chart.backend_coord(&(self.to, y_top));
            let (bx, by) = area.get_base_pixel();
            (px - bx + 70, py - by)
        };
        for (i, (label, swatch)) in legend.iter().enumerate() {
            let y = top + 8 + 16 * i as i32;
            let x = right;
            match *swatch {
                Swatch::Line(color, width) => area
                    .draw(&PathElement::new(
                        vec![(x, y), (x + 14, y)],
                        color.stroke_width(width),
                    ))
                    .map_err(draw_err)?,
                Swatch::Area(color, opacity) => area
                    .draw(&Rectangle::new(
                        [(x, y - 5), (x + 14, y + 5)],
                        color.mix(opacity).filled(),
                    ))
                    .map_err(draw_err)?,
                Swatch::Cross(color) => area
                    .draw(&Cross::new((x + 7, y), 5, color.stroke_width(2)))
                    .map_err(draw_err)?,
                Swatch::Triangle(color) => area
                    .draw(&TriangleMarker::new((x + 7, y), 6, color.filled()))
                    .map_err(draw_err)?,
            }
            area.draw(&Text::new(
                *label,
                (x + 20, y - 6),
                ("sans-serif", 12).into_font().color(&BLACK),
            ))
            .map_err(draw_err)?;
        }

        if self.label_marks {
            // Labels above the first panel's plotting area, alternating rows so that
            // neighbours do not overlap.
            let mut row = 0;
            for (ts, label) in self.marks {
                let x = self.ms(*ts);
                if x < self.from || x > self.to {
                    continue;
                }
                let (px, py) = chart.backend_coord(&(x, y_top));
                let (bx, by) = area.get_base_pixel();
                area.draw(&Text::new(
                    label.clone(),
                    (px + 3 - bx, py + 2 + 12 * row - by),
                    ("sans-serif", 11).into_font().color(&colors::MARK),
                ))
                .map_err(draw_err)?;
                row = (row + 1) % 3;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_hold_their_value_until_the_next_change_and_are_clipped() {
        let steps = vec![(1000.0, 1.0), (3000.0, 5.0), (6000.0, 2.0)];
        assert_eq!(
            step_points(&steps, 0.0, 0.0, 10.0, 8000.0),
            vec![
                (1.0, 1.0),
                (3.0, 1.0),
                (3.0, 5.0),
                (6.0, 5.0),
                (6.0, 2.0),
                (8.0, 2.0)
            ]
        );
        // Zoomed to 2..4 ms: the value in force at 2 ms starts the line.
        assert_eq!(
            step_points(&steps, 0.0, 2.0, 4.0, 8000.0),
            vec![(2.0, 1.0), (3.0, 1.0), (3.0, 5.0), (4.0, 5.0)]
        );
        assert!(step_points(&Vec::new(), 0.0, 0.0, 1.0, 0.0).is_empty());
    }
}
