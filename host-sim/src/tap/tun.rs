//! Opening the tap, on the device side of the wire: plainly, through smoltcp's
//! `TunTapInterface`, or, for `--offload`, as a virtual machine's NIC does, with the
//! virtio-net header before every frame (`IFF_VNET_HDR`, `TUNSETVNETHDRSZ`) and checksum
//! and TCP segmentation offload negotiated (`TUNSETOFFLOAD` with `TUN_F_CSUM |
//! TUN_F_TSO4`). Where the kernel refuses a step, the tap is opened with less, and the log
//! says what and why. Also the interface's MTU (`--mtu`: `SIOCSIFMTU`, as `ip link set
//! mtu` does).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use ringnet::smoltcp::phy::{Device, Medium, TunTapInterface};

use super::vnet::HEADER_LEN;

/// What was negotiated with the kernel for a tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offload {
    /// No virtio-net header: one plain Ethernet frame per read or write.
    Off,
    /// The header, and checksums left to the kernel (`TUN_F_CSUM`); frames up to the MTU.
    Checksum,
    /// The header, checksums, and TCPv4 segments of up to 64 KiB both ways (`TUN_F_TSO4`).
    Segmentation,
}

impl Offload {
    /// Whether frames carry the virtio-net header.
    pub fn has_header(self) -> bool {
        self != Offload::Off
    }
}

impl core::fmt::Display for Offload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Offload::Off => "off",
            Offload::Checksum => "checksum (TUN_F_CSUM)",
            Offload::Segmentation => "checksum and TCPv4 segmentation (TUN_F_CSUM | TUN_F_TSO4)",
        })
    }
}

/// The requests that set up a tap opened with `IFF_VNET_HDR`: what [`negotiate`] asks.
pub trait TunControl {
    /// `TUNSETVNETHDRSZ`.
    fn set_header_size(&mut self, size: libc::c_int) -> io::Result<()>;
    /// `TUNSETOFFLOAD`.
    fn set_offload(&mut self, flags: libc::c_uint) -> io::Result<()>;
}

/// Why the kernel gave no offload at all: the request it refused, and its error.
#[derive(Debug)]
pub struct Refused {
    /// The request.
    pub request: &'static str,
    /// The kernel's answer.
    pub error: io::Error,
}

impl core::fmt::Display for Refused {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "the kernel refused {}: {}", self.request, self.error)
    }
}

/// Sets the header's size and asks for checksum and TCPv4 segmentation offload, then for
/// checksum offload alone if the first is refused. A kernel that refuses the header size
/// or both offload requests gives [`Refused`].
pub fn negotiate(tun: &mut impl TunControl) -> Result<Offload, Refused> {
    tun.set_header_size(HEADER_LEN as libc::c_int)
        .map_err(|error| Refused {
            request: "TUNSETVNETHDRSZ 10",
            error,
        })?;
    match tun.set_offload(libc::TUN_F_CSUM | libc::TUN_F_TSO4) {
        Ok(()) => Ok(Offload::Segmentation),
        Err(with_tso) => match tun.set_offload(libc::TUN_F_CSUM) {
            Ok(()) => {
                log::warn!(
                    "tap: the kernel refused TCP segmentation offload (TUNSETOFFLOAD TUN_F_TSO4: {with_tso}); checksum offload only, frames up to the MTU"
                );
                Ok(Offload::Checksum)
            }
            Err(error) => Err(Refused {
                request: "TUNSETOFFLOAD TUN_F_CSUM",
                error,
            }),
        },
    }
}

/// `struct ifreq` as the tun and MTU requests read it: the name, then a union of which
/// they use the first 4 bytes (`ifr_flags`, a short, or `ifr_mtu`, an int).
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> io::Result<IfReq> {
        let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let bytes = c.as_bytes_with_nul();
        if bytes.len() > libc::IFNAMSIZ {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        for (slot, &b) in req.name.iter_mut().zip(bytes) {
            *slot = b as libc::c_char;
        }
        Ok(req)
    }
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A tap descriptor opened with `IFF_VNET_HDR`. The offloads are the interface's, not
/// the descriptor's, and outlive it: dropping it turns them off again, so that a program
/// opening the tap plainly next (smoltcp's examples) gets no partial checksums.
pub struct VnetTap(OwnedFd);

impl Drop for VnetTap {
    fn drop(&mut self) {
        let _ = self.set_offload(0);
    }
}

impl AsRawFd for VnetTap {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl TunControl for VnetTap {
    fn set_header_size(&mut self, size: libc::c_int) -> io::Result<()> {
        // SAFETY: the descriptor is open and the request reads one int from the pointer.
        check(unsafe { libc::ioctl(self.0.as_raw_fd(), libc::TUNSETVNETHDRSZ, &size) })
    }

    fn set_offload(&mut self, flags: libc::c_uint) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its flags as the argument itself, not a pointer.
        check(unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                flags as libc::c_ulong,
            )
        })
    }
}

/// Attaches to the tap `name` with the virtio-net header (non-blocking, closed on exec).
fn open_vnet(name: &str) -> io::Result<VnetTap> {
    let path = CString::new("/dev/net/tun").expect("no NUL");
    // SAFETY: the path is a valid C string.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    check(fd)?;
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq::new(name)?;
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
    req.data[..2].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: `req` is a live ifreq-shaped buffer of the size the kernel reads.
    check(unsafe { libc::ioctl(owned.as_raw_fd(), libc::TUNSETIFF, &mut req) })?;
    Ok(VnetTap(owned))
}

/// The descriptor under the tap device: smoltcp's plain tap, or one with the header.
pub enum TapFd {
    /// Opened by smoltcp's `TunTapInterface` (no header).
    Plain(TunTapInterface),
    /// Opened here with `IFF_VNET_HDR`.
    Vnet(VnetTap),
}

impl AsRawFd for TapFd {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            TapFd::Plain(tap) => tap.as_raw_fd(),
            TapFd::Vnet(fd) => fd.as_raw_fd(),
        }
    }
}

/// A tap, opened: its descriptor, its Ethernet MTU (the interface's MTU plus the 14-byte
/// header), and what was negotiated.
pub struct OpenedTap {
    /// The descriptor.
    pub fd: TapFd,
    /// The largest frame at the MTU, Ethernet header included.
    pub mtu: usize,
    /// What the kernel agreed to.
    pub offload: Offload,
}

/// Attaches to the existing tap `name`; with `offload`, with the virtio-net header and
/// offloads negotiated, falling back (with a warning saying why) to a plain tap where the
/// kernel refuses.
pub fn open(name: &str, offload: bool) -> io::Result<OpenedTap> {
    if offload {
        match open_vnet(name) {
            Ok(mut tap) => match negotiate(&mut tap) {
                Ok(offload) => {
                    let mtu = interface_mtu(name)? + 14;
                    log::info!(
                        "tap: {name} opened with the virtio-net header; offload: {offload}"
                    );
                    return Ok(OpenedTap {
                        fd: TapFd::Vnet(tap),
                        mtu,
                        offload,
                    });
                }
                Err(refused) => {
                    log::warn!("tap: no offload on {name}: {refused}; running without offload")
                }
            },
            // Permission and a busy tap are the same either way: say so as without offload.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => log::warn!(
                "tap: no offload on {name}: the kernel refused the virtio-net header (TUNSETIFF IFF_VNET_HDR: {e}); running without offload"
            ),
            Err(e) => return Err(e),
        }
    }
    let tap = TunTapInterface::new(name, Medium::Ethernet)?;
    // Offloads an earlier program left on (the interface keeps them) would hand this
    // reader partial checksums it cannot complete.
    // SAFETY: TUNSETOFFLOAD takes its flags as the argument itself.
    let _ = unsafe { libc::ioctl(tap.as_raw_fd(), libc::TUNSETOFFLOAD, 0 as libc::c_ulong) };
    // smoltcp's own device reads the interface's MTU and adds the Ethernet header.
    let mtu = tap.capabilities().max_transmission_unit;
    Ok(OpenedTap {
        fd: TapFd::Plain(tap),
        mtu,
        offload: Offload::Off,
    })
}

/// An `AF_INET` datagram socket to ask interface questions through.
fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    check(fd)?;
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The interface's (IP) MTU, `SIOCGIFMTU`.
pub fn interface_mtu(name: &str) -> io::Result<usize> {
    let socket = control_socket()?;
    let mut req = IfReq::new(name)?;
    // SAFETY: `req` is a live ifreq-shaped buffer of the size the kernel writes.
    check(unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFMTU, &mut req) })?;
    let mtu = libc::c_int::from_ne_bytes([req.data[0], req.data[1], req.data[2], req.data[3]]);
    Ok(mtu.max(0) as usize)
}

/// Sets the interface's (IP) MTU, `SIOCSIFMTU` (`ip link set NAME mtu MTU`).
pub fn set_interface_mtu(name: &str, mtu: u16) -> io::Result<()> {
    let socket = control_socket()?;
    let mut req = IfReq::new(name)?;
    req.data[..4].copy_from_slice(&libc::c_int::from(mtu).to_ne_bytes());
    // SAFETY: `req` is a live ifreq-shaped buffer of the size the kernel reads.
    check(unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFMTU, &mut req) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel that answers each request from a script.
    struct Scripted {
        header: io::Result<()>,
        offload: Vec<(libc::c_uint, bool)>,
        asked: Vec<libc::c_uint>,
    }

    impl TunControl for Scripted {
        fn set_header_size(&mut self, size: libc::c_int) -> io::Result<()> {
            assert_eq!(size, 10);
            std::mem::replace(&mut self.header, Ok(()))
        }
        fn set_offload(&mut self, flags: libc::c_uint) -> io::Result<()> {
            self.asked.push(flags);
            match self.offload.iter().find(|(f, _)| *f == flags) {
                Some((_, true)) => Ok(()),
                _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
            }
        }
    }

    fn kernel(header: io::Result<()>, accepts: &[libc::c_uint]) -> Scripted {
        Scripted {
            header,
            offload: accepts.iter().map(|&f| (f, true)).collect(),
            asked: Vec::new(),
        }
    }

    #[test]
    fn a_kernel_that_accepts_everything_gives_segmentation_in_one_request() {
        let both = libc::TUN_F_CSUM | libc::TUN_F_TSO4;
        let mut tun = kernel(Ok(()), &[both]);
        assert_eq!(negotiate(&mut tun).unwrap(), Offload::Segmentation);
        assert_eq!(tun.asked, [both]);
    }

    #[test]
    fn a_kernel_refusing_segmentation_gives_checksums_only() {
        let mut tun = kernel(Ok(()), &[libc::TUN_F_CSUM]);
        assert_eq!(negotiate(&mut tun).unwrap(), Offload::Checksum);
        assert_eq!(tun.asked.len(), 2);
    }

    #[test]
    fn a_kernel_refusing_offload_or_the_header_size_says_which_request() {
        let mut tun = kernel(Ok(()), &[]);
        let refused = negotiate(&mut tun).unwrap_err();
        assert_eq!(refused.request, "TUNSETOFFLOAD TUN_F_CSUM");
        assert!(
            refused.to_string().contains("Invalid argument"),
            "{refused}"
        );

        let mut tun = kernel(Err(io::Error::from_raw_os_error(libc::ENOTTY)), &[]);
        let refused = negotiate(&mut tun).unwrap_err();
        assert_eq!(refused.request, "TUNSETVNETHDRSZ 10");
        assert!(
            tun.asked.is_empty(),
            "no offload asked after the header failed"
        );
    }

    #[test]
    fn only_negotiated_offload_has_the_header() {
        assert!(!Offload::Off.has_header());
        assert!(Offload::Checksum.has_header());
        assert!(Offload::Segmentation.has_header());
    }

    #[test]
    fn interface_names_longer_than_the_kernel_takes_are_refused_not_cut() {
        assert!(IfReq::new("tap0").is_ok());
        assert!(IfReq::new("fifteen-chars-x").is_ok());
        assert_eq!(
            IfReq::new("sixteen-chars-xx").err().map(|e| e.kind()),
            Some(io::ErrorKind::InvalidInput)
        );
        assert!(IfReq::new("nul\0inside").is_err());
    }
}
