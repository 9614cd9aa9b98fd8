//! Clients of the three testnet services.

pub mod aggregator;
pub mod gateway;
pub mod nostr;
mod relay_socket;
pub mod retry;

pub use aggregator::{AggregatorClient, AggregatorError};
pub use gateway::{GatewayClient, GatewayError, HeadVerifyReport, PinReport};
pub use retry::{LastAnswer, RetryPolicy, TransportError};
