//! The report laid out once for people: sections of tables, key lines, PromQL, notes and charts.
//! Text, Markdown and HTML differ only in how they print these.

use crate::{
    Report,
    model::{Answer, Chart, QueryUsed, Stats, Unit, extremes, median},
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
    /// The rows left out, in words: "1,490 more pods (--top 5); every row is in --format json".
    pub omitted: Option<String>,
}

impl Table {
    pub(super) fn new(caption: Option<&str>, header: &[(&'static str, bool)]) -> Self {
        Self {
            caption: caption.map(str::to_owned),
            header: header.iter().map(|h| h.0).collect(),
            rows: Vec::new(),
            numeric: header.iter().map(|h| h.1).collect(),
            omitted: None,
        }
    }
}

/// The rows of a ranked list (first = most) a table leads with: `top` from each end, and
/// what the rest are, in words.
pub fn lead<'a, T>(ranked: &'a [T], top: usize, noun: &str) -> (Vec<&'a T>, Option<String>) {
    let shown = extremes(ranked.len(), top, top);
    let left_out = ranked.len() - shown.len();
    let omitted = (left_out > 0).then(|| {
        format!(
            "… {} more {noun} between them (--top {top} shows {top} from each end); every row is in --format json",
            format::count(left_out)
        )
    });
    (shown.iter().map(|&i| &ranked[i]).collect(), omitted)
}

/// Nodes above which questions 3 and 4 open with a summary across nodes.
const SUMMARY_ABOVE: usize = 10;

/// "min 12.0% (node-x), median 40.2%, max 91.0% (node-y)" over named values.
pub fn spread(values: &[(String, f64)], unit: Unit) -> Option<String> {
    let finite: Vec<&(String, f64)> = values.iter().filter(|v| v.1.is_finite()).collect();
    let min = finite.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
    let max = finite.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let all: Vec<f64> = finite.iter().map(|v| v.1).collect();
    Some(format!(
        "min {} ({}), median {}, max {} ({})",
        format::value(unit, min.1),
        min.0,
        opt(unit, median(&all)),
        format::value(unit, max.1),
        max.0
    ))
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

pub(super) fn section<T>(number: usize, answer: &Answer<T>, title: String) -> Section {
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
fn requests_table(pods: &[&crate::questions::workload::PodUsage]) -> Table {
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

/// Sections 1 to 6, the questions.
pub fn questions(report: &Report) -> Vec<Section> {
    vec![
        workload(report),
        pod_cpu(report),
        nodes(report),
        kubelets(report),
        network(report),
        alerts(report),
    ]
}

/// 1. Workload CPU and memory.
fn workload(report: &Report) -> Section {
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
    // Busiest first, so the table leads with the pods that matter at any size.
    let mut pods: Vec<&crate::questions::workload::PodUsage> = a.data.pods.iter().collect();
    let avg = |p: &crate::questions::workload::PodUsage| p.cpu.avg.unwrap_or(0.0);
    pods.sort_by(|x, y| avg(y).total_cmp(&avg(x)).then(x.pod.cmp(&y.pod)));
    let (pods, omitted) = lead(&pods, report.top, "pods");
    let pods: Vec<&crate::questions::workload::PodUsage> = pods.into_iter().copied().collect();
    for p in &pods {
        let mut row = vec![p.pod.clone()];
        row.extend(triple(Unit::Cores, &p.cpu));
        row.extend(triple(Unit::Bytes, &p.memory));
        t.rows.push(row);
    }
    if !pods.is_empty() {
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
        let mut requests = requests_table(&pods);
        requests.omitted.clone_from(&omitted);
        t.omitted = omitted;
        s.tables.push(t);
        s.tables.push(requests);
    }
    s
}

/// 2. CPU ranking: the busiest and idlest pods.
fn pod_cpu(report: &Report) -> Section {
    let a = &report.pod_cpu;
    let mut s = section(
        2,
        a,
        format!(
            "Pods using the most and the least CPU in {}",
            report.namespace
        ),
    );
    let ranking = &a.data.ranking;
    let (Some(most), Some(least)) = (ranking.first(), ranking.last()) else {
        return s;
    };
    s.findings.push(format!(
        "Most CPU: {} ({} cores on average); least: {} ({} cores on average); {} pods ranked",
        most.pod,
        opt(Unit::Cores, most.cpu.avg),
        least.pod,
        opt(Unit::Cores, least.cpu.avg),
        format::count(ranking.len())
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
    let (rows, omitted) = lead(ranking, report.top, "pods");
    for p in rows {
        t.rows.push(vec![
            p.rank.to_string(),
            p.pod.clone(),
            opt(Unit::Cores, p.cpu.avg),
            opt(Unit::Cores, p.cpu.current),
            opt(Unit::Cores, p.cpu.max),
        ]);
    }
    t.omitted = omitted;
    s.tables.push(t);
    s
}

/// 3. Nodes: fullest first, with a summary across nodes on a large cluster.
fn nodes(report: &Report) -> Section {
    let a = &report.nodes;
    let mut s = section(3, a, "Node memory and CPU cores".into());
    if a.data.is_empty() {
        return s;
    }
    let name = |n: &crate::questions::nodes::NodeUsage| {
        n.nodename.clone().unwrap_or_else(|| n.instance.clone())
    };
    if a.data.len() > SUMMARY_ABOVE {
        let over = |f: &dyn Fn(&crate::questions::nodes::NodeUsage) -> Option<f64>| {
            let values: Vec<(String, f64)> = a
                .data
                .iter()
                .filter_map(|n| Some((name(n), f(n)?)))
                .collect();
            spread(&values, Unit::Percent)
        };
        let count = format::count(a.data.len());
        if let Some(m) = over(&|n| n.memory_used_percent.avg) {
            s.findings
                .push(format!("Memory used across {count} nodes (average): {m}"));
        }
        if let Some(c) = over(&|n| n.cpu_used_percent.avg) {
            s.findings
                .push(format!("CPU used across {count} nodes (average): {c}"));
        }
    }
    let mut t = Table::new(
        None,
        &[
            ("NODE", false),
            ("CORES", true),
            ("MEM TOTAL", true),
            ("MEM USED", true),
            ("MEM %", true),
            ("MEM MAX", true),
            ("CPU %", true),
            ("CPU MAX", true),
        ],
    );
    let (rows, omitted) = lead(&a.data, report.top, "nodes");
    for n in rows {
        t.rows.push(vec![
            name(n),
            opt(Unit::Count, n.cores),
            mib(n.memory_total_bytes),
            mib(n.memory_used_bytes.current),
            opt(Unit::Percent, n.memory_used_percent.current),
            opt(Unit::Percent, n.memory_used_percent.max),
            opt(Unit::Percent, n.cpu_used_percent.current),
            opt(Unit::Percent, n.cpu_used_percent.max),
        ]);
    }
    t.omitted = omitted;
    s.tables.push(t);
    s
}

/// 4. Kubelets: the most loaded first, with a summary across nodes on a large cluster.
fn kubelets(report: &Report) -> Section {
    let a = &report.kubelets;
    let mut s = section(4, a, "Pods and containers per kubelet".into());
    if a.data.nodes.is_empty() {
        return s;
    }
    if let Some(source) = &a.data.source {
        s.findings.push(format!("Source: {source}"));
    }
    let mut nodes: Vec<&crate::questions::kubelets::KubeletLoad> = a.data.nodes.iter().collect();
    let pods = |n: &crate::questions::kubelets::KubeletLoad| n.pods.unwrap_or(0.0);
    nodes.sort_by(|x, y| pods(y).total_cmp(&pods(x)).then(x.node.cmp(&y.node)));
    if nodes.len() > SUMMARY_ABOVE {
        let count = format::count(nodes.len());
        let of = |f: fn(&crate::questions::kubelets::KubeletLoad) -> Option<f64>| {
            let values: Vec<(String, f64)> = nodes
                .iter()
                .filter_map(|n| Some((n.node.clone(), f(n)?)))
                .collect();
            spread(&values, Unit::Count)
        };
        if let Some(p) = of(|n| n.pods) {
            s.findings
                .push(format!("Pods across {count} kubelets: {p}"));
        }
        if let Some(c) = of(|n| n.containers) {
            s.findings
                .push(format!("Containers across {count} kubelets: {c}"));
        }
    }
    let mut t = Table::new(
        None,
        &[("NODE", false), ("PODS", true), ("CONTAINERS", true)],
    );
    let (rows, omitted) = lead(&nodes, report.top, "nodes");
    for n in rows {
        t.rows.push(vec![
            n.node.clone(),
            opt(Unit::Count, n.pods),
            opt(Unit::Count, n.containers),
        ]);
    }
    t.omitted = omitted;
    s.tables.push(t);
    s
}

/// 5. Network: the largest and smallest users.
fn network(report: &Report) -> Section {
    let a = &report.network;
    let mut s = section(5, a, format!("Network per pod in {}", report.namespace));
    if a.data.is_empty() {
        return s;
    }
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
    let (rows, omitted) = lead(&a.data, report.top, "pods");
    for p in rows {
        let mut row = vec![p.pod.clone()];
        row.extend(triple(Unit::BytesPerSecond, &p.receive));
        row.extend(triple(Unit::BytesPerSecond, &p.transmit));
        t.rows.push(row);
    }
    t.omitted = omitted;
    s.tables.push(t);
    s
}

fn severity_counts(m: &std::collections::BTreeMap<String, usize>) -> String {
    if m.is_empty() {
        "none".to_owned()
    } else {
        m.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn alert_table(caption: &str, rows: &[crate::questions::alerts::AlertRow]) -> Table {
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
}

/// 6. Alerts.
fn alerts(report: &Report) -> Section {
    let a = &report.alerts;
    let mut s = section(6, a, "Active alerts".into());
    s.findings.push(format!(
        "Prometheus firing by severity: {}; pending: {}",
        severity_counts(&a.data.firing_by_severity),
        a.data.pending
    ));
    if !a.data.prometheus.is_empty() {
        s.tables.push(alert_table("Prometheus", &a.data.prometheus));
    }
    if let Some(am) = &a.data.alertmanager {
        s.findings.push(format!(
            "Alertmanager active by severity: {}; {} alert(s) in total",
            severity_counts(&am.active_by_severity),
            am.alerts.len()
        ));
        if !am.alerts.is_empty() {
            s.tables.push(alert_table("Alertmanager", &am.alerts));
        }
    }
    s
}

/// The first rows of an inventory table (kubectl's order), and how many more there are.
fn first_rows<'a, T>(items: &'a [T], top: usize, noun: &str) -> (&'a [T], Option<String>) {
    let limit = 2 * top;
    if items.len() <= limit {
        return (items, None);
    }
    let more = format!(
        "… {} more {noun} (--top {top} shows {limit}); every row is in --format json",
        format::count(items.len() - limit)
    );
    (&items[..limit], Some(more))
}

/// 8. Inventory.
pub fn inventory(report: &Report) -> Section {
    let a = &report.inventory;
    let inv = &a.data;
    let mut s = section(8, a, "Inventory (kubectl get po,sts,svc,pvc,cm)".into());
    let now = report.range.seconds.end;
    let top = report.top;
    if !inv.pods.is_empty() {
        s.tables.push(inventory_pods(&inv.pods, now, top));
    }
    if !inv.statefulsets.is_empty() {
        let mut t = Table::new(
            Some("statefulsets"),
            &[("NAME", false), ("READY", true), ("AGE", true)],
        );
        let (rows, omitted) = first_rows(&inv.statefulsets, top, "statefulsets");
        for x in rows {
            t.rows.push(vec![
                x.name.clone(),
                format!("{}/{}", count(x.ready), count(x.replicas)),
                age(x.created, now),
            ]);
        }
        t.omitted = omitted;
        s.tables.push(t);
    }
    if !inv.services.is_empty() {
        s.tables.push(inventory_services(&inv.services, now, top));
    }
    if !inv.persistentvolumeclaims.is_empty() {
        s.tables
            .push(inventory_pvcs(&inv.persistentvolumeclaims, now, top));
    }
    if !inv.configmaps.is_empty() {
        let mut t = Table::new(Some("configmaps"), &[("NAME", false), ("AGE", true)]);
        let (rows, omitted) = first_rows(&inv.configmaps, top, "configmaps");
        for x in rows {
            t.rows.push(vec![x.name.clone(), age(x.created, now)]);
        }
        t.omitted = omitted;
        s.tables.push(t);
    }
    s
}

fn count(v: Option<f64>) -> String {
    opt(Unit::Count, v)
}

fn inventory_pods(pods: &[crate::inventory::PodRow], now: f64, top: usize) -> Table {
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
    let (rows, omitted) = first_rows(pods, top, "pods");
    for p in rows {
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
    t.omitted = omitted;
    t
}

fn inventory_services(services: &[crate::inventory::ServiceRow], now: f64, top: usize) -> Table {
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
    let (rows, omitted) = first_rows(services, top, "services");
    for x in rows {
        t.rows.push(vec![
            x.name.clone(),
            x.kind.clone().unwrap_or_else(|| DASH.into()),
            x.cluster_ip.clone().unwrap_or_else(|| DASH.into()),
            x.external.clone().unwrap_or_else(|| "<none>".into()),
            age(x.created, now),
        ]);
    }
    t.omitted = omitted;
    t
}

fn inventory_pvcs(pvcs: &[crate::inventory::PvcRow], now: f64, top: usize) -> Table {
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
    let (rows, omitted) = first_rows(pvcs, top, "persistentvolumeclaims");
    for x in rows {
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
    t.omitted = omitted;
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_leads_with_both_ends_and_counts_the_rest() {
        let ranked: Vec<usize> = (1..=1500).collect();
        let (rows, omitted) = lead(&ranked, 5, "pods");
        assert_eq!(
            rows,
            [&1, &2, &3, &4, &5, &1496, &1497, &1498, &1499, &1500]
        );
        let omitted = omitted.unwrap();
        assert!(omitted.contains("1,490 more pods"), "{omitted}");
        assert!(omitted.contains("--format json"), "{omitted}");
        let (rows, omitted) = lead(&ranked[..10], 5, "pods");
        assert_eq!(rows.len(), 10);
        assert_eq!(omitted, None);
    }

    #[test]
    fn spread_names_the_extremes_and_the_median() {
        let values: Vec<(String, f64)> = [("a", 30.0), ("b", 10.0), ("c", 20.0), ("d", 90.0)]
            .iter()
            .map(|(n, v)| ((*n).to_owned(), *v))
            .collect();
        assert_eq!(
            spread(&values, Unit::Percent).unwrap(),
            "min 10.0% (b), median 25.0%, max 90.0% (d)"
        );
        assert_eq!(spread(&[], Unit::Percent), None);
    }
}
