//! The integration suite: the real app over real HTTP on 127.0.0.1:0 (one test binary).

mod auth;
mod errors;
mod helpers;
mod seed;
