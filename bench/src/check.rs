//! Correctness beside speed: the expected answer of a workload over a dataset (computed by
//! sluice-gen's reference implementations, untimed) and the comparison of a system's output
//! with it. The runner refuses to report a throughput for an output that does not match.
//!
//! Full outputs are compared as multisets of records (timestamp, key, value): systems may
//! emit in any interleaving across shards, but not a record more or less, nor a different
//! value. Peers that cannot hand back their output (Flink) are compared by row count.

use std::sync::Arc;

use sluice_gen::reference::{self, OutputRecord};

use crate::BenchError;
use crate::dataset::Dataset;
use crate::workload::{Scenario, Workload};

/// What a system hands back for checking.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Every output record.
    Records(Answer),
    /// Only the number of result rows.
    Count(u64),
    /// Not checked, with the number of rows and the reason.
    Unchecked {
        /// Rows produced.
        rows: u64,
        /// Why it is not checked.
        reason: String,
    },
}

impl Output {
    /// Rows produced.
    pub fn rows(&self) -> u64 {
        match self {
            Output::Records(r) => r.len() as u64,
            Output::Count(n) | Output::Unchecked { rows: n, .. } => *n,
        }
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// True = matches; false = wrong; `None` = not checked.
    pub correct: Option<bool>,
    /// Rows the system produced.
    pub rows: u64,
    /// The first difference, or why nothing was checked.
    pub detail: Option<String>,
}

/// Records in a form that sorts and compares exactly: (timestamp, key, value as canonical
/// JSON text), sorted. An answer is kept this way rather than as JSON values, which take
/// several times the memory (a 5 M-event q0 answer: 3.7 M records).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer(Vec<(i64, String, String)>);

impl Answer {
    /// The canonical form of `records`, in any order.
    pub fn of(records: impl IntoIterator<Item = OutputRecord>) -> Answer {
        let mut out = Answer::default();
        records.into_iter().for_each(|r| out.push(r));
        out.finish()
    }

    /// Adds a record (call [`Answer::finish`] after the last).
    pub fn push(&mut self, r: OutputRecord) {
        self.0.push((r.timestamp, r.key, r.value.to_string()));
    }

    /// Puts the records in canonical order.
    pub fn finish(mut self) -> Answer {
        self.0.sort_unstable();
        self
    }

    /// Records in the answer.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if the answer has no records.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The answer a correct system gives for `workload` over `data`, if the harness has a
/// reference for it: the Nexmark queries (sluice-gen `reference::final_results`) and the
/// fraud rules (the generator's ground truth).
pub fn expected(workload: Workload, data: &Dataset) -> Result<Option<Arc<Answer>>, BenchError> {
    Ok(match workload {
        Workload::Nexmark(q) => {
            let events = data.nexmark_events()?;
            let mut answer = Answer::default();
            reference::each_final_result(q, &events, |r| answer.push(r));
            Some(Arc::new(answer.finish()))
        }
        Workload::Scenario(Scenario::FraudRules) => {
            let payments = data.payments()?;
            Some(Arc::new(Answer::of(reference::alert_records(
                &payments.expected,
            ))))
        }
        Workload::Scenario(_) => None,
    })
}

/// Compares `output` with `expected` (`None`: no reference exists for the workload).
pub fn verdict(output: Output, expected: Option<&Answer>) -> Verdict {
    let rows = output.rows();
    let (correct, detail) = match (output, expected) {
        (Output::Unchecked { reason, .. }, _) => (None, Some(reason)),
        (_, None) => (None, Some("no reference answer for this workload".into())),
        (Output::Count(n), Some(want)) => {
            let ok = n == want.len() as u64;
            let detail = (!ok).then(|| format!("{n} result rows, expected {}", want.len()));
            (Some(ok), detail)
        }
        (Output::Records(got), Some(want)) => match first_difference(&got, want) {
            None => (Some(true), None),
            Some(d) => (Some(false), Some(d)),
        },
    };
    Verdict {
        correct,
        rows,
        detail,
    }
}

/// The first record present in one multiset and not the other, described; `None` if equal.
fn first_difference(got: &Answer, want: &Answer) -> Option<String> {
    let (got, want) = (&got.0, &want.0);
    if got == want {
        return None;
    }
    let (mut i, mut j) = (0, 0);
    while i < got.len() && j < want.len() && got[i] == want[j] {
        i += 1;
        j += 1;
    }
    let show = |r: &(i64, String, String)| format!("key {} at {}: {}", r.1, r.0, r.2);
    Some(
        match (got.get(i), want.get(j)) {
            (Some(g), Some(w)) if g < w => format!("unexpected record {}", show(g)),
            (_, Some(w)) => format!("missing record {}", show(w)),
            (Some(g), None) => format!("unexpected record {}", show(g)),
            (None, None) => "outputs differ".into(),
        } + &format!(" ({} records, expected {})", got.len(), want.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(records: Vec<OutputRecord>) -> Answer {
        Answer::of(records)
    }

    fn rec(key: &str, ts: i64, v: u64) -> OutputRecord {
        OutputRecord {
            key: key.into(),
            timestamp: ts,
            value: json!({ "n": v }),
        }
    }

    #[test]
    fn records_in_another_order_are_correct() {
        let want = answer(vec![rec("a", 1, 1), rec("b", 2, 2)]);
        let got = Output::Records(answer(vec![rec("b", 2, 2), rec("a", 1, 1)]));
        assert_eq!(verdict(got, Some(&want)).correct, Some(true));
    }

    #[test]
    fn a_changed_value_is_wrong_and_named() {
        let want = answer(vec![rec("a", 1, 1), rec("b", 2, 2)]);
        let got = Output::Records(answer(vec![rec("a", 1, 1), rec("b", 2, 3)]));
        let v = verdict(got, Some(&want));
        assert_eq!(v.correct, Some(false));
        assert!(v.detail.unwrap().contains("key b"));
    }

    #[test]
    fn counts_are_compared_and_unchecked_output_stays_unchecked() {
        let want = answer(vec![rec("a", 1, 1)]);
        assert_eq!(verdict(Output::Count(1), Some(&want)).correct, Some(true));
        assert_eq!(verdict(Output::Count(2), Some(&want)).correct, Some(false));
        assert_eq!(verdict(Output::Count(2), None).correct, None);
        let unchecked = Output::Unchecked {
            rows: 5,
            reason: "is the reference".into(),
        };
        let v = verdict(unchecked, Some(&want));
        assert_eq!((v.correct, v.rows), (None, 5));
    }
}
