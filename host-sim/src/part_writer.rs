//! An upload's temporary file, written (and hashed, when asked) by a thread of its own, on
//! the device side (or, for a store that keeps only digests, no file at all: the thread
//! hashes and writes into [`io::Sink`]): the poll loop copies each piece out of the receive ring into a block
//! and goes back to the wire, as a NIC's DMA engine and checksum unit leave the CPU free;
//! the writer thread hashes the block and writes it with one `write(2)`. The ring is
//! emptied as fast as a raw stream into discard empties it, so the sender's window stays
//! open while the hashing and the file system's copy run on the other core.
//!
//! At most [`QUEUED_BLOCKS`] full blocks wait for the thread, never more: when it falls
//! behind, [`PartWriter::room`] is 0, the transfer server leaves the data in the socket's
//! receive ring, and the window closes (a zero window, as the kernel advertises for a slow
//! reader), while the poll loop serves every other socket. A caller that writes past the
//! room (HTTP's body loop does not ask) waits for the thread instead, as before.
//! [`PartWriter::finish`] hands the last block over and waits for the thread: a few
//! milliseconds at most, once per upload.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use ringnet::transfer::Digest;
use sha2::{Digest as _, Sha256};

/// Bytes handed to the writer thread at once: one `write(2)` each.
pub const BLOCK: usize = 256 * 1024;

/// Full blocks that may wait for the writer thread (4 MiB): enough to ride out the tens of
/// milliseconds a thread may wait for a CPU on a busy machine without closing the window.
pub const QUEUED_BLOCKS: usize = 16;

/// Once the queue was full, blocks that must be written before [`PartWriter::room`] opens
/// again: the window then reopens by megabytes at once, not by one block at a time.
const REOPEN_BLOCKS: usize = QUEUED_BLOCKS / 2;

/// What the writer thread leaves once every block is written.
#[derive(Debug)]
pub struct Written<W = File> {
    /// The temporary file, every byte written (not yet synced).
    pub file: W,
    /// The SHA-256 of every byte written, if the writer was asked to hash.
    pub sha256: Option<Digest>,
    /// Bytes written.
    pub len: u64,
}

/// What a [`PartWriter`] and its thread share.
#[derive(Debug)]
struct Shared {
    /// Blocks handed to the thread and not yet written by it.
    queued: AtomicUsize,
    /// The upload was dropped: the thread writes no more blocks.
    cancelled: AtomicBool,
}

/// A temporary file written by a thread of its own (see the module docs). Dropping it
/// waits for the thread to end, so the file is closed when it has gone.
#[derive(Debug)]
pub struct PartWriter<W = File> {
    block: Vec<u8>,
    to_thread: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    /// What the thread and this side both see.
    shared: Arc<Shared>,
    /// The queue was full, and has not yet drained to [`REOPEN_BLOCKS`].
    draining: Cell<bool>,
    thread: Option<JoinHandle<io::Result<Written<W>>>>,
    /// The thread's outcome once [`PartWriter::finish`] waited for it: the error is kept
    /// as its kind, for every later call.
    finished: Option<Result<Written<W>, io::ErrorKind>>,
}

impl<W: Write + Send + 'static> PartWriter<W> {
    /// Starts the writer thread on `file`, hashing what it writes if `hash`.
    pub fn start(file: W, hash: bool) -> io::Result<PartWriter<W>> {
        let (to_thread, blocks) = mpsc::sync_channel(QUEUED_BLOCKS);
        let (give_back, spare) = mpsc::sync_channel(QUEUED_BLOCKS + 2);
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            cancelled: AtomicBool::new(false),
        });
        let thread_shared = shared.clone();
        let thread = thread::Builder::new()
            .name("part-writer".into())
            .spawn(move || write_blocks(file, hash, blocks, give_back, &thread_shared))?;
        Ok(PartWriter {
            block: Vec::new(),
            to_thread: Some(to_thread),
            spare,
            shared,
            draining: Cell::new(false),
            thread: Some(thread),
            finished: None,
        })
    }

    /// Bytes [`PartWriter::write`] takes now without waiting for the thread: the rest of
    /// the blocks that may still be queued. 0 once [`QUEUED_BLOCKS`] wait, until the
    /// thread has written half of them. Once the thread has ended (a write failed), any
    /// amount: the next write reports the failure.
    pub fn room(&self) -> usize {
        if self.thread.as_ref().is_none_or(JoinHandle::is_finished) {
            return usize::MAX;
        }
        let queued = self.shared.queued.load(Ordering::Acquire);
        if self.draining.get() && queued > REOPEN_BLOCKS {
            return 0;
        }
        let free = QUEUED_BLOCKS.saturating_sub(queued);
        self.draining.set(free == 0);
        (free * BLOCK).saturating_sub(self.block.len())
    }

    /// Appends `data`: copied into the current block, handed to the thread when full. A
    /// write the thread failed earlier is reported here (or by [`PartWriter::finish`]).
    /// Never waits within [`PartWriter::room`]; past it, waits for the thread.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.block.capacity() == 0 {
                self.block = self
                    .spare
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BLOCK));
            }
            let n = (BLOCK - self.block.len()).min(data.len());
            self.block.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.block.len() == BLOCK {
                self.hand_over()?;
            }
        }
        Ok(())
    }

    /// Hands the current block to the thread (waiting while [`QUEUED_BLOCKS`] wait).
    fn hand_over(&mut self) -> io::Result<()> {
        let block = std::mem::take(&mut self.block);
        // Counted before the send, so that the thread never counts it down first.
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        let sent = match &self.to_thread {
            Some(to_thread) => to_thread.send(block).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread ended early: it failed a write, and says why.
        match self.finish() {
            Err(e) => Err(e),
            Ok(_) => Err(io::Error::other("the writer thread ended early")),
        }
    }

    /// Hands over the last block and waits until the thread wrote (and hashed) every
    /// byte; then what it wrote, or the first write that failed. Later calls answer the
    /// same.
    pub fn finish(&mut self) -> io::Result<&Written<W>> {
        if self.finished.is_none() {
            if !self.block.is_empty() && self.to_thread.is_some() {
                let block = std::mem::take(&mut self.block);
                if let Some(to_thread) = &self.to_thread {
                    self.shared.queued.fetch_add(1, Ordering::AcqRel);
                    // A failed send means the thread ended: its result says why.
                    let _ = to_thread.send(block);
                }
            }
            self.to_thread = None;
            let outcome = match self.thread.take().map(JoinHandle::join) {
                Some(Ok(Ok(written))) => Ok(written),
                Some(Ok(Err(e))) => Err(e.kind()),
                Some(Err(_)) | None => Err(io::ErrorKind::Other),
            };
            self.finished = Some(outcome);
        }
        match &self.finished {
            Some(Ok(written)) => Ok(written),
            Some(Err(kind)) => Err(io::Error::from(*kind)),
            None => Err(io::ErrorKind::Other.into()),
        }
    }
}

impl<W> PartWriter<W> {
    /// Tells the thread to write nothing more: it ends after the block it is writing,
    /// and the blocks still queued are dropped unwritten.
    fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::Release);
    }
}

impl<W> Drop for PartWriter<W> {
    fn drop(&mut self) {
        // An upload dropped unfinished is aborted: its file is deleted next. A channel's
        // blocks outlive its sender, so without the flag the thread would write every
        // queued block (4 MiB, onto a disk that may have stopped) while the poll loop
        // waits for it here.
        self.cancel();
        self.to_thread = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: hashes and writes each block as it comes, and gives its buffer back;
/// once `cancelled`, it ends without writing the blocks still queued.
fn write_blocks<W: Write>(
    mut file: W,
    hash: bool,
    blocks: Receiver<Vec<u8>>,
    give_back: SyncSender<Vec<u8>>,
    shared: &Shared,
) -> io::Result<Written<W>> {
    let mut hasher = hash.then(Sha256::new);
    let mut len = 0u64;
    for mut block in blocks {
        if shared.cancelled.load(Ordering::Acquire) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        if let Some(hasher) = &mut hasher {
            hasher.update(&block);
        }
        file.write_all(&block)?;
        shared.queued.fetch_sub(1, Ordering::AcqRel);
        len += block.len() as u64;
        block.clear();
        // Full of spare buffers already: this one is freed.
        let _ = give_back.try_send(block);
    }
    Ok(Written {
        file,
        sha256: hasher.map(|hasher| hasher.finalize().into()),
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn temp(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("ringnet-part-{tag}-{}", std::process::id()))
    }

    #[test]
    fn every_byte_is_written_and_hashed_in_order_across_blocks() {
        let path = temp("order");
        let file = File::create(&path).unwrap();
        let mut writer = PartWriter::start(file, true).unwrap();
        let data: Vec<u8> = (0..3 * BLOCK + 12_345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        // Pieces of odd sizes, as a ring hands them over.
        for piece in data.chunks(65_521) {
            writer.write(piece).unwrap();
        }
        let written = writer.finish().unwrap();
        assert_eq!(written.len, data.len() as u64);
        let want: Digest = Sha256::digest(&data).into();
        assert_eq!(written.sha256, Some(want));
        drop(writer);
        assert_eq!(fs::read(&path).unwrap(), data);
        fs::remove_file(path).unwrap();
    }

    #[test]
    fn nothing_written_is_an_empty_file_with_the_empty_digest() {
        let path = temp("empty");
        let mut writer = PartWriter::start(File::create(&path).unwrap(), true).unwrap();
        let written = writer.finish().unwrap();
        assert_eq!(written.len, 0);
        assert_eq!(written.sha256, Some(Sha256::digest(b"").into()));
        // Without hashing, no digest.
        let mut plain = PartWriter::start(File::create(&path).unwrap(), false).unwrap();
        plain.write(b"abc").unwrap();
        assert_eq!(plain.finish().unwrap().sha256, None);
        assert_eq!(
            plain.finish().unwrap().len,
            3,
            "finish answers the same again"
        );
        drop(plain);
        assert_eq!(fs::read(&path).unwrap(), b"abc");
        fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_writer_behind_has_no_room_and_writes_within_the_room_never_wait() {
        use std::io::Read;
        use std::os::fd::OwnedFd;
        use std::time::{Duration, Instant};
        // A pipe nobody reads yet: the thread's first write(2) fills it and waits, as on a
        // disk that stopped.
        let (mut reader, pipe) = io::pipe().unwrap();
        let mut writer = PartWriter::start(File::from(OwnedFd::from(pipe)), true).unwrap();
        assert_eq!(writer.room(), QUEUED_BLOCKS * BLOCK);
        let data: Vec<u8> = (0..QUEUED_BLOCKS * BLOCK + 3 * BLOCK)
            .map(|i| (i * 13 % 251) as u8)
            .collect();
        // Writes within the room, on another thread, so that a write that waited fails
        // the test instead of hanging it.
        let (done, taken) = mpsc::channel();
        let feeder = thread::spawn(move || {
            let mut at = 0;
            while writer.room() > 0 {
                let n = writer.room().min(65_521).min(data.len() - at);
                writer.write(&data[at..at + n]).unwrap();
                at += n;
            }
            done.send(at).unwrap();
            (writer, data, at)
        });
        let at = taken
            .recv_timeout(Duration::from_secs(10))
            .expect("writes within the room returned");
        assert_eq!(at, QUEUED_BLOCKS * BLOCK, "exactly the queued blocks taken");
        let (mut writer, data, at) = feeder.join().unwrap();
        thread::sleep(Duration::from_millis(50));
        assert_eq!(writer.room(), 0, "no room while the thread is stuck");
        // The disk moves again: room comes back, and every byte arrives in order.
        let drain = thread::spawn(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            all
        });
        let until = Instant::now() + Duration::from_secs(10);
        while writer.room() == 0 && Instant::now() < until {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(writer.room() > 0, "room once the thread wrote");
        writer.write(&data[at..]).unwrap();
        let written = writer.finish().unwrap();
        assert_eq!(written.len, data.len() as u64);
        assert_eq!(written.sha256, Some(Sha256::digest(&data).into()));
        drop(writer);
        assert!(drain.join().unwrap() == data);
    }

    #[test]
    fn a_writer_dropped_behind_writes_no_more_of_its_queue() {
        use std::io::Read;
        use std::os::fd::OwnedFd;
        // A disk that stopped (a pipe nobody reads yet), and the queue full behind it: an
        // abort must not write the 4 MiB still queued (the poll loop waits for the
        // thread to end) to a file it then deletes.
        let (mut reader, pipe) = io::pipe().unwrap();
        let mut writer = PartWriter::start(File::from(OwnedFd::from(pipe)), true).unwrap();
        let block = vec![3u8; BLOCK];
        while writer.room() >= BLOCK {
            writer.write(&block).unwrap();
        }
        assert_eq!(writer.room(), 0, "the queue is full");
        writer.cancel();
        let drain = thread::spawn(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            all.len()
        });
        drop(writer);
        let written = drain.join().unwrap();
        assert!(
            written <= BLOCK,
            "at most the block being written when dropped, not {written} bytes"
        );
    }

    #[test]
    fn a_failed_write_is_reported_not_lost() {
        // A file opened read-only: the thread's first write fails.
        let path = temp("fail");
        fs::write(&path, b"").unwrap();
        let mut writer = PartWriter::start(File::open(&path).unwrap(), true).unwrap();
        let mut failed = false;
        for _ in 0..(QUEUED_BLOCKS + 3) {
            if writer.write(&vec![1u8; BLOCK]).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "a write after the thread failed says so");
        assert!(writer.finish().is_err(), "and stays reported");
        drop(writer);
        fs::remove_file(path).unwrap();
    }
}
