//! The Helm chart in charts/beacon, checked without a cluster: `helm lint`, `helm template` for
//! every toggle combination, the rendered manifests against the Kubernetes schemas
//! (`kubernetes-validate --strict`) and the prometheus-operator CRD schemas (node +
//! @kubernetes-models/prometheus-operator), then assertions on the rendered objects.
//! Missing tools fail the tests with what to install (scripts/install-test-deps).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::chart_tools::*;
use beacon_testkit::{repo_root, require};
use serde_json::{Value, json};

const NAMESPACE: &str = "web";
const RELEASE: &str = "beacon";

/// `helm template` of the chart with `--set`-style arguments (each item is passed as given, e.g.
/// `--set=a=b` or `--set-json=...`); returns the rendered YAML.
fn render_raw(args: &[&str]) -> String {
    run_ok(
        helm()
            .args(["template", RELEASE])
            .arg(chart_dir())
            .args(["--namespace", NAMESPACE])
            .args(args),
    )
}

fn render(args: &[&str]) -> Vec<Value> {
    yaml_docs(&render_raw(args))
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", names(objs)))
}

fn of_kind<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

fn names(objs: &[Value]) -> Vec<String> {
    objs.iter()
        .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
        .collect()
}

fn statefulset(objs: &[Value]) -> &Value {
    find(objs, "StatefulSet", "beacon")
}

fn pod_spec(objs: &[Value]) -> &Value {
    &statefulset(objs)["spec"]["template"]["spec"]
}

fn container<'a>(spec: &'a Value, name: &str) -> &'a Value {
    arr_of(&spec["containers"], "containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn env<'a>(c: &'a Value, name: &str) -> &'a Value {
    arr_of(&c["env"], "env")
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("container {} has no env {name}", c["name"]))
}

/// Asserts that container `c` mounts volume `name` at `path`.
fn assert_mounts(c: &Value, name: &str, path: &str) {
    let mounts = arr_of(&c["volumeMounts"], "volumeMounts");
    assert!(
        mounts
            .iter()
            .any(|m| m["name"] == name && m["mountPath"] == path),
        "{} mounts {name} at {path}: {mounts:?}",
        c["name"]
    );
}

/// `labels` ⊇ `selector` (matchLabels semantics).
fn matches(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("selector map");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Kubernetes `LabelSelector` semantics, as prometheus-operator applies a ServiceMonitor's
/// `selector` to Services: every `matchLabels` pair and every `matchExpressions` requirement
/// (`In`, `NotIn`, `Exists`, `DoesNotExist`) must hold. An empty selector selects everything.
fn selects(selector: &Value, labels: &Value) -> bool {
    let match_labels = selector["matchLabels"].as_object();
    let expressions = selector["matchExpressions"].as_array();
    match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
        && expressions.into_iter().flatten().all(|e| {
            let value = labels.get(str_of(&e["key"], "key"));
            let among = |v: &Value| e["values"].as_array().is_some_and(|vs| vs.contains(v));
            match str_of(&e["operator"], "operator") {
                "In" => value.is_some_and(among),
                "NotIn" => !value.is_some_and(among),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                op => panic!("not a label selector operator: {op}"),
            }
        })
}

#[test]
fn label_selector_evaluator() {
    let labels = json!({"app": "beacon", "beacon.dev/headless": "true"});
    for (selector, expected) in [
        (json!({}), true),
        (json!({"matchLabels": {"app": "beacon"}}), true),
        (json!({"matchLabels": {"app": "other"}}), false),
        (
            json!({"matchLabels": {"app": "beacon", "tier": "x"}}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "beacon.dev/headless", "operator": "DoesNotExist"}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "beacon.dev/metrics", "operator": "DoesNotExist"}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "beacon.dev/headless", "operator": "Exists"}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "beacon"]}]}),
            true,
        ),
        (
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["beacon"]}]}),
            false,
        ),
        (
            json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]}),
            true,
        ),
        (
            json!({"matchLabels": {"app": "beacon"}, "matchExpressions": [{"key": "beacon.dev/headless", "operator": "DoesNotExist"}]}),
            false,
        ),
    ] {
        assert_eq!(selects(&selector, &labels), expected, "{selector}");
    }
}

/// The names of the rendered Services `selector` selects.
fn selected_services<'a>(objs: &'a [Value], selector: &Value) -> Vec<&'a str> {
    of_kind(objs, "Service")
        .into_iter()
        .filter(|svc| selects(selector, &svc["metadata"]["labels"]))
        .map(|svc| str_of(&svc["metadata"]["name"], "name"))
        .collect()
}

/// The client-facing Service exposes only `http`; the admin port (probes and metrics, outside
/// the service port's connection and in-flight limits) is only on the ClusterIP metrics
/// Service, which is the one Service the ServiceMonitor selects.
fn assert_admin_port_only_on_the_metrics_service(objs: &[Value], admin_port: u16, what: &str) {
    let client = find(objs, "Service", "beacon");
    let client_ports = arr_of(&client["spec"]["ports"], "ports");
    assert_eq!(client_ports.len(), 1, "{what}: {client_ports:?}");
    assert_eq!(
        (
            &client_ports[0]["name"],
            &client_ports[0]["port"],
            &client_ports[0]["targetPort"]
        ),
        (&json!("http"), &json!(8000), &json!("http")),
        "{what}: the client Service exposes http only"
    );
    let metrics = find(objs, "Service", "beacon-metrics");
    assert_eq!(metrics["spec"]["type"], "ClusterIP", "{what}");
    assert!(
        metrics["spec"]["clusterIP"].is_null(),
        "{what}: not headless"
    );
    for field in [
        "externalTrafficPolicy",
        "loadBalancerSourceRanges",
        "externalIPs",
    ] {
        assert!(metrics["spec"][field].is_null(), "{what}: metrics {field}");
    }
    assert!(
        metrics["metadata"]["annotations"].is_null(),
        "{what}: service.annotations (load balancer settings) stay on the client Service"
    );
    assert_eq!(
        metrics["spec"]["ports"],
        json!([{"name": "admin", "port": admin_port, "targetPort": "admin", "protocol": "TCP"}]),
        "{what}: the metrics Service exposes admin only"
    );
    assert_eq!(metrics["metadata"]["labels"]["beacon.dev/metrics"], "true");
    for svc in of_kind(objs, "Service") {
        let ports = arr_of(&svc["spec"]["ports"], "ports");
        assert!(
            svc["metadata"]["name"] == "beacon-metrics"
                || ports.iter().all(|p| p["name"] != "admin"),
            "{what}: {} exposes the admin port",
            svc["metadata"]["name"]
        );
    }
    if let Some(sm) = of_kind(objs, "ServiceMonitor").first() {
        assert_eq!(
            selected_services(objs, &sm["spec"]["selector"]),
            ["beacon-metrics"],
            "{what}: the ServiceMonitor selects the metrics Service and no other"
        );
    }
}

/// Validates rendered files with `kubernetes-validate --strict` (Kubernetes OpenAPI schemas).
fn kubernetes_validate(files: &[std::path::PathBuf]) {
    let tool = require("kubernetes-validate", "PyPI package `kubernetes-validate`");
    let out = run_ok(Command::new(tool).args(["--strict", "--quiet"]).args(files));
    assert!(
        !out.contains("ERROR"),
        "kubernetes-validate reported errors:\n{out}"
    );
}

/// Validates monitoring.coreos.com objects against the prometheus-operator CRD schemas.
fn validate_crds(objects: &[Value]) {
    let node = require("node", "Node.js (Debian `nodejs`)");
    let models = std::env::var("BEACON_CRD_MODELS")
        .unwrap_or_else(|_| "/usr/local/lib/beacon-test-deps/node_modules".into());
    let pkg =
        std::path::Path::new(&models).join("@kubernetes-models/prometheus-operator/package.json");
    assert!(
        pkg.is_file(),
        "{} is missing (npm @kubernetes-models/prometheus-operator, the prometheus-operator CRD schemas); {INSTALL_HINT}",
        pkg.display()
    );
    let script = repo_root().join("crates/beacon/tests/packaging/validate-crds.mjs");
    let mut child = Command::new(node)
        .arg(script)
        .env("BEACON_CRD_MODELS", &models)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(objects).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "CRD schema validation failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        objects.len(),
        "{stdout}"
    );
}

#[test]
fn every_toggle_combination_lints_renders_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut custom_resources = Vec::new();
    // The monitoring toggles in all 8 combinations, crossed with the other switches.
    for bits in 0..8u8 {
        let (sm, pr, dash) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
        let persistence = bits % 2 == 0;
        let tests = bits < 4;
        let sets = [
            format!("--set=serviceMonitor.enabled={sm}"),
            format!("--set=prometheusRule.enabled={pr}"),
            format!("--set=dashboards.enabled={dash}"),
            format!("--set=persistence.enabled={persistence}"),
            format!("--set=tests.enabled={tests}"),
        ];
        let args: Vec<&str> = sets.iter().map(String::as_str).collect();
        run_ok(
            helm()
                .args(["lint", "--strict", "--namespace", NAMESPACE])
                .arg(chart_dir())
                .args(&args),
        );
        let yaml = render_raw(&args);
        let objs = yaml_docs(&yaml);
        let count = |kind: &str| of_kind(&objs, kind).len();
        assert_eq!(count("ServiceMonitor"), sm as usize, "{sets:?}");
        assert_eq!(count("PrometheusRule"), pr as usize, "{sets:?}");
        let dashboards = objs
            .iter()
            .filter(|o| {
                o["kind"] == "ConfigMap" && o["metadata"]["labels"]["grafana_dashboard"] == "1"
            })
            .count();
        assert_eq!(dashboards, if dash { 2 } else { 0 }, "{sets:?}");
        assert_eq!(count("Pod"), tests as usize, "{sets:?}");
        assert_eq!(count("StatefulSet"), 1);
        assert_eq!(count("Service"), 3);
        assert_eq!(count("PodDisruptionBudget"), 1);
        let sts = statefulset(&objs);
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"].is_array(),
            persistence,
            "volumeClaimTemplates with persistence.enabled={persistence}"
        );
        if !persistence {
            let data = arr_of(&sts["spec"]["template"]["spec"]["volumes"], "volumes")
                .iter()
                .find(|v| v["name"] == "data")
                .expect("data volume without persistence");
            assert!(data["emptyDir"].is_object());
        }
        custom_resources.extend(
            objs.iter()
                .filter(|o| {
                    str_of(&o["apiVersion"], "apiVersion").starts_with("monitoring.coreos.com/")
                })
                .cloned(),
        );
        let file = dir.path().join(format!("combo-{bits}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        files.push(file);
    }
    // Other value shapes that change the rendered objects.
    for (i, args) in [
        vec!["--set=service.type=ClusterIP", "--set=replicaCount=1"],
        vec!["--set=service.type=NodePort", "--set=service.nodePort=30080"],
        vec!["--set=persistence.storageClassName=fast", "--set-json=persistence.retentionPolicy={\"whenDeleted\":\"Delete\",\"whenScaled\":\"Retain\"}"],
        vec!["--set-json=initData.waitFor.targets=[\"dns:kube-dns.kube-system.svc.cluster.local\",\"tcp:db:5432\"]", "--set=podDisruptionBudget.maxUnavailable=null", "--set=podDisruptionBudget.minAvailable=2"],
        vec!["--set=nameOverride=lighthouse", "--set=image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"],
        PRIVATE_CA.to_vec(),
    ]
    .iter()
    .enumerate()
    {
        run_ok(helm().args(["lint", "--strict"]).arg(chart_dir()).args(args));
        let yaml = render_raw(args);
        let file = dir.path().join(format!("variant-{i}.yaml"));
        std::fs::write(&file, &yaml).unwrap();
        files.push(file);
    }
    kubernetes_validate(&files);
    // kubernetes-validate only warns on custom resources: check them against the CRD schemas.
    assert!(!custom_resources.is_empty());
    validate_crds(&custom_resources);
}

#[test]
fn crd_validation_rejects_a_broken_service_monitor() {
    // The validator must be able to fail: a numeric port name and a malformed interval.
    let objs = render(&[]);
    let mut sm = find(&objs, "ServiceMonitor", "beacon").clone();
    sm["spec"]["endpoints"][0]["port"] = json!(8000);
    sm["spec"]["endpoints"][0]["interval"] = json!("30 seconds");
    let result = std::panic::catch_unwind(|| validate_crds(&[sm]));
    let message = *result
        .expect_err("broken ServiceMonitor passed")
        .downcast::<String>()
        .unwrap();
    assert!(
        message.contains("port") && message.contains("interval"),
        "{message}"
    );
}

#[test]
fn init_containers_run_in_order_and_share_the_volume() {
    let objs = render(&[]);
    let spec = pod_spec(&objs);
    let server = container(spec, "beacon");
    let image = str_of(&server["image"], "image");
    let inits = arr_of(&spec["initContainers"], "initContainers");
    let order: Vec<&str> = inits.iter().map(|c| str_of(&c["name"], "name")).collect();
    assert_eq!(order, ["fetch-0", "write-0", "write-1", "write-2"]);
    for c in inits {
        assert_eq!(c["image"], image, "{} uses the beacon image", c["name"]);
        assert_eq!(c["args"][0], "init");
        assert_mounts(c, "init-data", "/init_data");
    }
    assert_eq!(
        inits[0]["args"],
        json!([
            "init",
            "fetch",
            "http://info.cern.ch",
            "--to=/init_data/index.html",
            "--timeout=30s",
            "--retries=3",
            "--max-bytes=1048576"
        ])
    );
    let lines: Vec<&Value> = inits[1..].iter().map(|c| &c["args"]).collect();
    for (i, line) in ["bla-bla", "whoa", "this is the 14th lab"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            *lines[i],
            json!([
                "init",
                "write",
                "/init_data/example.txt",
                format!("--line={line}"),
                format!("--id=line-{i}")
            ])
        );
    }
    // The shared volume is an emptyDir, read-only for the server, which serves it.
    let volume = arr_of(&spec["volumes"], "volumes")
        .iter()
        .find(|v| v["name"] == "init-data")
        .unwrap();
    assert!(volume["emptyDir"].is_object());
    let mount = arr_of(&server["volumeMounts"], "mounts")
        .iter()
        .find(|m| m["name"] == "init-data")
        .unwrap();
    assert_eq!(mount["mountPath"], "/init_data");
    assert_eq!(mount["readOnly"], true);
    assert_eq!(env(server, "BEACON_INIT_DATA_DIR")["value"], "/init_data");

    // Wait-for targets come first, in one container, before anything is fetched.
    let objs = render(&[
        "--set-json=initData.waitFor.targets=[\"dns:db.web.svc\",\"tcp:db:5432\",\"http://api:8080/readyz\"]",
        "--set-json=initData.fetch=[]",
        "--set-json=initData.write.lines=[\"only line: with a colon # and hash\"]",
    ]);
    let inits = arr_of(&pod_spec(&objs)["initContainers"], "initContainers");
    let order: Vec<&str> = inits.iter().map(|c| str_of(&c["name"], "name")).collect();
    assert_eq!(order, ["wait-0", "write-0"]);
    assert_eq!(
        inits[0]["args"],
        json!([
            "init",
            "wait",
            "dns:db.web.svc",
            "tcp:db:5432",
            "http://api:8080/readyz",
            "--timeout=2m",
            "--interval=2s"
        ])
    );
    assert_eq!(
        inits[1]["args"][3],
        "--line=only line: with a colon # and hash"
    );
}

/// A private CA for https fetches: a ConfigMap volume, its mount and `SSL_CERT_FILE`.
const PRIVATE_CA: [&str; 4] = [
    r#"--set-json=extraVolumes=[{"name":"corp-ca","configMap":{"name":"corp-ca-bundle"}}]"#,
    r#"--set-json=initData.extraEnv=[{"name":"SSL_CERT_FILE","value":"/etc/corp-ca/ca.crt"}]"#,
    r#"--set-json=initData.extraVolumeMounts=[{"name":"corp-ca","mountPath":"/etc/corp-ca","readOnly":true}]"#,
    r#"--set-json=serve.extraVolumeMounts=[{"name":"corp-ca","mountPath":"/etc/corp-ca","readOnly":true}]"#,
];

#[test]
fn extra_env_and_volumes_reach_every_init_container() {
    let mut args = PRIVATE_CA.to_vec();
    args.push(r#"--set-json=initData.waitFor.targets=["https://api.corp:8443/healthz"]"#);
    let objs = render(&args);
    let spec = pod_spec(&objs);
    let volume = arr_of(&spec["volumes"], "volumes")
        .iter()
        .find(|v| v["name"] == "corp-ca")
        .expect("the extra volume is in the pod");
    assert_eq!(volume["configMap"]["name"], "corp-ca-bundle");
    let inits = arr_of(&spec["initContainers"], "initContainers");
    assert_eq!(inits.len(), 5, "wait, fetch and three writes");
    for c in inits.iter().chain([container(spec, "beacon")]) {
        assert_mounts(c, "corp-ca", "/etc/corp-ca");
    }
    for c in inits {
        assert_eq!(env(c, "SSL_CERT_FILE")["value"], "/etc/corp-ca/ca.crt");
        // The chart's own variables stay alongside the user's.
        assert_eq!(env(c, "BEACON_LOG_FORMAT")["value"], "json");
    }
}

#[test]
fn services_and_service_monitor_select_the_pods() {
    let objs = render(&[]);
    let sts = statefulset(&objs);
    let pod_labels = &sts["spec"]["template"]["metadata"]["labels"];
    assert!(matches(&sts["spec"]["selector"]["matchLabels"], pod_labels));
    for label in [
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
        "app.kubernetes.io/managed-by",
        "helm.sh/chart",
    ] {
        for o in &objs {
            assert!(
                o["metadata"]["labels"][label].is_string(),
                "{} lacks label {label}",
                o["metadata"]["name"]
            );
        }
    }

    let service = find(&objs, "Service", "beacon");
    let headless = find(&objs, "Service", "beacon-headless");
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    // The client-facing Service (a public load balancer by default) exposes exactly one port,
    // `http`: the admin port is exempt from the request limits and carries the metrics.
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}])
    );
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(
        headless["spec"]["ports"],
        json!([{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}])
    );
    assert_eq!(sts["spec"]["serviceName"], "beacon-headless");
    let metrics = find(&objs, "Service", "beacon-metrics");
    assert_eq!(of_kind(&objs, "Service").len(), 3, "{:?}", names(&objs));
    for svc in [service, headless, metrics] {
        assert!(
            matches(&svc["spec"]["selector"], pod_labels),
            "{} selects the pods",
            svc["metadata"]["name"]
        );
    }
    let server = container(&sts["spec"]["template"]["spec"], "beacon");
    assert_eq!(server["ports"][0]["name"], "http");
    assert_eq!(server["ports"][0]["containerPort"], 8000);
    // The metrics Service: ClusterIP (inside the cluster only), exactly the admin port, which
    // leads to the container's admin port (outside the service port's connection limit).
    assert_eq!(metrics["spec"]["type"], "ClusterIP");
    assert_eq!(
        metrics["spec"]["ports"],
        json!([{"name": "admin", "port": 8081, "targetPort": "admin", "protocol": "TCP"}])
    );
    assert_eq!(server["ports"][1]["name"], "admin");
    assert_eq!(server["ports"][1]["containerPort"], 8081);

    // The ServiceMonitor selects the metrics Service only: not the client one (no admin port
    // there) nor the headless one (same pods: a double scrape).
    let sm = find(&objs, "ServiceMonitor", "beacon");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(
        sm["spec"]["namespaceSelector"]["matchNames"],
        json!([NAMESPACE])
    );
    assert_eq!(
        selected_services(&objs, &sm["spec"]["selector"]),
        ["beacon-metrics"]
    );
    let endpoint = &sm["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], "admin");
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["interval"], "30s");
    assert_eq!(endpoint["scrapeTimeout"], "10s");
    // job label = the scraped Service's app.kubernetes.io/name = "beacon", what the alert rules
    // select.
    let job_label = str_of(&sm["spec"]["jobLabel"], "jobLabel");
    assert_eq!(metrics["metadata"]["labels"][job_label], "beacon");
    assert_admin_port_only_on_the_metrics_service(&objs, 8081, "defaults");

    // Whatever the client Service looks like, the metrics Service stays ClusterIP with admin only.
    for args in [
        &["--set=service.type=ClusterIP"][..],
        &[
            "--set=service.type=NodePort",
            "--set=service.nodePort=30080",
            "--set=service.externalTrafficPolicy=Local",
        ],
        &[
            "--set-json=service.loadBalancerSourceRanges=[\"10.0.0.0/8\"]",
            "--set=service.annotations.example\\.com/lb=internal",
        ],
        &["--set=serviceMonitor.enabled=false"],
    ] {
        assert_admin_port_only_on_the_metrics_service(&render(args), 8081, &format!("{args:?}"));
    }
    let objs = render(&["--set=service.adminPort=9091"]);
    assert_admin_port_only_on_the_metrics_service(&objs, 9091, "service.adminPort=9091");

    // PDB covers the same pods; dropped for a single replica.
    let pdb = find(&objs, "PodDisruptionBudget", "beacon");
    assert!(matches(&pdb["spec"]["selector"]["matchLabels"], pod_labels));
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(of_kind(&render(&["--set=replicaCount=1"]), "PodDisruptionBudget").is_empty());

    // The release label is configurable (kube-prometheus-stack installed under another name).
    let objs = render(&[
        "--set=serviceMonitor.labels.release=monitoring",
        "--set=prometheusRule.labels.release=monitoring",
    ]);
    assert_eq!(
        find(&objs, "ServiceMonitor", "beacon")["metadata"]["labels"]["release"],
        "monitoring"
    );
    assert_eq!(
        find(&objs, "PrometheusRule", "beacon")["metadata"]["labels"]["release"],
        "monitoring"
    );
    // A service type other than LoadBalancer.
    let objs = render(&["--set=service.type=ClusterIP"]);
    assert_eq!(
        find(&objs, "Service", "beacon")["spec"]["type"],
        "ClusterIP"
    );
}

#[test]
fn statefulset_storage_config_and_env() {
    let objs = render(&[]);
    let sts = statefulset(&objs);
    assert_eq!(sts["spec"]["replicas"], 3);
    let pvcs = arr_of(&sts["spec"]["volumeClaimTemplates"], "volumeClaimTemplates");
    assert_eq!(pvcs.len(), 1);
    let pvc = &pvcs[0];
    assert_eq!(
        pvc["metadata"]["name"], "data",
        "PVC names data-<pod> are what BeaconDataVolumeFillingUp joins on"
    );
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "10Mi");
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    assert!(
        pvc["spec"].get("storageClassName").is_none(),
        "default: the cluster's default StorageClass"
    );
    let spec = &sts["spec"]["template"]["spec"];
    let server = container(spec, "beacon");
    let mounts = arr_of(&server["volumeMounts"], "volumeMounts");
    assert!(
        mounts
            .iter()
            .any(|m| m["name"] == "data" && m["mountPath"] == "/data")
    );
    assert_eq!(env(server, "BEACON_DATA_DIR")["value"], "/data");

    let class = |args: &[&str]| {
        statefulset(&render(args))["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"]
            .clone()
    };
    assert_eq!(
        class(&["--set=persistence.storageClassName=fast-ssd"]),
        "fast-ssd"
    );
    assert_eq!(class(&["--set=persistence.storageClassName=-"]), "");
    let sized = render(&["--set=persistence.size=1Gi"]);
    assert_eq!(
        statefulset(&sized)["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "1Gi"
    );

    // config.json: a directory mount (kubelet never updates subPath mounts, so hot reload needs this).
    let config_mount = mounts
        .iter()
        .find(|m| m["name"] == "config")
        .expect("config mount");
    assert_eq!(config_mount["mountPath"], "/config");
    assert!(
        config_mount.get("subPath").is_none(),
        "a subPath mount is never updated"
    );
    assert_eq!(env(server, "BEACON_CONFIG")["value"], "/config/config.json");
    let volume = arr_of(&spec["volumes"], "volumes")
        .iter()
        .find(|v| v["name"] == "config")
        .unwrap();
    assert_eq!(volume["configMap"]["name"], "beacon");
    let cm = find(&objs, "ConfigMap", "beacon");
    let config: Value = serde_json::from_str(str_of(&cm["data"]["config.json"], "config.json"))
        .expect("config.json is JSON");
    let keys: BTreeSet<&str> = config
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["faults", "message", "settings", "timezone", "title"]),
        "only keys beacon accepts"
    );
    assert_eq!(
        config["faults"],
        serde_json::json!({}),
        "no fault by default"
    );
    assert_eq!(config["timezone"], "Europe/Moscow");
    let custom = render(&[
        "--set=config.timezone=UTC",
        "--set=config.settings.colour=blue",
    ]);
    let config: Value = serde_json::from_str(str_of(
        &find(&custom, "ConfigMap", "beacon")["data"]["config.json"],
        "config",
    ))
    .unwrap();
    assert_eq!(config["timezone"], "UTC");
    assert_eq!(config["settings"]["colour"], "blue");

    // Faults set through values reach config.json in the shape beacon parses.
    let faulty = render(&[
        r#"--set-json=config.faults={"pods": {"1": {"errorRatio": 0.5, "latency": {"min": "600ms", "max": "900ms"}}}}"#,
    ]);
    let text = str_of(
        &find(&faulty, "ConfigMap", "beacon")["data"]["config.json"],
        "config",
    );
    let parsed =
        beacon_serve::config::Config::parse(std::path::Path::new("config.json"), text.as_bytes())
            .expect("beacon accepts the rendered faults");
    assert_eq!(parsed.faults.for_ordinal(Some(1)).error_ratio, 0.5);
    assert!(!parsed.faults.for_ordinal(Some(0)).is_active());

    // Listener, shutdown and downward API.
    assert_eq!(server["args"], json!(["serve"]));
    assert_eq!(env(server, "BEACON_LISTEN")["value"], "0.0.0.0:8000");
    assert_eq!(env(server, "BEACON_SHUTDOWN_DELAY")["value"], "5s");
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
        ("NODE_NAME", "spec.nodeName"),
        ("POD_IP", "status.podIP"),
    ] {
        assert_eq!(
            env(server, name)["valueFrom"]["fieldRef"]["fieldPath"],
            field
        );
    }
    assert_eq!(server["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(server["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(server["startupProbe"]["httpGet"]["path"], "/healthz");
    // Every probe targets the admin port: a named container port whose number is the one
    // beacon is told to serve probes on (BEACON_ADMIN_LISTEN), not the service port.
    let admin_listen = str_of(&env(server, "BEACON_ADMIN_LISTEN")["value"], "admin listen");
    assert_eq!(admin_listen, "0.0.0.0:8081");
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let port = &server[probe]["httpGet"]["port"];
        assert_eq!(port, "admin", "{probe}");
        let named = arr_of(&server["ports"], "ports")
            .iter()
            .find(|p| &p["name"] == port)
            .unwrap_or_else(|| panic!("{probe} names a port the container does not have"));
        assert_eq!(
            format!("0.0.0.0:{}", named["containerPort"]),
            admin_listen,
            "{probe} must reach the port beacon serves probes on"
        );
    }
    let custom = render(&["--set=serve.adminPort=9091"]);
    let custom_server = container(pod_spec(&custom), "beacon");
    assert_eq!(
        env(custom_server, "BEACON_ADMIN_LISTEN")["value"],
        "0.0.0.0:9091"
    );
    assert_eq!(custom_server["ports"][1]["containerPort"], 9091);
    assert!(server["resources"]["requests"]["memory"].is_string());
    assert!(server["resources"]["limits"]["memory"].is_string());
    assert!(
        spec["terminationGracePeriodSeconds"].as_u64().unwrap() > 25,
        "longer than shutdown delay + grace"
    );
}

#[test]
fn every_container_is_locked_down() {
    let objs = render(&["--set-json=initData.waitFor.targets=[\"tcp:db:5432\"]"]);
    let spec = pod_spec(&objs);
    let pod_sc = &spec["securityContext"];
    assert_eq!(pod_sc["runAsNonRoot"], true);
    assert_eq!(pod_sc["runAsUser"], 65532);
    assert_eq!(
        pod_sc["fsGroup"], 65532,
        "the PVC must be writable by uid 65532"
    );
    assert_eq!(pod_sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(spec["automountServiceAccountToken"], false);
    let test_pod = &of_kind(&objs, "Pod")[0]["spec"];
    let all: Vec<&Value> = arr_of(&spec["initContainers"], "init")
        .iter()
        .chain(arr_of(&spec["containers"], "containers"))
        .chain(arr_of(&test_pod["containers"], "test containers"))
        .collect();
    assert_eq!(all.len(), 7, "wait, fetch, 3 writes, server, test pod");
    for c in all {
        let sc = &c["securityContext"];
        let name = &c["name"];
        assert_eq!(sc["runAsNonRoot"], true, "{name}");
        assert_eq!(sc["runAsUser"], 65532, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{name}");
        assert!(sc["capabilities"].get("add").is_none(), "{name}");
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        assert!(
            c["resources"]["limits"]["memory"].is_string(),
            "{name} has a memory limit"
        );
    }
}

#[test]
fn prometheus_rule_embeds_the_rule_file() {
    let file = yaml_file(&chart_dir().join("files/prometheus-rules.yaml"));
    let objs = render(&[]);
    let rule = find(&objs, "PrometheusRule", "beacon");
    let rendered = arr_of(&rule["spec"]["groups"], "groups");
    // The file's groups first, unchanged with the default values; then the generated SLO groups.
    let file_groups = arr_of(&file["groups"], "groups");
    assert_eq!(
        rendered[..file_groups.len()],
        file_groups[..],
        "with the default values the file's groups are embedded unchanged"
    );
    let slo_groups: Vec<&str> = rendered[file_groups.len()..]
        .iter()
        .map(|g| str_of(&g["name"], "group name"))
        .collect();
    assert_eq!(
        slo_groups,
        ["beacon.slo.availability", "beacon.slo.latency"]
    );

    let objs = render(&[
        "--set=nameOverride=lighthouse",
        "--set=prometheusRule.runbookBaseUrl=https://runbooks.example.com/beacon/",
        "--set=prometheusRule.additionalAlertLabels.team=web",
    ]);
    let rule = find(&objs, "PrometheusRule", "beacon-lighthouse");
    let mut alerts = 0;
    for group in arr_of(&rule["spec"]["groups"], "groups") {
        for r in arr_of(&group["rules"], "rules") {
            let Some(alert) = r["alert"].as_str() else {
                // A recording rule of an SLO: selects (or is labelled with) the renamed job.
                let expr = str_of(&r["expr"], "expr");
                assert!(
                    expr.contains("job=\"lighthouse\"") || r["labels"]["job"] == "lighthouse",
                    "{r}"
                );
                continue;
            };
            alerts += 1;
            let expr = str_of(&r["expr"], "expr");
            assert!(
                !expr.contains("job=\"beacon\""),
                "{alert}: job rewritten for nameOverride: {expr}"
            );
            assert!(expr.contains("job=\"lighthouse\""), "{alert}: {expr}");
            assert_eq!(
                r["annotations"]["runbook_url"],
                format!(
                    "https://runbooks.example.com/beacon#{}",
                    alert.to_lowercase()
                )
            );
            assert_eq!(r["labels"]["team"], "web");
            assert!(r["labels"]["severity"].is_string());
        }
    }
    assert_eq!(alerts, 10, "6 from the file, fast and slow burn of 2 SLOs");
    // ... and the ServiceMonitor's job label matches: the scraped Service's app.kubernetes.io/name.
    let sm = find(&objs, "ServiceMonitor", "beacon-lighthouse");
    assert_eq!(
        selected_services(&objs, &sm["spec"]["selector"]),
        ["beacon-lighthouse-metrics"]
    );
    let service = find(&objs, "Service", "beacon-lighthouse-metrics");
    assert_eq!(
        service["metadata"]["labels"]["app.kubernetes.io/name"],
        "lighthouse"
    );

    // Without a jobLabel, prometheus-operator names the job after the scraped Service: the
    // metrics Service, and the rules follow.
    let objs = render(&["--set=serviceMonitor.jobLabel="]);
    assert!(find(&objs, "ServiceMonitor", "beacon")["spec"]["jobLabel"].is_null());
    let rule = find(&objs, "PrometheusRule", "beacon");
    for group in arr_of(&rule["spec"]["groups"], "groups") {
        for r in arr_of(&group["rules"], "rules") {
            if r["record"] == "beacon:slo_objective:ratio" {
                assert_eq!(r["labels"]["job"], "beacon-metrics");
                continue;
            }
            let expr = str_of(&r["expr"], "expr");
            assert!(expr.contains("job=\"beacon-metrics\""), "{expr}");
        }
    }
}

/// `for:` is a value, so a rehearsal renders the chart's own rules with short ones; descriptions
/// that name a duration follow it.
#[test]
fn alert_durations_are_values() {
    let objs = render(&[
        "--set=prometheusRule.for.BeaconConfigReloadFailed=30s",
        "--set=prometheusRule.for.BeaconPodDown=20s",
    ]);
    let rule = find(&objs, "PrometheusRule", "beacon");
    let file = yaml_file(&chart_dir().join("files/prometheus-rules.yaml"));
    let mut seen = 0;
    for (group, file_group) in arr_of(&rule["spec"]["groups"], "groups")
        .iter()
        .zip(arr_of(&file["groups"], "groups"))
    {
        for (r, f) in arr_of(&group["rules"], "rules")
            .iter()
            .zip(arr_of(&file_group["rules"], "rules"))
        {
            let alert = str_of(&r["alert"], "alert");
            let description = str_of(&r["annotations"]["description"], "description");
            match alert {
                "BeaconConfigReloadFailed" => {
                    assert_eq!(r["for"], "30s");
                    seen += 1;
                }
                "BeaconPodDown" => {
                    assert_eq!(r["for"], "20s");
                    assert!(description.contains("for 20s"), "{description}");
                    seen += 1;
                }
                _ => {
                    assert_eq!(r["for"], f["for"], "{alert}");
                    assert_eq!(r["expr"], f["expr"], "{alert}");
                }
            }
        }
    }
    assert_eq!(seen, 2);

    let out = output(
        helm()
            .args(["template", RELEASE])
            .arg(chart_dir())
            .arg("--set=prometheusRule.for.BeaconTypo=1m"),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("prometheusRule.for.BeaconTypo: no alert of that name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The SLO rules are generated from prometheusRule.slo: one ratio per window of the burn-rate
/// pairs and one over the period, alerts per pair, the latency threshold's bucket.
#[test]
fn slo_rules_follow_the_values() {
    let groups = |objs: &[Value]| -> Vec<Value> {
        arr_of(
            &find(objs, "PrometheusRule", "beacon")["spec"]["groups"],
            "groups",
        )
        .iter()
        .filter(|g| str_of(&g["name"], "name").starts_with("beacon.slo."))
        .cloned()
        .collect()
    };
    let names = |group: &Value, key: &str| -> Vec<String> {
        arr_of(&group["rules"], "rules")
            .iter()
            .filter_map(|r| r[key].as_str().map(str::to_owned))
            .collect()
    };
    let defaults = groups(&render(&[]));
    assert_eq!(defaults.len(), 2);
    for (group, slo) in defaults.iter().zip(["availability", "latency"]) {
        let mut records = names(group, "record");
        records.sort();
        let mut expected: Vec<String> = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
            .iter()
            .map(|w| format!("beacon:slo_errors:ratio_rate{w}"))
            .chain([
                "beacon:slo_errors:ratio_period".to_owned(),
                "beacon:slo_objective:ratio".to_owned(),
            ])
            .collect();
        expected.sort();
        assert_eq!(records, expected, "{slo}");
        let title = format!("{}{}", slo[..1].to_uppercase(), &slo[1..]);
        assert_eq!(
            names(group, "alert"),
            [
                format!("Beacon{title}FastBurn"),
                format!("Beacon{title}SlowBurn")
            ]
        );
    }

    let custom = groups(&render(&[
        "--set=prometheusRule.slo.availability.enabled=false",
        "--set=prometheusRule.slo.latency.threshold=1",
        "--set=prometheusRule.slo.latency.objective=95",
        "--set=prometheusRule.slo.period=1h",
        "--set-json=prometheusRule.slo.fastBurn=[{\"factor\":10,\"long\":\"2m\",\"short\":\"10s\"}]",
        "--set-json=prometheusRule.slo.slowBurn=[]",
    ]));
    assert_eq!(custom.len(), 1, "availability turned off");
    let group = &custom[0];
    assert_eq!(group["name"], "beacon.slo.latency");
    assert_eq!(names(group, "alert"), ["BeaconLatencyFastBurn"]);
    for rule in arr_of(&group["rules"], "rules") {
        let expr = str_of(&rule["expr"], "expr");
        match rule["record"].as_str() {
            Some("beacon:slo_objective:ratio") => {
                assert_eq!(expr, "vector(95 / 100)");
                assert_eq!(rule["labels"]["period"], "1h");
            }
            Some(record) => {
                let window = record
                    .strip_prefix("beacon:slo_errors:ratio_rate")
                    .unwrap_or("1h");
                assert!(["2m", "10s", "1h"].contains(&window), "{record}");
                // `le` as beacon exposes the 1 s boundary (OpenMetrics float form).
                assert!(expr.contains("le=\"1.0\"}"), "{expr}");
                assert!(expr.contains(&format!("[{window}]")), "{record}: {expr}");
                assert_eq!(rule["labels"]["slo"], "latency");
            }
            None => {
                assert!(expr.contains("ratio_rate2m{"), "{expr}");
                assert!(expr.contains("ratio_rate10s{"), "{expr}");
                assert!(expr.contains("(1 - 95 / 100) > 10"), "{expr}");
                assert!(!expr.contains(" or"), "one pair, no `or`: {expr}");
            }
        }
    }

    // A factor whose threshold is above 100% bad requests could never fire.
    let out = output(
        helm()
            .args(["template", RELEASE])
            .arg(chart_dir())
            .arg("--set=prometheusRule.slo.availability.objective=90"),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("prometheusRule.slo.fastBurn: a 14.4× burn of the availability objective 90% needs more than 100% bad requests"),
        "{stderr}"
    );
}

#[test]
fn dashboards_are_config_maps_for_the_grafana_sidecar() {
    let objs = render(&[]);
    let maps: Vec<&Value> = of_kind(&objs, "ConfigMap")
        .into_iter()
        .filter(|o| o["metadata"]["labels"].get("grafana_dashboard").is_some())
        .collect();
    assert_eq!(maps.len(), 2);
    for cm in maps {
        assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
        assert_eq!(cm["metadata"]["annotations"]["grafana_folder"], "beacon");
        let data = cm["data"].as_object().unwrap();
        assert_eq!(data.len(), 1);
        let (file, text) = data.iter().next().unwrap();
        let on_disk =
            std::fs::read_to_string(chart_dir().join("files/dashboards").join(file)).unwrap();
        let embedded: Value = serde_json::from_str(str_of(text, file)).expect("dashboard JSON");
        assert_eq!(
            embedded,
            serde_json::from_str::<Value>(&on_disk).unwrap(),
            "{file}"
        );
    }
    let objs = render(&[
        "--set=dashboards.label=my_dashboards",
        "--set=dashboards.labelValue=yes",
        "--set=dashboards.namespace=monitoring",
    ]);
    let maps: Vec<&Value> = of_kind(&objs, "ConfigMap")
        .into_iter()
        .filter(|o| o["metadata"]["labels"]["my_dashboards"] == "yes")
        .collect();
    assert_eq!(maps.len(), 2);
    assert!(
        maps.iter()
            .all(|m| m["metadata"]["namespace"] == "monitoring")
    );
}

#[test]
fn helm_test_hook_waits_for_the_service() {
    let objs = render(&[]);
    let pods = of_kind(&objs, "Pod");
    assert_eq!(pods.len(), 1);
    let pod = pods[0];
    assert_eq!(pod["metadata"]["annotations"]["helm.sh/hook"], "test");
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["image"], container(pod_spec(&objs), "beacon")["image"]);
    let args = arr_of(&c["args"], "args");
    assert_eq!(args[..2], [json!("init"), json!("wait")]);
    assert!(
        args.contains(&json!("http://beacon.web.svc:8000/readyz")),
        "{args:?}"
    );
}

#[test]
fn values_schema_rejects_bad_values() {
    for bad in [
        "--set=replicaCount=three",
        "--set=config.colour=red",
        "--set=service.type=Ingress",
        "--set=serve.logFormat=yaml",
        "--set=initData.waitFor.targets[0]=db:5432",
        "--set=initData.fetch[0].url=ftp://example.com/x",
        "--set=serviceMonitor.interval=30 seconds",
        "--set=unknownTopLevel=1",
        "--set=config.faults.errorRatio=2",
        "--set=config.faults.pods.beacon-1.errorRatio=0.5",
        "--set=prometheusRule.for.BeaconDown=soon",
        "--set=prometheusRule.requestRateWindow=5m",
        // not a bucket boundary of http_request_duration_seconds: the share would be interpolated
        "--set=prometheusRule.slo.latency.threshold=0.3",
        "--set=prometheusRule.slo.availability.objective=100",
        "--set=prometheusRule.slo.period=a month",
        "--set-json=prometheusRule.slo.fastBurn=[{\"factor\":14.4,\"long\":\"1h\"}]",
    ] {
        let out = output(helm().args(["template", RELEASE]).arg(chart_dir()).arg(bad));
        assert!(!out.status.success(), "{bad} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("schema"), "{bad}: {stderr}");
    }
    let out = output(helm().args(["template", RELEASE]).arg(chart_dir()).args([
        "--set=podDisruptionBudget.minAvailable=1",
        "--set=podDisruptionBudget.maxUnavailable=1",
    ]));
    assert!(!out.status.success(), "both PDB fields accepted");
}

#[test]
fn notes_tell_how_to_reach_the_app_grafana_and_alertmanager() {
    let out = run_ok(helm().args(["install", RELEASE]).arg(chart_dir()).args([
        "--namespace",
        NAMESPACE,
        "--dry-run=client",
    ]));
    let notes = &out[out.find("NOTES:").expect("NOTES rendered")..];
    for expected in [
        "kubectl port-forward --namespace web svc/beacon 8000:8000",
        "kubectl port-forward --namespace web svc/beacon-metrics 8081:8081",
        "/init-data/index.html",
        "svc/kube-prometheus-stack-grafana 3000:80",
        "svc/kube-prometheus-stack-alertmanager 9093",
        "svc/kube-prometheus-stack-prometheus 9090",
        "job \"beacon\"",
        "helm test beacon",
    ] {
        assert!(
            notes.contains(expected),
            "NOTES lack {expected:?}:\n{notes}"
        );
    }
}
