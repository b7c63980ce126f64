//! Events (CAMARA webrtc-events): which committed changes make which CloudEvents ([`emit`]),
//! their shape ([`cloud`]), their delivery with retries ([`dispatcher`]), which sinks may
//! receive them ([`guard`]), and the console's live copy of changes and deliveries ([`feed`]).

pub mod cloud;
pub mod dispatcher;
pub mod emit;
pub mod feed;
pub mod guard;

pub use dispatcher::Dispatcher;
pub use emit::{DUE_SWEEP, Events, end_due_subscriptions};
pub use feed::Feed;
pub use guard::{Cidr, SinkError, SinkGuard};
