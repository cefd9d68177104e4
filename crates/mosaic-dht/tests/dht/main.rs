//! Integration tests of `mosaic-dht` on private loopback DHTs
//! ([`mosaic_dht::Testnet`]); nothing here contacts the public DHT.

mod publish;
mod relay;
mod republish;
mod resolver;
mod support;
