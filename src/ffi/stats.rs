//! `sockflow_server_stats`: a server's counters, from any thread.

use super::server::sockflow_server;
use crate::server::{Stats, CLOSE_REASONS};
use std::ffi::c_int;

/// How many close reasons `sockflow_stats.closed` counts: one per
/// `sockflow_close_reason`, which start at 1.
pub const SOCKFLOW_CLOSE_REASONS: usize = 8;
// The literal is for cbindgen (it expands no constants); this keeps it true.
const _: () = assert!(SOCKFLOW_CLOSE_REASONS == CLOSE_REASONS);

/// A snapshot of a server's counters since it was made (all workers
/// together). Filled by `sockflow_server_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sockflow_stats {
    /// Connections open now (TCP, and UDP peers with `udp_peers`).
    pub conns_open: u64,
    /// Connections ever opened: accepted, connected out, UDP peers heard.
    pub conns_total: u64,
    /// Connections refused at once: past `max_conns` or `max_per_ip`.
    pub conns_refused: u64,
    /// Messages handed to `on_message` (a UDP datagram is one).
    pub msgs_in: u64,
    /// Their bytes (the messages', without framing).
    pub bytes_in: u64,
    /// Messages sent: by callbacks, and by `sockflow_server_send_to` and
    /// `_broadcast` (one per receiver).
    pub msgs_out: u64,
    /// Bytes written to sockets, framing included.
    pub bytes_out: u64,
    /// Connections closed, by reason: `closed[SOCKFLOW_CLOSE_REASON_IDLE - 1]`
    /// is how many were closed for idleness.
    pub closed: [u64; SOCKFLOW_CLOSE_REASONS],
    /// Datagrams dropped: too long for the frame, or from a new sender
    /// past `max_conns` peers.
    pub dropped: u64,
    /// Bytes held now in partial messages and queues (what
    /// `memory_budget` bounds).
    pub queued_bytes: u64,
}

impl From<Stats> for sockflow_stats {
    fn from(s: Stats) -> sockflow_stats {
        sockflow_stats {
            conns_open: s.conns_open,
            conns_total: s.conns_total,
            conns_refused: s.conns_refused,
            msgs_in: s.msgs_in,
            bytes_in: s.bytes_in,
            msgs_out: s.msgs_out,
            bytes_out: s.bytes_out,
            closed: s.closed,
            dropped: s.dropped,
            queued_bytes: s.queued_bytes,
        }
    }
}

/// Fills `*out` with server `s`'s counters. Safe from any thread and from
/// callbacks, before, during and after a run (until `sockflow_server_close`);
/// each counter is read on its own, so a snapshot taken while the server
/// works may be a message apart between counters. Returns 0, or
/// `SOCKFLOW_EINVAL` for NULL.
#[no_mangle]
pub extern "C" fn sockflow_server_stats(s: *const sockflow_server, out: *mut sockflow_stats) -> c_int {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        let out = try_mut!(out, "out");
        *out = server.handle().stats().into();
        0
    }
}
