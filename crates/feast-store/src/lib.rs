//! Feast-compatible online store on Redis/Valkey.
//!
//! Writes the latest feature values in Feast's own layout (feast 0.67.0, spec
//! `feast-redis-online-store.md`), so Python's `FeatureStore.get_online_features` reads them,
//! plus a JSON document at `feast:<view>:<entity>` for simple consumers.
//!
//! - [`encoding`]: the byte layout, pure (entity key v3, murmur3 field names, protobuf values).
//! - [`OnlineRow`]: one view's values for one entity, and its hash fields / JSON document.
//! - [`OnlineStoreWriter`]: pipelined, newest-wins (by default as the sole writer of its slots;
//!   an atomic Lua check where other writers share them), with retry and metrics.
//! - [`feast_repo_files`]: a feature repo matching what we write, for `feast apply`.

mod conn;
pub mod encoding;
mod error;
mod repo;
mod row;
mod writer;

pub use conn::Endpoint;
pub use encoding::{
    EntityValue, OnlineValue, field_name, murmur3_32, redis_key, redis_key_multi,
    serialize_entity_key_v3,
};
pub use error::FeastStoreError;
pub use repo::{FeatureDtype, ViewSpec, feast_repo_files};
pub use row::{OnlineRow, json_key};
pub use writer::{
    Freshness, MetricsSnapshot, OnlineStoreWriter, RetryPolicy, WriteStats, WriterMetrics,
    WriterOptions,
};
