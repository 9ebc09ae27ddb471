//! The device's file store, on the device side of the wire: what `host-sim serve`'s
//! transfer and HTTP services read and write. [`DirStore`] keeps files in a directory
//! (`--files DIR`); [`HostStore`] is that or, without a directory, a digest sink that keeps
//! only the size and SHA-256 of each upload (a transfer's put hashed on a thread of its
//! own, as a directory's upload is); [`SharedStore`] is the one handle to it that
//! both servers hold, so that both see every commit at once.

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ringnet::transfer::{validate_name, Digest, DigestSink, Store, StoreError};

use crate::part_writer::PartWriter;
use crate::read_ahead::ReadAhead;

/// Files in a directory, with the promises of [`Store`]:
///
/// - Each upload writes its own hidden temporary file, `.NAME.SEQ.part` (a name no
///   client can ask for: [`validate_name`] refuses a leading `.`), fsyncs it and renames it
///   over `NAME` on commit: `rename(2)` replaces the file at once.
/// - A reader holds the open file: after a rename it reads on from the version it opened
///   (the old inode), to its end.
/// - Of two overlapping uploads of one name, the one begun last wins: an older one's
///   commit is refused with [`StoreError::Conflict`] while a newer one is in progress or
///   once a newer one has committed.
/// - An upload larger than the free space, than the process's file-size limit
///   (`ulimit -f`, `RLIMIT_FSIZE`) or than `--max-upload` is refused at [`Store::begin`]
///   as [`StoreError::NoSpace`]; a failed write, an abort or a refused commit deletes the
///   temporary. A write that meets the file-size limit all the same fails as no space:
///   opening a store sets `SIGXFSZ` to be ignored, as its default action ends the whole
///   process (every connection with it) at the first write past the limit.
///
/// - Each upload's temporary is written by a thread of its own ([`PartWriter`]), which
///   also hashes the data of an upload begun with [`Store::begin_verified`]: the transfer
///   server leaves the hashing to it ([`Store::hashes`]), so the poll loop only copies
///   each piece out of the receive ring.
///
/// Temporaries left by a process that died are deleted when the store opens.
pub struct DirStore {
    root: PathBuf,
    max_upload: Option<u64>,
    /// The number of the next upload.
    next_seq: u64,
    /// Every upload in progress.
    pending: Vec<Pending>,
}

/// An upload of a [`DirStore`] in progress. Only these are remembered: a name whose
/// uploads have all ended leaves nothing behind, however many names a peer makes up.
struct Pending {
    name: String,
    seq: u64,
    /// A newer upload of the name committed while this one was in progress.
    lost: bool,
}

/// A file of a [`DirStore`] opened for reading: the open file itself ([`Store::open`], for
/// HTTP's reads at any offset), or read ahead and hashed by a thread of its own
/// ([`Store::open_verified`], the transfer server's get).
#[derive(Debug)]
pub enum DirReader {
    /// The open file, read with `pread(2)`.
    File(File),
    /// Read ahead and hashed ([`ReadAhead`]).
    Ahead(ReadAhead),
}

/// An upload into a [`DirStore`].
pub struct DirUpload {
    name: String,
    seq: u64,
    part: PathBuf,
    writer: PartWriter,
    /// Whether the writer hashes the data ([`Store::begin_verified`]).
    hashed: bool,
}

impl DirStore {
    /// A store in `root`, which must exist.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<DirStore> {
        ignore_file_size_signal();
        let root = root.into();
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", root.display()),
            ));
        }
        for entry in fs::read_dir(&root)?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".part") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(DirStore {
            root,
            max_upload: None,
            next_seq: 0,
            pending: Vec::new(),
        })
    }

    /// Refuses uploads larger than `limit` bytes (besides those larger than the free space).
    pub fn with_max_upload(mut self, limit: Option<u64>) -> DirStore {
        self.max_upload = limit;
        self
    }

    fn path(&self, name: &str) -> Result<PathBuf, StoreError> {
        validate_name(name.as_bytes()).map_err(|_| StoreError::NotFound)?;
        Ok(self.root.join(name))
    }

    /// Whether `upload` lost to a newer upload of its name.
    fn superseded(&self, upload: &DirUpload) -> bool {
        self.pending
            .iter()
            .any(|p| p.name == upload.name && (p.seq > upload.seq || p.seq == upload.seq && p.lost))
    }

    fn forget(&mut self, upload: &DirUpload) {
        self.pending.retain(|p| p.seq != upload.seq);
    }

    /// [`Store::begin`], with the writer thread hashing the data if `hashed`.
    fn start(&mut self, name: &str, size: u64, hashed: bool) -> Result<DirUpload, StoreError> {
        self.path(name)?;
        let limit = self.max_upload.unwrap_or(u64::MAX);
        if size > limit
            || file_size_limit().is_some_and(|max| size > max)
            || free_space(&self.root).is_some_and(|free| size > free)
        {
            return Err(StoreError::NoSpace);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let part = self.root.join(format!(".{name}.{seq}.part"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(store_error)?;
        let writer = match PartWriter::start(file, hashed) {
            Ok(writer) => writer,
            Err(e) => {
                let _ = fs::remove_file(&part);
                return Err(store_error(e));
            }
        };
        self.pending.push(Pending {
            name: name.to_string(),
            seq,
            lost: false,
        });
        Ok(DirUpload {
            name: name.to_string(),
            seq,
            part,
            writer,
            hashed,
        })
    }
}

/// Bytes free for an unprivileged writer on the file system of `dir`.
#[allow(unsafe_code)]
fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a zeroed out-parameter
    // that statvfs(3) fills; both outlive the call.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut stat) != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)]
        Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
    }
}

/// The largest file this process may write (`RLIMIT_FSIZE`'s soft limit), if limited.
#[allow(unsafe_code)]
fn file_size_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-parameter that getrlimit(2) fills; it outlives the
    // call.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u64)
}

/// Makes a write past the file-size limit fail with `EFBIG` (then [`StoreError::NoSpace`])
/// instead of ending the process with `SIGXFSZ`, whose default action that is.
#[allow(unsafe_code)]
fn ignore_file_size_signal() {
    // SAFETY: SIG_IGN installs no handler, so no code runs at the signal; the disposition
    // is process-wide and set the same way by every call.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

fn store_error(e: io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::NotFound => StoreError::NotFound,
        // `EFBIG`: past the file-size limit, which is as full as the disk for this file.
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge => {
            StoreError::NoSpace
        }
        _ => StoreError::Io,
    }
}

impl DirStore {
    fn open_file(&self, name: &str) -> Result<(File, u64), StoreError> {
        let file = File::open(self.path(name)?).map_err(store_error)?;
        let meta = file.metadata().map_err(store_error)?;
        if !meta.is_file() {
            return Err(StoreError::NotFound);
        }
        Ok((file, meta.len()))
    }
}

impl Store for DirStore {
    type Upload = DirUpload;
    type Reader = DirReader;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        let meta = fs::metadata(self.path(name)?).map_err(store_error)?;
        if meta.is_file() {
            Ok(meta.len())
        } else {
            Err(StoreError::NotFound)
        }
    }

    fn open(&mut self, name: &str) -> Result<(DirReader, u64), StoreError> {
        let (file, size) = self.open_file(name)?;
        Ok((DirReader::File(file), size))
    }

    fn open_verified(&mut self, name: &str) -> Result<(DirReader, u64), StoreError> {
        let (file, size) = self.open_file(name)?;
        let ahead = ReadAhead::start(file, size).map_err(store_error)?;
        Ok((DirReader::Ahead(ahead), size))
    }

    fn read_at(
        &mut self,
        reader: &mut DirReader,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StoreError> {
        match reader {
            DirReader::File(file) => file.read_at(buf, offset),
            DirReader::Ahead(ahead) => ahead.read_at(buf, offset),
        }
        .map_err(store_error)
    }

    fn reads_hashed(&self, reader: &DirReader) -> bool {
        matches!(reader, DirReader::Ahead(_))
    }

    fn read_digest(&mut self, reader: &mut DirReader) -> Result<Digest, StoreError> {
        match reader {
            DirReader::Ahead(ahead) => ahead.digest().map_err(store_error),
            DirReader::File(_) => Err(StoreError::Io),
        }
    }

    fn begin(&mut self, name: &str, size: u64) -> Result<DirUpload, StoreError> {
        self.start(name, size, false)
    }

    fn begin_verified(&mut self, name: &str, size: u64) -> Result<DirUpload, StoreError> {
        self.start(name, size, true)
    }

    fn write(&mut self, upload: &mut DirUpload, data: &[u8]) -> Result<(), StoreError> {
        upload.writer.write(data).map_err(store_error)
    }

    fn upload_room(&mut self, upload: &DirUpload) -> usize {
        upload.writer.room()
    }

    fn hashes(&self, upload: &DirUpload) -> bool {
        upload.hashed
    }

    fn upload_digest(&mut self, upload: &mut DirUpload) -> Result<Digest, StoreError> {
        let written = upload.writer.finish().map_err(store_error)?;
        written.sha256.ok_or(StoreError::Io)
    }

    fn commit(&mut self, mut upload: DirUpload) -> Result<(), StoreError> {
        if self.superseded(&upload) {
            self.abort(upload);
            return Err(StoreError::Conflict);
        }
        let target = self.path(&upload.name)?;
        let done = upload
            .writer
            .finish()
            .and_then(|written| written.file.sync_all())
            .and_then(|()| fs::rename(&upload.part, target));
        match done {
            Ok(()) => {
                self.forget(&upload);
                // Every upload of the name still in progress is older (a newer one would
                // have refused this commit): each has lost.
                for p in self.pending.iter_mut().filter(|p| p.name == upload.name) {
                    p.lost = true;
                }
                Ok(())
            }
            Err(e) => {
                self.abort(upload);
                Err(store_error(e))
            }
        }
    }

    fn abort(&mut self, upload: DirUpload) {
        self.forget(&upload);
        // Waits for the writer thread, so the file is closed before it is removed.
        drop(upload.writer);
        let _ = fs::remove_file(&upload.part);
    }

    fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        let path = self.path(name)?;
        if !fs::metadata(&path).map_err(store_error)?.is_file() {
            return Err(StoreError::NotFound);
        }
        fs::remove_file(path).map_err(store_error)
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

/// The host's store: a directory (`--files DIR`), or digests only.
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
    Digests(Box<DigestsUpload>),
}

/// An upload into a [`HostStore`]'s digest sink: the sink's record of it and, for an
/// upload begun with [`Store::begin_verified`], the thread that hashes its data
/// ([`PartWriter`] into [`io::Sink`]), so that the poll loop only copies each piece out of
/// the receive ring, as it does for a directory's upload.
pub struct DigestsUpload {
    upload: <DigestSink<16> as Store>::Upload,
    hasher: Option<PartWriter<io::Sink>>,
}

impl DigestsUpload {
    /// Begins an upload of `name` in `sink`, hashed by a thread of its own if `hashed`
    /// ([`Store::begin_verified`]). The thread starts first: a thread that cannot start
    /// leaves no upload in progress behind in the sink (its places are few).
    fn begin(
        sink: &mut DigestSink<16>,
        name: &str,
        size: u64,
        hashed: bool,
    ) -> Result<Self, StoreError> {
        let (hasher, upload) = if hashed {
            let hasher = PartWriter::start(io::sink(), true).map_err(store_error)?;
            (Some(hasher), sink.begin_verified(name, size)?)
        } else {
            (None, sink.begin(name, size)?)
        };
        Ok(DigestsUpload { upload, hasher })
    }
}

impl Store for HostStore {
    type Upload = HostUpload;
    /// Only a directory's files can be read back.
    type Reader = DirReader;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        match self {
            HostStore::Dir(s) => s.size(name),
            HostStore::Digests(s) => s.size(name),
        }
    }

    fn open(&mut self, name: &str) -> Result<(DirReader, u64), StoreError> {
        match self {
            HostStore::Dir(s) => s.open(name),
            HostStore::Digests(s) => Err(s.open(name).err().unwrap_or(StoreError::Unreadable)),
        }
    }

    fn open_verified(&mut self, name: &str) -> Result<(DirReader, u64), StoreError> {
        match self {
            HostStore::Dir(s) => s.open_verified(name),
            HostStore::Digests(s) => Err(s.open(name).err().unwrap_or(StoreError::Unreadable)),
        }
    }

    fn read_at(
        &mut self,
        reader: &mut DirReader,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StoreError> {
        match self {
            HostStore::Dir(s) => s.read_at(reader, offset, buf),
            HostStore::Digests(_) => Err(StoreError::Unreadable),
        }
    }

    fn reads_hashed(&self, reader: &DirReader) -> bool {
        match self {
            HostStore::Dir(s) => s.reads_hashed(reader),
            HostStore::Digests(_) => false,
        }
    }

    fn read_digest(&mut self, reader: &mut DirReader) -> Result<Digest, StoreError> {
        match self {
            HostStore::Dir(s) => s.read_digest(reader),
            HostStore::Digests(_) => Err(StoreError::Unreadable),
        }
    }

    fn begin(&mut self, name: &str, size: u64) -> Result<HostUpload, StoreError> {
        match self {
            HostStore::Dir(s) => s.begin(name, size).map(HostUpload::Dir),
            HostStore::Digests(s) => {
                DigestsUpload::begin(s, name, size, false).map(|u| HostUpload::Digests(Box::new(u)))
            }
        }
    }

    fn begin_verified(&mut self, name: &str, size: u64) -> Result<HostUpload, StoreError> {
        match self {
            HostStore::Dir(s) => s.begin_verified(name, size).map(HostUpload::Dir),
            HostStore::Digests(s) => {
                DigestsUpload::begin(s, name, size, true).map(|u| HostUpload::Digests(Box::new(u)))
            }
        }
    }

    fn write(&mut self, upload: &mut HostUpload, data: &[u8]) -> Result<(), StoreError> {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.write(u, data),
            (HostStore::Digests(s), HostUpload::Digests(u)) => {
                if let Some(hasher) = &mut u.hasher {
                    hasher.write(data).map_err(store_error)?;
                }
                s.write(&mut u.upload, data)
            }
            _ => Err(StoreError::Io),
        }
    }

    fn upload_room(&mut self, upload: &HostUpload) -> usize {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.upload_room(u),
            (HostStore::Digests(_), HostUpload::Digests(u)) => {
                u.hasher.as_ref().map_or(usize::MAX, PartWriter::room)
            }
            _ => usize::MAX,
        }
    }

    fn hashes(&self, upload: &HostUpload) -> bool {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.hashes(u),
            (HostStore::Digests(_), HostUpload::Digests(u)) => u.hasher.is_some(),
            _ => false,
        }
    }

    fn upload_digest(&mut self, upload: &mut HostUpload) -> Result<Digest, StoreError> {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.upload_digest(u),
            (HostStore::Digests(_), HostUpload::Digests(u)) => match &mut u.hasher {
                Some(hasher) => hasher.finish().map_err(store_error)?.sha256,
                None => None,
            }
            .ok_or(StoreError::Io),
            _ => Err(StoreError::Io),
        }
    }

    fn commit(&mut self, upload: HostUpload) -> Result<(), StoreError> {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.commit(u),
            (HostStore::Digests(s), HostUpload::Digests(u)) => s.commit(u.upload),
            _ => Err(StoreError::Io),
        }
    }

    fn commit_verified(&mut self, upload: HostUpload, sha256: &Digest) -> Result<(), StoreError> {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.commit_verified(u, sha256),
            (HostStore::Digests(s), HostUpload::Digests(u)) => s.commit_verified(u.upload, sha256),
            _ => Err(StoreError::Io),
        }
    }

    fn abort(&mut self, upload: HostUpload) {
        match (self, upload) {
            (HostStore::Dir(s), HostUpload::Dir(u)) => s.abort(u),
            // Dropping the hasher stops its thread without hashing what is still queued.
            (HostStore::Digests(s), HostUpload::Digests(u)) => s.abort(u.upload),
            _ => {}
        }
    }

    fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        match self {
            HostStore::Dir(s) => s.remove(name),
            HostStore::Digests(s) => s.remove(name),
        }
    }

    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        match self {
            HostStore::Dir(s) => s.for_each(f),
            HostStore::Digests(s) => s.for_each(f),
        }
    }
}

/// One store shared by every server of the host: each holds a clone of this handle, and
/// every call borrows the store for its duration only (the servers are polled one after
/// the other, so borrows never overlap). The heap's version of the core's
/// `impl Store for &RefCell<S>`.
pub struct SharedStore<S = HostStore>(Rc<RefCell<S>>);

impl<S> Clone for SharedStore<S> {
    fn clone(&self) -> Self {
        SharedStore(self.0.clone())
    }
}

impl<S: Store> SharedStore<S> {
    /// A handle to `store`, shared by every clone.
    pub fn new(store: S) -> Self {
        SharedStore(Rc::new(RefCell::new(store)))
    }
}

impl<S: Store> Store for SharedStore<S> {
    type Upload = S::Upload;
    type Reader = S::Reader;

    fn size(&mut self, name: &str) -> Result<u64, StoreError> {
        self.0.borrow_mut().size(name)
    }
    fn open(&mut self, name: &str) -> Result<(S::Reader, u64), StoreError> {
        self.0.borrow_mut().open(name)
    }
    fn read_at(
        &mut self,
        reader: &mut S::Reader,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StoreError> {
        self.0.borrow_mut().read_at(reader, offset, buf)
    }
    fn open_verified(&mut self, name: &str) -> Result<(S::Reader, u64), StoreError> {
        self.0.borrow_mut().open_verified(name)
    }
    fn reader_exists(reader: &S::Reader) {
        S::reader_exists(reader)
    }
    fn reads_hashed(&self, reader: &S::Reader) -> bool {
        self.0.borrow().reads_hashed(reader)
    }
    fn read_digest(&mut self, reader: &mut S::Reader) -> Result<Digest, StoreError> {
        self.0.borrow_mut().read_digest(reader)
    }
    fn begin(&mut self, name: &str, size: u64) -> Result<S::Upload, StoreError> {
        self.0.borrow_mut().begin(name, size)
    }
    fn begin_verified(&mut self, name: &str, size: u64) -> Result<S::Upload, StoreError> {
        self.0.borrow_mut().begin_verified(name, size)
    }
    fn write(&mut self, upload: &mut S::Upload, data: &[u8]) -> Result<(), StoreError> {
        self.0.borrow_mut().write(upload, data)
    }
    fn upload_room(&mut self, upload: &S::Upload) -> usize {
        self.0.borrow_mut().upload_room(upload)
    }
    fn hashes(&self, upload: &S::Upload) -> bool {
        self.0.borrow().hashes(upload)
    }
    fn upload_digest(&mut self, upload: &mut S::Upload) -> Result<Digest, StoreError> {
        self.0.borrow_mut().upload_digest(upload)
    }
    fn commit(&mut self, upload: S::Upload) -> Result<(), StoreError> {
        self.0.borrow_mut().commit(upload)
    }
    fn commit_verified(&mut self, upload: S::Upload, sha256: &Digest) -> Result<(), StoreError> {
        self.0.borrow_mut().commit_verified(upload, sha256)
    }
    fn abort(&mut self, upload: S::Upload) {
        self.0.borrow_mut().abort(upload)
    }
    fn remove(&mut self, name: &str) -> Result<(), StoreError> {
        self.0.borrow_mut().remove(name)
    }
    fn for_each(&mut self, f: &mut dyn FnMut(&str, u64)) {
        self.0.borrow_mut().for_each(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    fn dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ringnet-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn upload(store: &mut DirStore, name: &str, data: &[u8]) -> DirUpload {
        let mut up = store.begin(name, data.len() as u64).unwrap();
        store.write(&mut up, data).unwrap();
        up
    }

    fn read_all(store: &mut DirStore, reader: &mut DirReader) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = store.read_at(reader, out.len() as u64, &mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn overlapping_uploads_never_mix_and_the_newer_wins() {
        let root = dir("overlap");
        let mut store = DirStore::new(&root).unwrap();
        // The older finishes first: refused, the newer commits.
        let a = upload(&mut store, "f", &[b'A'; 1000]);
        let b = upload(&mut store, "f", &[b'B'; 1000]);
        assert_eq!(store.commit(a), Err(StoreError::Conflict));
        assert_eq!(store.commit(b), Ok(()));
        assert_eq!(fs::read(root.join("f")).unwrap(), vec![b'B'; 1000]);
        // The newer finishes first: the older, finishing later, does not replace it.
        let c = upload(&mut store, "f", &[b'C'; 10]);
        let d = upload(&mut store, "f", &[b'D'; 10]);
        assert_eq!(store.commit(d), Ok(()));
        assert_eq!(store.commit(c), Err(StoreError::Conflict));
        assert_eq!(fs::read(root.join("f")).unwrap(), vec![b'D'; 10]);
        // A newer upload that is aborted does not hold an older one back.
        let e = upload(&mut store, "f", b"e");
        let f = upload(&mut store, "f", b"f");
        store.abort(f);
        assert_eq!(store.commit(e), Ok(()));
        let left: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("f")],
            "no temporaries left"
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_reader_reads_the_version_it_opened_to_its_end() {
        let root = dir("reader");
        let mut store = DirStore::new(&root).unwrap();
        let up = upload(&mut store, "f", &[b'o'; 100]);
        store.commit(up).unwrap();
        let (mut old, size) = store.open("f").unwrap();
        assert_eq!(size, 100);
        // A get's reader, read ahead and hashed by its thread: the same version.
        let (mut ahead, size) = store.open_verified("f").unwrap();
        assert_eq!(size, 100);
        let up = upload(&mut store, "f", &[b'n'; 300]);
        store.commit(up).unwrap();
        assert_eq!(read_all(&mut store, &mut old), vec![b'o'; 100]);
        assert_eq!(read_all(&mut store, &mut ahead), vec![b'o'; 100]);
        assert!(store.reads_hashed(&ahead) && !store.reads_hashed(&old));
        let want: Digest = Sha256::digest([b'o'; 100]).into();
        assert_eq!(store.read_digest(&mut ahead), Ok(want));
        assert_eq!(store.read_digest(&mut old), Err(StoreError::Io));
        let (mut new, _) = store.open("f").unwrap();
        assert_eq!(read_all(&mut store, &mut new), vec![b'n'; 300]);
        store.remove("f").unwrap();
        assert_eq!(
            read_all(&mut store, &mut new).len(),
            300,
            "removal keeps open readers"
        );
        assert!(matches!(store.open("f"), Err(StoreError::NotFound)));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn an_upload_larger_than_the_room_is_refused_before_a_byte() {
        let root = dir("space");
        let mut store = DirStore::new(&root).unwrap().with_max_upload(Some(10));
        assert!(matches!(store.begin("f", 11), Err(StoreError::NoSpace)));
        assert!(matches!(
            store.begin("g", 1_000_000_000_000_000),
            Err(StoreError::NoSpace)
        ));
        assert!(store.begin("h", 10).is_ok());
        let mut store = DirStore::new(&root).unwrap();
        assert!(
            matches!(store.begin("f", u64::MAX / 2), Err(StoreError::NoSpace)),
            "more than the free space"
        );
        assert_eq!(
            fs::read_dir(&root).unwrap().count(),
            0,
            "the stale temporary was deleted"
        );
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_verified_upload_is_hashed_by_its_writer_and_a_plain_one_is_not() {
        let root = dir("hashed");
        let mut store = DirStore::new(&root).unwrap();
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i % 253) as u8).collect();
        let mut up = store.begin_verified("f", data.len() as u64).unwrap();
        assert!(store.hashes(&up));
        for piece in data.chunks(65_535) {
            store.write(&mut up, piece).unwrap();
        }
        let want: Digest = Sha256::digest(&data).into();
        assert_eq!(store.upload_digest(&mut up), Ok(want));
        assert!(
            matches!(store.size("f"), Err(StoreError::NotFound)),
            "staged until committed"
        );
        store.commit_verified(up, &want).unwrap();
        assert_eq!(fs::read(root.join("f")).unwrap(), data);
        // HTTP's plain uploads: written by the thread, not hashed.
        let mut plain = upload(&mut store, "g", b"plain");
        assert!(!store.hashes(&plain));
        assert_eq!(store.upload_digest(&mut plain), Err(StoreError::Io));
        store.commit(plain).unwrap();
        assert_eq!(fs::read(root.join("g")).unwrap(), b"plain");
        // An aborted verified upload leaves nothing, even with blocks still queued.
        let mut gone = store.begin_verified("h", data.len() as u64).unwrap();
        store.write(&mut gone, &data).unwrap();
        store.abort(gone);
        let mut left: Vec<_> = fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        left.sort();
        assert_eq!(left, vec!["f", "g"]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_shared_store_shows_one_commit_to_every_holder() {
        let root = dir("shared");
        let mut http = SharedStore::new(HostStore::Dir(DirStore::new(&root).unwrap()));
        let mut transfer = http.clone();
        let mut up = transfer.begin("f", 2).unwrap();
        transfer.write(&mut up, b"hi").unwrap();
        transfer.commit(up).unwrap();
        assert_eq!(http.size("f"), Ok(2));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_digest_store_hashes_a_verified_upload_on_its_thread_and_records_it() {
        let mut store = HostStore::Digests(Box::default());
        let data: Vec<u8> = (0..2 * crate::part_writer::BLOCK + 999)
            .map(|i| (i * 11 % 251) as u8)
            .collect();
        let want: Digest = Sha256::digest(&data).into();
        let mut up = store.begin_verified("v", data.len() as u64).unwrap();
        assert!(store.hashes(&up), "the thread hashes, not the caller");
        assert!(store.upload_room(&up) > 0);
        for piece in data.chunks(65_521) {
            store.write(&mut up, piece).unwrap();
        }
        assert_eq!(store.upload_digest(&mut up), Ok(want));
        store.commit_verified(up, &want).unwrap();
        assert_eq!(store.size("v"), Ok(data.len() as u64));
        // A plain upload (HTTP's PUT) is hashed by the sink itself, and has no thread.
        let mut plain = store.begin("p", 3).unwrap();
        assert!(!store.hashes(&plain));
        store.write(&mut plain, b"abc").unwrap();
        assert_eq!(store.upload_digest(&mut plain), Err(StoreError::Io));
        store.commit(plain).unwrap();
        assert_eq!(store.size("p"), Ok(3));
        // An aborted verified upload leaves no record.
        let mut gone = store.begin_verified("g", 5).unwrap();
        store.write(&mut gone, b"12345").unwrap();
        store.abort(gone);
        assert_eq!(store.size("g"), Err(StoreError::NotFound));
    }

    #[test]
    fn overlapping_verified_uploads_into_the_digest_store_the_older_conflict() {
        let mut store = HostStore::Digests(Box::default());
        let blocks = vec![b'x'; 3 * crate::part_writer::BLOCK];
        let put = |store: &mut HostStore, data: &[u8]| {
            let mut up = store.begin_verified("f", data.len() as u64).unwrap();
            store.write(&mut up, data).unwrap();
            up
        };
        // The older finishes first: refused, whatever its digest; the newer is kept.
        let mut older = put(&mut store, &blocks);
        let mut newer = put(&mut store, b"new");
        let old_digest = store.upload_digest(&mut older).unwrap();
        assert_eq!(old_digest, <Digest>::from(Sha256::digest(&blocks)));
        assert_eq!(
            store.commit_verified(older, &old_digest),
            Err(StoreError::Conflict)
        );
        let new_digest = store.upload_digest(&mut newer).unwrap();
        store.commit_verified(newer, &new_digest).unwrap();
        assert_eq!(store.size("f"), Ok(3));
        // The newer finishes first: the older, later, does not replace it.
        let mut older = put(&mut store, &blocks);
        let mut newer = put(&mut store, b"newest");
        let digest = store.upload_digest(&mut newer).unwrap();
        store.commit_verified(newer, &digest).unwrap();
        let old_digest = store.upload_digest(&mut older).unwrap();
        assert_eq!(
            store.commit_verified(older, &old_digest),
            Err(StoreError::Conflict)
        );
        assert_eq!(store.size("f"), Ok(6));
        // One aborted with blocks still queued for its thread holds nothing back: the
        // next upload of the name is kept.
        let cut = put(&mut store, &blocks);
        store.abort(cut);
        let mut next = put(&mut store, b"next!!!");
        let digest = store.upload_digest(&mut next).unwrap();
        store.commit_verified(next, &digest).unwrap();
        assert_eq!(store.size("f"), Ok(7));
    }
}
