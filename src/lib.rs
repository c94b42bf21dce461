//! sockflow: TCP and UDP flows for C programs.
//!
//! The core (every module but `ffi`) is safe Rust that knows nothing of C:
//! [`args`] parses the tutorials' command lines, [`frame`] delimits messages
//! on a stream, [`tcp`] and [`udp`] are blocking primitives, [`server`] runs
//! many clients on one event loop, and [`client`] drives stdin sessions.
//! `ffi` exports all of it as `sockflow_*` functions, each a panic boundary.
//!
//! `unsafe` is denied crate-wide and allowed in two modules only: `ffi` (C
//! pointers) and `sys` (the core's raw OS calls, each a safe wrapper).
//! `tests/guarantees.rs` fails if any other module allows it.
#![deny(unsafe_code)]
#![allow(non_camel_case_types)]

pub mod args;
pub mod client;
pub mod error;
pub mod frame;
pub mod net;
pub mod server;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod unix;

#[allow(unsafe_code)]
mod sys;

#[allow(unsafe_code)]
pub mod ffi;

pub use error::{Code, Error, Result};
