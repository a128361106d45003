//! [`Health`]: what `/healthz` reports. Each stage holds a [`StageHealth`] and sets its own
//! components (`model`, `clickhouse`, `kafka`, ...); the process is healthy when every component
//! of every stage is, and an unhealthy report names the failing stages and why.

use crate::StageName;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

type Components = BTreeMap<String, Result<(), String>>;

/// The process's health registry; cheap to clone, shared by every stage and the HTTP endpoint.
#[derive(Debug, Clone, Default)]
pub struct Health {
    stages: Arc<Mutex<BTreeMap<StageName, Components>>>,
}

impl Health {
    /// The handle a stage reports through.
    pub fn stage(&self, name: StageName) -> StageHealth {
        StageHealth { health: self.clone(), name }
    }

    fn set(&self, stage: StageName, component: &str, state: Result<(), String>) {
        if let Ok(mut map) = self.stages.lock() {
            map.entry(stage).or_default().insert(component.to_owned(), state);
        }
    }

    /// The stages with an unhealthy component, upstream first.
    pub fn failing(&self) -> Vec<StageName> {
        let map = self.stages.lock().map(|m| m.clone()).unwrap_or_default();
        map.into_iter().filter(|(_, c)| c.values().any(Result::is_err)).map(|(s, _)| s).collect()
    }

    /// (healthy, JSON body): `{"status": "ok" | "unhealthy", "failing": [stage...], "stages":
    /// {stage: {component: "ok" | reason}}}`.
    pub fn report(&self) -> (bool, serde_json::Value) {
        let map = self.stages.lock().map(|m| m.clone()).unwrap_or_default();
        let failing: Vec<&str> =
            map.iter().filter(|(_, c)| c.values().any(Result::is_err)).map(|(s, _)| s.as_str()).collect();
        let stages: serde_json::Map<String, serde_json::Value> = map
            .iter()
            .map(|(stage, components)| {
                let c: serde_json::Map<String, serde_json::Value> = components
                    .iter()
                    .map(|(k, v)| {
                        let state = v.as_ref().err().map_or(serde_json::json!("ok"), |r| serde_json::json!(r));
                        (k.clone(), state)
                    })
                    .collect();
                (stage.as_str().to_owned(), serde_json::Value::Object(c))
            })
            .collect();
        let healthy = failing.is_empty();
        let status = if healthy { "ok" } else { "unhealthy" };
        (healthy, serde_json::json!({ "status": status, "failing": failing, "stages": stages }))
    }
}

/// One stage's view of [`Health`].
#[derive(Debug, Clone)]
pub struct StageHealth {
    health: Health,
    name: StageName,
}

impl StageHealth {
    /// A handle on a registry of its own (tests, and a stage run without /healthz).
    pub fn detached(name: StageName) -> Self {
        Health::default().stage(name)
    }

    pub fn name(&self) -> StageName {
        self.name
    }

    /// The whole registry: a stage that serves HTTP (serve) answers `/healthz` for the process.
    pub fn registry(&self) -> Health {
        self.health.clone()
    }

    pub fn set_ok(&self, component: &str) {
        self.health.set(self.name, component, Ok(()));
    }

    pub fn set_unhealthy(&self, component: &str, reason: impl Into<String>) {
        self.health.set(self.name, component, Err(reason.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unhealthy_component_names_its_stage_and_reason() {
        let health = Health::default();
        let (ingest, store) = (health.stage(StageName::Ingest), health.stage(StageName::Store));
        ingest.set_ok("running");
        store.set_ok("clickhouse");
        assert!(health.report().0);
        store.set_unhealthy("clickhouse", "ClickHouse unreachable for 61 s");
        let (healthy, body) = health.report();
        assert!(!healthy);
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(body["failing"], serde_json::json!(["store"]));
        assert_eq!(body["stages"]["store"]["clickhouse"], "ClickHouse unreachable for 61 s");
        assert_eq!(body["stages"]["ingest"]["running"], "ok");
        assert_eq!(health.failing(), vec![StageName::Store]);
        store.set_ok("clickhouse");
        assert!(health.report().0 && health.failing().is_empty());
    }
}
