//! The device's file store, on the device side of the wire: what `host-sim serve`'s
//! transfer and HTTP services read and write. [`DirStore`] keeps files in a directory
//! (`--files DIR`); [`HostStore`] is that or, without a directory, a digest sink that keeps
//! only the size and SHA-256 of each upload.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use ringnet::transfer::{validate_name, DigestSink, Store, StoreError};

/// Files in a directory. An upload is written to `NAME.part`, and renamed to `NAME` only
/// once its SHA-256 matched: a failed transfer never leaves a file under the final name.
/// Names are checked by [`validate_name`], so nothing outside the directory is touched.
pub struct DirStore {
    root: PathBuf,
    /// The file last read, kept open so a large get does not reopen it per chunk.
    reading: Option<(String, File)>,
}

/// An upload into a [`DirStore`].
pub struct DirUpload {
    name: String,
    part: PathBuf,
    file: File,
}

impl DirStore {
    /// A store in `root`, which must exist.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<DirStore> {
        let root = root.into();
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(DirStore {
            root,
            reading: None,
        })
    }

    fn path(&self, name: &str) -> Result<PathBuf, StoreError> {
        validate_name(name.as_bytes()).map_err(|_| StoreError::NotFound)?;
        Ok(self.root.join(name))
    }
}

fn store_error(e: io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::NotFound => StoreError::NotFound,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StoreError::NoSpace,
        _ => StoreError::Io,
    }
}

impl Store for DirStore {
    type Upload = DirUpload;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        let meta = fs::metadata(self.path(name)?).map_err(store_error)?;
        if meta.is_file() {
            Ok(meta.len())
        } else {
            Err(StoreError::NotFound)
        }
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        if self.reading.as_ref().is_none_or(|(open, _)| open != name) {
            let file = File::open(self.path(name)?).map_err(store_error)?;
            self.reading = Some((name.to_string(), file));
        }
        let Some((_, file)) = self.reading.as_mut() else {
            return Err(StoreError::Io);
        };
        file.seek(SeekFrom::Start(offset)).map_err(store_error)?;
        file.read(buf).map_err(store_error)
    }

    fn begin(&mut self, name: &str, _size: u64) -> Result<DirUpload, StoreError> {
        let path = self.path(name)?;
        let part = path.with_file_name(format!("{name}.part"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&part)
            .map_err(store_error)?;
        Ok(DirUpload {
            name: name.to_string(),
            part,
            file,
        })
    }

    fn write(&mut self, upload: &mut DirUpload, data: &[u8]) -> Result<(), StoreError> {
        upload.file.write_all(data).map_err(store_error)
    }

    fn commit(&mut self, upload: DirUpload) -> Result<(), StoreError> {
        upload.file.sync_all().map_err(store_error)?;
        let target = self.path(&upload.name)?;
        if self
            .reading
            .as_ref()
            .is_some_and(|(open, _)| *open == upload.name)
        {
            self.reading = None;
        }
        fs::rename(&upload.part, target).map_err(store_error)
    }

    fn abort(&mut self, upload: DirUpload) {
        drop(upload.file);
        let _ = fs::remove_file(&upload.part);
    }

    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if validate_name(name.as_bytes()).is_err() {
                continue;
            }
            if let Ok(meta) = entry.metadata() {
                if meta.is_file() {
                    f(name, meta.len());
                }
            }
        }
    }
}

/// The host's transfer store: a directory (`--files DIR`), or digests only.
pub enum HostStore {
    /// Files in a directory.
    Dir(DirStore),
    /// Sizes and digests of the last uploads.
    Digests(Box<DigestSink<16>>),
}

/// An upload into a [`HostStore`].
pub enum HostUpload {
    /// Into the directory.
    Dir(DirUpload),
    /// Into the digest sink.
    Digests(Box<<DigestSink<16> as Store>::Upload>),
}

impl Store for HostStore {
    type Upload = HostUpload;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        match self {
            HostStore::Dir(s) => s.size(name),
            HostStore::Digests(s) => s.size(name),
        }
    }

    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        match self {
            HostStore::Dir(s) => s.read_at(name, offset, buf),
            HostStore::Digests(s) => s.read_at(name, offset, buf),
        }
    }

    fn begin(&mut self, name: &str, size: u64) -> Result<HostUpload, StoreError> {
        match self {
            HostStore::Dir(s) => s.begin(name, size).map(HostUpload::Dir),
            HostStore::Digests(s) => s
                .begin(name, size)
                .map(|u| HostUpload::Digests(Box::new(u))),
        }
    }

    fn begin_verified(
        &mut self,
        name: &str,
        size: u64,
        sha256: &ringnet::transfer::Digest,
    ) -> Result<HostUpload, StoreError> {
        match self {
            HostStore::Dir(s) => s.begin_verified(name, size, sha256).map(HostUpload::Dir),
            HostStore::Digests(s) => s
                .begin_verified(name, size, sha256)
                .map(|u| HostUpload::Digests(Box::new(u))),
        }
    }

    fn write(&mut self, upload: &mut HostUpload, data: &[u8]) -> Result<(), StoreError> {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.write(u, data),
            (HostStore::Digests(s), HostUpload::Digests(u)) => s.write(u, data),
            _ => Err(StoreError::Io),
        }
    }

    fn commit(&mut self, upload: HostUpload) -> Result<(), StoreError> {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.commit(u),
            (HostStore::Digests(s), HostUpload::Digests(u)) => s.commit(*u),
            _ => Err(StoreError::Io),
        }
    }

    fn abort(&mut self, upload: HostUpload) {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.abort(u),
            (HostStore::Digests(s), HostUpload::Digests(u)) => s.abort(*u),
            _ => {}
        }
    }

    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        match self {
            HostStore::Dir(s) => s.for_each(f),
            HostStore::Digests(s) => s.for_each(f),
        }
    }
}
