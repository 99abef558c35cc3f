//! The leaderboard (running mode) and per-window rankings against
//! hand-checked results, natively through the SDK harness (10 s windows, 2 s
//! out-of-orderness).

use serde_json::{Value, json};
use sluice_sdk::testing::{Harness, Input, Output};
use top_k::TopK;

const W: i64 = 10_000;

fn topk(config: Value) -> Harness<TopK> {
    Harness::<TopK>::new(config)
        .unwrap()
        .with_out_of_orderness(2_000)
}

fn score(contest: &str, player: &str, points: i64, ts: i64) -> Value {
    json!({"player_id": player, "contest_id": contest, "points": points, "ts": ts})
}

fn send(h: &mut Harness<TopK>, scores: &[(&str, &str, i64, i64)]) {
    for &(contest, player, points, ts) in scores {
        h.send(ts, contest, &score(contest, player, points, ts))
            .unwrap();
    }
}

fn triples(out: Vec<Output>) -> Vec<(i64, String, Value)> {
    out.into_iter()
        .map(|o| (o.timestamp, o.key_str(), o.json()))
        .collect()
}

fn standing(contest: &str, player: &str, points: i64, rank: u64, end: i64) -> (i64, String, Value) {
    (
        end - 1,
        format!("{contest}/{player}"),
        json!({"contest_id": contest, "player_id": player, "points": points, "rank": rank, "as_of": end}),
    )
}

fn top(contest: &str, best: &[(&str, i64)], entries: u64, end: i64) -> (i64, String, Value) {
    let list: Vec<Value> = best
        .iter()
        .enumerate()
        .map(|(i, (p, s))| json!({"rank": i + 1, "player_id": p, "points": s}))
        .collect();
    (
        end - 1,
        contest.to_owned(),
        json!({"contest_id": contest, "top": list, "entries": entries,
               "window_start": end - W, "window_end": end}),
    )
}

#[test]
fn the_leaderboard_reports_changed_standings_and_the_top_n_per_window() {
    let mut h = topk(json!({"n": 2}));
    send(
        &mut h,
        &[
            ("c1", "ann", 4, 1_000),
            ("c1", "bob", 6, 2_000),
            ("c2", "zed", 1, 2_500),
            ("c1", "cy", 4, 3_000),
            ("c1", "ann", 2, 9_000),
            ("c1", "bob", 25, 10_500), // next window: not in the first standings
            ("c1", "ann", -2, 9_500),  // out of order, first window
        ],
    );
    h.send(12_000, "c9", &score("c9", "x", 1, 12_000)).unwrap();
    // Watermark 10 000: the first window is reported.
    assert_eq!(
        triples(h.take("main")),
        vec![
            standing("c1", "bob", 6, 1, W),
            standing("c1", "ann", 4, 2, W),
            standing("c1", "cy", 4, 3, W),
            standing("c2", "zed", 1, 1, W),
        ]
    );
    assert_eq!(
        triples(h.take("top")),
        vec![
            top("c1", &[("bob", 6), ("ann", 4)], 3, W),
            top("c2", &[("zed", 1)], 1, W)
        ]
    );
    send(&mut h, &[("c1", "cy", 3, 14_000), ("c1", "dee", 0, 15_000)]);
    h.advance_watermark(2 * W).unwrap();
    // bob 31 (unchanged rank 1), cy 7 moves to 2, ann moves to 3, dee joins.
    assert_eq!(
        triples(h.take("main")),
        vec![
            standing("c1", "bob", 31, 1, 2 * W),
            standing("c1", "cy", 7, 2, 2 * W),
            standing("c1", "ann", 4, 3, 2 * W),
            standing("c1", "dee", 0, 4, 2 * W),
            standing("c9", "x", 1, 1, 2 * W),
        ]
    );
    assert_eq!(
        triples(h.take("top"))[0],
        top("c1", &[("bob", 31), ("cy", 7)], 4, 2 * W)
    );
}

#[test]
fn a_score_for_a_reported_window_goes_to_late_and_counts_nowhere() {
    let mut h = topk(json!({}));
    send(&mut h, &[("c", "a", 1, 1_000), ("c", "a", 1, 12_500)]);
    assert_eq!(h.take("main").len(), 1);
    send(&mut h, &[("c", "b", 50, 5_000)]);
    assert_eq!(h.take("late").len(), 1);
    assert_eq!(h.counter("late_events"), 1);
    h.advance_watermark(i64::MAX).unwrap();
    assert_eq!(
        triples(h.take("main")),
        vec![standing("c", "a", 2, 1, 2 * W)]
    );
}

fn viewers(stream: &str, n: i64, start: i64) -> Value {
    json!({"stream_id": stream, "viewers": n, "window_start": start, "window_end": start + W})
}

fn window_config(phase: &str) -> Value {
    json!({"mode": "window", "phase": phase, "n": 2, "group_field": null,
           "key_field": "stream_id", "score_field": "viewers"})
}

#[test]
fn window_mode_ranks_each_window_on_its_own() {
    let mut h = topk(window_config("final"));
    for (stream, n, ts) in [
        ("s1", 10, 9_999),
        ("s2", 30, 9_999),
        ("s3", 20, 9_999),
        ("s1", 5, 19_999),
    ] {
        h.send(ts, stream, &viewers(stream, n, ts + 1 - W)).unwrap();
    }
    h.advance_watermark(i64::MAX).unwrap();
    let row = |stream: &str, n: i64, rank: u64, start: i64| {
        (
            start + W - 1,
            stream.to_owned(),
            json!({"stream_id": stream, "viewers": n, "rank": rank,
                   "window_start": start, "window_end": start + W}),
        )
    };
    assert_eq!(
        triples(h.take("main")),
        vec![row("s2", 30, 1, 0), row("s3", 20, 2, 0), row("s1", 5, 1, W)]
    );
    let tops = triples(h.take("top"));
    assert_eq!(tops[0].1, "all");
    assert_eq!(
        tops[0].2["top"][1],
        json!({"rank": 2, "stream_id": "s3", "viewers": 20})
    );
    assert_eq!(tops[0].2["entries"], 3);
}

#[test]
fn partial_and_final_phases_give_the_global_top_over_partitions() {
    // Two partitions of streams, each keeps its best two per window.
    let mut parts = [
        topk(window_config("partial")),
        topk(window_config("partial")),
    ];
    let data = [
        [("a1", 50), ("a2", 40), ("a3", 35)],
        [("b1", 45), ("b2", 10), ("b3", 5)],
    ];
    let mut partials: Vec<Output> = Vec::new();
    for (h, streams) in parts.iter_mut().zip(data) {
        for (stream, n) in streams {
            h.send(9_999, stream, &viewers(stream, n, 0)).unwrap();
        }
        h.advance_watermark(i64::MAX).unwrap();
        assert!(h.take("top").is_empty(), "partials send no top lists");
        partials.extend(h.take("main"));
    }
    assert_eq!(partials.len(), 4);
    assert!(
        partials.iter().all(|o| o.key_str() == "all"),
        "keyed by group for re-keying"
    );
    assert_eq!(
        partials[0].json(),
        json!({"stream_id": "a1", "viewers": 50})
    );

    let mut f = Harness::<TopK>::new(window_config("final")).unwrap();
    f.send_batch(
        partials
            .iter()
            .map(|o| Input::raw(o.timestamp, &o.key, o.value.clone())),
    )
    .unwrap();
    f.advance_watermark(i64::MAX).unwrap();
    let ranked: Vec<(String, Value, Value)> = f
        .take("main")
        .iter()
        .map(|o| {
            (
                o.key_str(),
                o.json()["viewers"].clone(),
                o.json()["rank"].clone(),
            )
        })
        .collect();
    assert_eq!(
        ranked,
        vec![
            ("a1".to_string(), json!(50), json!(1)),
            ("b1".to_string(), json!(45), json!(2)),
        ]
    );
}

#[test]
fn snapshot_and_restore_continue_with_identical_output() {
    let script = [
        ("c1", "ann", 4, 1_000),
        ("c1", "bob", 6, 2_000),
        ("c2", "zed", 1, 2_500),
        ("c1", "ann", 9, 11_000),
        ("c1", "cy", 2, 9_500),
        ("c2", "zed", 3, 14_000),
        ("c1", "bob", 1, 25_000),
        ("c1", "ann", 1, 31_000),
    ];
    let config = json!({"n": 2});
    let run = |cut: Option<usize>| {
        let mut h = topk(config.clone());
        let mut out = Vec::new();
        for (i, s) in script.iter().enumerate() {
            if Some(i) == cut {
                let snapshot = h.snapshot().unwrap();
                out.extend(triples(h.take("main")));
                out.extend(triples(h.take("top")));
                h = Harness::<TopK>::restore(config.clone(), &snapshot)
                    .unwrap()
                    .with_out_of_orderness(2_000);
            }
            send(&mut h, &[*s]);
        }
        h.advance_watermark(i64::MAX).unwrap();
        out.extend(triples(h.take("main")));
        out.extend(triples(h.take("top")));
        out.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        out
    };
    let whole = run(None);
    assert!(whole.len() > 10, "{whole:#?}");
    for cut in 1..script.len() {
        assert_eq!(run(Some(cut)), whole, "snapshot before score {cut}");
    }
}

#[test]
fn n_follows_the_config_after_a_restore_but_fields_cannot_change() {
    let mut h = topk(json!({"n": 1}));
    send(&mut h, &[("c", "a", 1, 1_000), ("c", "b", 2, 1_000)]);
    let snapshot = h.snapshot().unwrap();
    let mut r = Harness::<TopK>::restore(json!({"n": 5}), &snapshot).unwrap();
    r.advance_watermark(W).unwrap();
    assert_eq!(
        triples(r.take("top"))[0].2["top"].as_array().unwrap().len(),
        2
    );
    let err = Harness::<TopK>::restore(json!({"score_field": "runs"}), &snapshot)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("can change only `n`"), "{err}");
}

#[test]
fn bad_records_go_to_dlq_and_bounds_and_configs_are_enforced() {
    let mut h = topk(json!({"max_entries_per_group": 2}));
    h.send(
        1,
        "c",
        &json!({"contest_id": "c", "player_id": "p", "points": "many"}),
    )
    .unwrap();
    h.send(2, "c", &json!({"contest_id": "c", "points": 1}))
        .unwrap();
    assert_eq!(h.take("dlq").len(), 2);
    assert_eq!(h.counter("bad_records"), 2);
    assert!(
        h.logs()[1].1.contains("no field `player_id`"),
        "{:?}",
        h.logs()
    );
    send(&mut h, &[("c", "a", 1, 3), ("c", "b", 1, 4)]);
    let err = h
        .send(5, "c", &score("c", "z", 1, 5))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_entries_per_group") && err.contains("entry `z`"),
        "{err}"
    );

    let err = |c: Value| Harness::<TopK>::new(c).err().unwrap().to_string();
    assert_eq!(err(json!({"n": 0})), "n must be 1 to 10000, got 0");
    assert!(err(json!({"phase": "partial"})).contains("needs mode `window`"));
    assert_eq!(
        err(json!({"key_field": ""})),
        "field names must not be empty"
    );
    assert!(err(json!({"mode": "hourly"})).contains("unknown variant"));
}
