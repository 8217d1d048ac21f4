// Validates prometheus-operator custom resources (ServiceMonitor, PrometheusRule, ...) against the
// schemas that @kubernetes-models/prometheus-operator generates from the operator's CRD
// openAPIV3Schema (v5.0.1 = prometheus-operator v0.90.1 stripped-down CRDs).
//
// stdin: a JSON array of objects. stdout: one line per object. Exit 1 when any object fails.
// Installed by scripts/install-test-deps under /usr/local/lib/beacon-test-deps (override the
// node_modules directory with BEACON_CRD_MODELS).
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const modules = process.env.BEACON_CRD_MODELS ?? "/usr/local/lib/beacon-test-deps/node_modules";
const objects = JSON.parse(readFileSync(0, "utf8"));
let failed = 0;
for (const obj of objects) {
  const [group, version] = String(obj.apiVersion).split("/");
  const name = `${obj.kind}/${obj.metadata?.name}`;
  if (group !== "monitoring.coreos.com") {
    console.log(`FAIL ${name}: not a monitoring.coreos.com resource (${obj.apiVersion})`);
    failed++;
    continue;
  }
  const file = `${modules}/@kubernetes-models/prometheus-operator/${group}/${version}/${obj.kind}.js`;
  let Model;
  try {
    Model = (await import(pathToFileURL(file).href))[obj.kind];
  } catch (e) {
    console.log(`FAIL ${name}: no schema for ${obj.apiVersion} ${obj.kind} (${e.message})`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`ok ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
