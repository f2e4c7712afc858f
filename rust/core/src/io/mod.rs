//! The I/O boundary of the core: the only code here that touches the operating system (sockets, and the threads
//! that wait on them). Everything outside `io` is sans-IO: driven by explicit inputs (bytes, a `now`, a seed) and
//! tested deterministically; what is in here is tested against real loopback sockets.

pub mod proxy;
pub mod server;
pub mod udp;
