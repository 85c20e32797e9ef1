//! Pub/sub subscriptions, shared by all cores.
//!
//! A subscription records which core owns the subscriber and in which protocol version it
//! speaks; `PUBLISH` on any core encodes each message once per protocol version and hands it
//! to the owning cores' inboxes ([`CoreMessage::Deliver`]).

use std::collections::HashMap;

use crate::config::string_match;
use crate::protocol::{Reply, Resp};
use crate::server::shared::{CoreHandle, CoreMessage};
use crate::storage::Bstr;

/// One subscribed connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub client_id: u64,
    pub core: usize,
    pub conn: u64,
    pub resp: Resp,
}

/// Channel and pattern subscriptions.
#[derive(Default, Debug)]
pub struct PubSub {
    channels: HashMap<Bstr, Vec<Subscriber>>,
    patterns: HashMap<Bstr, Vec<Subscriber>>,
}

impl PubSub {
    /// Adds a channel subscription; false if it already existed.
    pub fn subscribe(&mut self, channel: &[u8], who: Subscriber) -> bool {
        add(&mut self.channels, channel, who)
    }

    pub fn unsubscribe(&mut self, channel: &[u8], client_id: u64) -> bool {
        remove(&mut self.channels, channel, client_id)
    }

    pub fn psubscribe(&mut self, pattern: &[u8], who: Subscriber) -> bool {
        add(&mut self.patterns, pattern, who)
    }

    pub fn punsubscribe(&mut self, pattern: &[u8], client_id: u64) -> bool {
        remove(&mut self.patterns, pattern, client_id)
    }

    /// Sends `message` to every subscriber of `channel` and every matching pattern;
    /// returns how many received it (PUBLISH's reply).
    pub fn publish(&self, channel: &[u8], message: &[u8], cores: &[CoreHandle]) -> usize {
        let mut receivers = 0;
        let mut encoded: [Option<Vec<u8>>; 2] = [None, None];
        if let Some(subscribers) = self.channels.get(channel) {
            for who in subscribers {
                let bytes = encoded[who.resp as usize]
                    .get_or_insert_with(|| encode_message(who.resp, channel, message))
                    .clone();
                cores[who.core].send(CoreMessage::Deliver {
                    conn: who.conn,
                    bytes,
                });
                receivers += 1;
            }
        }
        for (pattern, subscribers) in &self.patterns {
            if !string_match(pattern, channel, false) {
                continue;
            }
            let mut per_resp: [Option<Vec<u8>>; 2] = [None, None];
            for who in subscribers {
                let bytes = per_resp[who.resp as usize]
                    .get_or_insert_with(|| encode_pmessage(who.resp, pattern, channel, message))
                    .clone();
                cores[who.core].send(CoreMessage::Deliver {
                    conn: who.conn,
                    bytes,
                });
                receivers += 1;
            }
        }
        receivers
    }

    /// Channels with at least one subscriber matching `pattern` (PUBSUB CHANNELS).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bstr> {
        self.channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| string_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (PUBSUB NUMSUB).
    pub fn subscriber_count(&self, channel: &[u8]) -> usize {
        self.channels.get(channel).map_or(0, Vec::len)
    }

    /// Distinct patterns subscribed (PUBSUB NUMPAT, INFO `pubsub_patterns`).
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Distinct channels subscribed (INFO `pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }
}

fn add(map: &mut HashMap<Bstr, Vec<Subscriber>>, name: &[u8], who: Subscriber) -> bool {
    let list = map.entry(Bstr::new(name)).or_default();
    if list.iter().any(|s| s.client_id == who.client_id) {
        return false;
    }
    list.push(who);
    true
}

fn remove(map: &mut HashMap<Bstr, Vec<Subscriber>>, name: &[u8], client_id: u64) -> bool {
    let Some(list) = map.get_mut(name) else {
        return false;
    };
    let before = list.len();
    list.retain(|s| s.client_id != client_id);
    let removed = list.len() != before;
    if list.is_empty() {
        map.remove(name);
    }
    removed
}

fn encode_message(resp: Resp, channel: &[u8], message: &[u8]) -> Vec<u8> {
    let mut reply = Reply::new(resp);
    reply.push(3);
    reply.bulk(b"message");
    reply.bulk(channel);
    reply.bulk(message);
    reply.buf
}

fn encode_pmessage(resp: Resp, pattern: &[u8], channel: &[u8], message: &[u8]) -> Vec<u8> {
    let mut reply = Reply::new(resp);
    reply.push(4);
    reply.bulk(b"pmessage");
    reply.bulk(pattern);
    reply.bulk(channel);
    reply.bulk(message);
    reply.buf
}
