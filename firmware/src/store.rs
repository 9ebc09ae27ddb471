//! What the firmware's HTTP server serves: the built-in file, generated patterns of any
//! size (`pattern-N`), and small uploads kept in RAM.

use ringnet::services::{FileSource, Pattern, StaticFile};
use ringnet::transfer::{RamStore, RamUpload, Store, StoreError};

use crate::config::{UPLOAD_FILES, UPLOAD_MAX};

/// The name of the built-in file.
pub const BUILT_IN: &str = "welcome.txt";

/// The firmware's file store.
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
        digits.parse().ok().map(Pattern)
    }
}

impl Store for FirmwareStore {
    type Upload = RamUpload;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        if name == BUILT_IN {
            return Ok(self.built_in.len());
        }
        match Self::pattern(name) {
            Some(pattern) => Ok(pattern.len()),
            None => self.uploads.size(name),
        }
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let mut read =
            |source: &dyn FileSource| source.read_at(offset, buf).map_err(|_| StoreError::Io);
        if name == BUILT_IN {
            return read(&self.built_in);
        }
        match Self::pattern(name) {
            Some(pattern) => read(&pattern),
            None => self.uploads.read_at(name, offset, buf),
        }
    }

    fn begin(&mut self, name: &str, size: u64) -> Result<RamUpload, StoreError> {
        if name == BUILT_IN || Self::pattern(name).is_some() {
            // Read-only names: as if the medium refused.
            return Err(StoreError::Io);
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

    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        f(BUILT_IN, self.built_in.len());
        self.uploads.for_each(f);
    }
}
