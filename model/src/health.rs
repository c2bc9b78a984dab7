//! Component health, shown by `GET /health/detailed`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Status of one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Working normally.
    Ok,
    /// Working, but something needs attention (retrying, near capacity).
    Degraded,
    /// Not working.
    Down,
}

/// One component's report.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentHealth {
    /// Overall status.
    pub status: Status,
    /// Figures such as queue depth, lag or last flush time.
    pub figures: serde_json::Map<String, serde_json::Value>,
}

/// Shared registry that components report into; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HealthRegistry {
    inner: Arc<Mutex<BTreeMap<String, ComponentHealth>>>,
}

impl HealthRegistry {
    /// Records a component's current status and figures, replacing its previous report.
    pub fn report(
        &self,
        component: &str,
        status: Status,
        figures: serde_json::Map<String, serde_json::Value>,
    ) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(component.to_string(), ComponentHealth { status, figures });
    }

    /// A copy of every component's last report.
    pub fn snapshot(&self) -> BTreeMap<String, ComponentHealth> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The worst status over all components (`Ok` when none reported).
    pub fn overall(&self) -> Status {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut worst = Status::Ok;
        for c in map.values() {
            worst = match (worst, c.status) {
                (_, Status::Down) | (Status::Down, _) => Status::Down,
                (_, Status::Degraded) | (Status::Degraded, _) => Status::Degraded,
                _ => Status::Ok,
            };
        }
        worst
    }
}
