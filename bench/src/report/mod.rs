//! The `report` subcommand: results JSON → Markdown tables and SVG plots.
//!
//! `write_report(results, out)` writes the plots to `out/results/plots/` and the Markdown
//! into `out/RESULTS.md` between [`BEGIN`] and [`END`], leaving everything outside the
//! markers untouched (other sections of bench/RESULTS.md are written by other tools). A
//! missing file is created; a file without the markers gets the region appended.

pub mod markdown;
pub mod plots;

use std::fs;
use std::path::{Path, PathBuf};

use crate::BenchError;
use crate::results;

/// Start of the generated region.
pub const BEGIN: &str = "<!-- sluice-bench:begin -->";
/// End of the generated region.
pub const END: &str = "<!-- sluice-bench:end -->";
/// Markdown file written inside the output directory.
pub const MARKDOWN: &str = "RESULTS.md";
/// Plot directory inside the output directory (and the links' prefix).
pub const PLOTS_DIR: &str = "results/plots";

/// What `write_report` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The Markdown file.
    pub markdown: PathBuf,
    /// Every SVG file written.
    pub plots: Vec<PathBuf>,
}

/// Reads `results` and writes the report into `out` (see the module doc).
pub fn write_report(results_path: &Path, out: &Path) -> Result<Written, BenchError> {
    let mut rows = results::load(results_path)?;
    rows.sort_by(results::report_order);
    let plots_dir = out.join(PLOTS_DIR);
    fs::create_dir_all(&plots_dir)
        .map_err(|e| BenchError::io("creating directory", &plots_dir, e))?;

    type Draw = fn(&[results::Row], &Path) -> Result<bool, BenchError>;
    let mut links = markdown::PlotLinks::default();
    let mut written = Vec::new();
    let kinds: [(&str, Draw); 3] = [
        ("throughput.svg", plots::throughput),
        ("latency-cdf.svg", plots::latency_cdf),
        ("timeline.svg", plots::timeline),
    ];
    for (name, draw) in kinds {
        let path = plots_dir.join(name);
        let link = if draw(&rows, &path)? {
            written.push(path);
            Some(format!("{PLOTS_DIR}/{name}"))
        } else {
            // No data for it any more: do not leave a stale plot behind.
            let _ = fs::remove_file(&path);
            None
        };
        match name {
            "throughput.svg" => links.throughput = link,
            "latency-cdf.svg" => links.latency = link,
            _ => links.timeline = link,
        }
    }

    let name = results_path
        .file_name()
        .map_or_else(|| "results".into(), |n| n.to_string_lossy().into_owned());
    let body = markdown::render(&rows, &format!("results/{name}"), &links);
    let markdown = out.join(MARKDOWN);
    let existing = match fs::read_to_string(&markdown) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(BenchError::io("reading", &markdown, e)),
    };
    let text = splice(existing.as_deref(), &body).map_err(|problem| {
        BenchError::usage(
            markdown.display().to_string(),
            problem,
            format!("leave exactly one `{BEGIN}` followed by one `{END}` line, or remove both"),
        )
    })?;
    fs::write(&markdown, text).map_err(|e| BenchError::io("writing", &markdown, e))?;
    Ok(Written {
        markdown,
        plots: written,
    })
}

/// `existing` with the region between the markers replaced by `body` (markers kept); the
/// region appended if there are no markers; a new document if there is no file.
pub fn splice(existing: Option<&str>, body: &str) -> Result<String, String> {
    let region = format!("{BEGIN}\n{}\n{END}", body.trim_end());
    let Some(text) = existing else {
        return Ok(format!("# Sluice benchmark results\n\n{region}\n"));
    };
    let begins = text.matches(BEGIN).count();
    let ends = text.matches(END).count();
    match (text.find(BEGIN), text.find(END)) {
        (None, None) => {
            let sep = if text.ends_with("\n\n") || text.is_empty() {
                ""
            } else if text.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            Ok(format!("{text}{sep}{region}\n"))
        }
        (Some(b), Some(e)) if begins == 1 && ends == 1 && b < e => {
            Ok(format!("{}{region}{}", &text[..b], &text[e + END.len()..]))
        }
        _ => Err(format!(
            "has {begins} begin and {ends} end markers, or the end comes first"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_the_region() {
        let doc = format!("# R\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n");
        let out = splice(Some(&doc), "new").unwrap();
        assert_eq!(out, format!("# R\n\nbefore\n{BEGIN}\nnew\n{END}\nafter\n"));
        assert_eq!(splice(Some(&out), "new").unwrap(), out);
    }

    #[test]
    fn splice_appends_or_creates_and_rejects_broken_markers() {
        assert_eq!(
            splice(Some("# R\n\nwasm numbers\n"), "x").unwrap(),
            format!("# R\n\nwasm numbers\n\n{BEGIN}\nx\n{END}\n")
        );
        assert!(splice(None, "x").unwrap().contains(BEGIN));
        assert!(splice(Some(&format!("{END}\n{BEGIN}\n")), "x").is_err());
        assert!(splice(Some(&format!("{BEGIN}\n")), "x").is_err());
    }
}
