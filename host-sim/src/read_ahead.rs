//! A file read once from its start to its end, in order, by a thread of its own that reads
//! each block ahead and hashes it, on the device side: the transfer server's get copies
//! each piece out of a block into the tx ring, and the `pread(2)` calls and the SHA-256
//! run on the other core, as a NIC's DMA engine and checksum unit leave the CPU free.
//!
//! At most [`QUEUED_BLOCKS`] blocks wait, read and hashed, for the poll loop. A read that
//! finds none waits for the thread, as a `pread(2)` of the file itself would wait for the
//! disk. [`ReadAhead::digest`] is the SHA-256 of every byte from 0 to the size of the
//! version opened, also of blocks a reader skipped (it waits for the thread to read them).
//! The transfer server reads ahead only a whole get: a resume's prefix would make the
//! poll loop wait while the thread reads it, so the server hashes it a slice per poll.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use ringnet::transfer::Digest;
use sha2::{Digest as _, Sha256};

/// Bytes the thread reads with one `pread(2)`.
pub const BLOCK: usize = 256 * 1024;

/// Blocks read and hashed ahead of the poll loop (1 MiB).
pub const QUEUED_BLOCKS: usize = 4;

/// A block read: where it starts in the file, the buffer, and the bytes of it read.
type Block = (u64, Vec<u8>, usize);

/// A file read ahead and hashed by a thread of its own (see the module docs).
#[derive(Debug)]
pub struct ReadAhead {
    size: u64,
    blocks: Option<Receiver<io::Result<Block>>>,
    give_back: SyncSender<Vec<u8>>,
    current: Option<Block>,
    thread: Option<JoinHandle<io::Result<Digest>>>,
    /// The thread's outcome once [`ReadAhead::digest`] waited for it.
    finished: Option<Result<Digest, io::ErrorKind>>,
}

impl ReadAhead {
    /// Starts the thread on the first `size` bytes of `file`.
    pub fn start(file: File, size: u64) -> io::Result<ReadAhead> {
        let (to_reader, blocks) = mpsc::sync_channel(QUEUED_BLOCKS);
        let (give_back, spare) = mpsc::sync_channel(QUEUED_BLOCKS + 2);
        let thread = thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || read_blocks(&file, size, &to_reader, &spare))?;
        Ok(ReadAhead {
            size,
            blocks: Some(blocks),
            give_back,
            current: None,
            thread: Some(thread),
            finished: None,
        })
    }

    /// The size of the version read.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether the version read is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Copies bytes from `offset` into `buf`; 0 only at the end. Offsets must not go back
    /// before the block the last read was served from (`InvalidInput`): the reader reads
    /// once, in order.
    pub fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            if offset >= self.size || buf.is_empty() {
                return Ok(0);
            }
            if let Some((start, data, len)) = &self.current {
                let end = start + *len as u64;
                if offset < *start {
                    let why = "a read-ahead file is read in order";
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, why));
                }
                if offset < end {
                    let at = (offset - start) as usize;
                    let n = (len - at).min(buf.len());
                    buf[..n].copy_from_slice(&data[at..at + n]);
                    return Ok(n);
                }
            }
            if let Some((_, data, _)) = self.current.take() {
                // Full of spare buffers already: this one is freed.
                let _ = self.give_back.try_send(data);
            }
            let next = self.blocks.as_ref().map(Receiver::recv);
            match next {
                Some(Ok(Ok(block))) => self.current = Some(block),
                Some(Ok(Err(e))) => return Err(e),
                // The thread ended without the block: its outcome says why.
                Some(Err(_)) | None => {
                    return Err(self.outcome().err().unwrap_or(io::ErrorKind::Other).into())
                }
            }
        }
    }

    /// The SHA-256 of the whole file (bytes 0 to [`ReadAhead::len`]), once the thread has
    /// read and hashed all of it; or why it could not.
    pub fn digest(&mut self) -> io::Result<Digest> {
        self.outcome().map_err(io::Error::from)
    }

    fn outcome(&mut self) -> Result<Digest, io::ErrorKind> {
        if self.finished.is_none() {
            // The digest needs every block read: blocks not taken are taken and dropped
            // until the thread ends (none are left once every byte was read).
            if let Some(blocks) = self.blocks.take() {
                for (_, data, _) in blocks.into_iter().flatten() {
                    let _ = self.give_back.try_send(data);
                }
            }
            self.finished = Some(match self.thread.take().map(JoinHandle::join) {
                Some(Ok(Ok(digest))) => Ok(digest),
                Some(Ok(Err(e))) => Err(e.kind()),
                Some(Err(_)) | None => Err(io::ErrorKind::Other),
            });
        }
        self.finished.unwrap_or(Err(io::ErrorKind::Other))
    }
}

/// The thread: reads, hashes and hands over each block in order; the digest once every
/// byte to `size` is hashed. It ends early (an error) when the reader was dropped.
fn read_blocks(
    file: &File,
    size: u64,
    to_reader: &SyncSender<io::Result<Block>>,
    spare: &Receiver<Vec<u8>>,
) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut offset = 0u64;
    while offset < size {
        let mut data = spare.try_recv().unwrap_or_else(|_| vec![0u8; BLOCK]);
        let want = (size - offset).min(BLOCK as u64) as usize;
        let n = match file.read_at(&mut data[..want], offset) {
            Ok(0) => {
                let why = "the file ended before its size";
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, why))
            }
            Ok(n) => Ok(n),
            Err(e) => Err(e),
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                let kind = e.kind();
                let _ = to_reader.send(Err(e));
                return Err(kind.into());
            }
        };
        hasher.update(&data[..n]);
        if to_reader.send(Ok((offset, data, n))).is_err() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        offset += n as u64;
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn file_of(tag: &str, data: &[u8]) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!("ringnet-ahead-{tag}-{}", std::process::id()));
        fs::write(&path, data).unwrap();
        let file = File::open(&path).unwrap();
        (path, file)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn every_byte_is_read_in_order_and_the_digest_is_the_whole_file() {
        let data = pattern(3 * BLOCK + 4321);
        let (path, file) = file_of("order", &data);
        let mut ahead = ReadAhead::start(file, data.len() as u64).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65_521];
        loop {
            let n = ahead.read_at(&mut buf, got.len() as u64).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == data);
        assert_eq!(
            ahead.digest().unwrap(),
            <[u8; 32]>::from(Sha256::digest(&data))
        );
        fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_resumed_read_skips_the_prefix_and_the_digest_still_covers_it() {
        let data = pattern(2 * BLOCK + 99);
        let (path, file) = file_of("resume", &data);
        let mut ahead = ReadAhead::start(file, data.len() as u64).unwrap();
        let from = BLOCK as u64 + 10;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1000];
        loop {
            let n = ahead.read_at(&mut buf, from + got.len() as u64).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == data[from as usize..]);
        // Going back is refused, never served from another place.
        let back = ahead.read_at(&mut buf, 0).unwrap_err();
        assert_eq!(back.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            ahead.digest().unwrap(),
            <[u8; 32]>::from(Sha256::digest(&data))
        );
        // Nothing read at all: the digest still covers every byte.
        let (_, file) = file_of("resume", &data);
        let mut unread = ReadAhead::start(file, data.len() as u64).unwrap();
        assert_eq!(
            unread.digest().unwrap(),
            <[u8; 32]>::from(Sha256::digest(&data))
        );
        // An empty file: nothing to read, the empty digest.
        let (empty, file) = file_of("empty", b"");
        let mut ahead = ReadAhead::start(file, 0).unwrap();
        assert_eq!(ahead.read_at(&mut buf, 0).unwrap(), 0);
        assert_eq!(
            ahead.digest().unwrap(),
            <[u8; 32]>::from(Sha256::digest(b""))
        );
        fs::remove_file(path).unwrap();
        fs::remove_file(empty).unwrap();
    }

    #[test]
    fn a_file_shorter_than_its_size_is_an_error_not_a_short_digest() {
        let data = pattern(BLOCK + 5);
        let (path, file) = file_of("short", &data);
        // Announced longer than it is, as a file cut after it was opened.
        let mut ahead = ReadAhead::start(file, data.len() as u64 + 100).unwrap();
        let mut buf = vec![0u8; BLOCK];
        let mut at = 0u64;
        let failed = loop {
            match ahead.read_at(&mut buf, at) {
                Ok(0) => break false,
                Ok(n) => at += n as u64,
                Err(e) => break e.kind() == io::ErrorKind::UnexpectedEof,
            }
        };
        assert!(failed, "the read past the file's end fails");
        assert_eq!(at, data.len() as u64, "every byte there was served first");
        assert!(ahead.digest().is_err(), "and no digest is given");
        fs::remove_file(path).unwrap();
    }
}
