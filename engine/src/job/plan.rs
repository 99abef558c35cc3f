//! From a validated [`JobSpec`] to the stages that shards run.
//!
//! A job is cut into *stages* wherever its records must be re-partitioned (a
//! key field at the source, or an operator with `partition_by_key`). Every
//! stage runs one *task* per partition; a task owns its operators' Wasm
//! instances and writes its own partition of every output, so each output
//! partition has exactly one writer and its contents depend only on the log.
//! Between stages, records travel through an internal *exchange topic*
//! `_x.<job>.<stage>` with one partition per (upstream, downstream) pair.

use std::collections::{BTreeMap, BTreeSet};

use super::spec::{
    ErrorPolicy, JobSpec, KeySpec, SinkSpec, SpecError, StartPosition, TimeSpec, parse_plugin_ref,
};
use crate::mpack::FieldPath;

/// Where an operator output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Into the next operator of the same task.
    Next,
    /// Into the exchange topic, towards the next stage.
    Exchange,
    /// Into a sink.
    Sink(SinkSpec),
    /// Nowhere: the job maps no sink to this output. Counted.
    Unmapped,
}

/// One operator, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorPlan {
    /// Position in the job's operator list.
    pub index: usize,
    pub plugin_name: String,
    pub plugin_version: String,
    /// The `config` value encoded as MessagePack (empty if none was given).
    pub config: Vec<u8>,
    pub on_error: ErrorPolicy,
    routes: BTreeMap<String, Route>,
    fallback: Route,
}

impl OperatorPlan {
    /// Where output `name` goes.
    pub fn route(&self, name: &str) -> &Route {
        self.routes.get(name).unwrap_or(&self.fallback)
    }

    /// Outputs with an explicit route.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &Route)> {
        self.routes.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// What a stage reads.
#[derive(Debug, Clone, PartialEq)]
pub enum StageInput {
    /// Partition `p` of every source topic (they are co-partitioned).
    Sources {
        topics: Vec<(String, StartPosition)>,
        key: Option<FieldPath>,
        time: Option<FieldPath>,
        max_out_of_orderness_ms: u64,
        idle_timeout_ms: Option<u64>,
    },
    /// Partitions `u * partitions + p` of the exchange topic, for every
    /// upstream partition `u`.
    Exchange {
        topic: String,
        upstream_partitions: u32,
    },
}

/// One stage: its input, its operators, and its exchange output if a later
/// stage follows.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    pub index: usize,
    pub partitions: u32,
    pub input: StageInput,
    pub operators: Vec<OperatorPlan>,
    /// The exchange topic this stage writes and how many partitions the next
    /// stage has.
    pub exchange_out: Option<(String, u32)>,
    /// This stage's partition `p` writes dead letters to partition
    /// `dlq_base + p` of the job's dead-letter topic.
    pub dlq_base: u32,
}

/// A job, cut into stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub job: String,
    pub stages: Vec<StagePlan>,
    pub dlq_topic: String,
    pub dlq_partitions: u32,
    /// Topics the job writes, with their partition counts (created if absent).
    pub output_topics: BTreeMap<String, u32>,
    /// Views the job fills, with their entry bounds.
    pub views: BTreeMap<String, usize>,
}

/// The exchange topic written by `stage`.
pub fn exchange_topic(job: &str, stage: usize) -> String {
    format!("_x.{job}.{stage}")
}

fn err(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        message: message.into(),
    }
}

impl Plan {
    /// Builds the plan. `partitions_of` gives the partition count of an
    /// existing topic.
    pub fn build(
        spec: &JobSpec,
        partitions_of: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Plan, SpecError> {
        spec.validate()?;
        let mut source_partitions = None;
        for (i, s) in spec.sources.iter().enumerate() {
            let n = partitions_of(&s.topic).ok_or_else(|| {
                err(
                    format!("sources[{i}].topic"),
                    format!("topic `{}` does not exist; create it first", s.topic),
                )
            })?;
            match source_partitions {
                None => source_partitions = Some(n),
                Some(m) if m != n => {
                    return Err(err(
                        format!("sources[{i}].topic"),
                        format!(
                            "topic `{}` has {n} partitions but `{}` has {m}; \
                             a job's sources must have the same partition count",
                            s.topic, spec.sources[0].topic
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let p0 = source_partitions.expect("validate() ensures one source");

        // Cut the operator list into stages.
        let mut cuts: Vec<(usize, u32)> = Vec::new(); // (first operator, partitions)
        let rekey_sources = matches!(
            &spec.key,
            KeySpec::Field {
                co_partitioned: false,
                ..
            }
        );
        if rekey_sources {
            cuts.push((0, p0)); // stage 0 has no operators: it only re-keys
        }
        cuts.push((0, p0));
        for (i, op) in spec.operators.iter().enumerate().skip(1) {
            if op.partition_by_key {
                cuts.push((i, op.partitions.unwrap_or(p0)));
            }
        }
        let mut stages = Vec::new();
        let mut dlq_base = 0;
        let stage_count = cuts.len();
        for (s, &(first, partitions)) in cuts.iter().enumerate() {
            let end = if rekey_sources && s == 0 {
                0
            } else {
                cuts.get(s + 1).map_or(spec.operators.len(), |c| c.0)
            };
            let input = if s == 0 {
                StageInput::Sources {
                    topics: spec
                        .sources
                        .iter()
                        .map(|src| (src.topic.clone(), src.start))
                        .collect(),
                    key: match &spec.key {
                        KeySpec::Record => None,
                        KeySpec::Field { field, .. } => Some(FieldPath::parse(field)),
                    },
                    time: match &spec.event_time {
                        TimeSpec::Record => None,
                        TimeSpec::Field { field } => Some(FieldPath::parse(field)),
                    },
                    max_out_of_orderness_ms: spec.max_out_of_orderness_ms,
                    idle_timeout_ms: spec.idle_timeout_ms,
                }
            } else {
                StageInput::Exchange {
                    topic: exchange_topic(&spec.name, s - 1),
                    upstream_partitions: cuts[s - 1].1,
                }
            };
            let last_stage = s + 1 == stage_count;
            let mut operators = Vec::new();
            for i in first..end {
                let op = &spec.operators[i];
                let (name, version) = parse_plugin_ref(&op.plugin)
                    .map_err(|m| err(format!("operators[{i}].plugin"), m))?;
                let config = if op.config.is_null() {
                    Vec::new()
                } else {
                    rmp_serde::to_vec_named(&op.config)
                        .map_err(|e| err(format!("operators[{i}].config"), e.to_string()))?
                };
                let mut routes: BTreeMap<String, Route> = spec
                    .sinks
                    .iter()
                    .map(|(k, v)| (k.clone(), Route::Sink(v.clone())))
                    .collect();
                for (k, v) in &op.sinks {
                    routes.insert(k.clone(), Route::Sink(v.clone()));
                }
                if i + 1 < end {
                    routes.insert("main".into(), Route::Next);
                } else if !last_stage {
                    routes.insert("main".into(), Route::Exchange);
                }
                operators.push(OperatorPlan {
                    index: i,
                    plugin_name: name.to_owned(),
                    plugin_version: version.to_owned(),
                    config,
                    on_error: op.on_error,
                    routes,
                    fallback: Route::Unmapped,
                });
            }
            let exchange_out =
                (!last_stage).then(|| (exchange_topic(&spec.name, s), cuts[s + 1].1));
            stages.push(StagePlan {
                index: s,
                partitions,
                input,
                operators,
                exchange_out,
                dlq_base,
            });
            dlq_base += partitions;
        }

        // Every topic and view is written by one stage only, so each output
        // partition has one writer; and a job never writes what it reads.
        let mut output_topics = BTreeMap::new();
        let mut views = BTreeMap::new();
        let mut topic_stage: BTreeMap<String, usize> = BTreeMap::new();
        let sources: BTreeSet<&str> = spec.sources.iter().map(|s| s.topic.as_str()).collect();
        for stage in &stages {
            for op in &stage.operators {
                for (_, route) in op.routes() {
                    match route {
                        Route::Sink(SinkSpec::Topic { topic }) => {
                            if sources.contains(topic.as_str()) {
                                return Err(err(
                                    "sinks",
                                    format!(
                                        "topic `{topic}` is both a source and a sink of this job"
                                    ),
                                ));
                            }
                            if let Some(&other) = topic_stage.get(topic)
                                && other != stage.index
                            {
                                return Err(err(
                                    "sinks",
                                    format!(
                                        "topic `{topic}` is written by operators on both sides of a re-keying; \
                                         give each stage its own output topic"
                                    ),
                                ));
                            }
                            topic_stage.insert(topic.clone(), stage.index);
                            output_topics.insert(topic.clone(), stage.partitions);
                        }
                        Route::Sink(SinkSpec::View { view, max_entries }) => {
                            if let Some(&n) = views.get(view)
                                && n != *max_entries
                            {
                                return Err(err(
                                    "sinks",
                                    format!(
                                        "view `{view}` is given max_entries {n} and {max_entries}"
                                    ),
                                ));
                            }
                            views.insert(view.clone(), *max_entries);
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(Plan {
            job: spec.name.clone(),
            dlq_topic: spec.dead_letter_topic(),
            dlq_partitions: dlq_base,
            stages,
            output_topics,
            views,
        })
    }

    /// The plugins the job needs, as `(name, version)`.
    pub fn plugins(&self) -> BTreeSet<(String, String)> {
        self.stages
            .iter()
            .flat_map(|s| &s.operators)
            .map(|o| (o.plugin_name.clone(), o.plugin_version.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> JobSpec {
        JobSpec::from_json(json.as_bytes()).unwrap()
    }

    fn four(_: &str) -> Option<u32> {
        Some(4)
    }

    #[test]
    fn single_operator_job_is_one_stage_with_sinks() {
        let plan = Plan::build(
            &spec(
                r#"{"name":"j","sources":[{"topic":"in"}],
                "operators":[{"plugin":"p@1"}],
                "sinks":{"main":{"topic":{"topic":"out"}},"late":"dead_letter"}}"#,
            ),
            &four,
        )
        .unwrap();
        assert_eq!(plan.stages.len(), 1);
        let op = &plan.stages[0].operators[0];
        assert_eq!(
            op.route("main"),
            &Route::Sink(SinkSpec::Topic {
                topic: "out".into()
            })
        );
        assert_eq!(op.route("late"), &Route::Sink(SinkSpec::DeadLetter));
        assert_eq!(op.route("other"), &Route::Unmapped);
        assert_eq!(plan.output_topics["out"], 4);
        assert_eq!(plan.dlq_partitions, 4);
    }

    #[test]
    fn rekeying_cuts_stages_and_routes_main_through_the_exchange() {
        let plan = Plan::build(
            &spec(
                r#"{"name":"j","sources":[{"topic":"in"}],
                "operators":[{"plugin":"a@1"},{"plugin":"b@1"},
                             {"plugin":"c@1","partition_by_key":true,"partitions":2}],
                "sinks":{"main":{"view":{"view":"v"}}}}"#,
            ),
            &four,
        )
        .unwrap();
        assert_eq!(plan.stages.len(), 2);
        let s0 = &plan.stages[0];
        assert_eq!(s0.operators.len(), 2);
        assert_eq!(s0.operators[0].route("main"), &Route::Next);
        assert_eq!(s0.operators[1].route("main"), &Route::Exchange);
        assert_eq!(s0.exchange_out, Some(("_x.j.0".into(), 2)));
        let s1 = &plan.stages[1];
        assert_eq!(s1.partitions, 2);
        assert_eq!(
            s1.input,
            StageInput::Exchange {
                topic: "_x.j.0".into(),
                upstream_partitions: 4
            }
        );
        assert_eq!(s1.dlq_base, 4);
        assert_eq!(plan.dlq_partitions, 6);
    }

    #[test]
    fn a_key_field_adds_a_rekeying_stage_before_the_operators() {
        let plan = Plan::build(
            &spec(
                r#"{"name":"j","sources":[{"topic":"in"}],"key":{"field":{"field":"payer"}},
                "operators":[{"plugin":"a@1"}]}"#,
            ),
            &four,
        )
        .unwrap();
        assert_eq!(plan.stages.len(), 2);
        assert!(plan.stages[0].operators.is_empty());
        assert_eq!(plan.stages[1].operators.len(), 1);
    }

    #[test]
    fn sources_must_exist_and_be_co_partitioned() {
        let j = spec(
            r#"{"name":"j","sources":[{"topic":"a"},{"topic":"b"}],"operators":[{"plugin":"p@1"}]}"#,
        );
        let e = Plan::build(&j, &|t| (t == "a").then_some(4)).unwrap_err();
        assert!(e.message.contains("does not exist"), "{e}");
        let e = Plan::build(&j, &|t| Some(if t == "a" { 4 } else { 8 })).unwrap_err();
        assert!(e.message.contains("same partition count"), "{e}");
    }

    #[test]
    fn a_topic_written_by_two_stages_or_read_and_written_is_refused() {
        let j = spec(
            r#"{"name":"j","sources":[{"topic":"in"}],
            "operators":[{"plugin":"a@1"},{"plugin":"b@1","partition_by_key":true}],
            "sinks":{"alerts":{"topic":{"topic":"out"}}}}"#,
        );
        assert!(
            Plan::build(&j, &four)
                .unwrap_err()
                .message
                .contains("both sides")
        );
        let j = spec(
            r#"{"name":"j","sources":[{"topic":"in"}],
            "operators":[{"plugin":"a@1"}],"sinks":{"main":{"topic":{"topic":"in"}}}}"#,
        );
        assert!(
            Plan::build(&j, &four)
                .unwrap_err()
                .message
                .contains("both a source")
        );
    }
}
