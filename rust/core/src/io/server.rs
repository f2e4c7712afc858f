//! A reliable server on one UDP port: a [`UdpEndpoint`] (its receive thread keeps reading while the game
//! stalls) driving a [`reliable::Endpoint`](crate::reliable::Endpoint) of many connections.
//!
//! The protocol decisions are the endpoint's; this only moves datagrams between it and the socket, at the
//! `now` the caller gives.

use std::io;
use std::net::SocketAddr;

use crate::link::Micros;
use crate::reliable::{ConnectionHandle, Endpoint, EndpointConfig, TransportRefusal};

use super::udp::{QueueLimits, UdpEndpoint, UdpError, UdpStats, RECV_BUFFER};

/// A UDP socket and the reliable endpoint whose connections it carries.
#[derive(Debug)]
pub struct ServerSocket {
    /// The socket, until [`close_socket`](Self::close_socket).
    udp: Option<UdpEndpoint>,
    endpoint: Endpoint<SocketAddr>,
    buf: Vec<u8>,
    /// Sends the system refused outright (not just a full buffer).
    send_errors: u64,
}

impl ServerSocket {
    /// Opens a socket on `addr` with its receive thread, for an endpoint configured by `config` (its
    /// connections draw their ids from `seed`).
    pub fn bind(addr: SocketAddr, config: EndpointConfig, seed: u64) -> Result<Self, UdpError> {
        Ok(Self {
            udp: Some(UdpEndpoint::bind(
                addr,
                RECV_BUFFER,
                QueueLimits::default(),
            )?),
            endpoint: Endpoint::new(config, seed),
            buf: Vec::new(),
            send_errors: 0,
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.udp {
            Some(udp) => udp.local_addr(),
            None => Err(io::Error::new(io::ErrorKind::NotConnected, "closed")),
        }
    }

    /// Whether the socket is open.
    pub fn is_open(&self) -> bool {
        self.udp.is_some()
    }

    /// Closes the socket and stops its receive thread; the connections stay readable, and send nothing more.
    pub fn close_socket(&mut self) {
        self.udp = None;
    }

    /// The endpoint, to read its connections and counters.
    pub fn endpoint(&self) -> &Endpoint<SocketAddr> {
        &self.endpoint
    }

    /// The endpoint, to accept, send on and receive from its connections.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint<SocketAddr> {
        &mut self.endpoint
    }

    /// The socket's counters.
    pub fn udp_stats(&self) -> UdpStats {
        self.udp
            .as_ref()
            .map(UdpEndpoint::stats)
            .unwrap_or_default()
    }

    /// Sends the system refused (other than a full buffer), over the socket's life.
    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }

    /// Drives the endpoint at `now`: every datagram received is routed to its connection (or accepted, or
    /// counted), then the timers of `only` (or of every connection) run and what they have to send is sent.
    /// With `only`, what the receive thread has queued is taken without reading the socket.
    pub fn drive(&mut self, now: Micros, only: Option<ConnectionHandle>) {
        if let Some(udp) = self.udp.as_mut() {
            // Driving one connection takes only what the receive thread has queued (no system call): a game
            // polls each of many connections several times a frame. Driving them all reads the socket too.
            while let Some(datagram) = if only.is_some() {
                udp.recv_queued()
            } else {
                udp.recv()
            } {
                self.endpoint
                    .handle_datagram(now, datagram.from, &datagram.data);
            }
        }
        match only {
            Some(handle) => self.endpoint.handle_timeout_for(handle, now),
            None => self.endpoint.handle_timeout(now),
        }
        loop {
            let transmit = match only {
                Some(handle) => self.endpoint.poll_transmit_for(handle, now, &mut self.buf),
                None => self.endpoint.poll_transmit(now, &mut self.buf),
            };
            let Some(transmit) = transmit else { break };
            // Once the socket is closed, what the connections send goes nowhere.
            let Some(udp) = self.udp.as_mut() else {
                continue;
            };
            if let Err(e) = udp.send_to(&self.buf, transmit.to) {
                // A full send buffer is congestion; anything else (an address the system cannot reach) is
                // retried the same way, and counted, since one client's bad address must not end the others.
                if e.kind() != io::ErrorKind::WouldBlock {
                    self.send_errors += 1;
                }
                self.endpoint
                    .transport_refused(transmit.connection, TransportRefusal::Full);
            }
        }
    }
}
