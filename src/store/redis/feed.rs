//! The console's feed across replicas ([`crate::events::feed`]): each replica PUBLISHes what it
//! publishes on the channel `{key_prefix}feed`, in order, from one task, and every replica
//! SUBSCRIBEs to it on a connection of its own, handing each message to its feed — its own
//! messages too, so every replica's followers see the same records in the same order. Redis
//! keeps nothing: a replica that is not subscribed (starting, reconnecting) misses what is
//! published meanwhile. So when its subscription breaks, and again when it is back, the feed is
//! told ([`Feed::missed`]): its followers are dropped, and a console follows again and looks at
//! the store afresh. A subscription can also go quiet without breaking (a half-open connection):
//! each replica publishes a heartbeat every [`HEARTBEAT`], and a subscription that hears nothing,
//! not even its own, for [`SILENCE`] is taken as broken. Records lost on the way (a full queue, a
//! failed PUBLISH) are counted (`camara_webrtc_feed_records_lost_total`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::RedisStore;
use crate::events::feed::{Feed, Relay};

/// Messages waiting to be published; beyond it new ones are dropped: the feed is a live view,
/// never a queue that could hold the service back.
const WAITING: usize = 4_096;

/// Messages published in one pipeline.
const BATCH: usize = 256;

/// How long a replica waits before it subscribes again after its subscription broke.
const RESUBSCRIBE: Duration = Duration::from_secs(1);

/// How often each replica publishes a heartbeat when it has had nothing else to publish.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// How long a subscription may hear nothing before it is taken as broken.
pub const SILENCE: Duration = Duration::from_secs(15);

/// The heartbeat: not of [`Feed::message`]'s form, so [`Feed::receive`] ignores it.
const BEAT: &str = "heartbeat";

/// The relay a feed publishes through: a queue to the publishing task.
struct Publisher(mpsc::Sender<String>);

impl Relay for Publisher {
    fn publish(&self, message: String) {
        if self.0.try_send(message).is_err() {
            crate::telemetry::metrics::feed_records_lost(1);
        }
    }
}

impl RedisStore {
    fn feed_channel(&self) -> String {
        format!("{}feed", self.prefix)
    }

    /// Starts publishing `feed`'s records through Redis and following every replica's: the
    /// relay to give the feed. The publisher ends once the feed (and so the relay) is dropped,
    /// the follower once the feed is dropped or closed.
    pub fn relay_feed(&self, feed: Weak<Feed>) -> Arc<dyn Relay> {
        let (queue, waiting) = mpsc::channel(WAITING);
        tokio::spawn(publish(
            self.connection.clone(),
            self.feed_channel(),
            waiting,
        ));
        let follower = follow(self.client.clone(), self.feed_channel(), feed, self.timeout);
        tokio::spawn(follower);
        Arc::new(Publisher(queue))
    }
}

/// PUBLISHes the waiting messages in order, a pipeline at a time (a pipeline that fails is
/// lost, and counted), and a heartbeat after [`HEARTBEAT`] without one.
async fn publish(
    mut connection: ConnectionManager,
    channel: String,
    mut waiting: mpsc::Receiver<String>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let received = tokio::time::timeout(HEARTBEAT, waiting.recv_many(&mut batch, BATCH)).await;
        match received {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) => batch.push(BEAT.to_owned()),
        }
        let mut pipe = redis::pipe();
        let count = batch.iter().filter(|m| m.as_str() != BEAT).count();
        for message in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(&channel).arg(message).ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut connection).await {
            if count > 0 {
                crate::telemetry::metrics::feed_records_lost(count as u64);
            }
            tracing::debug!(error = %e, "feed records not published");
        }
    }
}

/// Follows the channel into `feed` until the feed is dropped or closed, subscribing again after
/// a break.
async fn follow(client: redis::Client, channel: String, feed: Weak<Feed>, timeout: Duration) {
    let mut closed = match feed.upgrade() {
        Some(feed) => feed.closed(),
        None => return,
    };
    let mut failing = false;
    let mut was_subscribed = false;
    loop {
        let subscribed = async {
            let mut pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
                .await
                .map_err(|_| "connecting timed out".to_owned())?
                .map_err(|e| e.to_string())?;
            pubsub
                .subscribe(&channel)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(pubsub)
        };
        let mut pubsub = tokio::select! {
            subscribed = subscribed => subscribed,
            _ = closed.wait_for(|closed| *closed) => return,
        };
        match &mut pubsub {
            Ok(_) if was_subscribed || failing => {
                failing = false;
                tracing::info!("following the console's feed again");
                // What was published while it was not subscribed is lost.
                if let Some(feed) = feed.upgrade() {
                    feed.missed();
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(
                    error = e.as_str(),
                    "the console's feed is not followed; retrying"
                );
            }
            _ => {}
        }
        if let Ok(pubsub) = &mut pubsub {
            was_subscribed = true;
            let mut messages = pubsub.on_message();
            loop {
                let message = tokio::select! {
                    message = tokio::time::timeout(SILENCE, messages.next()) => message,
                    _ = closed.wait_for(|closed| *closed) => return,
                };
                let Some(feed) = feed.upgrade() else {
                    return;
                };
                let Ok(Some(message)) = message else {
                    tracing::warn!(
                        quiet = message.is_err(),
                        "the console's feed subscription broke; subscribing again"
                    );
                    feed.missed();
                    break;
                };
                if let Ok(text) = message.get_payload::<String>() {
                    feed.receive(&text);
                }
            }
        }
        if feed.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}
