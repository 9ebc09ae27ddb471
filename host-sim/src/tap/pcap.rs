//! The pcap capture of the tap (`--pcap FILE`), on the device side of the wire: a sink
//! for smoltcp's `PcapWriter` that stops with a warning on a write error instead of
//! panicking, so the device carries on without it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use ringnet::smoltcp::phy::PcapSink;
use ringnet::Instant;

/// A pcap sink that reports its first write error instead of panicking, then stops.
pub struct PcapFile {
    out: Option<BufWriter<File>>,
}

impl PcapFile {
    /// No capture.
    pub fn none() -> PcapFile {
        PcapFile { out: None }
    }

    /// A capture written to `path`.
    pub fn create(path: &Path) -> io::Result<PcapFile> {
        Ok(PcapFile {
            out: Some(BufWriter::new(File::create(path)?)),
        })
    }

    /// Ends the capture after a write error (a full disk, a pipe whose reader quit); the
    /// device carries on without it.
    fn stop(&mut self, error: io::Error) {
        log::warn!("pcap capture stopped: {error}");
        if let Some(out) = self.out.take() {
            // What is still buffered cannot be written either.
            let _ = out.into_parts();
        }
    }
}

impl PcapSink for PcapFile {
    fn write(&mut self, data: &[u8]) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = Write::write_all(out, data) {
                self.stop(e);
            }
        }
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = Write::flush(out) {
                self.stop(e);
            }
        }
    }

    fn packet(&mut self, timestamp: Instant, packet: &[u8]) {
        // Without a capture, nothing at all per frame (the default writes the header a
        // field at a time).
        if self.out.is_none() {
            return;
        }
        let captured = packet.len().min(self.max_packet_size() as usize);
        self.packet_header(timestamp, packet.len());
        self.write(&packet[..captured]);
        self.flush();
    }
}
