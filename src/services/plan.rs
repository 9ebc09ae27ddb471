//! Which services a host runs: the [`ServicePlan`], from which the socket count, the port
//! list of the boot log and the CLI help, and the beacon's announcement are all derived.

use core::fmt;

use crate::text::{self, Text};

use super::{
    BEACON_PORT, DISCARD_PORT, ECHO_PORT, FILE_IN_PORT, FILE_OUT_PORT, HTTP_PORT, REPORT_PORT,
    STATS_PORT, TRANSFER_PORT,
};

/// A transport protocol, as a port list names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One of the services a ringnet host can run, each on its own port (as `/etc/services`
/// names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// TCP echo ([`ECHO_PORT`]).
    Echo,
    /// TCP discard ([`DISCARD_PORT`]).
    Discard,
    /// TCP file out ([`FILE_OUT_PORT`]).
    FileOut,
    /// TCP file in ([`FILE_IN_PORT`]).
    FileIn,
    /// The verified transfer protocol ([`TRANSFER_PORT`]).
    Transfer,
    /// HTTP/1.1 ([`HTTP_PORT`]).
    Http,
    /// UDP receive-and-report ([`REPORT_PORT`]).
    Report,
    /// UDP stats query ([`STATS_PORT`]).
    Stats,
    /// UDP broadcast beacon ([`BEACON_PORT`]).
    Beacon,
}

impl Member {
    /// Every member, in the order a set starts, polls and lists them: the TCP members
    /// before the UDP ones (the beacon's announcement writes each protocol's ports in one
    /// run).
    pub const ALL: [Member; 9] = [
        Member::Echo,
        Member::Discard,
        Member::FileOut,
        Member::FileIn,
        Member::Transfer,
        Member::Http,
        Member::Report,
        Member::Stats,
        Member::Beacon,
    ];

    /// Its port.
    pub const fn port(self) -> u16 {
        match self {
            Member::Echo => ECHO_PORT,
            Member::Discard => DISCARD_PORT,
            Member::FileOut => FILE_OUT_PORT,
            Member::FileIn => FILE_IN_PORT,
            Member::Transfer => TRANSFER_PORT,
            Member::Http => HTTP_PORT,
            Member::Report => REPORT_PORT,
            Member::Stats => STATS_PORT,
            Member::Beacon => BEACON_PORT,
        }
    }

    /// Its protocol.
    pub const fn protocol(self) -> Protocol {
        match self {
            Member::Report | Member::Stats | Member::Beacon => Protocol::Udp,
            _ => Protocol::Tcp,
        }
    }

    texts! {
        /// Its name in port lists and logs.
        pub const fn name / log_name(self) {
            match self {
                Member::Echo => "echo",
                Member::Discard => "discard",
                Member::FileOut => "file out",
                Member::FileIn => "file in",
                Member::Transfer => "transfer",
                Member::Http => "http",
                Member::Report => "udp report",
                Member::Stats => "stats",
                Member::Beacon => "beacon",
            }
        }
    }
}

/// Which services a host runs, and how many connections each stream service takes at
/// once (its backlog of sockets); 0 leaves a stream service out. A datagram service takes
/// one socket.
///
/// A `const` plan gives the socket table's size at compile time ([`ServicePlan::sockets`]),
/// so no host counts its sockets by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePlan {
    /// Backlog of TCP echo.
    pub echo: usize,
    /// Backlog of TCP discard.
    pub discard: usize,
    /// Backlog of TCP file out.
    pub file_out: usize,
    /// Backlog of TCP file in.
    pub file_in: usize,
    /// Backlog of the transfer protocol.
    pub transfer: usize,
    /// Backlog of HTTP (its connections at once).
    pub http: usize,
    /// Whether the UDP report service runs.
    pub report: bool,
    /// Whether the UDP stats query runs.
    pub stats: bool,
    /// Whether the beacon runs.
    pub beacon: bool,
}

impl ServicePlan {
    /// No service at all.
    pub const NONE: ServicePlan = ServicePlan {
        echo: 0,
        discard: 0,
        file_out: 0,
        file_in: 0,
        transfer: 0,
        http: 0,
        report: false,
        stats: false,
        beacon: false,
    };

    /// Every service, as the tap host runs them.
    pub const TAP_HOST: ServicePlan = ServicePlan {
        echo: 4,
        discard: 2,
        file_out: 4,
        file_in: 4,
        transfer: 2,
        http: 4,
        report: true,
        stats: true,
        beacon: true,
    };

    /// The sockets `member` takes: its backlog for a stream service, one for a datagram
    /// service that runs, 0 for one left out. A stream service's listener is not counted
    /// here.
    pub const fn backlog(&self, member: Member) -> usize {
        match member {
            Member::Echo => self.echo,
            Member::Discard => self.discard,
            Member::FileOut => self.file_out,
            Member::FileIn => self.file_in,
            Member::Transfer => self.transfer,
            Member::Http => self.http,
            Member::Report => self.report as usize,
            Member::Stats => self.stats as usize,
            Member::Beacon => self.beacon as usize,
        }
    }

    /// Whether `member` runs.
    pub const fn runs(&self, member: Member) -> bool {
        self.backlog(member) > 0
    }

    /// Slots the set needs in the socket table: every backlog socket, a listener for each
    /// stream service that runs, and one socket for each datagram service.
    pub const fn sockets(&self) -> usize {
        let mut total = 0;
        let mut i = 0;
        while i < Member::ALL.len() {
            let member = Member::ALL[i];
            let n = self.backlog(member);
            total += n;
            if n > 0 && matches!(member.protocol(), Protocol::Tcp) {
                total += 1;
            }
            i += 1;
        }
        total
    }

    /// The members that run, in [`Member::ALL`]'s order.
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        Member::ALL.into_iter().filter(|m| self.runs(*m))
    }

    /// The beacon's announcement of the plan's ports, e.g. `tcp:7,7001 udp:9000`: every
    /// service that answers (the beacon itself is left out).
    pub fn announcement(&self) -> Announcement<'_> {
        Announcement(self)
    }
}

/// `Display` lists the services that run with their ports, in the order they start:
/// `echo 7, file out 7001, udp report 9000`; `none` for an empty plan.
impl fmt::Display for ServicePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for member in self.members() {
            if any {
                f.write_str(", ")?;
            }
            write!(f, "{} {}", member.name(), member.port())?;
            any = true;
        }
        if !any {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// The same list in a defmt log.
#[cfg(feature = "defmt")]
impl defmt::Format for ServicePlan {
    fn format(&self, f: defmt::Formatter<'_>) {
        let mut any = false;
        for member in self.members() {
            if any {
                defmt::write!(f, ", ");
            }
            defmt::write!(f, "{=istr} {=u16}", member.log_name(), member.port());
            any = true;
        }
        if !any {
            defmt::write!(f, "none");
        }
    }
}

/// The ports a beacon announces: `tcp:PORT,PORT udp:PORT,PORT`, each part only when it
/// has a port ([`ServicePlan::announcement`]).
pub struct Announcement<'p>(&'p ServicePlan);

impl Announcement<'_> {
    /// Writes the announcement as its `Display` does, without `core::fmt`.
    pub fn write_text(&self, out: &mut Text<'_>) {
        // One pass: [`Member::ALL`] lists the TCP members before the UDP ones, so each
        // protocol's ports come in one run (two filtered passes were 0.4 KB of flash).
        let mut part = None;
        for member in self.0.members().filter(|m| *m != Member::Beacon) {
            let protocol = member.protocol();
            if part == Some(protocol) {
                out.str(",");
            } else {
                if part.is_some() {
                    out.str(" ");
                }
                out.str(match protocol {
                    Protocol::Tcp => "tcp:",
                    Protocol::Udp => "udp:",
                });
                part = Some(protocol);
            }
            out.num(member.port().into());
        }
    }
}

impl fmt::Display for Announcement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::display(f, |out| self.write_text(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn every_member_stands_in_all_at_its_own_index() {
        for (index, member) in Member::ALL.into_iter().enumerate() {
            assert_eq!(member as usize, index, "{member:?}");
        }
    }

    #[test]
    fn the_tcp_members_come_before_the_udp_ones() {
        let first_udp = Member::ALL
            .iter()
            .position(|m| m.protocol() == Protocol::Udp)
            .unwrap();
        assert!(Member::ALL[first_udp..]
            .iter()
            .all(|m| m.protocol() == Protocol::Udp));
    }

    #[test]
    fn the_tap_hosts_plan_counts_every_backlog_listener_and_datagram_socket() {
        // 20 backlog sockets, 6 listeners, 3 datagram sockets.
        assert_eq!(ServicePlan::TAP_HOST.sockets(), 29);
        assert_eq!(ServicePlan::NONE.sockets(), 0);
        let udp_only = ServicePlan {
            stats: true,
            ..ServicePlan::NONE
        };
        assert_eq!(udp_only.sockets(), 1);
    }

    #[test]
    fn the_port_list_and_the_announcement_name_only_what_runs() {
        let plan = ServicePlan {
            echo: 1,
            file_out: 1,
            report: true,
            beacon: true,
            ..ServicePlan::NONE
        };
        assert_eq!(
            plan.to_string(),
            "echo 7, file out 7001, udp report 9000, beacon 9999"
        );
        assert_eq!(plan.announcement().to_string(), "tcp:7,7001 udp:9000");
        assert_eq!(
            ServicePlan::TAP_HOST.announcement().to_string(),
            "tcp:7,9,7001,7002,7003,80 udp:9000,9001"
        );
        assert_eq!(ServicePlan::NONE.to_string(), "none");
        assert_eq!(ServicePlan::NONE.announcement().to_string(), "");
    }
}
