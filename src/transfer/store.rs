//! Where transferred files live: a small trait, a fixed-size in-RAM store, and a sink that
//! keeps only digests (for sizes no store of the device could hold).
//!
//! Every store keeps an upload apart from the finished files until
//! [`Store::commit`]: a failed transfer never leaves a file under its final name.

use core::fmt;

use heapless::{String, Vec};
use sha2::{Digest as _, Sha256};

use super::wire::{Digest, MAX_NAME};

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
}

impl StoreError {
    /// What went wrong, in words (the `Display` text, also sent as a status's reason).
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreError::NotFound => "no such file",
            StoreError::NoSpace => "no space for the file",
            StoreError::Busy => "another upload is in progress",
            StoreError::Io => "storage I/O error",
            StoreError::Unreadable => "this store keeps digests only",
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for StoreError {}

/// A place to keep files by name.
pub trait Store {
    /// An upload in progress.
    type Upload;

    /// The size of the file `name`.
    fn size(&mut self, name: &str) -> Result<u64, StoreError>;
    /// Copies bytes of `name` from `offset` into `buf`; 0 only at the end.
    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError>;
    /// Starts an upload of `size` bytes for `name`, kept apart until committed.
    fn begin(&mut self, name: &str, size: u64) -> Result<Self::Upload, StoreError>;
    /// [`Store::begin`] for an upload whose SHA-256 the caller announces and checks
    /// itself before it commits (the transfer server does): a store that keeps digests
    /// may record this one instead of hashing the data a second time.
    fn begin_verified(
        &mut self,
        name: &str,
        size: u64,
        _sha256: &Digest,
    ) -> Result<Self::Upload, StoreError> {
        self.begin(name, size)
    }
    /// Appends to an upload.
    fn write(&mut self, upload: &mut Self::Upload, data: &[u8]) -> Result<(), StoreError>;
    /// Makes the upload visible under its name, replacing any older file.
    fn commit(&mut self, upload: Self::Upload) -> Result<(), StoreError>;
    /// Drops the upload; nothing appears under its name.
    fn abort(&mut self, upload: Self::Upload);
    /// Calls `f` with each file's name and size.
    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64));
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
}

impl<const MAX: usize> RamFile<MAX> {
    const FREE: Self = RamFile {
        name: String::new(),
        data: Vec::new(),
        slot: RamSlot::Free,
    };
}

/// A fixed-capacity store in RAM: at most `FILES` files of at most `MAX` bytes each, one
/// of which may be an upload in progress. Files never move: each has its slot, so no
/// file-sized value ever lands on the (small) stack.
pub struct RamStore<const FILES: usize, const MAX: usize> {
    files: [RamFile<MAX>; FILES],
}

/// An upload into a [`RamStore`]: the index of its (uncommitted) slot.
#[derive(Debug)]
pub struct RamUpload(usize);

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

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        let index = self.find(name).ok_or(StoreError::NotFound)?;
        Ok(self.files[index].data.len() as u64)
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let index = self.find(name).ok_or(StoreError::NotFound)?;
        let data = &self.files[index].data;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let n = (data.len() - start).min(buf.len());
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn begin(&mut self, name: &str, size: u64) -> Result<RamUpload, StoreError> {
        if self.files.iter().any(|f| f.slot == RamSlot::Uploading) {
            return Err(StoreError::Busy);
        }
        if size > MAX as u64 {
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

    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        for file in self.files.iter().filter(|f| f.slot == RamSlot::Committed) {
            f(&file.name, file.data.len() as u64);
        }
    }
}

/// Keeps no contents, only the size and SHA-256 of the last `N` files: for checking
/// transfers larger than any store of the device (a 64 MiB upload to a microcontroller).
pub struct DigestSink<const N: usize> {
    records: Vec<(String<MAX_NAME>, u64, Digest), N>,
}

/// An upload into a [`DigestSink`].
pub struct SinkUpload {
    name: String<MAX_NAME>,
    size: u64,
    digest: SinkDigest,
}

/// Where a [`SinkUpload`]'s digest comes from.
enum SinkDigest {
    /// Hashed here as the data arrives.
    Hashing(Sha256),
    /// Announced, and checked by the caller before commit ([`Store::begin_verified`]).
    Verified(Digest),
}

impl<const N: usize> DigestSink<N> {
    /// An empty sink.
    pub const fn new() -> Self {
        DigestSink {
            records: Vec::new(),
        }
    }

    /// The size and digest recorded for `name`.
    pub fn record(&self, name: &str) -> Option<(u64, Digest)> {
        self.records
            .iter()
            .find(|(n, _, _)| n.as_str() == name)
            .map(|(_, size, digest)| (*size, *digest))
    }
}

impl<const N: usize> Default for DigestSink<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Store for DigestSink<N> {
    type Upload = SinkUpload;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        self.record(name)
            .map(|(size, _)| size)
            .ok_or(StoreError::NotFound)
    }

    fn read_at(&mut self, _: &str, _: u64, _: &mut [u8]) -> Result<usize, StoreError> {
        Err(StoreError::Unreadable)
    }

    fn begin(&mut self, name: &str, _: u64) -> Result<SinkUpload, StoreError> {
        Ok(SinkUpload {
            name: String::try_from(name).map_err(|_| StoreError::NoSpace)?,
            size: 0,
            digest: SinkDigest::Hashing(Sha256::new()),
        })
    }

    fn begin_verified(
        &mut self,
        name: &str,
        _: u64,
        sha256: &Digest,
    ) -> Result<SinkUpload, StoreError> {
        Ok(SinkUpload {
            name: String::try_from(name).map_err(|_| StoreError::NoSpace)?,
            size: 0,
            digest: SinkDigest::Verified(*sha256),
        })
    }

    fn write(&mut self, upload: &mut SinkUpload, data: &[u8]) -> Result<(), StoreError> {
        if let SinkDigest::Hashing(hasher) = &mut upload.digest {
            hasher.update(data);
        }
        upload.size += data.len() as u64;
        Ok(())
    }

    fn commit(&mut self, upload: SinkUpload) -> Result<(), StoreError> {
        self.records.retain(|(n, _, _)| *n != upload.name);
        if self.records.is_full() {
            self.records.remove(0);
        }
        let digest: Digest = match upload.digest {
            SinkDigest::Hashing(hasher) => hasher.finalize().into(),
            SinkDigest::Verified(digest) => digest,
        };
        let _ = self.records.push((upload.name, upload.size, digest));
        Ok(())
    }

    fn abort(&mut self, _: SinkUpload) {}

    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        for (name, size, _) in &self.records {
            f(name, *size);
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
        assert_eq!(store.read_at("a", 0, &mut buf), Ok(3));
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
    fn a_digest_sink_hashes_plain_uploads_and_records_verified_ones_as_announced() {
        let mut sink = DigestSink::<2>::new();
        let mut up = sink.begin("plain", 3).unwrap();
        sink.write(&mut up, b"abc").unwrap();
        sink.commit(up).unwrap();
        let abc: Digest = Sha256::digest(b"abc").into();
        assert_eq!(sink.record("plain"), Some((3, abc)));

        let announced = [7u8; 32];
        let mut up = sink.begin_verified("checked", 3, &announced).unwrap();
        sink.write(&mut up, b"abc").unwrap();
        sink.commit(up).unwrap();
        assert_eq!(sink.record("checked"), Some((3, announced)));
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
        assert_eq!(
            sink.read_at("x", 0, &mut [0; 4]),
            Err(StoreError::Unreadable)
        );
    }
}
