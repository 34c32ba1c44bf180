//! A WebSocket proxy between the SDK and the node that can drop, alter or cut the node's
//! messages, to test how the SDK recovers.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::Message;

/// What to do with one message from the node.
pub enum Verdict {
    /// Pass it on.
    Forward,
    /// Swallow it.
    Drop,
    /// Pass this text on instead.
    Replace(String),
    /// Cut the connection (both sides) instead of passing it on.
    Kill,
}

/// Decides per node-to-client text message: (connection number from 1, message text).
pub type Policy = Arc<Mutex<dyn FnMut(u32, &str) -> Verdict + Send>>;

pub struct Proxy {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// `http://ADDR`, usable as the SDK's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Proxy WebSocket connections to the node at `upstream` (`http://host:port`).
    pub async fn start(upstream: String, policy: Policy) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut connection = 0u32;
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                connection += 1;
                let upstream = upstream.clone();
                let policy = policy.clone();
                tokio::spawn(async move {
                    let Ok(client) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    let url = format!("{}/v1/ws", upstream.replacen("http://", "ws://", 1));
                    let Ok((node, _)) = tokio_tungstenite::connect_async(&url).await else {
                        return;
                    };
                    let (mut to_client, mut from_client) = client.split();
                    let (mut to_node, mut from_node) = node.split();
                    loop {
                        tokio::select! {
                            message = from_client.next() => match message {
                                Some(Ok(message)) => {
                                    if to_node.send(message).await.is_err() {
                                        return;
                                    }
                                }
                                _ => return,
                            },
                            message = from_node.next() => match message {
                                Some(Ok(Message::Text(text))) => {
                                    let verdict = (policy.lock().unwrap())(connection, text.as_str());
                                    let out = match verdict {
                                        Verdict::Forward => Message::Text(text),
                                        Verdict::Drop => continue,
                                        Verdict::Replace(other) => Message::Text(other.into()),
                                        // Dropping both halves cuts the connection.
                                        Verdict::Kill => return,
                                    };
                                    if to_client.send(out).await.is_err() {
                                        return;
                                    }
                                }
                                Some(Ok(other)) => {
                                    if to_client.send(other).await.is_err() {
                                        return;
                                    }
                                }
                                _ => return,
                            },
                        }
                    }
                });
            }
        });
        Proxy { addr, task }
    }
}
