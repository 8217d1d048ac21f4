//! The report laid out once for people: sections of tables, key lines, PromQL, notes and charts.
//! Text, Markdown and HTML differ only in how they print these.

use crate::{
    Report,
    model::{Answer, Chart, QueryUsed, Stats, Unit},
    render::format::{self, DASH, age, mib, opt},
    time_range::promql_duration,
};

pub struct Section {
    pub title: String,
    /// One-line findings, e.g. "most CPU: web-1 (1.200 cores avg)".
    pub findings: Vec<String>,
    pub tables: Vec<Table>,
    pub queries: Vec<QueryUsed>,
    pub notes: Vec<String>,
    pub charts: Vec<Chart>,
}

#[derive(Clone)]
pub struct Table {
    pub caption: Option<String>,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    /// Columns to right-align (numbers).
    pub numeric: Vec<bool>,
}

impl Table {
    fn new(caption: Option<&str>, header: &[(&'static str, bool)]) -> Self {
        Self {
            caption: caption.map(str::to_owned),
            header: header.iter().map(|h| h.0).collect(),
            rows: Vec::new(),
            numeric: header.iter().map(|h| h.1).collect(),
        }
    }
}

/// The heading line: what, where, when.
pub fn heading(report: &Report) -> Vec<String> {
    let r = &report.range.seconds;
    let mut lines = vec![
        format!(
            "Namespace {} — {} to {} (step {}, rate window {})",
            report.namespace,
            report.range.start,
            report.range.end,
            promql_duration(r.step),
            promql_duration(r.rate_window)
        ),
        format!(
            "Prometheus {} (version {}), report generated {}",
            report.prometheus, report.prometheus_version, report.generated_at
        ),
    ];
    if let Some(am) = &report.alertmanager {
        lines.push(format!("Alertmanager {am}"));
    }
    lines
}

fn section<T>(number: usize, answer: &Answer<T>, title: String) -> Section {
    Section {
        title: format!("{number}. {title}"),
        findings: Vec::new(),
        tables: Vec::new(),
        queries: answer.queries.clone(),
        notes: answer.notes.clone(),
        charts: answer.charts.clone(),
    }
}

fn triple(unit: Unit, s: &Stats) -> [String; 3] {
    [opt(unit, s.current), opt(unit, s.avg), opt(unit, s.max)]
}

/// Question 1's requests and limits beside average use, and what stands out.
fn requests_table(pods: &[crate::questions::workload::PodUsage]) -> Table {
    let mut t = Table::new(
        Some("requests and limits (as of the range's end) against average use"),
        &[
            ("POD", false),
            ("CPU AVG", true),
            ("CPU REQ", true),
            ("CPU LIM", true),
            ("MEM AVG", true),
            ("MEM REQ", true),
            ("MEM LIM", true),
            ("FLAGS", false),
        ],
    );
    for p in pods {
        let r = &p.resources;
        t.rows.push(vec![
            p.pod.clone(),
            opt(Unit::Cores, p.cpu.avg),
            opt(Unit::Cores, r.cpu_request),
            opt(Unit::Cores, r.cpu_limit),
            opt(Unit::Bytes, p.memory.avg),
            opt(Unit::Bytes, r.memory_request),
            opt(Unit::Bytes, r.memory_limit),
            p.flags.join(", "),
        ]);
    }
    t
}

pub fn build(report: &Report) -> Vec<Section> {
    let now = report.range.seconds.end;
    let mut out = Vec::new();

    // 1. Workload CPU and memory.
    let a = &report.workload;
    let mut s = section(
        1,
        a,
        format!("CPU and memory of {}", a.data.workload.describe()),
    );
    let mut t = Table::new(
        None,
        &[
            ("POD", false),
            ("CPU NOW", true),
            ("CPU AVG", true),
            ("CPU MAX", true),
            ("MEM NOW", true),
            ("MEM AVG", true),
            ("MEM MAX", true),
        ],
    );
    for p in &a.data.pods {
        let mut row = vec![p.pod.clone()];
        row.extend(triple(Unit::Cores, &p.cpu));
        row.extend(triple(Unit::Bytes, &p.memory));
        t.rows.push(row);
    }
    if !a.data.pods.is_empty() {
        s.findings
            .push(if a.data.cpu_source == a.data.memory_source {
                format!("Source: {}", a.data.cpu_source.describe())
            } else {
                format!(
                    "Source: CPU from {}; memory from {}",
                    a.data.cpu_source.describe(),
                    a.data.memory_source.describe()
                )
            });
        let mut row = vec!["TOTAL".to_owned()];
        row.extend(triple(Unit::Cores, &a.data.total_cpu));
        row.extend(triple(Unit::Bytes, &a.data.total_memory));
        t.rows.push(row);
        s.tables.push(t);
        s.tables.push(requests_table(&a.data.pods));
    }
    out.push(s);

    // 2. CPU ranking.
    let a = &report.pod_cpu;
    let mut s = section(
        2,
        a,
        format!(
            "Pods using the most and the least CPU in {}",
            report.namespace
        ),
    );
    if let (Some(most), Some(least)) = (a.data.ranking.first(), a.data.ranking.last()) {
        s.findings.push(format!(
            "Most CPU: {} ({} cores on average); least: {} ({} cores on average); {} pods ranked",
            most.pod,
            opt(Unit::Cores, most.cpu.avg),
            least.pod,
            opt(Unit::Cores, least.cpu.avg),
            a.data.ranking.len()
        ));
        s.findings
            .push(format!("Source: {}", a.data.source.describe()));
        let mut t = Table::new(
            None,
            &[
                ("#", true),
                ("POD", false),
                ("CPU AVG", true),
                ("CPU NOW", true),
                ("CPU MAX", true),
            ],
        );
        for p in &a.data.ranking {
            t.rows.push(vec![
                p.rank.to_string(),
                p.pod.clone(),
                opt(Unit::Cores, p.cpu.avg),
                opt(Unit::Cores, p.cpu.current),
                opt(Unit::Cores, p.cpu.max),
            ]);
        }
        s.tables.push(t);
    }
    out.push(s);

    // 3. Nodes.
    let a = &report.nodes;
    let mut s = section(3, a, "Node memory and CPU cores".into());
    if !a.data.is_empty() {
        let mut t = Table::new(
            None,
            &[
                ("NODE", false),
                ("CORES", true),
                ("MEM TOTAL", true),
                ("MEM USED", true),
                ("MEM USED %", true),
                ("MEM MAX %", true),
                ("CPU USED %", true),
                ("CPU MAX %", true),
            ],
        );
        for n in &a.data {
            let name = match &n.nodename {
                Some(name) => format!("{name} ({})", n.instance),
                None => n.instance.clone(),
            };
            t.rows.push(vec![
                name,
                opt(Unit::Count, n.cores),
                mib(n.memory_total_bytes),
                mib(n.memory_used_bytes.current),
                opt(Unit::Percent, n.memory_used_percent.current),
                opt(Unit::Percent, n.memory_used_percent.max),
                opt(Unit::Percent, n.cpu_used_percent.current),
                opt(Unit::Percent, n.cpu_used_percent.max),
            ]);
        }
        s.tables.push(t);
    }
    out.push(s);

    // 4. Kubelets.
    let a = &report.kubelets;
    let mut s = section(4, a, "Pods and containers per kubelet".into());
    if !a.data.nodes.is_empty() {
        if let Some(source) = &a.data.source {
            s.findings.push(format!("Source: {source}"));
        }
        let mut t = Table::new(
            None,
            &[("NODE", false), ("PODS", true), ("CONTAINERS", true)],
        );
        for n in &a.data.nodes {
            t.rows.push(vec![
                n.node.clone(),
                opt(Unit::Count, n.pods),
                opt(Unit::Count, n.containers),
            ]);
        }
        s.tables.push(t);
    }
    out.push(s);

    // 5. Network.
    let a = &report.network;
    let mut s = section(5, a, format!("Network per pod in {}", report.namespace));
    if !a.data.is_empty() {
        let mut t = Table::new(
            None,
            &[
                ("POD", false),
                ("RX NOW", true),
                ("RX AVG", true),
                ("RX MAX", true),
                ("TX NOW", true),
                ("TX AVG", true),
                ("TX MAX", true),
            ],
        );
        for p in &a.data {
            let mut row = vec![p.pod.clone()];
            row.extend(triple(Unit::BytesPerSecond, &p.receive));
            row.extend(triple(Unit::BytesPerSecond, &p.transmit));
            t.rows.push(row);
        }
        s.tables.push(t);
    }
    out.push(s);

    // 6. Alerts.
    let a = &report.alerts;
    let mut s = section(6, a, "Active alerts".into());
    let counts = |m: &std::collections::BTreeMap<String, usize>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    s.findings.push(format!(
        "Prometheus firing by severity: {}; pending: {}",
        counts(&a.data.firing_by_severity),
        a.data.pending
    ));
    let alert_table = |caption: &str, rows: &[crate::questions::alerts::AlertRow]| {
        let mut t = Table::new(
            Some(caption),
            &[
                ("ALERT", false),
                ("SEVERITY", false),
                ("STATE", false),
                ("NAMESPACE", false),
                ("SINCE", false),
                ("SUMMARY", false),
            ],
        );
        for r in rows {
            t.rows.push(vec![
                r.alertname.clone(),
                r.severity.clone(),
                r.state.clone(),
                r.namespace.clone().unwrap_or_else(|| DASH.into()),
                r.since
                    .clone()
                    .map(|s| s.chars().take(19).collect())
                    .unwrap_or_else(|| DASH.into()),
                r.summary.clone().unwrap_or_default(),
            ]);
        }
        t
    };
    if !a.data.prometheus.is_empty() {
        s.tables.push(alert_table("Prometheus", &a.data.prometheus));
    }
    if let Some(am) = &a.data.alertmanager {
        s.findings.push(format!(
            "Alertmanager active by severity: {}; {} alert(s) in total",
            counts(&am.active_by_severity),
            am.alerts.len()
        ));
        if !am.alerts.is_empty() {
            s.tables.push(alert_table("Alertmanager", &am.alerts));
        }
    }
    out.push(s);

    // Inventory.
    let a = &report.inventory;
    let inv = &a.data;
    let mut s = section(7, a, "Inventory (kubectl get po,sts,svc,pvc,cm)".into());
    let count = |v: Option<f64>| opt(Unit::Count, v);
    if !inv.pods.is_empty() {
        let mut t = Table::new(
            Some("pods"),
            &[
                ("NAME", false),
                ("READY", true),
                ("STATUS", false),
                ("RESTARTS", true),
                ("AGE", true),
                ("IP", false),
                ("NODE", false),
            ],
        );
        for p in &inv.pods {
            t.rows.push(vec![
                p.name.clone(),
                format!("{}/{}", count(p.ready_containers), count(p.containers)),
                p.phase.clone().unwrap_or_else(|| DASH.into()),
                count(p.restarts),
                age(p.created, now),
                p.ip.clone().unwrap_or_else(|| DASH.into()),
                p.node.clone().unwrap_or_else(|| DASH.into()),
            ]);
        }
        s.tables.push(t);
    }
    if !inv.statefulsets.is_empty() {
        let mut t = Table::new(
            Some("statefulsets"),
            &[("NAME", false), ("READY", true), ("AGE", true)],
        );
        for x in &inv.statefulsets {
            t.rows.push(vec![
                x.name.clone(),
                format!("{}/{}", count(x.ready), count(x.replicas)),
                age(x.created, now),
            ]);
        }
        s.tables.push(t);
    }
    if !inv.services.is_empty() {
        let mut t = Table::new(
            Some("services"),
            &[
                ("NAME", false),
                ("TYPE", false),
                ("CLUSTER-IP", false),
                ("EXTERNAL", false),
                ("AGE", true),
            ],
        );
        for x in &inv.services {
            t.rows.push(vec![
                x.name.clone(),
                x.kind.clone().unwrap_or_else(|| DASH.into()),
                x.cluster_ip.clone().unwrap_or_else(|| DASH.into()),
                x.external.clone().unwrap_or_else(|| "<none>".into()),
                age(x.created, now),
            ]);
        }
        s.tables.push(t);
    }
    if !inv.persistentvolumeclaims.is_empty() {
        let mut t = Table::new(
            Some("persistentvolumeclaims"),
            &[
                ("NAME", false),
                ("STATUS", false),
                ("VOLUME", false),
                ("CAPACITY", true),
                ("ACCESS MODES", false),
                ("STORAGECLASS", false),
                ("AGE", true),
            ],
        );
        for x in &inv.persistentvolumeclaims {
            t.rows.push(vec![
                x.name.clone(),
                x.phase.clone().unwrap_or_else(|| DASH.into()),
                x.volume.clone().unwrap_or_else(|| DASH.into()),
                x.capacity_bytes
                    .map_or_else(|| DASH.into(), |b| format::value(Unit::Bytes, b)),
                x.access_modes.join(","),
                x.storage_class.clone().unwrap_or_else(|| DASH.into()),
                age(x.created, now),
            ]);
        }
        s.tables.push(t);
    }
    if !inv.configmaps.is_empty() {
        let mut t = Table::new(Some("configmaps"), &[("NAME", false), ("AGE", true)]);
        for x in &inv.configmaps {
            t.rows.push(vec![x.name.clone(), age(x.created, now)]);
        }
        s.tables.push(t);
    }
    out.push(s);
    out
}
