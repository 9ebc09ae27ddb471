//! Each socket's rings handed to the inspector as MSS bounds ([`crate::phy::mss`]): a
//! listener's when it starts listening (the smallest rings of its backlog), a connecting
//! socket's when it starts its handshake.

use smoltcp::socket::tcp;

use super::table::{listeners, tcp_slots};
use super::Stack;
use crate::phy::mss::mss_bound;
use crate::phy::PortMss;

impl Stack<'_> {
    /// Gives the inspector the MSS bounds of every listener, from the smallest rings of
    /// its backlog sockets.
    pub(crate) fn refresh_listener_mss(&mut self) {
        let slots = &*self.slots;
        let sockets = &self.sockets;
        let listeners = listeners(slots).filter_map(|(listener, port)| {
            let rings = tcp_slots(slots)
                .filter(|t| t.listener() == Some(listener))
                .map(|t| {
                    let s = sockets.get::<tcp::Socket>(t.inner());
                    (s.recv_capacity(), s.send_capacity())
                });
            let (rx, tx) = rings.fold((usize::MAX, usize::MAX), |(rx, tx), (r, t)| {
                (rx.min(r), tx.min(t))
            });
            (rx != usize::MAX).then(|| PortMss {
                port,
                rx_bound: mss_bound(rx),
                tx_bound: mss_bound(tx),
            })
        });
        self.frames.borrow_mut().set_listener_mss(listeners);
    }

    /// Gives the inspector the MSS bounds of `inner`, which starts a handshake from
    /// local `port`.
    pub(crate) fn add_connect_mss(&mut self, inner: smoltcp::iface::SocketHandle, port: u16) {
        let socket = self.sockets.get::<tcp::Socket>(inner);
        let bounds = PortMss {
            port,
            rx_bound: mss_bound(socket.recv_capacity()),
            tx_bound: mss_bound(socket.send_capacity()),
        };
        self.frames.borrow_mut().add_connect_mss(bounds);
    }
}
