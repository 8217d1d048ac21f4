//! beacon's latency exemplars are shown wherever the docs say: the Prometheus that
//! `deploy/monitoring/values.yaml` and the local stack run keeps them, and every dashboard panel
//! on `http_request_duration_seconds` asks Grafana for them. (That they reach Prometheus at
//! all is the report test binary's `exemplars` test.)

use serde_json::Value;

use beacon_testkit::repo_root;

use crate::chart_tools::*;

#[test]
fn exemplar_storage_is_on_where_the_docs_say_and_latency_panels_show_exemplars() {
    let stack = yaml_file(&repo_root().join("deploy/monitoring/values.yaml"));
    let features = arr_of(
        &stack["prometheus"]["prometheusSpec"]["enableFeatures"],
        "prometheus.prometheusSpec.enableFeatures in deploy/monitoring/values.yaml",
    );
    assert!(
        features.iter().any(|f| f == "exemplar-storage"),
        "deploy/monitoring/values.yaml: {features:?}"
    );
    assert!(
        read_repo_file("scripts/local-stack").contains("\"--enable-feature=exemplar-storage\""),
        "scripts/local-stack starts Prometheus without exemplar storage"
    );

    let text = read_repo_file("charts/beacon/files/dashboards/beacon.json");
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut panels: Vec<&Value> = arr_of(&dashboard["panels"], "panels").iter().collect();
    let mut latency_targets = 0;
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            if str_of(&target["expr"], "expr").contains("http_request_duration_seconds_bucket") {
                latency_targets += 1;
                assert_eq!(
                    target["exemplar"], true,
                    "panel {:?}: {target}",
                    panel["title"]
                );
            }
        }
    }
    assert!(latency_targets >= 2, "no latency panels found");
}
