//! charts/beacon/README.md documents every value of charts/beacon/values.yaml.
//!
//! The rule (CONTRIBUTING.md repeats it for whoever adds a value):
//! - a *leaf* is a value that is not a non-empty map: a scalar, `null`, `{}`, or any list (a list
//!   is one value; its items are not keys). Non-empty maps are descended into.
//! - every leaf has a row `` | `dotted.key.path` | `default` | description | `` in the table under
//!   `## Values`, with a non-empty description;
//! - the default cell is the value as JSON (`"text"`, `3`, `true`, `null`, `[]`, `{"a": 1}`;
//!   a bare word such as `5m` is read as the string "5m") and must equal the value in values.yaml;
//! - every row names a key that exists (a leaf or a map above leaves), so no row outlives its value.

use std::collections::BTreeMap;

use crate::chart_tools::*;
use serde_json::Value;

/// Dotted paths of every leaf (see the module docs) with its value.
fn leaves(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(&path, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned(), value.clone());
        }
    }
}

/// The value at a dotted path (maps only), if any.
fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(root, |v, key| v.as_object()?.get(key))
}

struct Row {
    line: usize,
    key: String,
    default: String,
    description: String,
}

/// The rows of the table under `## Values`: `| `key` | `default` | description |`.
fn rows(readme: &str) -> Vec<Row> {
    let mut in_values = false;
    let mut rows = Vec::new();
    for (i, line) in readme.lines().enumerate() {
        if let Some(heading) = line.strip_prefix("## ") {
            in_values = heading.trim() == "Values";
            continue;
        }
        if !in_values || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split(" | ")
            .map(str::trim)
            .collect();
        assert!(
            cells.len() >= 3,
            "README.md line {}: a row needs key, default and description: {line}",
            i + 1
        );
        rows.push(Row {
            line: i + 1,
            key: cells[0].trim_matches('`').to_owned(),
            default: cells[1].trim_matches('`').to_owned(),
            description: cells[2..].join(" | "),
        });
    }
    rows
}

/// A default cell read as JSON; a bare word that is not JSON is a string.
fn parse_default(cell: &str) -> Value {
    serde_json::from_str(cell).unwrap_or_else(|_| Value::String(cell.to_owned()))
}

/// Every problem with the README's table against the values, one line each.
fn problems(values: &Value, readme: &str) -> Vec<String> {
    let mut leaf_values = BTreeMap::new();
    leaves("", values, &mut leaf_values);
    let rows = rows(readme);
    let mut problems = Vec::new();
    for (path, value) in &leaf_values {
        if !rows.iter().any(|r| &r.key == path) {
            problems.push(format!(
                "values.yaml `{path}` has no row; add: | `{path}` | `{value}` | <what it does> |"
            ));
        }
    }
    for row in &rows {
        let Some(value) = lookup(values, &row.key) else {
            problems.push(format!(
                "README.md line {}: `{}` is not a key of values.yaml",
                row.line, row.key
            ));
            continue;
        };
        if parse_default(&row.default) != *value {
            problems.push(format!(
                "README.md line {}: `{}` default `{}` differs from values.yaml `{value}`",
                row.line, row.key, row.default
            ));
        }
        if row.description.is_empty() {
            problems.push(format!(
                "README.md line {}: `{}` has no description",
                row.line, row.key
            ));
        }
    }
    problems
}

#[test]
fn every_value_has_a_row_with_its_default_and_a_description() {
    let values = yaml_file(&chart_dir().join("values.yaml"));
    let path = chart_dir().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let problems = problems(&values, &readme);
    assert!(
        problems.is_empty(),
        "{} does not document values.yaml (rule: crates/beacon/tests/chart_readme.rs):\n{}",
        path.display(),
        problems.join("\n")
    );
}

#[test]
fn the_check_catches_missing_stale_wrong_and_undescribed_rows() {
    let values: Value = serde_yaml_ng::from_str(
        "a: 1\nb:\n  c: x\n  d: []\n  e: {}\nf: [1, 2]\ng: null\nh: \"5m\"\n",
    )
    .unwrap();
    let good = "## Values\n\n| key | default | description |\n| --- | --- | --- |\n\
        | `a` | `1` | one |\n| `b` | `{\"c\": \"x\", \"d\": [], \"e\": {}}` | the map |\n\
        | `b.c` | `\"x\"` | c |\n| `b.d` | `[]` | d |\n| `b.e` | `{}` | e |\n\
        | `f` | `[1, 2]` | f |\n| `g` | `null` | g |\n| `h` | `5m` | a bare word is a string |\n";
    assert_eq!(problems(&values, good), Vec::<String>::new());

    let missing = good.replace("| `b.d` | `[]` | d |\n", "");
    assert!(problems(&values, &missing)[0].contains("`b.d` has no row"));
    // Outside the `## Values` section a row does not count.
    let elsewhere = format!("{missing}\n## Other\n\n| `b.d` | `[]` | d |\n");
    assert_eq!(problems(&values, &elsewhere).len(), 1);
    assert!(problems(&values, &elsewhere)[0].contains("`b.d` has no row"));

    let stale = format!("{good}| `b.gone` | `1` | removed |\n");
    assert!(problems(&values, &stale)[0].contains("`b.gone` is not a key"));

    let wrong = good.replace("| `a` | `1` |", "| `a` | `2` |");
    assert!(problems(&values, &wrong)[0].contains("`a` default `2` differs"));
    let wrong_type = good.replace("| `a` | `1` |", "| `a` | `\"1\"` |");
    assert!(problems(&values, &wrong_type)[0].contains("`a` default"));

    let undescribed = good.replace("| `g` | `null` | g |", "| `g` | `null` |  |");
    assert!(problems(&values, &undescribed)[0].contains("`g` has no description"));
}
