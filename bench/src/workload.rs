//! The workloads `run` knows: the bundled Nexmark queries and the showcase scenarios, by the
//! names used in results rows and on the command line.

use std::fmt;
use std::str::FromStr;

use sluice_gen::reference::Query;

use crate::BenchError;
use crate::generate::SourceKind;

/// A showcase scenario workload (SCENARIOS.md), named after the plugin that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// UPI payments through `fraud-rules`.
    FraudRules,
    /// Rides through `surge-pricing`.
    SurgePricing,
    /// Shop events through `sales-rollup`.
    SalesRollup,
    /// Shop events through `sessionize`.
    Sessionize,
    /// Heartbeats: concurrent viewers per stream.
    Viewers,
    /// Scores through `top-k`: the fantasy leaderboard.
    Leaderboard,
}

/// One benchmark workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// A bundled Nexmark query.
    Nexmark(Query),
    /// A showcase scenario.
    Scenario(Scenario),
}

const SCENARIOS: [(Scenario, &str, SourceKind); 6] = [
    (Scenario::FraudRules, "fraud-rules", SourceKind::Payments),
    (Scenario::SurgePricing, "surge-pricing", SourceKind::Rides),
    (Scenario::SalesRollup, "sales-rollup", SourceKind::Shop),
    (Scenario::Sessionize, "sessionize", SourceKind::Shop),
    (Scenario::Viewers, "viewers", SourceKind::Heartbeats),
    (Scenario::Leaderboard, "leaderboard", SourceKind::Scores),
];

impl Workload {
    /// Every workload, Nexmark first, in report order.
    pub fn all() -> Vec<Workload> {
        let nexmark = Query::ALL.into_iter().map(Workload::Nexmark);
        nexmark
            .chain(SCENARIOS.iter().map(|s| Workload::Scenario(s.0)))
            .collect()
    }

    /// The Nexmark workloads.
    pub fn nexmark() -> Vec<Workload> {
        Query::ALL.into_iter().map(Workload::Nexmark).collect()
    }

    /// Parses a comma-separated list; `all`, `nexmark` and `scenarios` name groups.
    pub fn parse_list(list: &str) -> Result<Vec<Workload>, BenchError> {
        let mut out: Vec<Workload> = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let group = match name {
                "all" => Workload::all(),
                "nexmark" => Workload::nexmark(),
                "scenarios" => SCENARIOS.iter().map(|s| Workload::Scenario(s.0)).collect(),
                _ => vec![name.parse()?],
            };
            for w in group {
                if !out.contains(&w) {
                    out.push(w);
                }
            }
        }
        if out.is_empty() {
            return Err(BenchError::usage(
                "--workload",
                "names no workload",
                "give e.g. q5, nexmark, fraud-rules or all",
            ));
        }
        Ok(out)
    }

    /// The generator whose events the workload reads.
    pub fn source(&self) -> SourceKind {
        match self {
            Workload::Nexmark(_) => SourceKind::Nexmark,
            Workload::Scenario(s) => SCENARIOS
                .iter()
                .find(|x| x.0 == *s)
                .map_or(SourceKind::Nexmark, |x| x.2),
        }
    }

    /// Position in report order.
    pub fn order(&self) -> usize {
        Workload::all()
            .iter()
            .position(|w| w == self)
            .unwrap_or(usize::MAX)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::Nexmark(q) => write!(f, "{q}"),
            Workload::Scenario(s) => {
                let name = SCENARIOS.iter().find(|x| x.0 == *s).map_or("?", |x| x.1);
                f.write_str(name)
            }
        }
    }
}

impl FromStr for Workload {
    type Err = BenchError;

    fn from_str(s: &str) -> Result<Workload, BenchError> {
        if let Ok(q) = s.parse::<Query>() {
            return Ok(Workload::Nexmark(q));
        }
        SCENARIOS
            .iter()
            .find(|x| x.1 == s)
            .map(|x| Workload::Scenario(x.0))
            .ok_or_else(|| {
                let names: Vec<String> = Workload::all().iter().map(|w| w.to_string()).collect();
                BenchError::usage(
                    "workload",
                    format!("`{s}` is not a workload"),
                    format!(
                        "use one of {}, or nexmark, scenarios, all",
                        names.join(", ")
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_name_parses_back() {
        for w in Workload::all() {
            assert_eq!(w.to_string().parse::<Workload>().unwrap(), w);
        }
        assert_eq!(Workload::parse_list("q5,nexmark").unwrap().len(), 7);
        assert!(Workload::parse_list("q3").is_err());
    }
}
