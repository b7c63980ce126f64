//! The integration suite: the real app over real HTTP on 127.0.0.1:0 (one test binary).

mod auth;
mod bad_input;
mod browser;
mod camara;
mod cli;
mod client;
mod concurrency;
mod config_files;
mod connections;
mod contract;
mod cors;
mod delivery;
mod errors;
mod events;
mod helpers;
mod keys;
mod lifecycle;
mod openapi;
mod operations;
mod redis_server;
mod registration;
mod replicas;
mod seed;
mod sink;
mod store;
mod transitions;
