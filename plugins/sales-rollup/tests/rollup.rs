//! Both phases of the sales roll-up against hand-checked results, natively
//! through the SDK harness (10 s windows, 2 s out-of-orderness). The chained
//! test plays the engine: two partial instances (two partitions of users),
//! their outputs merged by time into one final instance.

use sales_rollup::SalesRollup;
use serde_json::{Value, json};
use sluice_sdk::testing::{Harness, Input, Output};

const W: i64 = 10_000;

fn phase(phase: &str) -> Harness<SalesRollup> {
    Harness::<SalesRollup>::new(json!({"phase": phase, "window_ms": W}))
        .unwrap()
        .with_out_of_orderness(2_000)
}

fn click(user: &str, ts: i64) -> Value {
    json!({"click": {"user_id": user, "page": "/", "product_id": null, "ts": ts}})
}

fn add(user: &str, product: &str, ts: i64) -> Value {
    json!({"cart": {"user_id": user, "product_id": product, "action": "add", "ts": ts}})
}

fn order(user: &str, product: &str, qty: u64, price: u64, ts: i64) -> Value {
    json!({"order": {"order_id": format!("o-{user}-{ts}"), "user_id": user, "product_id": product,
                     "qty": qty, "price": price, "ts": ts}})
}

fn send(h: &mut Harness<SalesRollup>, events: &[(i64, &str, Value)]) {
    for (ts, user, v) in events {
        h.send(*ts, user, v).unwrap();
    }
}

fn triples(out: Vec<Output>) -> Vec<(i64, String, Value)> {
    out.into_iter()
        .map(|o| (o.timestamp, o.key_str(), o.json()))
        .collect()
}

fn product_partial(
    product: &str,
    start: i64,
    orders: u64,
    units: u64,
    revenue: u64,
) -> (i64, String, Value) {
    (
        start + W - 1,
        product.to_owned(),
        json!({"product": {"orders": orders, "units": units, "revenue": revenue,
                           "window_start": start, "window_end": start + W}}),
    )
}

fn global_partial(
    start: i64,
    active: u64,
    buyers: u64,
    orders: u64,
    units: u64,
    revenue: u64,
) -> (i64, String, Value) {
    (
        start + W - 1,
        "all".to_owned(),
        json!({"global": {"active_users": active, "buyers": buyers, "orders": orders, "units": units,
                          "revenue": revenue, "window_start": start, "window_end": start + W}}),
    )
}

/// Partition A: ann buys twice, bob browses; partition B: cy buys, dee adds.
fn partition_a() -> Vec<(i64, &'static str, Value)> {
    vec![
        (1_000, "ann", click("ann", 1_000)),
        (2_000, "bob", click("bob", 2_000)),
        (3_000, "ann", order("ann", "p1", 2, 500, 3_000)),
        (2_500, "ann", order("ann", "p2", 1, 1_000, 2_500)), // out of order
        (12_000, "bob", order("bob", "p1", 1, 500, 12_000)),
    ]
}

fn partition_b() -> Vec<(i64, &'static str, Value)> {
    vec![
        (1_500, "cy", order("cy", "p1", 3, 500, 1_500)),
        (4_000, "dee", add("dee", "p2", 4_000)),
        (9_999, "dee", click("dee", 9_999)),
        (15_000, "cy", click("cy", 15_000)),
    ]
}

#[test]
fn the_partial_phase_reports_products_and_distinct_users_per_window() {
    let mut h = phase("partial");
    send(&mut h, &partition_a());
    h.advance_watermark(i64::MAX).unwrap();
    assert_eq!(
        triples(h.take("main")),
        vec![
            product_partial("p1", 0, 1, 2, 1_000),
            product_partial("p2", 0, 1, 1, 1_000),
            global_partial(0, 2, 1, 2, 3, 2_000),
            product_partial("p1", W, 1, 1, 500),
            global_partial(W, 1, 1, 1, 1, 500),
        ]
    );
}

#[test]
fn the_final_phase_adds_the_partials_of_every_partition() {
    let mut a = phase("partial");
    let mut b = phase("partial");
    send(&mut a, &partition_a());
    send(&mut b, &partition_b());
    a.advance_watermark(i64::MAX).unwrap();
    b.advance_watermark(i64::MAX).unwrap();
    let mut partials: Vec<Output> = a.take("main");
    partials.extend(b.take("main"));
    // The engine merges the upstream partitions by time.
    partials.sort_by_key(|o| o.timestamp);

    // In the engine a partial carries a watermark just below its window end;
    // here the watermark stays put until every partial is in.
    let mut f = Harness::<SalesRollup>::new(json!({"phase": "final", "window_ms": W})).unwrap();
    f.send_batch(
        partials
            .iter()
            .map(|o| Input::raw(o.timestamp, &o.key, o.value.clone())),
    )
    .unwrap();
    assert!(
        f.take("main").is_empty(),
        "the final watermark has not passed 10 000"
    );
    f.advance_watermark(i64::MAX).unwrap();
    let product = |p: &str, start: i64, orders: u64, units: u64, revenue: u64| {
        (
            start + W - 1,
            p.to_owned(),
            json!({"product_id": p, "orders": orders, "units": units, "revenue": revenue,
                   "avg_order_value": revenue as f64 / orders as f64,
                   "window_start": start, "window_end": start + W}),
        )
    };
    let shop = |start: i64, active: u64, buyers: u64, orders: u64, units: u64, revenue: u64| {
        (
            start + W - 1,
            "all".to_owned(),
            json!({"active_users": active, "buyers": buyers,
                   "conversion_rate": buyers as f64 / active as f64,
                   "total_orders": orders, "total_units": units, "total_revenue": revenue,
                   "window_start": start, "window_end": start + W}),
        )
    };
    assert_eq!(
        triples(f.take("main")),
        vec![
            // [0, 10 000): ann, bob, cy, dee active; ann and cy bought.
            shop(0, 4, 2, 3, 6, 3_500),
            product("p1", 0, 2, 5, 2_500),
            product("p2", 0, 1, 1, 1_000),
            // [10 000, 20 000): bob bought, cy clicked.
            shop(W, 2, 1, 1, 1, 500),
            product("p1", W, 1, 1, 500),
        ]
    );
}

#[test]
fn a_late_order_goes_to_late_once_and_counts_nowhere() {
    let mut h = phase("partial");
    send(
        &mut h,
        &[
            (1_000, "ann", click("ann", 1_000)),
            (13_000, "ann", click("ann", 13_000)),
            (5_000, "bob", order("bob", "p1", 1, 10, 5_000)),
        ],
    );
    assert_eq!(h.take("late").len(), 1);
    assert_eq!(h.counter("late_events"), 1);
    assert_eq!(
        triples(h.take("main")),
        vec![global_partial(0, 1, 0, 0, 0, 0)]
    );
}

/// Sends `inputs` through an instance of `phase`, snapshotting it and
/// restoring into a new instance before input `cut`; returns all of `main`.
fn run_with_restore(
    phase_name: &str,
    inputs: &[(i64, String, Value)],
    cut: Option<usize>,
) -> Vec<(i64, String, Value)> {
    let config = json!({"phase": phase_name, "window_ms": W});
    let mut h = phase(phase_name);
    let mut out = Vec::new();
    for (i, (ts, key, v)) in inputs.iter().enumerate() {
        if Some(i) == cut {
            let snapshot = h.snapshot().unwrap();
            out.extend(triples(h.take("main")));
            h = Harness::<SalesRollup>::restore(config.clone(), &snapshot)
                .unwrap()
                .with_out_of_orderness(2_000);
        }
        h.send(*ts, key, v).unwrap();
    }
    h.advance_watermark(i64::MAX).unwrap();
    out.extend(triples(h.take("main")));
    out
}

#[test]
fn snapshot_and_restore_continue_with_identical_output_in_both_phases() {
    let events: Vec<(i64, String, Value)> = partition_a()
        .into_iter()
        .map(|(ts, user, v)| (ts, user.to_owned(), v))
        .collect();
    let partials = run_with_restore("partial", &events, None);
    assert_eq!(partials.len(), 5);
    for cut in 1..events.len() {
        assert_eq!(
            run_with_restore("partial", &events, Some(cut)),
            partials,
            "partial: snapshot before event {cut}"
        );
    }
    let results = run_with_restore("final", &partials, None);
    assert_eq!(results.len(), 5);
    for cut in 1..partials.len() {
        assert_eq!(
            run_with_restore("final", &partials, Some(cut)),
            results,
            "final: snapshot before partial {cut}"
        );
    }
}

#[test]
fn phases_with_different_windows_are_caught() {
    let mut p =
        Harness::<SalesRollup>::new(json!({"phase": "partial", "window_ms": 60_000})).unwrap();
    p.send(1_000, "ann", &click("ann", 1_000)).unwrap();
    p.advance_watermark(i64::MAX).unwrap();
    let partial = p.take("main").remove(0);
    let mut f = phase("final");
    let err = f
        .send_raw(partial.timestamp, &partial.key, &partial.value)
        .unwrap_err()
        .to_string();
    assert!(err.contains("give both phases the same window_ms"), "{err}");
}

#[test]
fn wrong_input_goes_to_dlq_and_bad_configs_and_restores_are_refused() {
    let mut f = phase("final");
    f.send(1, "ann", &click("ann", 1)).unwrap();
    assert_eq!(f.take("dlq").len(), 1);
    assert!(
        f.logs()[0].1.contains("is `phase` right?"),
        "{:?}",
        f.logs()
    );
    let snapshot = f.snapshot().unwrap();
    let err =
        Harness::<SalesRollup>::restore(json!({"phase": "partial", "window_ms": W}), &snapshot)
            .err()
            .unwrap()
            .to_string();
    assert!(err.contains("cannot swap phases"), "{err}");
    let err = Harness::<SalesRollup>::restore(json!({"phase": "final"}), &snapshot)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("10000 ms") && err.contains("60000 ms"),
        "{err}"
    );
    let err = |c: Value| Harness::<SalesRollup>::new(c).err().unwrap().to_string();
    assert!(err(json!({})).contains("missing field `phase`"));
    assert_eq!(
        err(json!({"phase": "final", "window_ms": 0})),
        "window_ms must be positive, got 0"
    );
    assert!(err(json!({"phase": "middle"})).contains("unknown variant `middle`"));
}
