//! The pure core: sessions, statuses and their transition table, who may see and act on a
//! session, SDP and location checks.
//! Nothing here knows about HTTP, async runtimes or JSON values.

pub mod access;
pub mod address;
pub mod fields;
pub mod location;
pub mod registration;
pub mod sdp;
pub mod session;
pub mod status;
pub mod subscription;

pub use access::{ANONYMOUS, AccessError, Actor, PartyRule};
pub use address::Address;
pub use fields::{Present, PresentObject};
pub use location::{Location, LocationError, UncheckedLocation};
pub use registration::{EndReason, ExpiryError, Lifetimes, Registration};
pub use sdp::{Sdp, SdpError, SdpPolicy};
pub use session::{CallType, Direction, Role, Session, SessionId, StatusChange, is_reason};
pub use status::{SessionStatus, TransitionError};
pub use subscription::{AccessToken, Detail, EventType, Subscription, SubscriptionEnd};
