//! Bulk TCP transfer of a known pattern; goodput runs from the connect to the ACK of the last byte.
//! The bytes acknowledged are counted per interval (a series), and the host counts the segments it
//! sent again (retransmissions, which smoltcp does not count).

use std::net::IpAddr;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;

use super::{closed_reason, endpoint_str, fill_pattern, App, AppCx, Outcome, SentSegments, Series};
use crate::time::SimTime;

pub struct TcpTransfer {
    start: SimTime,
    to: (IpAddr, u16),
    bytes: u64,
    handle: Option<SocketHandle>,
    written: u64,
    acked: u64,
    closing: bool,
    finished_at: Option<SimTime>,
    error: Option<String>,
    established: bool,
    local_port: u16,
    connect_at: SimTime,
    series: Series,
    sent: SentSegments,
}

impl TcpTransfer {
    pub fn new(start: SimTime, to: (IpAddr, u16), bytes: u64) -> Self {
        TcpTransfer {
            start,
            to,
            bytes,
            handle: None,
            written: 0,
            acked: 0,
            closing: false,
            finished_at: None,
            error: None,
            established: false,
            local_port: 0,
            connect_at: start,
            series: Series::default(),
            sent: SentSegments::default(),
        }
    }
}

impl App for TcpTransfer {
    fn poll(&mut self, cx: &mut AppCx<'_>) -> Option<SimTime> {
        if self.done() {
            return None;
        }
        let h = match self.handle {
            Some(h) => h,
            None => {
                match cx.connect_tcp(self.to) {
                    Ok((h, port)) => {
                        self.handle = Some(h);
                        self.local_port = port;
                        self.connect_at = cx.now;
                    }
                    Err(e) => self.error = Some(e),
                }
                return None;
            }
        };
        let s = cx.sockets.get_mut::<tcp::Socket>(h);
        while self.written < self.bytes && s.can_send() {
            let left = self.bytes - self.written;
            let off = self.written;
            let n = s
                .send(|buf| {
                    let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    fill_pattern(&mut buf[..n], off);
                    (n, n)
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            self.written += n as u64;
        }
        self.acked = self.written - s.send_queue() as u64;
        if self.written == self.bytes && !self.closing {
            s.close();
            self.closing = true;
        }
        match s.state() {
            // Our FIN is acknowledged, so every byte before it is too.
            tcp::State::FinWait2 | tcp::State::TimeWait if self.closing => {
                self.acked = self.bytes;
                self.finished_at = Some(cx.now);
            }
            tcp::State::Closed => {
                self.error = Some(closed_reason(cx, self.local_port, self.established, self.connect_at));
            }
            tcp::State::Established => self.established = true,
            _ => {}
        }
        self.series.record(cx.now - self.start, self.acked);
        if let Some(sent) = cx.wire.sent.get((self.local_port, self.to.0, self.to.1)) {
            self.sent = *sent;
        }
        None
    }

    fn stop(&mut self, cx: &mut AppCx<'_>) {
        if let Some(h) = self.handle {
            cx.close_socket(h);
        }
    }

    fn done(&self) -> bool {
        self.finished_at.is_some() || self.error.is_some()
    }

    fn outcome(&self) -> Outcome {
        let seconds = self.finished_at.map(|t| (t - self.start).as_secs_f64());
        Outcome::TcpTransfer {
            to: endpoint_str(self.to),
            bytes: self.bytes,
            acked: self.acked,
            seconds,
            goodput_mbps: seconds.filter(|s| *s > 0.0).map(|s| self.bytes as f64 * 8.0 / s / 1e6),
            error: self.error.clone(),
            retransmissions: self.sent.retransmissions,
            retransmitted_bytes: self.sent.retransmitted_bytes,
            segments: self.sent.segments,
            acked_series: self.series.clone(),
        }
    }
}
