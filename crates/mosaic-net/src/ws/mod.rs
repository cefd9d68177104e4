//! Mosaic over WebSocket (`websockets.md`): the server's accept and the
//! client's connect, with HELLO and HELLO ACK in the upgrade headers.

pub(crate) mod client;
pub(crate) mod server;
