//! The monitoring files in `docs/`: the Grafana dashboard is importable JSON
//! and the Prometheus alert rules are valid rules, and both query only
//! metrics a running server really exports (with a job running, so the
//! per-job series exist). With `promtool` installed, the rules also pass
//! `promtool check rules` and their unit tests, and every dashboard query
//! parses as PromQL; `SLUICE_REQUIRE_PROMTOOL=1` makes a missing promtool a
//! failure.

mod support;
mod systemd_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, get, post_json, send, wait_for};
use systemd_support::repo_root;
use yaml_rust2::{Yaml, YamlLoader};

/// Sample names a real server exports, with a job running.
fn exported_metric_names() -> BTreeSet<String> {
    let s = Server::start(2, |_| {});
    let (st, body) = post_json(
        &s.url("/api/v1/topics"),
        None,
        &json!({"name": "bids", "partitions": 1}),
    );
    assert_eq!(st, 201, "{body}");
    let (st, body) = post_json(
        &s.url("/api/v1/jobs"),
        None,
        &json!({"name": "q0", "sources": [{"topic": "bids"}],
                "operators": [{"plugin": "nexmark@0.1.0", "config": {"query": "q0"}}],
                "sinks": {"main": {"view": {"view": "q0-view"}}}}),
    );
    assert_eq!(st, 201, "{body}");
    let line = br#"{"key":"1","timestamp":1000,"value":{"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","date_time":1000,"extra":""}}}"#;
    let (st, body) = send(
        "POST",
        &s.url("/api/v1/topics/bids/records"),
        None,
        "application/x-ndjson",
        line,
    );
    assert_eq!(st, 200, "{body}");
    // Watermark and view series appear once the job has seen a record.
    wait_for("job q0 to read the record", Duration::from_secs(60), || {
        let (_, j) = get(&s.url("/api/v1/jobs/q0"), None);
        (j["records_in"].as_u64()? >= 1 && !j["watermark"].is_null()).then_some(())
    });
    let text = support::agent()
        .get(&s.url("/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let names: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect();
    for expected in [
        "sluice_job_running",
        "sluice_shard_alive",
        "sluice_log_bytes",
    ] {
        assert!(names.contains(expected), "{expected} not in\n{text}");
    }
    names
}

/// Every `sluice_*` metric name in a PromQL expression. A `[0-9]+` inside
/// a name (the per-shard histograms matched by `__name__=~`) stands for
/// shard 0. `sluice_job` is the label the scrape config gives Sluice's job
/// names (see docs/operations.md), never a metric.
fn metric_names_in(expr: &str) -> Vec<String> {
    let expr = expr.replace("[0-9]+", "0");
    let mut out = Vec::new();
    let mut rest = expr.as_str();
    while let Some(i) = rest.find("sluice_") {
        let glued = rest[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let word = &tail[..end];
        if !glued && word != "sluice_job" {
            out.push(word.to_owned());
        }
        rest = &tail[end..];
    }
    out
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap()
}

/// The alert rules, parsed: (alert name, expr).
fn alert_rules() -> Vec<(String, String)> {
    let docs = YamlLoader::load_from_str(&read("docs/prometheus-alerts.yml"))
        .expect("docs/prometheus-alerts.yml is YAML");
    let groups = docs[0]["groups"].as_vec().expect("a `groups` list");
    assert!(!groups.is_empty());
    let mut rules = Vec::new();
    let mut names = BTreeSet::new();
    for g in groups {
        assert!(g["name"].as_str().is_some(), "a group without a name");
        for r in g["rules"].as_vec().expect("each group has `rules`") {
            let alert = r["alert"].as_str().expect("alerting rules only");
            assert!(names.insert(alert.to_owned()), "{alert} twice");
            let expr = r["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{alert}: no expr"));
            if !r["for"].is_badvalue() {
                let f = r["for"].as_str().unwrap_or_default();
                assert!(
                    f.ends_with('m') || f.ends_with('s') || f.ends_with('h'),
                    "{alert}: `for: {f}`"
                );
            }
            let sev = r["labels"]["severity"].as_str();
            assert!(
                matches!(sev, Some("critical" | "warning")),
                "{alert}: severity {sev:?}"
            );
            for a in ["summary", "description"] {
                assert!(
                    matches!(&r["annotations"][a], Yaml::String(s) if !s.is_empty()),
                    "{alert}: no {a}"
                );
            }
            rules.push((alert.to_owned(), expr.to_owned()));
        }
    }
    rules
}

fn promtool() -> Option<PathBuf> {
    systemd_support::optional_tool("promtool", "SLUICE_REQUIRE_PROMTOOL", "prometheus")
}

fn promtool_ok(promtool: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Dashboard queries with Grafana's variables given plain values.
fn dashboard_queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("every target has a PromQL expr");
            out.push((p["title"].as_str().unwrap().to_owned(), expr.to_owned()));
        }
    }
    out
}

#[test]
fn monitoring_files_query_only_metrics_the_server_exports() {
    let exported = exported_metric_names();
    let dashboard: Value =
        serde_json::from_str(&read("docs/grafana-dashboard.json")).expect("dashboard is JSON");
    let mut used = Vec::new();
    for (title, expr) in dashboard_queries(&dashboard) {
        used.extend(
            metric_names_in(&expr)
                .into_iter()
                .map(|m| (title.clone(), m)),
        );
    }
    for (alert, expr) in alert_rules() {
        used.extend(
            metric_names_in(&expr)
                .into_iter()
                .map(|m| (alert.clone(), m)),
        );
    }
    assert!(used.len() > 20, "{used:?}");
    let unknown: Vec<&(String, String)> =
        used.iter().filter(|(_, m)| !exported.contains(m)).collect();
    assert!(
        unknown.is_empty(),
        "these queries name metrics /metrics does not export: {unknown:?}\nexported: {exported:?}"
    );
}

#[test]
fn grafana_dashboard_is_importable() {
    let d: Value = serde_json::from_str(&read("docs/grafana-dashboard.json")).unwrap();
    assert!(d["title"].is_string() && d["uid"].is_string());
    assert!(d["schemaVersion"].as_u64().unwrap() >= 30);
    assert!(
        d.get("id").is_none_or(Value::is_null),
        "an id would clash on import"
    );
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap();
        assert!(ids.insert(p["id"].as_u64().unwrap()), "{title}: id reused");
        let g = &p["gridPos"];
        assert!(
            g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
            "{title}: wider than the grid"
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for var in expr.split('$').skip(1) {
                let name: String = var
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    name == "__rate_interval" || vars.contains(&name.as_str()),
                    "{title}: ${name} is not a dashboard variable"
                );
            }
        }
    }
    let Some(promtool) = promtool() else { return };
    // Every query parses as PromQL: promtool checks them as recording rules.
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, expr)) in dashboard_queries(&d).iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*")
            .replace("$sluice_job", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: '{}'\n",
            expr.replace('\'', "''")
        ));
    }
    std::fs::write(dir.path().join("dashboard.yml"), rules).unwrap();
    promtool_ok(&promtool, dir.path(), &["check", "rules", "dashboard.yml"]);
}

#[test]
fn prometheus_alerts_are_valid_rules_and_fire_as_documented() {
    let rules = alert_rules();
    assert!(rules.len() >= 10, "{rules:?}");
    let Some(promtool) = promtool() else { return };
    let docs = repo_root().join("docs");
    promtool_ok(
        &promtool,
        &docs,
        &["check", "rules", "prometheus-alerts.yml"],
    );
    promtool_ok(
        &promtool,
        &docs,
        &["test", "rules", "prometheus-alerts.test.yml"],
    );
}
