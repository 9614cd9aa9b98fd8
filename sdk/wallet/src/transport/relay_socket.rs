//! The relay connection, with Nagle's algorithm off.
//!
//! nostr-sdk's default transport leaves Nagle's algorithm on. A wallet
//! writes small frames back to back without waiting for an answer in
//! between (a fetch's REQ and CLOSE, then an EVENT); with Nagle on, the
//! EVENT is held until the CLOSE is acknowledged, and the relay's kernel
//! delays that acknowledgement by up to 40 ms because it has nothing to
//! send back. Measured on the default scenario (quick profile): a relay
//! send took 5 ms or 45 ms depending on whether a CLOSE was still
//! unacknowledged, which made §1 vary by 80 ms between identical
//! iterations. Every other client of the SDK (reqwest) and the testnet's
//! server side already set `TCP_NODELAY`.
//!
//! Plain `ws://` relays in direct mode connect here; anything else (TLS,
//! proxies) goes through nostr-sdk's own transport unchanged.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use async_wsocket::{ConnectionMode, Error, Message, WebSocket, url::ParseError};
use futures::{Sink, SinkExt, StreamExt, TryStreamExt, stream::SplitSink};
use nostr_sdk::{
    Url,
    pool::transport::{
        error::TransportError,
        websocket::{
            DefaultWebsocketTransport, WebSocketSink, WebSocketStream, WebSocketTransport,
        },
    },
    util::BoxedFuture,
};
use tokio_tungstenite::MaybeTlsStream;

/// Connects plain WebSocket relays with `TCP_NODELAY`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoDelayTransport;

impl WebSocketTransport for NoDelayTransport {
    fn support_ping(&self) -> bool {
        true
    }

    fn connect<'a>(
        &'a self,
        url: &'a Url,
        mode: &'a ConnectionMode,
        timeout: Duration,
    ) -> BoxedFuture<'a, Result<(WebSocketSink, WebSocketStream), TransportError>> {
        if url.scheme() != "ws" || *mode != ConnectionMode::Direct {
            return DefaultWebsocketTransport.connect(url, mode, timeout);
        }
        Box::pin(async move {
            let socket = tokio::time::timeout(timeout, connect_plain(url))
                .await
                .map_err(|_| TransportError::backend(Error::Timeout))??;
            let (sink, stream) = socket.split();
            let sink: WebSocketSink = Box::new(ErrorMappedSink(sink));
            let stream: WebSocketStream = Box::pin(stream.map_err(TransportError::backend));
            Ok((sink, stream))
        })
    }
}

async fn connect_plain(url: &Url) -> Result<WebSocket, TransportError> {
    let host = url
        .host_str()
        .ok_or_else(|| TransportError::backend(Error::Url(ParseError::EmptyHost)))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| TransportError::backend(Error::Url(ParseError::InvalidPort)))?;
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(TransportError::backend)?;
    tcp.set_nodelay(true).map_err(TransportError::backend)?;
    let (socket, _response) =
        tokio_tungstenite::client_async(url.as_str(), MaybeTlsStream::Plain(tcp))
            .await
            .map_err(TransportError::backend)?;
    Ok(WebSocket::Tokio(socket))
}

/// The socket's sink with nostr-sdk's error type. Written out rather than
/// `sink_map_err`, whose adapter panics when polled again after an error
/// (rust-nostr issue 984); this one just passes every call through.
struct ErrorMappedSink(SplitSink<WebSocket, Message>);

impl Sink<Message> for ErrorMappedSink {
    type Error = TransportError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready_unpin(cx).map_err(TransportError::backend)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.0
            .start_send_unpin(item)
            .map_err(TransportError::backend)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_flush_unpin(cx).map_err(TransportError::backend)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_close_unpin(cx).map_err(TransportError::backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback WebSocket server that echoes every frame, on any number
    /// of connections.
    async fn echo_server() -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut socket) = tokio_tungstenite::accept_async(tcp).await else {
                        return;
                    };
                    while let Some(Ok(frame)) = socket.next().await {
                        if frame.is_close() || socket.send(frame).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Url::parse(&format!("ws://{address}")).unwrap()
    }

    #[tokio::test]
    async fn a_plain_relay_socket_has_nagle_off() {
        let url = echo_server().await;
        let socket = connect_plain(&url).await.unwrap();
        let WebSocket::Tokio(inner) = &socket;
        let MaybeTlsStream::Plain(tcp) = inner.get_ref() else {
            panic!("a ws:// relay is not TLS")
        };
        assert!(tcp.nodelay().unwrap(), "TCP_NODELAY must be set");
    }

    #[tokio::test]
    async fn frames_written_back_to_back_arrive_in_order() {
        let url = echo_server().await;
        let (mut sink, mut stream) = NoDelayTransport
            .connect(&url, &ConnectionMode::Direct, Duration::from_secs(5))
            .await
            .unwrap();
        let frames = ["[\"REQ\",\"a\",{}]", "[\"CLOSE\",\"a\"]", "[\"EVENT\",{}]"];
        for frame in frames {
            sink.send(Message::Text(frame.into())).await.unwrap();
        }
        for frame in frames {
            let echoed = stream.next().await.unwrap().unwrap();
            assert_eq!(echoed, Message::Text(frame.into()));
        }
    }

    #[tokio::test]
    async fn a_relay_that_is_not_listening_is_an_error_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = Url::parse(&format!("ws://127.0.0.1:{port}")).unwrap();
        let result = NoDelayTransport
            .connect(&url, &ConnectionMode::Direct, Duration::from_secs(5))
            .await;
        assert!(result.is_err());
    }
}
