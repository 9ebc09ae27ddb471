//! A file on the host's disk as a [`FileSource`]: what the device's file out service
//! sends (`serve --file`). Plain helper, below both sides of the wire.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use ringnet::services::{FileSource, ReadError};

/// A local file as a [`FileSource`]: what `serve --file` sends from TCP 7001.
pub struct LocalFile {
    file: std::cell::RefCell<File>,
    len: u64,
}

impl LocalFile {
    /// Opens `path`.
    pub fn open(path: &Path) -> io::Result<LocalFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(LocalFile {
            file: std::cell::RefCell::new(file),
            len,
        })
    }
}

impl FileSource for LocalFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let mut file = self.file.borrow_mut();
        file.seek(SeekFrom::Start(offset)).map_err(|_| ReadError)?;
        file.read(buf).map_err(|_| ReadError)
    }
}
