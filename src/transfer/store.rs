//! Where transferred files live: a small trait, a fixed-size in-RAM store, and a sink that
//! keeps only digests (for sizes no store of the device could hold).
//!
//! Every store keeps these promises, whoever shares it (the HTTP and transfer servers of
//! one host share one store):
//!
//! - An upload is kept apart from the finished files until [`Store::commit`], which
//!   replaces the old version at once: a failed transfer never leaves a file under its
//!   final name, and a reader never sees a half-written one.
//! - A reader reads the version it opened ([`Store::open`]) to its end, or is cut short
//!   with [`StoreError::Replaced`]; it is never switched to another version mid-stream.
//! - Of two overlapping uploads of one name, the one begun last wins whole; the other's
//!   commit is refused with [`StoreError::Conflict`] (and it is never reported as stored).
//! - Every failure path calls [`Store::abort`], which leaves nothing behind.

use core::cell::RefCell;
use core::fmt;

use heapless::{String, Vec};
use sha2::{Digest as _, Sha256};

use super::wire::{Digest, MAX_NAME};
use crate::convert::{room, wide};

/// A store failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// No file of that name.
    NotFound,
    /// The file would not fit.
    NoSpace,
    /// The store is busy with another upload.
    Busy,
    /// The medium failed.
    Io,
    /// The store keeps no contents (a digest sink).
    Unreadable,
    /// A newer upload of the same name began while this one was in progress: the newer
    /// one wins, this one is discarded (HTTP `409 Conflict`).
    Conflict,
    /// The version being read was replaced and its storage reused (a RAM slot): the read
    /// is cut short rather than switched to another version.
    Replaced,
    /// The name cannot be written or removed (a built-in file).
    ReadOnly,
}

impl StoreError {
    texts! {
        /// What went wrong, in words (the `Display` text, also sent as a status's reason).
        pub const fn as_str / log_text(self) {
            match self {
                StoreError::NotFound => "no such file",
                StoreError::NoSpace => "no space for the file",
                StoreError::Busy => "another upload is in progress",
                StoreError::Io => "storage I/O error",
                StoreError::Unreadable => "this store keeps digests only",
                StoreError::Conflict => "a newer upload of this name won",
                StoreError::Replaced => "the file was replaced while being read",
                StoreError::ReadOnly => "the file is read-only",
            }
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for StoreError {}

format_interned!(StoreError, log_text);

/// A place to keep files by name.
pub trait Store {
    /// An upload in progress.
    type Upload;
    /// A file opened for reading: one version of it, whatever is committed meanwhile (as
    /// an open file descriptor keeps the inode a `rename(2)` replaced).
    type Reader;

    /// The size of the file `name`.
    fn size(&mut self, name: &str) -> Result<u64, StoreError>;
    /// Opens the current version of `name` for reading, and says its size.
    fn open(&mut self, name: &str) -> Result<(Self::Reader, u64), StoreError>;
    /// Copies bytes of the opened version from `offset` into `buf`; 0 only at the end.
    fn read_at(
        &mut self,
        reader: &mut Self::Reader,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StoreError>;
    /// [`Store::open`] for a reader that the caller reads once, from the start, in order,
    /// to the end, and whose bytes it hashes (the transfer server's whole get): a store
    /// may read ahead and hash on a thread of its own, and say so with
    /// [`Store::reads_hashed`]. By default, [`Store::open`].
    fn open_verified(&mut self, name: &str) -> Result<(Self::Reader, u64), StoreError> {
        self.open(name)
    }
    /// Nothing, by default; never returns for a store whose [`Store::Reader`] has no values
    /// (one that keeps no data, such as [`DigestSink`]: `match *reader {}`). The transfer
    /// server calls it before a get's work, so that for such a store the compiler drops
    /// the whole download path, which no reader can reach.
    fn reader_exists(_reader: &Self::Reader) {}
    /// Whether the store hashes the whole file `reader` reads itself, off the caller's
    /// path (a host store hashes in the thread that reads ahead): the transfer server then
    /// leaves that get's data unhashed and asks [`Store::read_digest`] for the SHA-256
    /// once it sent the data. By default, no.
    fn reads_hashed(&self, _reader: &Self::Reader) -> bool {
        false
    }
    /// The SHA-256 of the whole file (every byte from 0 to its size) that `reader` reads,
    /// for a store that [`Store::reads_hashed`] it; a read that failed meanwhile is its
    /// error. A store that does not hash answers [`StoreError::Io`].
    fn read_digest(&mut self, _reader: &mut Self::Reader) -> Result<Digest, StoreError> {
        Err(StoreError::Io)
    }
    /// Starts an upload of `size` bytes for `name`, kept apart until committed; refused
    /// with [`StoreError::NoSpace`] at once when `size` cannot fit.
    fn begin(&mut self, name: &str, size: u64) -> Result<Self::Upload, StoreError>;
    /// [`Store::begin`] for an upload the caller hashes itself as the data passes, and
    /// checks before it commits with [`Store::commit_verified`] (the transfer server
    /// does): a store that keeps digests need not hash the data a second time.
    fn begin_verified(&mut self, name: &str, size: u64) -> Result<Self::Upload, StoreError> {
        self.begin(name, size)
    }
    /// Appends to an upload.
    fn write(&mut self, upload: &mut Self::Upload, data: &[u8]) -> Result<(), StoreError>;
    /// Bytes [`Store::write`] takes into `upload` now without waiting: a store that writes
    /// on a thread of its own takes none while that thread is behind. The transfer server
    /// receives no more than this and leaves the rest in the socket's rx ring, so that the
    /// window closes, as a kernel's full socket buffer closes it for a slow reader, instead
    /// of the poll loop (and every other socket) waiting for the store. By default, any
    /// amount.
    fn upload_room(&mut self, _upload: &Self::Upload) -> usize {
        usize::MAX
    }
    /// Whether the store hashes `upload`'s data itself as it keeps it, off the caller's
    /// path (a host store hashes in the thread that writes its file, as a NIC that
    /// checksums in hardware spares the kernel's pass): the transfer server then leaves
    /// that upload's data unhashed and asks [`Store::upload_digest`] for the SHA-256 once
    /// all of it is written. By default, no: the caller hashes.
    fn hashes(&self, _upload: &Self::Upload) -> bool {
        false
    }
    /// The SHA-256 of everything written to `upload`, for a store that [`Store::hashes`]
    /// it: waits until the store has taken in every byte written, and reports a write
    /// that failed meanwhile. A store that does not hash answers [`StoreError::Io`].
    fn upload_digest(&mut self, _upload: &mut Self::Upload) -> Result<Digest, StoreError> {
        Err(StoreError::Io)
    }
    /// Makes the upload visible under its name, replacing any older file at once; on an
    /// error (such as [`StoreError::Conflict`]) the upload is discarded.
    fn commit(&mut self, upload: Self::Upload) -> Result<(), StoreError>;
    /// [`Store::commit`] for an upload begun with [`Store::begin_verified`], whose data the
    /// caller hashed to `sha256` and checked against the sender's digest: a store that
    /// keeps digests records this one.
    fn commit_verified(
        &mut self,
        upload: Self::Upload,
        _sha256: &Digest,
    ) -> Result<(), StoreError> {
        self.commit(upload)
    }
    /// Drops the upload; nothing appears under its name.
    fn abort(&mut self, upload: Self::Upload);
    /// Removes the file `name` (readers that opened it keep their version, or are cut
    /// short as [`Store::open`] says). By default a store cannot remove files.
    fn remove(&mut self, _name: &str) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }
    /// Calls `f` with each file's name and size.
    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64));
}

/// One store shared by several servers of a host without a heap: each holds a
/// `&RefCell<S>` (in a static cell on a microcontroller). Every call borrows the store for
/// its duration only, so servers polled one after the other never collide.
impl<S: Store> Store for &RefCell<S> {
    type Upload = S::Upload;
    type Reader = S::Reader;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        self.borrow_mut().size(name)
    }
    fn open(&mut self, name: &str) -> Result<(S::Reader, u64), StoreError> {
        self.borrow_mut().open(name)
    }
    fn read_at(
        &mut self,
        reader: &mut S::Reader,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StoreError> {
        self.borrow_mut().read_at(reader, offset, buf)
    }
    fn open_verified(&mut self, name: &str) -> Result<(S::Reader, u64), StoreError> {
        self.borrow_mut().open_verified(name)
    }
    fn reader_exists(reader: &S::Reader) {
        S::reader_exists(reader)
    }
    fn reads_hashed(&self, reader: &S::Reader) -> bool {
        self.borrow().reads_hashed(reader)
    }
    fn read_digest(&mut self, reader: &mut S::Reader) -> Result<Digest, StoreError> {
        self.borrow_mut().read_digest(reader)
    }
    fn begin(&mut self, name: &str, size: u64) -> Result<S::Upload, StoreError> {
        self.borrow_mut().begin(name, size)
    }
    fn begin_verified(&mut self, name: &str, size: u64) -> Result<S::Upload, StoreError> {
        self.borrow_mut().begin_verified(name, size)
    }
    fn write(&mut self, upload: &mut S::Upload, data: &[u8]) -> Result<(), StoreError> {
        self.borrow_mut().write(upload, data)
    }
    fn upload_room(&mut self, upload: &S::Upload) -> usize {
        self.borrow_mut().upload_room(upload)
    }
    fn hashes(&self, upload: &S::Upload) -> bool {
        self.borrow().hashes(upload)
    }
    fn upload_digest(&mut self, upload: &mut S::Upload) -> Result<Digest, StoreError> {
        self.borrow_mut().upload_digest(upload)
    }
    fn commit(&mut self, upload: S::Upload) -> Result<(), StoreError> {
        self.borrow_mut().commit(upload)
    }
    fn commit_verified(&mut self, upload: S::Upload, sha256: &Digest) -> Result<(), StoreError> {
        self.borrow_mut().commit_verified(upload, sha256)
    }
    fn abort(&mut self, upload: S::Upload) {
        self.borrow_mut().abort(upload)
    }
    fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        self.borrow_mut().remove(name)
    }
    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        self.borrow_mut().for_each(f)
    }
}

/// What a [`RamStore`] slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RamSlot {
    Free,
    Uploading,
    Committed,
}

struct RamFile<const MAX: usize> {
    name: String<MAX_NAME>,
    data: Vec<u8, MAX>,
    slot: RamSlot,
    /// Counts the uploads the slot has taken: a reader of an older one is cut short.
    generation: u32,
}

impl<const MAX: usize> RamFile<MAX> {
    const FREE: Self = RamFile {
        name: String::new(),
        data: Vec::new(),
        slot: RamSlot::Free,
        generation: 0,
    };
}

/// A fixed-capacity store in RAM: at most `FILES` files of at most `MAX` bytes each, one
/// of which may be an upload in progress (a second is refused with
/// [`StoreError::Busy`], so uploads never overlap). Files never move: each has its slot,
/// so no file-sized value ever lands on the (small) stack.
///
/// A commit makes its slot the file and frees the old version's slot without touching its
/// bytes, so a reader of the old version reads on; only when a later upload reuses that
/// slot is such a reader cut short ([`StoreError::Replaced`]). A new upload takes the lowest
/// free slot.
pub struct RamStore<const FILES: usize, const MAX: usize> {
    files: [RamFile<MAX>; FILES],
}

/// An upload into a [`RamStore`]: the index of its (uncommitted) slot.
#[derive(Debug)]
pub struct RamUpload(usize);

/// A file of a [`RamStore`] opened for reading: its slot, and which upload of the slot.
#[derive(Debug, Clone, Copy)]
pub struct RamReader {
    index: usize,
    generation: u32,
}

impl<const FILES: usize, const MAX: usize> RamStore<FILES, MAX> {
    /// An empty store.
    pub const fn new() -> Self {
        RamStore {
            files: [const { RamFile::FREE }; FILES],
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.files
            .iter()
            .position(|f| f.slot == RamSlot::Committed && f.name.as_str() == name)
    }
}

impl<const FILES: usize, const MAX: usize> Default for RamStore<FILES, MAX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const FILES: usize, const MAX: usize> Store for RamStore<FILES, MAX> {
    type Upload = RamUpload;
    type Reader = RamReader;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        let index = self.find(name).ok_or(StoreError::NotFound)?;
        Ok(wide(self.files[index].data.len()))
    }

    fn open(&mut self, name: &str) -> Result<(RamReader, u64), StoreError> {
        let index = self.find(name).ok_or(StoreError::NotFound)?;
        let file = &self.files[index];
        let reader = RamReader {
            index,
            generation: file.generation,
        };
        Ok((reader, wide(file.data.len())))
    }

    fn read_at(
        &mut self,
        reader: &mut RamReader,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StoreError> {
        let file = self.files.get(reader.index).ok_or(StoreError::Io)?;
        // The slot still holds the version opened unless a later upload took it.
        if file.generation != reader.generation || file.slot == RamSlot::Uploading {
            return Err(StoreError::Replaced);
        }
        let data = &file.data;
        let start = room(offset).min(data.len());
        let n = (data.len() - start).min(buf.len());
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn begin(&mut self, name: &str, size: u64) -> Result<RamUpload, StoreError> {
        if self.files.iter().any(|f| f.slot == RamSlot::Uploading) {
            return Err(StoreError::Busy);
        }
        if size > wide(MAX) {
            return Err(StoreError::NoSpace);
        }
        let name = String::try_from(name).map_err(|_| StoreError::NoSpace)?;
        let index = self
            .files
            .iter()
            .position(|f| f.slot == RamSlot::Free)
            .ok_or(StoreError::NoSpace)?;
        let file = &mut self.files[index];
        file.name = name;
        file.data.clear();
        file.slot = RamSlot::Uploading;
        file.generation = file.generation.wrapping_add(1);
        Ok(RamUpload(index))
    }

    fn write(&mut self, upload: &mut RamUpload, data: &[u8]) -> Result<(), StoreError> {
        let file = self
            .files
            .get_mut(upload.0)
            .filter(|f| f.slot == RamSlot::Uploading)
            .ok_or(StoreError::Io)?;
        file.data
            .extend_from_slice(data)
            .map_err(|_| StoreError::NoSpace)
    }

    fn commit(&mut self, upload: RamUpload) -> Result<(), StoreError> {
        let file = self
            .files
            .get(upload.0)
            .filter(|f| f.slot == RamSlot::Uploading)
            .ok_or(StoreError::Io)?;
        if let Some(old) = self.find(&file.name.clone()) {
            // Its bytes stay until a later upload takes the slot.
            self.files[old].slot = RamSlot::Free;
        }
        self.files[upload.0].slot = RamSlot::Committed;
        Ok(())
    }

    fn abort(&mut self, upload: RamUpload) {
        if let Some(file) = self.files.get_mut(upload.0) {
            if file.slot == RamSlot::Uploading {
                file.slot = RamSlot::Free;
            }
        }
    }

    fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        let index = self.find(name).ok_or(StoreError::NotFound)?;
        self.files[index].slot = RamSlot::Free;
        Ok(())
    }

    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        for file in self.files.iter().filter(|f| f.slot == RamSlot::Committed) {
            f(&file.name, wide(file.data.len()));
        }
    }
}

/// Keeps no contents, only the size and SHA-256 of the last `N` files: for checking
/// transfers larger than any store of the device (a 64 MiB upload to a microcontroller).
/// At most `UPLOADS` uploads (by default `N`) are in progress at once, another is refused
/// with [`StoreError::Busy`]: the sink tracks each, so that of two overlapping uploads of
/// one name the one begun last wins, as in every store (a server with one socket passes 1).
pub struct DigestSink<const N: usize, const UPLOADS: usize = N> {
    records: Vec<SinkRecord, N>,
    /// The uploads in progress: their names, the order they began in, and whether a
    /// newer upload of the name was recorded meanwhile (so that each lost, even once that
    /// record gives way to others).
    pending: Vec<(String<MAX_NAME>, u64, bool), UPLOADS>,
    next_seq: u64,
}

/// A file a [`DigestSink`] took: its size and its SHA-256.
struct SinkRecord {
    name: String<MAX_NAME>,
    size: u64,
    digest: Digest,
}

/// An upload into a [`DigestSink`]: its name is kept by the sink, with the uploads in
/// progress.
pub struct SinkUpload {
    seq: u64,
    size: u64,
    digest: SinkDigest,
}

/// Where a [`SinkUpload`]'s digest comes from.
enum SinkDigest {
    /// Hashed here as the data arrives.
    Hashing(Sha256),
    /// Hashed and checked by the caller, who gives it at commit ([`Store::begin_verified`],
    /// [`Store::commit_verified`]).
    Verified,
}

impl<const N: usize, const UPLOADS: usize> DigestSink<N, UPLOADS> {
    /// An empty sink.
    pub const fn new() -> Self {
        DigestSink {
            records: Vec::new(),
            pending: Vec::new(),
            next_seq: 0,
        }
    }

    fn start(&mut self, name: &str, digest: SinkDigest) -> Result<SinkUpload, StoreError> {
        let name = String::try_from(name).map_err(|_| StoreError::NoSpace)?;
        let seq = self.next_seq;
        self.pending
            .push((name, seq, false))
            .map_err(|_| StoreError::Busy)?;
        self.next_seq += 1;
        Ok(SinkUpload {
            seq,
            size: 0,
            digest,
        })
    }

    /// Ends `upload`'s time in progress: its name, and whether an upload of that name
    /// begun after it is still in progress or was recorded (its commit must then be
    /// refused).
    #[inline(never)]
    fn finish(&mut self, upload: &SinkUpload) -> Option<(String<MAX_NAME>, bool)> {
        let index = self
            .pending
            .iter()
            .position(|(_, seq, _)| *seq == upload.seq)?;
        let (name, _, lost) = self.pending.swap_remove(index);
        let superseded = lost
            || self
                .pending
                .iter()
                .any(|(other, seq, _)| *seq > upload.seq && *other == name);
        Some((name, superseded))
    }

    /// Records a finished upload, unless a newer one of its name began.
    #[inline(never)]
    fn record_upload(&mut self, upload: &SinkUpload, digest: Digest) -> Result<(), StoreError> {
        let (name, superseded) = self.finish(upload).ok_or(StoreError::Io)?;
        if superseded {
            return Err(StoreError::Conflict);
        }
        // Every upload of the name still in progress is older (a newer one would have
        // refused this): each has lost, whether or not this record is still kept when it
        // ends.
        for (other, _, lost) in self.pending.iter_mut() {
            *lost |= *other == name;
        }
        if let Some(old) = self.records.iter().position(|r| r.name == name) {
            self.records.remove(old);
        } else if self.records.is_full() {
            self.records.remove(0);
        }
        let _ = self.records.push(SinkRecord {
            name,
            size: upload.size,
            digest,
        });
        Ok(())
    }

    /// The size and digest recorded for `name`.
    pub fn record(&self, name: &str) -> Option<(u64, Digest)> {
        self.records
            .iter()
            .find(|r| r.name.as_str() == name)
            .map(|r| (r.size, r.digest))
    }
}

impl<const N: usize, const UPLOADS: usize> Default for DigestSink<N, UPLOADS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const UPLOADS: usize> Store for DigestSink<N, UPLOADS> {
    type Upload = SinkUpload;
    // No reader can exist: a sink keeps no data. A type with no values (not `()`) lets the
    // compiler drop a server's whole download path for this store.
    type Reader = core::convert::Infallible;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        self.record(name)
            .map(|(size, _)| size)
            .ok_or(StoreError::NotFound)
    }

    fn open(&mut self, name: &str) -> Result<(Self::Reader, u64), StoreError> {
        self.size(name)?;
        Err(StoreError::Unreadable)
    }

    fn read_at(
        &mut self,
        reader: &mut Self::Reader,
        _: u64,
        _: &mut [u8],
    ) -> Result<usize, StoreError> {
        match *reader {}
    }

    fn reader_exists(reader: &Self::Reader) {
        match *reader {}
    }

    fn begin(&mut self, name: &str, _: u64) -> Result<SinkUpload, StoreError> {
        self.start(name, SinkDigest::Hashing(Sha256::new()))
    }

    fn begin_verified(&mut self, name: &str, _: u64) -> Result<SinkUpload, StoreError> {
        self.start(name, SinkDigest::Verified)
    }

    fn write(&mut self, upload: &mut SinkUpload, data: &[u8]) -> Result<(), StoreError> {
        if let SinkDigest::Hashing(hasher) = &mut upload.digest {
            crate::digest::update(hasher, data);
        }
        upload.size += wide(data.len());
        Ok(())
    }

    fn commit(&mut self, mut upload: SinkUpload) -> Result<(), StoreError> {
        let digest: Digest = match &mut upload.digest {
            SinkDigest::Hashing(hasher) => crate::digest::finish(core::mem::take(hasher)),
            // Begun for a caller that hashes, and committed without its digest: there is
            // no digest to record, and a made-up one would be a lie.
            SinkDigest::Verified => {
                self.finish(&upload);
                return Err(StoreError::Io);
            }
        };
        self.record_upload(&upload, digest)
    }

    fn commit_verified(
        &mut self,
        mut upload: SinkUpload,
        sha256: &Digest,
    ) -> Result<(), StoreError> {
        // A plain upload is hashed here, whatever the caller says.
        let digest: Digest = match &mut upload.digest {
            SinkDigest::Hashing(hasher) => crate::digest::finish(core::mem::take(hasher)),
            SinkDigest::Verified => *sha256,
        };
        self.record_upload(&upload, digest)
    }

    fn abort(&mut self, upload: SinkUpload) {
        self.finish(&upload);
    }

    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        for record in &self.records {
            f(&record.name, record.size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aborted_upload_leaves_nothing_and_a_commit_replaces() {
        let mut store = RamStore::<2, 16>::new();
        let mut up = store.begin("a", 3).unwrap();
        store.write(&mut up, b"old").unwrap();
        assert_eq!(
            store.size("a"),
            Err(StoreError::NotFound),
            "not visible before commit"
        );
        store.commit(up).unwrap();
        let mut up = store.begin("a", 3).unwrap();
        assert!(matches!(store.begin("b", 1), Err(StoreError::Busy)));
        store.write(&mut up, b"new").unwrap();
        store.abort(up);
        let mut buf = [0u8; 8];
        let (mut reader, size) = store.open("a").unwrap();
        assert_eq!(size, 3);
        assert_eq!(store.read_at(&mut reader, 0, &mut buf), Ok(3));
        assert_eq!(&buf[..3], b"old");
        let mut up = store.begin("a", 4).unwrap();
        store.write(&mut up, b"newr").unwrap();
        store.commit(up).unwrap();
        assert_eq!(store.size("a"), Ok(4));
        let mut count = 0;
        store.for_each(&mut |_, _| count += 1);
        assert_eq!(count, 1);
    }

    #[test]
    fn a_digest_sink_hashes_plain_uploads_and_records_verified_ones_as_given() {
        let mut sink = DigestSink::<3>::new();
        let mut up = sink.begin("plain", 3).unwrap();
        sink.write(&mut up, b"abc").unwrap();
        sink.commit_verified(up, &[1; 32]).unwrap();
        let abc: Digest = Sha256::digest(b"abc").into();
        assert_eq!(
            sink.record("plain"),
            Some((3, abc)),
            "hashed here, not as told"
        );

        let checked = [7u8; 32];
        let mut up = sink.begin_verified("checked", 3).unwrap();
        sink.write(&mut up, b"abc").unwrap();
        sink.commit_verified(up, &checked).unwrap();
        assert_eq!(sink.record("checked"), Some((3, checked)));

        let mut up = sink.begin_verified("no digest", 3).unwrap();
        sink.write(&mut up, b"abc").unwrap();
        assert_eq!(sink.commit(up), Err(StoreError::Io), "nothing to record");
        assert_eq!(sink.record("no digest"), None);
    }

    #[test]
    fn of_overlapping_sink_uploads_of_one_name_the_one_begun_last_wins() {
        let mut sink = DigestSink::<3>::new();
        let put = |sink: &mut DigestSink<3>, data: &[u8]| {
            let mut up = sink.begin("f", 1).unwrap();
            sink.write(&mut up, data).unwrap();
            up
        };
        let digest = |data: &[u8]| -> Digest { Sha256::digest(data).into() };
        // The older finishes first: refused, the newer is recorded.
        let (a, b) = (put(&mut sink, b"A"), put(&mut sink, b"BB"));
        assert_eq!(sink.commit(a), Err(StoreError::Conflict));
        assert_eq!(sink.commit(b), Ok(()));
        assert_eq!(sink.record("f"), Some((2, digest(b"BB"))));
        // The newer finishes first: the older, finishing later, does not replace it.
        let (c, d) = (put(&mut sink, b"C"), put(&mut sink, b"DDD"));
        assert_eq!(sink.commit(d), Ok(()));
        assert_eq!(sink.commit(c), Err(StoreError::Conflict));
        assert_eq!(sink.record("f"), Some((3, digest(b"DDD"))));
        // A newer upload aborted does not hold an older one back; other names never do.
        let (e, f) = (put(&mut sink, b"E"), put(&mut sink, b"F"));
        let mut other = sink.begin_verified("g", 1).unwrap();
        sink.write(&mut other, b"G").unwrap();
        sink.abort(f);
        assert_eq!(sink.commit_verified(other, &digest(b"G")), Ok(()));
        assert_eq!(sink.commit(e), Ok(()));
        assert_eq!(sink.record("f"), Some((1, digest(b"E"))));
        assert_eq!(sink.record("g"), Some((1, digest(b"G"))));
    }

    #[test]
    fn an_older_sink_upload_still_loses_once_the_newer_ones_record_is_gone() {
        // One record: the newer upload's record of `f` gives way to `g`'s before the
        // older upload of `f` ends. The older one lost all the same.
        let mut sink = DigestSink::<1, 2>::new();
        let mut older = sink.begin("f", 3).unwrap();
        sink.write(&mut older, b"old").unwrap();
        let mut newer = sink.begin("f", 3).unwrap();
        sink.write(&mut newer, b"new").unwrap();
        assert_eq!(sink.commit(newer), Ok(()));
        let mut other = sink.begin("g", 1).unwrap();
        sink.write(&mut other, b"g").unwrap();
        assert_eq!(sink.commit(other), Ok(()));
        assert_eq!(sink.record("f"), None, "g's record took f's place");
        assert_eq!(sink.commit(older), Err(StoreError::Conflict));
        assert_eq!(sink.record("f"), None, "never recorded as f");
        // A name whose uploads have all ended holds nothing back.
        let mut again = sink.begin("f", 5).unwrap();
        sink.write(&mut again, b"again").unwrap();
        assert_eq!(sink.commit(again), Ok(()));
        assert_eq!(sink.record("f").map(|(size, _)| size), Some(5));
    }

    #[test]
    fn a_sink_refuses_more_uploads_in_progress_than_it_can_track() {
        let mut sink = DigestSink::<2>::new();
        let a = sink.begin("a", 1).unwrap();
        let b = sink.begin_verified("b", 1).unwrap();
        assert!(matches!(sink.begin("c", 1), Err(StoreError::Busy)));
        assert_eq!(sink.commit(b), Err(StoreError::Io), "no digest given");
        let c = sink.begin("c", 1).unwrap();
        sink.abort(a);
        assert_eq!(sink.commit(c), Ok(()));
        assert_eq!(sink.record("c"), Some((0, Sha256::digest(b"").into())));
        assert_eq!(sink.record("a"), None);
    }

    #[test]
    fn a_full_ram_store_refuses_a_new_upload_until_a_slot_is_free() {
        let mut store = RamStore::<1, 8>::new();
        let up = store.begin("a", 1).unwrap();
        store.commit(up).unwrap();
        assert!(matches!(store.begin("b", 1), Err(StoreError::NoSpace)));
        let up = store.begin("a", 1);
        assert!(
            matches!(up, Err(StoreError::NoSpace)),
            "one slot, holding a"
        );
        let mut store = RamStore::<2, 8>::new();
        let up = store.begin("a", 1).unwrap();
        store.abort(up);
        let up = store.begin("b", 1).unwrap();
        store.commit(up).unwrap();
        assert_eq!(store.size("a"), Err(StoreError::NotFound));
        assert_eq!(store.size("b"), Ok(0));
    }

    #[test]
    fn a_file_larger_than_a_slot_is_refused() {
        let mut store = RamStore::<2, 16>::new();
        assert!(matches!(store.begin("big", 17), Err(StoreError::NoSpace)));
        let mut up = store.begin("lies", 4).unwrap();
        assert_eq!(store.write(&mut up, &[0; 17]), Err(StoreError::NoSpace));
    }

    #[test]
    fn the_sink_keeps_sizes_and_digests_only() {
        let mut sink = DigestSink::<1>::new();
        let mut up = sink.begin("x", 3).unwrap();
        sink.write(&mut up, b"abc").unwrap();
        sink.commit(up).unwrap();
        let (size, digest) = sink.record("x").unwrap();
        assert_eq!(size, 3);
        assert_eq!(digest[..4], [0xba, 0x78, 0x16, 0xbf], "SHA-256 of 'abc'");
        assert!(matches!(sink.open("x"), Err(StoreError::Unreadable)));
        assert!(matches!(sink.open("y"), Err(StoreError::NotFound)));
    }

    #[test]
    fn a_ram_reader_keeps_its_version_until_the_slot_is_reused() {
        let mut store = RamStore::<3, 16>::new();
        let mut buf = [0u8; 16];
        let mut up = store.begin("a", 3).unwrap();
        store.write(&mut up, b"old").unwrap();
        store.commit(up).unwrap();
        let (mut reader, _) = store.open("a").unwrap();
        // A new version commits into another slot: the reader reads on, the old bytes.
        let mut up = store.begin("a", 3).unwrap();
        store.write(&mut up, b"new").unwrap();
        store.commit(up).unwrap();
        assert_eq!(store.read_at(&mut reader, 0, &mut buf), Ok(3));
        assert_eq!(&buf[..3], b"old");
        let (mut fresh, _) = store.open("a").unwrap();
        assert_eq!(store.read_at(&mut fresh, 0, &mut buf), Ok(3));
        assert_eq!(&buf[..3], b"new");
        // The next upload reuses the old version's slot: its reader is cut short.
        let up = store.begin("b", 1).unwrap();
        assert_eq!(
            store.read_at(&mut reader, 1, &mut buf),
            Err(StoreError::Replaced)
        );
        store.abort(up);
        assert_eq!(
            store.read_at(&mut reader, 1, &mut buf),
            Err(StoreError::Replaced),
            "never switched to what the slot holds next"
        );
        assert_eq!(store.read_at(&mut fresh, 1, &mut buf), Ok(2));
    }

    #[test]
    fn a_removed_ram_file_is_gone_for_new_readers_only() {
        let mut store = RamStore::<2, 16>::new();
        let mut up = store.begin("a", 2).unwrap();
        store.write(&mut up, b"hi").unwrap();
        store.commit(up).unwrap();
        let (mut reader, _) = store.open("a").unwrap();
        assert_eq!(store.remove("a"), Ok(()));
        assert_eq!(store.remove("a"), Err(StoreError::NotFound));
        assert!(matches!(store.open("a"), Err(StoreError::NotFound)));
        let mut buf = [0u8; 4];
        assert_eq!(store.read_at(&mut reader, 0, &mut buf), Ok(2));
    }

    #[test]
    fn a_shared_ram_store_serves_every_holder() {
        let cell = RefCell::new(RamStore::<2, 16>::new());
        let (mut http, mut transfer) = (&cell, &cell);
        let mut up = transfer.begin("a", 1).unwrap();
        assert!(matches!(http.begin("b", 1), Err(StoreError::Busy)));
        transfer.write(&mut up, b"x").unwrap();
        transfer.commit(up).unwrap();
        assert_eq!(http.size("a"), Ok(1));
    }
}
