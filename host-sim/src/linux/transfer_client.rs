//! The transfer protocol's client over kernel sockets (`host-sim peer put` / `peer get`),
//! on the Linux side of the wire: it talks to any transfer server, ringnet's or another.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use embedded_io_adapters::std::FromStd;
use indicatif::{ProgressBar, ProgressStyle};
use ringnet::transfer::{self, Status, TransferError};
use sha2::{Digest as _, Sha256};

use super::peer;
use ringnet::digest::DigestHex;

fn progress_bar(len: u64, verb: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(verb.to_string());
    bar
}

/// Bytes moved per system call: as `peer blast` and `peer get` do, so that a transfer and
/// a raw stream face the kernel the same way.
const TRANSFER_BUFFER: usize = 1 << 20;

/// What a finished transfer reports.
#[derive(Debug)]
pub struct Outcome {
    /// File size in bytes.
    pub size: u64,
    /// Bytes moved over the network this time (less than `size` for a resumed get).
    pub moved: u64,
    /// The verified SHA-256, in hex.
    pub sha256: String,
    /// Wall time taken.
    pub elapsed: Duration,
}

impl Outcome {
    /// Throughput in MB/s.
    pub fn megabytes_per_second(&self) -> f64 {
        self.moved as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }
}

/// A failed host-side transfer.
#[derive(Debug)]
pub enum PeerError {
    /// A local file or the connection failed.
    Io(io::Error),
    /// The protocol failed.
    Transfer(TransferError),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::Io(e) => write!(f, "{e}"),
            PeerError::Transfer(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PeerError {}

impl From<io::Error> for PeerError {
    fn from(e: io::Error) -> Self {
        PeerError::Io(e)
    }
}

impl From<TransferError> for PeerError {
    fn from(e: TransferError) -> Self {
        PeerError::Transfer(e)
    }
}

/// Puts the local `file` under `name` on the transfer server at `peer`.
pub fn put_file(
    peer: SocketAddr,
    file: &Path,
    name: &str,
    timeout: Duration,
    quiet: bool,
) -> Result<Outcome, PeerError> {
    put_file_with_token(peer, file, name, None, timeout, quiet)
}

/// [`put_file`] with the token the server may require for puts (`serve --token`).
pub fn put_file_with_token(
    peer: SocketAddr,
    file: &Path,
    name: &str,
    token: Option<&str>,
    timeout: Duration,
    quiet: bool,
) -> Result<Outcome, PeerError> {
    put_file_traced(peer, file, name, token, timeout, quiet, None)
}

/// [`put_file_with_token`], sampling the kernel socket into `trace` when given
/// (`peer put FILE IP --trace`, [`super::sampler`]).
pub fn put_file_traced(
    peer: SocketAddr,
    file: &Path,
    name: &str,
    token: Option<&str>,
    timeout: Duration,
    quiet: bool,
    trace: Option<&Path>,
) -> Result<Outcome, PeerError> {
    let source = File::open(file)?;
    let size = source.metadata()?.len();
    let socket = peer::connect(peer, timeout)?;
    let sampling = peer::sampler(&socket, "put", trace)?;
    let mut stream = FromStd::new(socket);
    let bar = progress_bar(size, "put", quiet);
    let start = Instant::now();
    transfer::put_request(&mut stream, name, token, size)?;
    let digest = send_hashed(stream.inner_mut(), &source, size, &mut |sent| {
        bar.set_position(sent)
    })?;
    let digest = transfer::put_trailer(&mut stream, digest)?;
    bar.finish_and_clear();
    peer::finish(sampling)?;
    Ok(Outcome {
        size,
        moved: size,
        sha256: DigestHex(&digest).to_string(),
        elapsed: start.elapsed(),
    })
}

/// Full blocks the reader thread of [`send_hashed`] may have ready before it waits (and
/// that [`receive_hashed`] may hand its writer thread).
const READ_AHEAD_BLOCKS: usize = 2;

/// Writes the first `size` bytes of `file` to `stream` and returns their SHA-256: a thread
/// reads and hashes each [`TRANSFER_BUFFER`] block while this one writes the one before
/// to the socket, so that the socket is fed without pausing for the hash (one pass, on
/// the other core), as `peer blast` feeds it.
fn send_hashed<W: Write>(
    stream: &mut W,
    file: &File,
    size: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<transfer::Digest, PeerError> {
    let (to_sender, blocks) = mpsc::sync_channel::<(Vec<u8>, usize)>(READ_AHEAD_BLOCKS);
    let (give_back, spare) = mpsc::sync_channel::<Vec<u8>>(READ_AHEAD_BLOCKS + 2);
    thread::scope(|scope| {
        let reader = scope.spawn(move || -> io::Result<transfer::Digest> {
            let mut hasher = Sha256::new();
            let mut offset = 0u64;
            while offset < size {
                let mut block = spare
                    .try_recv()
                    .unwrap_or_else(|_| vec![0u8; TRANSFER_BUFFER]);
                let want = (size - offset).min(TRANSFER_BUFFER as u64) as usize;
                let n = file.read_at(&mut block[..want], offset)?;
                if n == 0 {
                    let why = "the file ended before its announced size";
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
                }
                hasher.update(&block[..n]);
                offset += n as u64;
                if to_sender.send((block, n)).is_err() {
                    // The socket failed: the sender says why.
                    break;
                }
            }
            Ok(hasher.finalize().into())
        });
        let mut sent = 0u64;
        let mut failed = None;
        for (block, n) in blocks {
            if let Err(e) = stream.write_all(&block[..n]) {
                failed = Some(e);
                break;
            }
            sent += n as u64;
            progress(sent);
            // Full of spare blocks already: this one is freed.
            let _ = give_back.try_send(block);
        }
        // The loop dropped the receiving end: a reader still going ends at its next send.
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reader thread panicked")));
        match (failed, read) {
            (Some(e), _) => Err(e.into()),
            (None, Err(e)) => Err(e.into()),
            (None, Ok(_)) if sent != size => Err(TransferError::Source.into()),
            (None, Ok(digest)) => Ok(digest),
        }
    })
}

/// Gets `name` from the transfer server at `peer` into `output`, through `output.part`.
/// With `resume`, an existing `output.part` is continued from its length (its bytes are
/// hashed first, so the whole file is still verified). The part file is renamed to
/// `output` only once the SHA-256 matched; on a mismatch it is deleted, and so it is
/// when it is longer than the file ([`Status::OffsetBeyondEnd`]: the file was replaced). An `output` that
/// is a device (`/dev/null`: verify and keep nothing) is written to directly.
pub fn get_file(
    peer: SocketAddr,
    name: &str,
    output: &Path,
    resume: bool,
    timeout: Duration,
    quiet: bool,
) -> Result<Outcome, PeerError> {
    get_file_traced(peer, name, output, resume, timeout, quiet, None)
}

/// [`get_file`], sampling the kernel socket into `trace` when given (`peer get NAME IP
/// --trace`, [`super::sampler`]).
pub fn get_file_traced(
    peer: SocketAddr,
    name: &str,
    output: &Path,
    resume: bool,
    timeout: Duration,
    quiet: bool,
    trace: Option<&Path>,
) -> Result<Outcome, PeerError> {
    // A device such as /dev/null is written straight to: no part file beside it.
    let device = fs::metadata(output).is_ok_and(|m| !m.is_file() && !m.is_dir());
    let part = if device {
        output.to_path_buf()
    } else {
        let mut part_name = output.as_os_str().to_owned();
        part_name.push(".part");
        PathBuf::from(part_name)
    };
    let resume = resume && !device;
    let mut hasher = Sha256::new();
    let mut offset = 0;
    if resume && part.exists() {
        let mut existing = File::open(&part)?;
        offset = io::copy(&mut existing, &mut HashWriter(&mut hasher))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(resume)
        .write(true)
        .truncate(!resume)
        .open(&part)?;
    let socket = peer::connect(peer, timeout)?;
    let sampling = peer::sampler(&socket, "get", trace)?;
    let mut stream = FromStd::new(socket);
    let bar = progress_bar(0, "get", quiet);
    bar.set_position(offset);
    let start = Instant::now();
    let result = transfer::get_request(&mut stream, name, offset)
        .map_err(PeerError::from)
        .and_then(|size| {
            bar.set_length(size);
            let digest = receive_hashed(
                stream.inner(),
                &mut file,
                (offset, hasher),
                size,
                &mut |received| bar.set_position(received),
            )?;
            transfer::get_status(&mut stream, digest)?;
            Ok((size, digest))
        });
    bar.finish_and_clear();
    peer::finish(sampling)?;
    match result {
        Ok((size, digest)) => {
            if !device {
                file.sync_all()?;
                fs::rename(&part, output)?;
            }
            Ok(Outcome {
                size,
                moved: size - offset,
                sha256: DigestHex(&digest).to_string(),
                elapsed: start.elapsed(),
            })
        }
        Err(PeerError::Transfer(TransferError::DigestMismatch)) => {
            if !device {
                let _ = fs::remove_file(&part);
            }
            Err(TransferError::DigestMismatch.into())
        }
        // A kept prefix longer than the file is no prefix of it (the file was replaced
        // by a shorter one): resuming it again would fail the same way for ever.
        Err(PeerError::Transfer(TransferError::Refused {
            status: Status::OffsetBeyondEnd,
            reason,
        })) if offset > 0 => {
            let _ = fs::remove_file(&part);
            Err(TransferError::Refused {
                status: Status::OffsetBeyondEnd,
                reason,
            }
            .into())
        }
        // Anything else leaves the part file for a later `--resume`.
        Err(e) => Err(e),
    }
}

/// Reads a get's data, the file's bytes from `resume.0` to `size`, from `stream` into
/// `file`, and returns the SHA-256 of the whole file (`resume.1` holds the state of the
/// bytes before): a thread hashes and writes each [`TRANSFER_BUFFER`] block while this one
/// reads the next from the socket, so that the socket is emptied without pausing for the
/// hash (one pass, on the other core), as `peer get --no-digest` empties it. The kernel
/// wakes this thread once [`WAKE_BYTES`] are queued ([`wake_at_bytes`]), not for every
/// segment, and each block is whole before the writer gets it: one wake-up of each thread
/// per quarter block and per block, where a wake-up per segment cost the client as much
/// CPU time as its SHA-256.
fn receive_hashed(
    mut stream: &TcpStream,
    file: &mut File,
    resume: (u64, Sha256),
    size: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<transfer::Digest, PeerError> {
    let (offset, mut hasher) = resume;
    let (to_writer, blocks) = mpsc::sync_channel::<(Vec<u8>, usize)>(READ_AHEAD_BLOCKS);
    let (give_back, spare) = mpsc::sync_channel::<Vec<u8>>(READ_AHEAD_BLOCKS + 2);
    thread::scope(|scope| {
        let writer = scope.spawn(move || -> io::Result<transfer::Digest> {
            for (block, n) in blocks {
                hasher.update(&block[..n]);
                // A failed write ends the loop: the reader stops at its next send.
                file.write_all(&block[..n])?;
                // Full of spare blocks already: this one is freed.
                let _ = give_back.try_send(block);
            }
            Ok(hasher.finalize().into())
        });
        let mut received = offset;
        let mut failed = None;
        let mut wake_at = 1;
        while received < size {
            let mut block = spare
                .try_recv()
                .unwrap_or_else(|_| vec![0u8; TRANSFER_BUFFER]);
            let want = (size - received).min(TRANSFER_BUFFER as u64) as usize;
            // The block is filled before the writer gets it: one hand-over (and one
            // wake-up of the writer) per block, not per read.
            let mut n = 0;
            while n < want && failed.is_none() {
                let rest = (size - received - n as u64).min(WAKE_BYTES as u64) as usize;
                if rest != wake_at {
                    if let Err(e) = wake_at_bytes(stream, rest) {
                        failed = Some(e.into());
                        break;
                    }
                    wake_at = rest;
                }
                match stream.read(&mut block[n..want]) {
                    Ok(0) => failed = Some(PeerError::Transfer(TransferError::UnexpectedEnd)),
                    Ok(got) => n += got,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => failed = Some(e.into()),
                }
            }
            if n > 0 && to_writer.send((block, n)).is_err() {
                // The writer failed: its result says why.
                break;
            }
            received += n as u64;
            progress(received);
            if failed.is_some() {
                break;
            }
        }
        drop(to_writer);
        // The status after the data is read as it comes.
        if wake_at != 1 && failed.is_none() {
            failed = wake_at_bytes(stream, 1).err().map(PeerError::from);
        }
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")));
        match (written, failed) {
            (Err(e), _) => Err(e.into()),
            (Ok(_), Some(e)) => Err(e),
            (Ok(_), None) if received != size => Err(TransferError::UnexpectedEnd.into()),
            (Ok(digest), None) => Ok(digest),
        }
    })
}

/// Bytes a get's data gathers in the kernel's receive queue before its reader is woken
/// ([`wake_at_bytes`]): a quarter of a block.
const WAKE_BYTES: usize = TRANSFER_BUFFER / 4;

/// Sets the socket's `SO_RCVLOWAT`: a read then sleeps until `bytes` are queued (or the
/// connection ends, or the read times out), instead of waking for every segment that the
/// sender's poll brought. The caller asks for no more than are still to come.
fn wake_at_bytes(stream: &TcpStream, bytes: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes.max(1)).unwrap_or(libc::c_int::MAX);
    super::sampler::set_int_option(
        stream.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVLOWAT,
        value,
    )
}

struct HashWriter<'h>(&'h mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// The socket's `SO_RCVLOWAT`.
    fn wake_mark(stream: &TcpStream) -> u32 {
        use std::os::fd::AsRawFd;
        let fd = stream.as_raw_fd();
        crate::linux::sampler::int_option(fd, libc::SOL_SOCKET, libc::SO_RCVLOWAT)
            .unwrap_or_else(|e| panic!("getsockopt: {e}"))
    }

    #[test]
    fn a_get_gathered_by_the_kernel_is_read_whole_then_the_status_after_it() {
        // The sender writes the data in small pieces and, once the client has all of it,
        // a status of 41 bytes, and keeps the connection open: every byte of the data
        // must arrive, and the status after it must wake the reader (the mark back at one
        // byte), not be left waiting for more bytes that never come.
        let data: Vec<u8> = (0..TRANSFER_BUFFER + 300_001)
            .map(|i| (i * 13 % 251) as u8)
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = data.clone();
        let (data_read, send_status) = mpsc::channel::<()>();
        let (status_read, close) = mpsc::channel::<()>();
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            for piece in sent.chunks(1_448) {
                conn.write_all(piece).unwrap();
            }
            let _ = send_status.recv();
            conn.write_all(&[9u8; 41]).unwrap();
            let _ = close.recv();
        });
        let mut stream = TcpStream::connect(addr).unwrap();
        // Only so that a reader left waiting fails the test instead of hanging it.
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let path = std::env::temp_dir().join(format!("ringnet-client-get-{}", std::process::id()));
        let mut file = File::create(&path).unwrap();
        let mut marks = Vec::new();
        let digest = receive_hashed(
            &stream,
            &mut file,
            (0, Sha256::new()),
            data.len() as u64,
            &mut |_| marks.push(wake_mark(&stream)),
        )
        .unwrap();
        assert_eq!(
            marks.first(),
            Some(&(WAKE_BYTES as u32)),
            "the reader waits for a quarter block"
        );
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
        assert_eq!(wake_mark(&stream), 1, "the status is read as it comes");
        data_read.send(()).unwrap();
        let mut status = [0u8; 41];
        stream
            .read_exact(&mut status)
            .expect("the status after the data wakes the reader");
        assert_eq!(status, [9u8; 41]);
        status_read.send(()).unwrap();
        server.join().unwrap();
        drop(file);
        assert!(fs::read(&path).unwrap() == data);
        fs::remove_file(path).unwrap();
    }
}
