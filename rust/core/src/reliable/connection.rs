//! The connection: both halves, the timers, the status, and the datagrams that carry them.

use bytes::Bytes;

use super::packet::{self, DecodeError, Kind};
use super::recv::{Arrival, Receiver};
use super::send::{RttEstimator, Sender};
use super::seq::Seq;
use super::{ReliableConfig, ReliableError, ReliableStats, Status};
use crate::link::Micros;

/// How many CLOSE datagrams `close` sends (they may be lost like any other).
const CLOSE_REPEATS: u8 = 3;

/// One end of a reliable, ordered message connection. See the module documentation for the order of calls.
#[derive(Debug)]
pub struct Connection {
    config: ReliableConfig,
    sender: Sender,
    receiver: Receiver,
    status: Status,
    error: Option<ReliableError>,
    last_received: Micros,
    last_sent: Micros,
    close_datagrams_left: u8,
    stats: ReliableStats,
    /// When `handle_timeout` last ran, and the smoothed gap between runs: how often this side is polled.
    last_poll: Option<Micros>,
    poll_interval_us: Micros,
}

impl Connection {
    /// A connection starting at time `now`. The idle timeout counts from `now`.
    pub fn new(config: ReliableConfig, now: Micros) -> Self {
        let rtt = RttEstimator::new(config.initial_rto_us, config.min_rto_us, config.max_rto_us);
        let first = Seq(config.first_seq);
        Self {
            sender: Sender::new(first, config.mtu, config.max_window, rtt),
            receiver: Receiver::new(
                first,
                config.max_window,
                config.receive_buffer_bytes,
                config.max_message_size,
            ),
            config,
            status: Status::Connecting,
            error: None,
            last_received: now,
            last_sent: now,
            close_datagrams_left: 0,
            stats: ReliableStats::default(),
            last_poll: None,
            poll_interval_us: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ReliableConfig {
        &self.config
    }

    /// Changes the datagram size for what is sent from now on.
    pub fn set_mtu(&mut self, mtu: usize) {
        self.config.mtu = mtu;
        self.sender.set_mtu(mtu);
    }

    /// Changes the largest message sent or accepted from now on.
    pub fn set_max_message_size(&mut self, size: usize) {
        self.config.max_message_size = size;
        self.receiver.set_max_message_size(size);
    }

    /// Changes the idle timeout.
    pub fn set_timeout_us(&mut self, timeout_us: Micros) {
        self.config.timeout_us = timeout_us;
    }

    /// Where the connection stands.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Why the connection failed or was closed by the peer.
    pub fn error(&self) -> Option<&ReliableError> {
        self.error.as_ref()
    }

    fn is_open(&self) -> bool {
        matches!(self.status, Status::Connecting | Status::Connected)
    }

    fn fail(&mut self, error: ReliableError) {
        if self.is_open() {
            self.status = Status::Failed;
            self.error = Some(error);
        }
    }

    /// Fails the connection because the transport underneath cannot carry its datagrams.
    pub fn fail_transport(&mut self, reason: String) {
        self.fail(ReliableError::Transport(reason));
    }

    /// Whether a message of `len` bytes would be accepted now (the checks `send` makes).
    pub fn check_send(&self, len: usize) -> Result<(), ReliableError> {
        if !self.is_open() {
            return Err(ReliableError::NotOpen(self.status));
        }
        if len > self.config.max_message_size {
            return Err(ReliableError::MessageTooLarge {
                size: len,
                max: self.config.max_message_size,
            });
        }
        let pending = self.sender.pending_bytes();
        let limit = self
            .config
            .send_buffer_bytes
            .max(self.config.max_message_size);
        if pending > 0 && pending + len > limit {
            return Err(ReliableError::Busy { pending, limit });
        }
        Ok(())
    }

    /// Queues a message, or refuses it whole.
    pub fn send(&mut self, message: Bytes) -> Result<(), ReliableError> {
        self.check_send(message.len())?;
        self.sender.push(message);
        self.stats.messages_sent += 1;
        Ok(())
    }

    /// The next message received, in order.
    pub fn recv(&mut self) -> Option<Bytes> {
        let message = self.receiver.take_message()?;
        self.stats.messages_received += 1;
        Some(message)
    }

    /// How many received messages wait to be taken.
    pub fn ready_count(&self) -> usize {
        self.receiver.ready_count()
    }

    /// Takes in a datagram that arrived at `now`. Whatever its bytes, it never panics.
    pub fn handle_datagram(&mut self, now: Micros, datagram: &[u8]) {
        let decoded = match packet::decode(datagram) {
            Ok(d) => d,
            Err(DecodeError::Corrupt) => {
                self.stats.dropped_corrupt += 1;
                return;
            }
            Err(DecodeError::Version(theirs)) => {
                self.stats.dropped_invalid += 1;
                self.fail(ReliableError::VersionMismatch {
                    theirs,
                    ours: packet::VERSION,
                });
                return;
            }
            Err(DecodeError::Foreign | DecodeError::Malformed) => {
                self.stats.dropped_invalid += 1;
                return;
            }
        };
        if !self.is_open() {
            return;
        }
        if self.sender.on_acks(now, decoded.acks).is_err() {
            self.stats.dropped_invalid += 1;
            return;
        }
        self.stats.datagrams_received += 1;
        self.last_received = self.last_received.max(now);
        if self.status == Status::Connecting {
            self.status = Status::Connected;
        }
        match decoded.kind {
            Kind::Data => {
                let Some(fragment) = decoded.fragment else {
                    return;
                };
                match self.receiver.receive(now, fragment) {
                    Ok(Arrival::New) => {}
                    Ok(Arrival::Duplicate) => self.stats.dropped_duplicate += 1,
                    Ok(Arrival::NoRoom) => self.stats.dropped_no_room += 1,
                    Err(e) => self.fail(e),
                }
            }
            Kind::Close => {
                self.status = Status::Closed;
                self.error = Some(ReliableError::PeerClosed);
            }
            Kind::Ack | Kind::Ping => {}
        }
    }

    /// Applies the timers due at `now`: the idle timeout and retransmission timeouts. Call it every time the
    /// connection is polled: the gaps between calls tell the congestion control how coarse its view of time is.
    pub fn handle_timeout(&mut self, now: Micros) {
        if !self.is_open() {
            return;
        }
        if let Some(last) = self.last_poll {
            let gap = now.saturating_sub(last);
            if gap > 0 {
                // Smoothed like srtt; the gap is capped so one long stall does not blind the estimate.
                let gap = gap.min(100_000);
                self.poll_interval_us = (7 * self.poll_interval_us + gap) / 8;
                self.sender.set_poll_interval(self.poll_interval_us);
            }
        }
        self.last_poll = Some(now);
        if now.saturating_sub(self.last_received) >= self.config.timeout_us {
            self.fail(ReliableError::TimedOut {
                ms: self.config.timeout_us / 1000,
            });
            return;
        }
        self.sender.on_timeout(now);
    }

    /// When `handle_timeout` should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Micros> {
        if !self.is_open() {
            return None;
        }
        let mut due = (self.last_received + self.config.timeout_us)
            .min(self.last_sent + self.config.keepalive_us());
        if let Some(rto) = self.sender.timeout_due() {
            due = due.min(rto);
        }
        Some(due)
    }

    /// Writes the next datagram to send into `buf` (replacing its contents) and returns true, or returns false
    /// when there is nothing to send now.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Micros, buf: &mut Vec<u8>) -> bool {
        if self.close_datagrams_left > 0 {
            self.close_datagrams_left -= 1;
            packet::encode_control(buf, Kind::Close, self.receiver.acks(now));
            return self.sent(now);
        }
        if !self.is_open() {
            return false;
        }
        if let Some(out) = self.sender.next_fragment(now) {
            packet::encode_data(
                buf,
                self.receiver.acks(now),
                out.seq,
                out.message_len,
                &out.payload,
            );
            return self.sent(now);
        }
        if self.receiver.has_unreported() {
            packet::encode_control(buf, Kind::Ack, self.receiver.acks(now));
            return self.sent(now);
        }
        if now.saturating_sub(self.last_sent) >= self.config.keepalive_us() {
            packet::encode_control(buf, Kind::Ping, self.receiver.acks(now));
            return self.sent(now);
        }
        false
    }

    fn sent(&mut self, now: Micros) -> bool {
        self.last_sent = self.last_sent.max(now);
        self.stats.datagrams_sent += 1;
        true
    }

    /// Closes this side: no more messages are accepted, and the peer is told (best effort). Messages not yet
    /// acknowledged may not arrive; wait until `stats().messages_pending` is 0 to close without losing any.
    pub fn close(&mut self) {
        if self.is_open() {
            self.status = Status::Closed;
            self.close_datagrams_left = CLOSE_REPEATS;
        }
    }

    /// Counters and estimates.
    pub fn stats(&self) -> ReliableStats {
        let rtt = self.sender.rtt();
        ReliableStats {
            srtt_us: rtt.smoothed_us().unwrap_or(0),
            rttvar_us: rtt.variance_us(),
            rto_us: rtt.rto_us(),
            retransmissions: self.sender.retransmissions(),
            bytes_in_flight: self.sender.bytes_in_flight() as u64,
            messages_pending: self.sender.pending_messages() as u64,
            congestion_window: self.sender.congestion_window(),
            ..self.stats
        }
    }
}
