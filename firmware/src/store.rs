//! What the firmware's HTTP server serves: the built-in file, generated patterns of any
//! size (`pattern-N`), and small uploads kept in RAM.

use ringnet::services::{FileSource, Pattern, StaticFile};
use ringnet::transfer::{RamReader, RamStore, RamUpload, Store, StoreError};

use crate::config::{UPLOAD_FILES, UPLOAD_MAX};

/// The name of the built-in file.
pub const BUILT_IN: &str = "welcome.txt";

/// The firmware's file store: the built-in file and the patterns are read-only, uploads
/// live in a [`RamStore`] (one at a time, a reader keeps its version until its slot is
/// reused, then is cut short).
pub struct FirmwareStore {
    built_in: StaticFile<'static>,
    uploads: RamStore<UPLOAD_FILES, UPLOAD_MAX>,
}

impl FirmwareStore {
    /// A store serving `built_in` as [`BUILT_IN`].
    pub const fn new(built_in: &'static [u8]) -> FirmwareStore {
        FirmwareStore {
            built_in: StaticFile(built_in),
            uploads: RamStore::new(),
        }
    }

    /// `pattern-N` names a generated pattern of N bytes.
    fn pattern(name: &str) -> Option<Pattern> {
        let digits = name.strip_prefix("pattern-")?;
        if digits.starts_with('0') && digits.len() > 1 {
            return None;
        }
        ringnet::text::parse_u64(digits).map(Pattern)
    }
}

/// A file of the [`FirmwareStore`] opened for reading.
pub enum FirmwareReader {
    /// The built-in file.
    BuiltIn,
    /// A generated pattern.
    Pattern(Pattern),
    /// An upload kept in RAM.
    Ram(RamReader),
}

impl Store for FirmwareStore {
    type Upload = RamUpload;
    type Reader = FirmwareReader;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        if name == BUILT_IN {
            return Ok(self.built_in.len());
        }
        match Self::pattern(name) {
            Some(pattern) => Ok(pattern.len()),
            None => self.uploads.size(name),
        }
    }

    fn open(&mut self, name: &str) -> Result<(FirmwareReader, u64), StoreError> {
        if name == BUILT_IN {
            return Ok((FirmwareReader::BuiltIn, self.built_in.len()));
        }
        match Self::pattern(name) {
            Some(pattern) => Ok((FirmwareReader::Pattern(pattern), pattern.len())),
            None => {
                let (reader, size) = self.uploads.open(name)?;
                Ok((FirmwareReader::Ram(reader), size))
            }
        }
    }

    fn read_at(
        &mut self,
        reader: &mut FirmwareReader,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StoreError> {
        let mut read =
            |source: &dyn FileSource| source.read_at(offset, buf).map_err(|_| StoreError::Io);
        match reader {
            FirmwareReader::BuiltIn => read(&self.built_in),
            FirmwareReader::Pattern(pattern) => read(pattern),
            FirmwareReader::Ram(reader) => self.uploads.read_at(reader, offset, buf),
        }
    }

    fn begin(&mut self, name: &str, size: u64) -> Result<RamUpload, StoreError> {
        if name == BUILT_IN || Self::pattern(name).is_some() {
            return Err(StoreError::ReadOnly);
        }
        self.uploads.begin(name, size)
    }

    fn write(&mut self, upload: &mut RamUpload, data: &[u8]) -> Result<(), StoreError> {
        self.uploads.write(upload, data)
    }

    fn commit(&mut self, upload: RamUpload) -> Result<(), StoreError> {
        self.uploads.commit(upload)
    }

    fn abort(&mut self, upload: RamUpload) {
        self.uploads.abort(upload)
    }

    fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        if name == BUILT_IN || Self::pattern(name).is_some() {
            return Err(StoreError::ReadOnly);
        }
        self.uploads.remove(name)
    }

    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        f(BUILT_IN, self.built_in.len());
        self.uploads.for_each(f);
    }
}
