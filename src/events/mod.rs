//! Events (CAMARA webrtc-events): which committed changes make which CloudEvents ([`emit`]),
//! their shape ([`cloud`]), their delivery with retries ([`dispatcher`]) and which sinks may
//! receive them ([`guard`]).

pub mod cloud;
pub mod dispatcher;
pub mod emit;
pub mod guard;

pub use dispatcher::Dispatcher;
pub use emit::{DUE_SWEEP, Events, end_due_subscriptions};
pub use guard::{Cidr, SinkError, SinkGuard};
