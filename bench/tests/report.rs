//! `sluice-bench report`: from a fixture results file to the Markdown region of RESULTS.md
//! (other sections untouched) and well-formed SVG plots.

mod common;

use std::fs;
use std::path::Path;

use common::{arg, bench_ok};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/results.json");

fn report(out: &Path) {
    bench_ok(&["report", "--results", FIXTURE, "--out", arg(out)]);
}

/// A small well-formedness check: every tag closes in order and the root is `<svg>`.
fn assert_well_formed_svg(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let body = text.trim_start();
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => &rest[rest.find("?>").expect("XML declaration closes") + 2..],
        None => body,
    };
    let mut stack: Vec<String> = Vec::new();
    let mut rest = body;
    let mut root = None;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>').expect("every tag closes");
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.starts_with('?') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect();
        if let Some(closing) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(closing.trim()), "in {path:?}");
        } else if !tag.ends_with('/') {
            root.get_or_insert_with(|| name.clone());
            stack.push(name);
        } else {
            root.get_or_insert_with(|| name.clone());
        }
    }
    assert!(stack.is_empty(), "unclosed tags {stack:?} in {path:?}");
    assert_eq!(root.as_deref(), Some("svg"));
    text
}

#[test]
fn report_writes_the_tables_and_keeps_other_sections() {
    let tmp = tempfile::tempdir().unwrap();
    let md_path = tmp.path().join("RESULTS.md");
    fs::write(
        &md_path,
        "# Sluice benchmark results\n\n## Wasm calls\n\nkeep me\n",
    )
    .unwrap();
    report(tmp.path());
    let md = fs::read_to_string(&md_path).unwrap();
    assert!(md.starts_with("# Sluice benchmark results\n\n## Wasm calls\n\nkeep me\n"));
    assert!(md.contains("<!-- sluice-bench:begin -->") && md.contains("<!-- sluice-bench:end -->"));
    assert!(md.contains(
        "| system | mode | shards | events | events/s | events/s per core | p50 ms | p99 ms | \
         p99.9 ms | peak RSS MiB | correct | per core vs flink | per core vs native | per core vs reference |"
    ));
    // q0: sluice at 1.1 M/s per core is 10× Flink's 110 K/s per core and 1.1× the
    // reference's; there is no native row.
    let q0 = md.split("### q0").nth(1).expect("a q0 section");
    let sluice = q0
        .lines()
        .find(|l| l.starts_with("| sluice | in-process |"))
        .expect("a sluice row");
    let cells: Vec<&str> = sluice.split('|').map(str::trim).collect();
    assert_eq!(cells[5], "2.00 M");
    assert_eq!(cells[7], "1.50");
    assert_eq!(cells[11], "✓");
    assert_eq!(cells[12], "10.0×");
    assert_eq!(cells[13], "—");
    assert_eq!(cells[14], "1.10×");
    // The wrong q5 answer shows no throughput and says why.
    let q5 = md.split("### q5").nth(1).expect("a q5 section");
    let flink = q5.lines().find(|l| l.starts_with("| flink |")).unwrap();
    assert!(
        flink.contains("| — | — |") && flink.contains("| ✗ |"),
        "{flink}"
    );
    assert!(q5.contains("12 result rows, expected 13"));
    assert!(md.contains("start-up 12.5 s before the timed runs"));
    assert!(md.contains("includes 1.25 s of fixed job overhead"));
    assert!(md.contains("sluice-bench run --system reference,flink --workload q0,q5"));
    for plot in ["throughput.svg", "latency-cdf.svg", "timeline.svg"] {
        assert!(
            md.contains(&format!("](results/plots/{plot})")),
            "{plot} not embedded"
        );
    }

    // Regenerating changes nothing.
    report(tmp.path());
    assert_eq!(fs::read_to_string(&md_path).unwrap(), md);
}

#[test]
fn report_draws_valid_svg_plots_naming_the_systems() {
    let tmp = tempfile::tempdir().unwrap();
    report(tmp.path());
    let plots = tmp.path().join("results/plots");
    let throughput = assert_well_formed_svg(&plots.join("throughput.svg"));
    assert!(throughput.contains("sluice (in-process, 2 shards)"));
    assert!(throughput.contains("flink (local, 2 shards)"));
    assert!(
        throughput.contains("\nq0\n"),
        "the x axis names the workload"
    );
    let cdf = assert_well_formed_svg(&plots.join("latency-cdf.svg"));
    assert!(cdf.contains("99.9%"));
    assert_well_formed_svg(&plots.join("timeline.svg"));
    // Without a file, one is created with the region.
    let md = fs::read_to_string(tmp.path().join("RESULTS.md")).unwrap();
    assert!(md.starts_with("# Sluice benchmark results\n\n<!-- sluice-bench:begin -->"));
}
