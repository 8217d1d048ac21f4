//! Question 6: active alerts — a count by severity and the list, from Prometheus and, when
//! given, Alertmanager (which also knows silences and inhibitions).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    model::Answer,
    prom_client::{AlertmanagerClient, PromClient},
};

pub const QUESTION: &str = "Active alerts";

/// The PromQL equivalent of what the API lists, for a Grafana panel.
const FIRING_BY_SEVERITY: &str = r#"count by (severity) (ALERTS{alertstate="firing"})"#;
const AM_BY_SEVERITY: &str = r#"sum by (state) (alertmanager_alerts)"#;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Alerts {
    /// Firing alerts in Prometheus per `severity` label (`none` when unlabelled).
    pub firing_by_severity: BTreeMap<String, usize>,
    pub pending: usize,
    pub prometheus: Vec<AlertRow>,
    /// Present when `--alertmanager` was given.
    pub alertmanager: Option<AlertmanagerAlerts>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AlertmanagerAlerts {
    /// Per `severity`, alerts in state `active` (not silenced or inhibited).
    pub active_by_severity: BTreeMap<String, usize>,
    pub alerts: Vec<AlertRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertRow {
    pub alertname: String,
    pub severity: String,
    /// Prometheus: firing/pending. Alertmanager: active/suppressed/unprocessed.
    pub state: String,
    pub namespace: Option<String>,
    pub since: Option<String>,
    pub summary: Option<String>,
}

fn severity(labels: &BTreeMap<String, String>) -> String {
    labels
        .get("severity")
        .cloned()
        .unwrap_or_else(|| "none".into())
}

fn summary(annotations: &BTreeMap<String, String>) -> Option<String> {
    annotations
        .get("summary")
        .or_else(|| annotations.get("description"))
        .or_else(|| annotations.get("message"))
        .map(|s| s.lines().next().unwrap_or_default().to_owned())
}

/// Firing before pending, then by severity (critical first) and name.
fn order(rows: &mut [AlertRow]) {
    let sev = |s: &str| match s {
        "critical" => 0,
        "warning" => 1,
        "info" => 2,
        _ => 3,
    };
    rows.sort_by(|a, b| {
        (a.state != "firing" && a.state != "active")
            .cmp(&(b.state != "firing" && b.state != "active"))
            .then(sev(&a.severity).cmp(&sev(&b.severity)))
            .then(a.alertname.cmp(&b.alertname))
    });
}

pub async fn answer(prom: &PromClient, am: Option<&AlertmanagerClient>) -> Answer<Alerts> {
    let mut answer = Answer::new(QUESTION, Alerts::default());
    answer.uses(
        format!(
            "firing alerts by severity (listed from {}api/v1/alerts)",
            prom.url()
        ),
        FIRING_BY_SEVERITY,
    );
    if let Some(am) = am {
        answer.uses(
            format!(
                "Alertmanager alerts by state (listed from {}api/v2/alerts)",
                am.url()
            ),
            AM_BY_SEVERITY,
        );
    }
    let (from_prom, from_am) = tokio::join!(prom.alerts(), async {
        match am {
            Some(am) => Some(am.alerts().await),
            None => None,
        }
    });
    let alerts = answer.take(from_prom);
    let mut rows: Vec<AlertRow> = alerts
        .into_iter()
        .filter(|a| a.state != "inactive")
        .map(|a| AlertRow {
            alertname: a.labels.get("alertname").cloned().unwrap_or_default(),
            severity: severity(&a.labels),
            state: a.state,
            namespace: a.labels.get("namespace").cloned(),
            since: a.active_at,
            summary: summary(&a.annotations),
        })
        .collect();
    order(&mut rows);
    for row in &rows {
        if row.state == "firing" {
            *answer
                .data
                .firing_by_severity
                .entry(row.severity.clone())
                .or_default() += 1;
        } else {
            answer.data.pending += 1;
        }
    }
    if rows.is_empty() {
        answer.note("Prometheus has no firing or pending alerts; kube-prometheus-stack's Watchdog always fires, so its absence means the stack's rules are not loaded (check ruleSelectorNilUsesHelmValues / the `release` label on PrometheusRules)");
    }
    answer.data.prometheus = rows;

    if let Some(result) = from_am {
        match result {
            Ok(alerts) => {
                let mut rows: Vec<AlertRow> = alerts
                    .into_iter()
                    .map(|a| AlertRow {
                        alertname: a.labels.get("alertname").cloned().unwrap_or_default(),
                        severity: severity(&a.labels),
                        state: a.status.state,
                        namespace: a.labels.get("namespace").cloned(),
                        since: a.starts_at,
                        summary: summary(&a.annotations),
                    })
                    .collect();
                order(&mut rows);
                let mut by_sev = BTreeMap::new();
                for row in rows.iter().filter(|r| r.state == "active") {
                    *by_sev.entry(row.severity.clone()).or_default() += 1;
                }
                answer.data.alertmanager = Some(AlertmanagerAlerts {
                    active_by_severity: by_sev,
                    alerts: rows,
                });
            }
            Err(e) => answer.note(format!("Alertmanager: {e}")),
        }
    }
    answer
}
