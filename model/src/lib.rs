//! Shared model of Phoenix: the Arrow schema every stage uses, the configuration structs (with
//! the pipeline graph and its checks), the series-id recipe, the graph-edge traits and the
//! health registry. No I/O and no async runtime live here; every other
//! crate depends on this one and on nothing beside it.

pub mod anomaly;
pub mod config;
pub mod edge;
pub mod health;
pub mod pattern;
pub mod pipeline;
pub mod schema;
pub mod series_id;
pub mod usage;

pub use config::{Config, ConfigError, ConfigIssue, StorageUrl};
pub use edge::{AckToken, Delivery, EdgeError, EdgeReceiver, EdgeSender, Replayable};
pub use health::{HealthRegistry, Status};
pub use schema::metrics_schema;
