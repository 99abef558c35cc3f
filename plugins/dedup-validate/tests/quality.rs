//! Validation and deduplication against hand-checked results, natively
//! through the SDK harness (10 s horizon, 1 s out-of-orderness).

use dedup_validate::DedupValidate;
use serde_json::{Value, json};
use sluice_sdk::codec;
use sluice_sdk::testing::Harness;

fn config() -> Value {
    json!({"id_field": "txn_id", "window_ms": 10_000, "schema": [
        {"field": "payer", "type": "string", "min": 1, "max": 20},
        {"field": "amount", "type": "integer", "min": 1, "max": 1_000_000},
        {"field": "rate", "type": "number", "required": false, "max": 1.0},
        {"field": "flagged", "type": "bool", "required": false}
    ]})
}

fn quality() -> Harness<DedupValidate> {
    Harness::<DedupValidate>::new(config())
        .unwrap()
        .with_out_of_orderness(1_000)
}

fn payment(id: Value, amount: Value, ts: i64) -> Value {
    json!({"txn_id": id, "payer": "payer-1", "amount": amount, "city": "Pune", "ts": ts})
}

fn passed(h: &mut Harness<DedupValidate>) -> Vec<(i64, String, Value)> {
    h.take("main")
        .into_iter()
        .map(|o| (o.timestamp, o.key_str(), o.json()))
        .collect()
}

#[test]
fn valid_records_pass_through_byte_for_byte() {
    let mut h = quality();
    let value = codec::encode(&payment(json!("t1"), json!(500), 1_000)).unwrap();
    h.send_raw(1_000, "payer-1", &value).unwrap();
    let out = h.take("main");
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].timestamp, out[0].key_str()),
        (1_000, "payer-1".into())
    );
    assert_eq!(out[0].value, value);
    // Integer ids, optional fields present and valid.
    let mut v = payment(json!(77), json!(1), 1_001);
    v["rate"] = json!(0.5);
    v["flagged"] = json!(false);
    h.send(1_001, "payer-1", &v).unwrap();
    assert_eq!(passed(&mut h).len(), 1);
    assert!(h.take("dlq").is_empty());
}

#[test]
fn invalid_records_go_to_dlq_with_the_field_and_the_rule() {
    let mut h = quality();
    let mut cases: Vec<(Value, &str)> = vec![
        (
            payment(json!("t1"), json!(0), 1),
            "field `amount`: value 0 is below min 1",
        ),
        (
            payment(json!("t2"), json!(2_000_000), 2),
            "field `amount`: value 2000000 is above max 1000000",
        ),
        (
            payment(json!("t3"), json!("10"), 3),
            "field `amount` must be an integer, got a value of type string",
        ),
        (
            payment(json!("t4"), json!(null), 4),
            "field `amount` is required but is null",
        ),
        (
            json!({"txn_id": "t5", "amount": 5}),
            "field `payer` is required but is missing",
        ),
        (
            json!({"payer": "p", "amount": 5}),
            "id field `txn_id` is missing",
        ),
        (
            payment(json!([1]), json!(5), 7),
            "id field `txn_id` must be a string or an integer, got a value of type array",
        ),
        (json!([1, 2, 3]), "the value is not a map"),
    ];
    let mut rate = payment(json!("t8"), json!(5), 8);
    rate["rate"] = json!(1.5);
    cases.push((rate, "field `rate`: value 1.5 is above max 1"));
    let mut long = payment(json!("t9"), json!(5), 9);
    long["payer"] = json!("p".repeat(21));
    cases.push((long, "field `payer`: length 21 is above max 20"));
    let mut flag = payment(json!("t10"), json!(5), 10);
    flag["flagged"] = json!(1);
    cases.push((
        flag,
        "field `flagged` must be a bool, got a value of type integer",
    ));

    for (i, (value, _)) in cases.iter().enumerate() {
        h.send(i as i64, format!("k{i}"), value).unwrap();
    }
    assert!(h.take("main").is_empty());
    let dlq = h.take("dlq");
    assert_eq!(dlq.len(), cases.len());
    for (i, (out, (value, reason))) in dlq.iter().zip(&cases).enumerate() {
        assert_eq!((out.timestamp, out.key_str()), (i as i64, format!("k{i}")));
        let letter = out.json();
        assert!(
            letter["reason"].as_str().unwrap().starts_with(reason),
            "case {i}: {}",
            letter["reason"]
        );
        assert_eq!(
            &letter["record"], value,
            "case {i}: the record is embedded as it was"
        );
    }
    assert_eq!(h.counter("invalid"), cases.len() as i64);
}

#[test]
fn duplicates_within_the_horizon_are_dropped_and_counted() {
    let mut h = quality();
    let send = |h: &mut Harness<DedupValidate>, id: &str, ts: i64| {
        h.send(ts, "payer-1", &payment(json!(id), json!(5), ts))
            .unwrap();
    };
    send(&mut h, "a", 10_000);
    send(&mut h, "a", 19_999); // 9 999 later: duplicate
    send(&mut h, "b", 12_000);
    send(&mut h, "a", 9_500); // out of order, 500 earlier: duplicate
    send(&mut h, "a", 20_000); // exactly the horizon later: passes
    send(&mut h, "a", 25_000); // 5 000 after the last pass: duplicate
    let ids: Vec<(i64, Value)> = passed(&mut h)
        .into_iter()
        .map(|(ts, _, v)| (ts, v["txn_id"].clone()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (10_000, json!("a")),
            (12_000, json!("b")),
            (20_000, json!("a"))
        ]
    );
    assert_eq!(h.counter("duplicates"), 3);
    // An invalid duplicate is a dead letter, not a duplicate.
    h.send(20_500, "payer-1", &payment(json!("a"), json!(0), 20_500))
        .unwrap();
    assert_eq!(h.take("dlq").len(), 1);
    assert_eq!(h.counter("duplicates"), 3);
}

#[test]
fn ids_are_forgotten_when_the_watermark_passes_their_horizon() {
    let mut h = quality();
    h.send(1_000, "k", &payment(json!("a"), json!(5), 1_000))
        .unwrap();
    h.send(5_000, "k", &payment(json!("b"), json!(5), 5_000))
        .unwrap();
    assert_eq!(h.operator().remembered(), 2);
    // Watermark 11 999: a (kept at 1 000) is forgotten, b is not.
    h.send(12_999, "k", &payment(json!("c"), json!(5), 12_999))
        .unwrap();
    assert_eq!(h.operator().remembered(), 2, "b and c");
    // A late record of a: judged against what is remembered — it passes.
    h.send(1_500, "k", &payment(json!("a"), json!(5), 1_500))
        .unwrap();
    assert_eq!(passed(&mut h).len(), 4);
    // b's horizon moved with a later pass: the old timer does not forget it.
    h.send(16_000, "k", &payment(json!("b"), json!(5), 16_000))
        .unwrap();
    h.advance_watermark(15_500).unwrap();
    h.send(20_000, "k", &payment(json!("b"), json!(5), 20_000))
        .unwrap();
    assert_eq!(
        h.counter("duplicates"),
        1,
        "b at 20 000 is within 10 s of 16 000"
    );
}

#[test]
fn snapshot_and_restore_continue_identically() {
    let script: Vec<(&str, i64, i64)> = vec![
        ("a", 5, 1_000),
        ("b", 0, 2_000),
        ("a", 5, 3_000),
        ("c", 5, 2_500),
        ("a", 5, 12_000),
        ("b", 5, 13_000),
        ("c", 5, 30_000),
        ("a", 5, 31_000),
        ("c", 5, 32_000),
    ];
    let run = |cut: Option<usize>| {
        let mut h = quality();
        let mut out = Vec::new();
        for (i, &(id, amount, ts)) in script.iter().enumerate() {
            if Some(i) == cut {
                let snapshot = h.snapshot().unwrap();
                out.extend(passed(&mut h));
                h = Harness::<DedupValidate>::restore(config(), &snapshot)
                    .unwrap()
                    .with_out_of_orderness(1_000);
            }
            h.send(ts, "k", &payment(json!(id), json!(amount), ts))
                .unwrap();
        }
        out.extend(passed(&mut h));
        (out, h.take("dlq").len())
    };
    let whole = run(None);
    assert_eq!(whole.0.len(), 6, "{:#?}", whole.0);
    for cut in 1..script.len() {
        let (out, _) = run(Some(cut));
        assert_eq!(out, whole.0, "snapshot before record {cut}");
    }
}

#[test]
fn bad_configs_and_restores_are_refused_with_the_reason() {
    let err = |c: Value| Harness::<DedupValidate>::new(c).err().unwrap().to_string();
    assert!(err(json!({})).contains("missing field `id_field`"));
    assert_eq!(
        err(json!({"id_field": "id", "window_ms": 0})),
        "window_ms must be positive, got 0"
    );
    assert_eq!(
        err(
            json!({"id_field": "id", "schema": [{"field": "a", "type": "integer", "min": 3, "max": 1}]})
        ),
        "schema field `a`: min 3 is above max 1"
    );
    assert!(
        err(json!({"id_field": "id", "schema": [{"field": "id", "type": "string"}]}))
            .contains("declared twice")
    );
    assert!(
        err(json!({"id_field": "id", "schema": [{"field": "a", "type": "date"}]}))
            .contains("unknown variant `date`")
    );
    let mut h = quality();
    h.send(1, "k", &payment(json!("a"), json!(5), 1)).unwrap();
    let snapshot = h.snapshot().unwrap();
    let e = Harness::<DedupValidate>::restore(
        json!({"id_field": "order_id", "window_ms": 10_000}),
        &snapshot,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("can change only its schema"), "{e}");
    // The schema may change: amount 0 is valid without it.
    let mut h = Harness::<DedupValidate>::restore(
        json!({"id_field": "txn_id", "window_ms": 10_000}),
        &snapshot,
    )
    .unwrap();
    h.send(2, "k", &payment(json!("z"), json!(0), 2)).unwrap();
    assert_eq!(h.take("main").len(), 1);
}
