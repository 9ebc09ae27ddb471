//! `host-sim plot`: ring buffers over time, drawn from trace files (docs/plot.md).
//!
//! [`model`] reads traces (the device's, written by `--trace`, and the Linux side's,
//! written by `peer … --trace`) onto one time axis; [`render`](mod@render) draws them as an SVG with
//! one panel per socket; [`uart`] builds a trace from a device's log lines (the
//! firmware's UART).

pub mod model;
pub mod render;
pub mod uart;

pub use model::{Timeline, TraceError};
pub use render::{render, render_sections, PlotError, PlotOptions, Stretch};

/// Reads every trace in `paths` and draws them into `output` as an SVG.
pub fn plot_files(
    paths: &[std::path::PathBuf],
    output: &std::path::Path,
    options: &PlotOptions,
) -> Result<usize, String> {
    let mut timeline = Timeline::default();
    for path in paths {
        timeline.read(path).map_err(|e| e.to_string())?;
    }
    let svg = render(&timeline, options).map_err(|e| e.to_string())?;
    std::fs::write(output, &svg).map_err(|e| format!("{}: {e}", output.display()))?;
    Ok(svg.len())
}
