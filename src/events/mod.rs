//! Events (CAMARA webrtc-events): what may receive them. The delivery engine (dispatcher, retry
//! schedule, sink client) comes with the events themselves; the [`guard`] decides which sinks a
//! subscription may name.

pub mod guard;

pub use guard::{Cidr, SinkError, SinkGuard};
