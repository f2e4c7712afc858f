//! The harness the reliable-protocol tests share: two connections, two simulated links, a virtual clock.

#![allow(dead_code)] // each test file uses a different part of it

use bytes::Bytes;
use peerkit_core::link::{LinkConfig, LinkModel, Micros};
use peerkit_core::reliable::{Connection, ReliableConfig};
use peerkit_core::rng::Rng;

/// Endpoints `a` and `b`, links `a -> b` and `b -> a`, and a clock that jumps to the next event.
pub struct Pair {
    pub now: Micros,
    pub a: Connection,
    pub b: Connection,
    pub a_to_b: LinkModel,
    pub b_to_a: LinkModel,
    pub buf: Vec<u8>,
}

impl Pair {
    pub fn new(config: ReliableConfig, link: LinkConfig, seed: u64) -> Self {
        Self {
            now: 0,
            a: Connection::new(config.clone(), 0, seed.wrapping_mul(2)),
            b: Connection::new(config, 0, seed.wrapping_mul(2) + 1),
            a_to_b: LinkModel::new(link.clone(), seed),
            b_to_a: LinkModel::new(link, seed ^ 0xABCD),
            buf: Vec::new(),
        }
    }

    /// Runs everything due at `now`: timers, datagrams in flight, transmissions.
    pub fn drive(&mut self) {
        let now = self.now;
        self.a.handle_timeout(now);
        self.b.handle_timeout(now);
        while let Some(d) = self.a_to_b.poll(now) {
            self.b.handle_datagram(now, &d);
        }
        while let Some(d) = self.b_to_a.poll(now) {
            self.a.handle_datagram(now, &d);
        }
        while self.a.poll_transmit(now, &mut self.buf) {
            self.a_to_b.send(now, Bytes::copy_from_slice(&self.buf));
        }
        while self.b.poll_transmit(now, &mut self.buf) {
            self.b_to_a.send(now, Bytes::copy_from_slice(&self.buf));
        }
    }

    /// Drives, then moves the clock to the next event (at least 1 us later).
    pub fn step(&mut self) {
        self.drive();
        let next = [
            self.a.poll_timeout(),
            self.b.poll_timeout(),
            self.a_to_b.next_due(),
            self.b_to_a.next_due(),
        ]
        .into_iter()
        .flatten()
        .min();
        self.now = next.unwrap_or(self.now + 1_000).max(self.now + 1);
    }

    pub fn set_links(&mut self, link: LinkConfig) {
        self.a_to_b.set_config(link.clone());
        self.b_to_a.set_config(link);
    }
}

/// Message `i` of a test stream: a log-uniform size from 1 B to `max`, and bytes derived from `i` and `seed`.
pub fn message(seed: u64, i: u64, max: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed.wrapping_mul(0x9E37_79B9).wrapping_add(i));
    let size = ((max as f64).ln() * rng.unit())
        .exp()
        .floor()
        .clamp(1.0, max as f64) as usize;
    let mut bytes = vec![0u8; size];
    for chunk in bytes.chunks_mut(8) {
        let word = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    bytes
}
