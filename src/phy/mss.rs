//! The MSS bounded by the rings, as Linux bounds it by the window.
//!
//! Linux never sends a segment larger than half the largest window its peer has
//! advertised (`tcp_bound_to_half_wnd`, applied to the MSS in `tcp_sync_mss`): with at
//! least two segments in flight, the receiver's "ACK every second full-sized segment"
//! rule (RFC 9293 SHLD-19) answers at once, and its delayed-ACK timer (40 ms at least on
//! Linux) never paces the transfer. A kernel can also grow its buffers to fit the MSS;
//! ringnet's rings are fixed. So a socket whose ring holds less than two segments of the
//! MSS its route allows (a 64 KiB ring on a tap of MTU 65521, MSS 65481) would send one
//! full segment, hold the rest of the ring back by Nagle's rule, and wait for an ACK the
//! receiver delays: one ring per delayed ACK.
//!
//! smoltcp 0.14 keeps its MSS to itself (the smaller of the one its MTU allows and the
//! one the peer's SYN offered), so the bound is applied where both are visible: in the
//! MSS options of the handshake, as a router's MSS clamping does (`iptables -j TCPMSS`),
//! with the socket's own rings as the limit (as Linux's `TCP_MAXSEG` clamps both ends).
//! - A SYN or SYN-ACK arriving for a socket: the MSS the peer offers, which smoltcp then
//!   sends by, is lowered to [`mss_bound`] of the socket's **tx** ring.
//! - A SYN or SYN-ACK the socket sends: the MSS it offers, by which the peer sends, is
//!   lowered to [`mss_bound`] of its **rx** ring (Linux as the sender bounds by half the
//!   window anyway; a peer that does not, smoltcp, is kept to two segments per ring too).
//!
//! The TCP checksum is updated for the changed option (RFC 1624), so a frame whose
//! checksum was valid stays valid; nothing else in the frame changes.

use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Address, Ipv4Packet};

/// TCP's default MSS (RFC 9293), Linux's `TCP_MSS_DEFAULT`: below a window of this many
/// bytes Linux bounds the segment by the whole window, above it by half.
const TCP_MSS_DEFAULT: usize = 536;

/// The smallest MSS smoltcp takes from a peer (its `MIN_REMOTE_MSS`).
const MIN_MSS: usize = 48;

/// The largest MSS a ring of `capacity` bytes keeps two segments of: half the ring, or
/// the whole ring when it is no larger than `TCP_MSS_DEFAULT` (536 B; Linux's
/// `tcp_bound_to_half_wnd` over a window of that size), never below smoltcp's smallest.
pub fn mss_bound(capacity: usize) -> u16 {
    let bound = if capacity > TCP_MSS_DEFAULT {
        capacity / 2
    } else {
        capacity
    };
    bound.clamp(MIN_MSS, usize::from(u16::MAX)) as u16
}

/// What a SYN says about whom it concerns: source and destination address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynEnds {
    /// The sender's address.
    pub src: Ipv4Address,
    /// The sender's port.
    pub src_port: u16,
    /// The receiver's address.
    pub dst: Ipv4Address,
    /// The receiver's port.
    pub dst_port: u16,
}

/// Ethernet's header.
const ETH: usize = 14;
/// TCP option kinds: end of list, no-operation, maximum segment size.
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;

/// The MSS option of a SYN (or SYN-ACK), found in a frame: what it offers, where it lies,
/// and whom the SYN concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MssOption {
    /// The MSS offered.
    pub offered: u16,
    /// The SYN's addresses and ports.
    pub ends: SynEnds,
    /// Where the option's value lies in the frame.
    value_at: usize,
    /// Where the TCP checksum lies in the frame.
    checksum_at: usize,
}

/// TCP's SYN and ACK flags, in the low byte of its flags field (byte 13 of its header).
pub(crate) const SYN: u8 = 0x02;
pub(crate) const ACK: u8 = 0x10;
/// TCP's RST flag.
pub(crate) const RST: u8 = 0x04;
/// TCP's FIN flag.
pub(crate) const FIN: u8 = 0x01;

/// The byte of an IPv4 TCP segment's flags in an Ethernet `frame`, read where the
/// headers put it without checking them; `None` when the frame is not IPv4 TCP or is too
/// short to hold it. A look before the full parse, which only a SYN needs: whatever this
/// says of a frame that fails the parse, the parse still decides.
pub(crate) fn tcp_flags(frame: &[u8]) -> Option<u8> {
    if frame.get(12..14)? != [0x08, 0x00] || *frame.get(ETH + 9)? != 6 {
        return None;
    }
    let ip_header = usize::from(frame.get(ETH)? & 0x0f) * 4;
    frame.get(ETH + ip_header + 13).copied()
}

impl MssOption {
    /// The MSS option of the SYN in `frame`, the last of several (smoltcp takes the last,
    /// as Linux's `tcp_parse_options` does); `None` for anything but an IPv4 TCP segment
    /// with SYN set and a well-formed MSS option.
    pub fn find(frame: &[u8]) -> Option<MssOption> {
        // Every segment passes here, and all but a handshake's two are no SYN.
        if tcp_flags(frame)? & SYN == 0 {
            return None;
        }
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
            return None;
        }
        let tcp_start = ETH + usize::from(ip.header_len());
        let tcp = frame.get(tcp_start..ETH + usize::from(ip.total_len()))?;
        // Flags at byte 13 (SYN = 0x02), the header's length in 32-bit words at byte 12.
        if tcp.len() < 20 || tcp[13] & 0x02 == 0 {
            return None;
        }
        let options = tcp.get(20..usize::from(tcp[12] >> 4) * 4)?;
        // Where the last MSS option's value lies in the TCP header.
        let (mut at, mut value) = (0, None);
        while at < options.len() {
            match options[at] {
                OPT_END => break,
                OPT_NOP => at += 1,
                kind => {
                    let len = usize::from(*options.get(at + 1)?);
                    if len < 2 || at + len > options.len() {
                        return None;
                    }
                    if kind == OPT_MSS {
                        if len != 4 {
                            return None;
                        }
                        value = Some(20 + at + 2);
                    }
                    at += len;
                }
            }
        }
        let value = value?;
        let word = |i: usize| u16::from_be_bytes([tcp[i], tcp[i + 1]]);
        Some(MssOption {
            offered: word(value),
            ends: SynEnds {
                src: ip.src_addr(),
                src_port: word(0),
                dst: ip.dst_addr(),
                dst_port: word(2),
            },
            value_at: tcp_start + value,
            checksum_at: tcp_start + 16,
        })
    }

    /// Writes `mss` into the option in `frame` (the frame it was found in, or a copy)
    /// and updates the TCP checksum to match (RFC 1624).
    pub fn set(&self, frame: &mut [u8], mss: u16) {
        let (value, checksum) = (self.value_at, self.checksum_at);
        frame[value..value + 2].copy_from_slice(&mss.to_be_bytes());
        // RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m'), in one's complement arithmetic. The
        // value sits at an even offset of the TCP header (options start at 20, kind and
        // length come first), so it is one 16-bit word of the sum.
        let old = u16::from_be_bytes([frame[checksum], frame[checksum + 1]]);
        let mut sum = u32::from(!old) + u32::from(!self.offered) + u32::from(mss);
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        frame[checksum..checksum + 2].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
}

/// Turns the IPv4 TCP segment in `frame` into one with the ACK flag set and `ack` as its
/// acknowledgment number, its TCP checksum computed again; `None` (the frame left as it
/// was) when the frame does not hold IPv4 and TCP headers.
pub(crate) fn acknowledge(frame: &mut [u8], ack: u32) -> Option<()> {
    let mut ip = Ipv4Packet::new_checked(frame.get_mut(ETH..)?).ok()?;
    let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
    let mut tcp = smoltcp::wire::TcpPacket::new_checked(ip.payload_mut()).ok()?;
    tcp.set_ack(true);
    tcp.set_ack_number(smoltcp::wire::TcpSeqNumber(ack as i32));
    tcp.fill_checksum(&src, &dst);
    Some(())
}

/// Lowers the MSS option of the SYN in `frame` to `limit` if it offers more, updating the
/// TCP checksum to match. Returns the MSS offered and the one left, when it changed it;
/// `None` leaves the frame as it was (not such a SYN, or no more than `limit` offered).
pub fn clamp_mss(frame: &mut [u8], limit: u16) -> Option<(u16, u16)> {
    let option = MssOption::find(frame).filter(|o| o.offered > limit)?;
    option.set(frame, limit);
    Some((option.offered, limit))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpAddress, Ipv4Repr, TcpControl, TcpPacket, TcpRepr,
        TcpSeqNumber,
    };

    const SRC: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
    const DST: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);

    /// A SYN (SYN-ACK with `ack`) from 10.0.0.1:4000 to 10.0.0.2:80 offering `mss`,
    /// window scaling and SACK, with a valid checksum.
    pub(crate) fn syn(mss: Option<u16>, ack: bool) -> std::vec::Vec<u8> {
        let tcp = TcpRepr {
            src_port: 4000,
            dst_port: 80,
            control: TcpControl::Syn,
            seq_number: TcpSeqNumber(1000),
            ack_number: ack.then_some(TcpSeqNumber(77)),
            window_len: 65535,
            window_scale: Some(7),
            max_seg_size: mss,
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut frame = std::vec![0u8; ETH + 20 + tcp.buffer_len()];
        let caps = ChecksumCapabilities::default();
        eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut frame[ETH..]), &caps);
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut frame[ETH + 20..]),
            &IpAddress::Ipv4(SRC),
            &IpAddress::Ipv4(DST),
            &caps,
        );
        frame
    }

    /// The MSS a frame from [`syn`] offers, and whether its TCP checksum is valid.
    pub(crate) fn parsed(frame: &[u8]) -> (Option<u16>, bool) {
        let packet = TcpPacket::new_checked(&frame[ETH + 20..]).unwrap();
        let repr = TcpRepr::parse(
            &packet,
            &IpAddress::Ipv4(SRC),
            &IpAddress::Ipv4(DST),
            &ChecksumCapabilities::ignored(),
        )
        .unwrap();
        let valid = packet.verify_checksum(&IpAddress::Ipv4(SRC), &IpAddress::Ipv4(DST));
        (repr.max_seg_size, valid)
    }

    #[test]
    fn the_bound_is_half_the_ring_above_tcps_default_mss_and_the_ring_below() {
        assert_eq!(mss_bound(65535), 32767);
        assert_eq!(mss_bound(256 * 1024), u16::MAX);
        assert_eq!(mss_bound(2048), 1024);
        assert_eq!(mss_bound(537), 268);
        assert_eq!(mss_bound(536), 536);
        assert_eq!(mss_bound(256), 256);
        assert_eq!(mss_bound(16), 48, "never below smoltcp's smallest");
    }

    #[test]
    fn a_syn_turned_into_a_syn_ack_of_a_number_keeps_a_valid_checksum() {
        for ack in [0u32, 1, 0x4000_0000, 0xdead_beef, u32::MAX] {
            let mut frame = syn(Some(1460), false);
            assert_eq!(acknowledge(&mut frame, ack), Some(()));
            let packet = TcpPacket::new_checked(&frame[ETH + 20..]).unwrap();
            assert!(packet.syn() && packet.ack(), "{ack}");
            assert_eq!(packet.ack_number(), TcpSeqNumber(ack as i32));
            assert_eq!(parsed(&frame), (Some(1460), true), "{ack:#x}");
        }
        let mut short = syn(None, false);
        short.truncate(ETH + 30);
        let before = short.clone();
        assert_eq!(acknowledge(&mut short, 7), None);
        assert_eq!(short, before, "a frame too short is left as it was");
    }

    #[test]
    fn of_two_mss_options_the_last_is_lowered_the_one_smoltcp_takes() {
        let mut frame = syn(Some(1460), false);
        let options = ETH + 20 + 20;
        assert_eq!(frame[options..options + 9], [2, 4, 5, 0xb4, 3, 3, 7, 4, 2]);
        // Window scale and SACK give way to a second MSS option and a no-operation.
        frame[options + 4..options + 9].copy_from_slice(&[2, 4, 0xff, 0xd7, 1]);
        let tcp_start = ETH + 20;
        TcpPacket::new_unchecked(&mut frame[tcp_start..])
            .fill_checksum(&IpAddress::Ipv4(SRC), &IpAddress::Ipv4(DST));
        assert_eq!(parsed(&frame), (Some(65495), true));
        assert_eq!(clamp_mss(&mut frame, 1024), Some((65495, 1024)));
        assert_eq!(parsed(&frame), (Some(1024), true));
        assert_eq!(
            frame[options..options + 4],
            [2, 4, 5, 0xb4],
            "the first untouched"
        );
    }

    #[test]
    fn a_larger_mss_is_lowered_and_the_checksum_stays_valid() {
        for ack in [false, true] {
            for (offered, limit) in [(65481u16, 32767u16), (8960, 4096), (1460, 1024)] {
                let mut frame = syn(Some(offered), ack);
                assert_eq!(parsed(&frame), (Some(offered), true));
                let before = frame.clone();
                let value_at = MssOption::find(&frame).unwrap().value_at;
                assert_eq!(clamp_mss(&mut frame, limit), Some((offered, limit)));
                assert_eq!(parsed(&frame), (Some(limit), true), "ack {ack}");
                // Only the option's value and the checksum changed.
                let changed: std::vec::Vec<usize> = (0..frame.len())
                    .filter(|&i| frame[i] != before[i])
                    .collect();
                let allowed = [ETH + 36, ETH + 37, value_at, value_at + 1];
                assert!(changed.iter().all(|i| allowed.contains(i)), "{changed:?}");
            }
        }
    }

    #[test]
    fn tcp_flags_reads_the_flags_byte_of_ipv4_tcp_and_nothing_else() {
        assert_eq!(tcp_flags(&syn(Some(1460), false)), Some(SYN));
        assert_eq!(tcp_flags(&syn(Some(1460), true)), Some(SYN | ACK));
        // Found past IP options too: the header's length decides where TCP starts.
        let mut frame = syn(None, false);
        frame.splice(ETH + 20..ETH + 20, [1u8, 1, 1, 0]);
        frame[ETH] = 0x46;
        assert_eq!(tcp_flags(&frame), Some(SYN));
        let udp = crate::phy::test_frames::udp(
            EthernetAddress([2, 0, 0, 0, 0, 2]),
            SRC,
            DST,
            &[0x02; 20],
        );
        assert_eq!(tcp_flags(&udp), None);
        let mut arp = syn(None, false);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(tcp_flags(&arp), None);
        // Cut anywhere before the flags byte: nothing, and no panic.
        let whole = syn(Some(1460), false);
        for len in 0..=ETH + 20 + 13 {
            assert_eq!(tcp_flags(&whole[..len]), None, "cut at {len}");
        }
        assert_eq!(tcp_flags(&whole[..ETH + 20 + 14]), Some(SYN));
    }

    #[test]
    fn an_mss_within_the_bound_a_missing_one_and_other_segments_are_left_alone() {
        let mut frame = syn(Some(1460), false);
        let before = frame.clone();
        assert_eq!(clamp_mss(&mut frame, 1460), None);
        assert_eq!(clamp_mss(&mut frame, 32767), None);
        assert_eq!(frame, before);
        let mut none = syn(None, false);
        assert_eq!(MssOption::find(&none), None);
        assert_eq!(clamp_mss(&mut none, 100), None);
        // Not a SYN any more: the flags byte without SYN.
        let mut data = syn(Some(1460), true);
        data[ETH + 20 + 13] = 0x10;
        assert_eq!(clamp_mss(&mut data, 100), None);
        let mut udp = crate::phy::test_frames::udp(
            EthernetAddress([2, 0, 0, 0, 0, 2]),
            SRC,
            DST,
            &[2, 4, 0xff, 0xff],
        );
        assert_eq!(clamp_mss(&mut udp, 100), None);
    }

    #[test]
    fn the_syns_ends_are_read() {
        let option = MssOption::find(&syn(Some(1460), true)).unwrap();
        assert_eq!(option.offered, 1460);
        assert_eq!(
            option.ends,
            SynEnds {
                src: SRC,
                src_port: 4000,
                dst: DST,
                dst_port: 80
            }
        );
    }

    #[test]
    fn a_syn_cut_anywhere_or_with_bad_option_lengths_is_never_changed_nor_panicked_on() {
        let whole = syn(Some(65481), false);
        for cut in 0..whole.len() {
            let mut frame = whole[..cut].to_vec();
            assert_eq!(clamp_mss(&mut frame, 100), None, "cut at {cut}");
        }
        // Every value of every option byte (kinds, lengths), each alone.
        for at in ETH + 40..whole.len() {
            for value in 0..=255u8 {
                let mut frame = whole.clone();
                frame[at] = value;
                let before = frame.clone();
                if clamp_mss(&mut frame, 100).is_none() {
                    assert_eq!(frame, before);
                }
            }
        }
    }
}
