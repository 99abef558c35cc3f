use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::codec;
use crate::ctx::Ctx;
use crate::error::Error;

fn ctx_at(wm: i64) -> Ctx {
    let mut ctx = Ctx::new();
    ctx.watermark = wm;
    ctx
}

/// Fires `windows` at `wm` and returns `(key, start, end, acc)` in emission order.
fn fire_tumbling(w: &mut TumblingWindows<String, u64>, wm: i64) -> Vec<(String, i64, i64, u64)> {
    let mut ctx = ctx_at(wm);
    let mut out = Vec::new();
    w.fire(&mut ctx, |_, k, win, &n| {
        out.push((k.clone(), win.start, win.end, n));
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn tumbling_windows_fire_when_the_watermark_reaches_their_end_in_end_start_key_order() {
    let mut w = TumblingWindows::<String, u64>::new(10);
    let mut ctx = ctx_at(i64::MIN);
    for (ts, key) in [(15, "b"), (3, "b"), (12, "a"), (9, "a"), (-1, "z")] {
        assert_eq!(w.add(&mut ctx, ts, key, |n| *n += 1).unwrap(), Admit::Added);
    }
    assert!(ctx.timers.contains(&0) && ctx.timers.contains(&10) && ctx.timers.contains(&20));
    assert_eq!(fire_tumbling(&mut w, 9), vec![("z".into(), -10, 0, 1)]);
    assert_eq!(
        fire_tumbling(&mut w, 10),
        vec![("a".into(), 0, 10, 1), ("b".into(), 0, 10, 1)]
    );
    assert_eq!(
        fire_tumbling(&mut w, 10),
        vec![],
        "firing twice emits nothing new"
    );
    assert_eq!(
        fire_tumbling(&mut w, 100),
        vec![("a".into(), 10, 20, 1), ("b".into(), 10, 20, 1)]
    );
    assert!(w.is_empty());
}

#[test]
fn a_window_fires_its_keys_in_key_order_whatever_their_arrival() {
    let mut w = TumblingWindows::<String, u64>::new(10);
    let mut ctx = ctx_at(i64::MIN);
    let keys: Vec<String> = (0..500)
        .rev()
        .map(|i| format!("k{:03}", i * 7 % 500))
        .collect();
    for k in &keys {
        assert_eq!(
            w.add(&mut ctx, 5, k.as_str(), |n| *n += 1).unwrap(),
            Admit::Added
        );
    }
    let fired: Vec<String> = fire_tumbling(&mut w, 10)
        .into_iter()
        .map(|(k, ..)| k)
        .collect();
    let mut want = keys;
    want.sort();
    assert_eq!(fired, want);
}

#[test]
fn an_event_for_a_closed_window_is_late_and_changes_nothing() {
    let mut w = TumblingWindows::<String, u64>::new(10);
    let mut ctx = ctx_at(10);
    assert_eq!(w.add(&mut ctx, 9, "a", |n| *n += 1).unwrap(), Admit::Late);
    assert_eq!(w.add(&mut ctx, 10, "a", |n| *n += 1).unwrap(), Admit::Added);
    assert_eq!(w.len(), 1);
}

#[test]
fn allowed_lateness_refires_only_the_changed_keys_and_purges_after_it() {
    let mut w = TumblingWindows::<String, u64>::new(10).with_allowed_lateness(5);
    let mut ctx = ctx_at(i64::MIN);
    let _ = w.add(&mut ctx, 1, "a", |n| *n += 1).unwrap();
    let _ = w.add(&mut ctx, 2, "b", |n| *n += 1).unwrap();
    assert!(ctx.timers.contains(&15), "a purge timer at end + lateness");
    assert_eq!(fire_tumbling(&mut w, 10).len(), 2);
    let mut ctx = ctx_at(12);
    assert_eq!(w.add(&mut ctx, 3, "b", |n| *n += 1).unwrap(), Admit::Added);
    assert!(ctx.timers.contains(&13), "a re-fire at the next watermark");
    assert_eq!(fire_tumbling(&mut w, 13), vec![("b".into(), 0, 10, 2)]);
    assert_eq!(w.len(), 2, "kept until end + lateness");
    assert_eq!(fire_tumbling(&mut w, 15), vec![]);
    assert!(w.is_empty());
    let mut ctx = ctx_at(15);
    assert_eq!(w.add(&mut ctx, 4, "b", |n| *n += 1).unwrap(), Admit::Late);
}

#[test]
fn a_failing_emit_closes_nothing() {
    let mut w = TumblingWindows::<String, u64>::new(10);
    let mut ctx = ctx_at(i64::MIN);
    let _ = w.add(&mut ctx, 1, "a", |n| *n += 1).unwrap();
    let mut ctx = ctx_at(10);
    let err = w.fire(&mut ctx, |_, _, _, _| Err(Error::msg("sink full")));
    assert!(err.is_err());
    assert_eq!(fire_tumbling(&mut w, 10), vec![("a".into(), 0, 10, 1)]);
}

#[test]
fn sliding_windows_hold_an_event_in_size_over_slide_windows() {
    let w = SlidingWindows::<u64, u64>::new(10_000, 2_000);
    let windows: Vec<Window> = w.windows_of(10_500).collect();
    let starts: Vec<i64> = windows.iter().map(|w| w.start).collect();
    assert_eq!(starts, vec![10_000, 8_000, 6_000, 4_000, 2_000]);
    assert!(
        windows
            .iter()
            .all(|w| w.contains(10_500) && w.end - w.start == 10_000)
    );
}

#[test]
fn window_entries_past_the_bound_are_refused_with_the_bound_named() {
    let mut w = TumblingWindows::<u64, u64>::new(10).with_max_entries(1);
    let mut ctx = ctx_at(i64::MIN);
    let _ = w.add(&mut ctx, 1, &1, |n| *n += 1).unwrap();
    let err = w.add(&mut ctx, 1, &2, |n| *n += 1).unwrap_err().to_string();
    assert!(err.contains("Windows::max_entries"), "{err}");
}

fn fire_sessions(s: &mut SessionWindows<u64, u64>, wm: i64) -> Vec<(u64, i64, i64, u64)> {
    let mut ctx = ctx_at(wm);
    let mut out = Vec::new();
    s.fire(&mut ctx, |_, &k, win, &n| {
        out.push((k, win.start, win.end, n));
        Ok(())
    })
    .unwrap();
    out
}

#[test]
fn session_snapshots_list_keys_in_order_and_read_back_to_the_same_bytes() {
    let mut s = SessionWindows::<u64, u64>::new(10);
    let mut ctx = ctx_at(i64::MIN);
    // Keys in a scrambled order, enough for the hash map to grow several times.
    for i in 0..3_000u64 {
        let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 10_007;
        assert_eq!(
            s.add(&mut ctx, i as i64, &key, |n| *n += 1).unwrap(),
            Admit::Added
        );
    }
    let bytes = codec::encode(&s).unwrap();
    let back: SessionWindows<u64, u64> = codec::decode(&bytes).unwrap();
    assert!(back == s);
    assert_eq!(codec::encode(&back).unwrap(), bytes);
    // The same events added key by key give the same snapshot.
    let mut sorted = SessionWindows::<u64, u64>::new(10);
    let mut events: Vec<(u64, i64)> = (0..3_000u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 10_007, i as i64))
        .collect();
    events.sort();
    for (key, ts) in events {
        let _ = sorted.add(&mut ctx, ts, &key, |n| *n += 1).unwrap();
    }
    assert_eq!(codec::encode(&sorted).unwrap(), bytes);
    assert_eq!(
        fire_sessions(&mut sorted, i64::MAX),
        fire_sessions(&mut s, i64::MAX)
    );
}

#[test]
fn a_bid_bridging_two_sessions_merges_them() {
    let mut s = SessionWindows::<u64, u64>::new(10);
    let mut ctx = ctx_at(i64::MIN);
    for ts in [0, 25, 12] {
        let _ = s.add(&mut ctx, ts, &7, |n| *n += 1).unwrap();
    }
    // 0 → [0,10); 25 → [25,35); 12 → [12,22) touches neither (10 ≤ 12, 22 ≤ 25).
    assert_eq!(s.len(), 3);
    let _ = s.add(&mut ctx, 18, &7, |n| *n += 1).unwrap();
    // 18 → [18,28) overlaps [12,22) and [25,35): merged into [12,35) with 3 bids.
    assert_eq!(s.len(), 2);
    assert_eq!(
        fire_sessions(&mut s, 100),
        vec![(7, 0, 10, 1), (7, 12, 35, 3)]
    );
}

#[test]
fn an_event_exactly_a_gap_after_the_last_starts_a_new_session() {
    let mut s = SessionWindows::<u64, u64>::new(10);
    let mut ctx = ctx_at(i64::MIN);
    let _ = s.add(&mut ctx, 0, &1, |n| *n += 1).unwrap();
    let _ = s.add(&mut ctx, 10, &1, |n| *n += 1).unwrap();
    assert_eq!(s.len(), 2);
}

#[test]
fn a_session_that_grew_is_not_fired_at_its_first_end() {
    let mut s = SessionWindows::<u64, u64>::new(10);
    let mut ctx = ctx_at(i64::MIN);
    let _ = s.add(&mut ctx, 0, &1, |n| *n += 1).unwrap();
    let _ = s.add(&mut ctx, 8, &1, |n| *n += 1).unwrap();
    let mut fire_ctx = ctx_at(10);
    let mut out = Vec::new();
    s.fire(&mut fire_ctx, |_, &k, w, &n| {
        out.push((k, w.start, w.end, n));
        Ok(())
    })
    .unwrap();
    assert!(out.is_empty());
    assert!(fire_ctx.timers.contains(&18), "re-queued at its new end");
    assert_eq!(fire_sessions(&mut s, 18), vec![(1, 0, 18, 2)]);
    assert!(s.is_empty());
}

#[test]
fn session_output_is_ordered_by_end_start_key_across_keys() {
    let mut s = SessionWindows::<u64, u64>::new(10);
    let mut ctx = ctx_at(i64::MIN);
    for (ts, key) in [(5, 2), (5, 1), (0, 3), (30, 1)] {
        let _ = s.add(&mut ctx, ts, &key, |n| *n += 1).unwrap();
    }
    let keys: Vec<(u64, i64)> = fire_sessions(&mut s, 1_000)
        .iter()
        .map(|&(k, st, _, _)| (k, st))
        .collect();
    assert_eq!(keys, vec![(3, 0), (1, 5), (2, 5), (1, 30)]);
}

#[test]
fn a_late_event_for_a_closed_session_is_late() {
    let mut s = SessionWindows::<u64, u64>::new(10);
    let mut ctx = ctx_at(50);
    assert_eq!(s.add(&mut ctx, 40, &1, |n| *n += 1).unwrap(), Admit::Late);
    assert_eq!(s.add(&mut ctx, 41, &1, |n| *n += 1).unwrap(), Admit::Added);
    // Inside the open session [41, 51): not late even though 40 + 10 <= 50.
    assert_eq!(s.add(&mut ctx, 45, &1, |n| *n += 1).unwrap(), Admit::Added);
}

/// Sessions computed the slow, obvious way: sort each key's times and cut
/// where consecutive events are `gap` or more apart.
fn model_sessions(events: &[(i64, u64)], gap: i64) -> Vec<(u64, i64, i64, u64)> {
    let mut by_key: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for &(ts, key) in events {
        by_key.entry(key).or_default().push(ts);
    }
    let mut out = Vec::new();
    for (key, mut times) in by_key {
        times.sort();
        let mut start = times[0];
        let mut last = times[0];
        let mut count = 1;
        for &ts in &times[1..] {
            if ts - last >= gap {
                out.push((key, start, last + gap, count));
                start = ts;
                count = 0;
            }
            last = ts;
            count += 1;
        }
        out.push((key, start, last + gap, count));
    }
    out.sort_by_key(|&(k, s, e, _)| (e, s, k));
    out
}

proptest! {
    #[test]
    fn sessions_match_the_obvious_model_in_any_arrival_order(
        events in proptest::collection::vec((0i64..200, 0u64..4), 1..60)
    ) {
        let mut s = SessionWindows::<u64, u64>::new(10);
        let mut ctx = ctx_at(i64::MIN);
        for &(ts, key) in &events {
            let _ = s.add(&mut ctx, ts, &key, |n| *n += 1).unwrap();
        }
        prop_assert_eq!(fire_sessions(&mut s, 1_000), model_sessions(&events, 10));
        prop_assert!(s.is_empty());
    }

    #[test]
    fn sessions_fired_step_by_step_match_firing_at_once(
        events in proptest::collection::vec((0i64..200, 0u64..4), 1..60)
    ) {
        // In-order arrival with the watermark following the events: every
        // session fires exactly once, whole.
        let mut sorted = events.clone();
        sorted.sort();
        let mut s = SessionWindows::<u64, u64>::new(10);
        let mut out = Vec::new();
        for &(ts, key) in &sorted {
            let mut ctx = ctx_at(ts - 1);
            let _ = s.add(&mut ctx, ts, &key, |n| *n += 1).unwrap();
            out.extend(fire_sessions(&mut s, ts - 1));
        }
        out.extend(fire_sessions(&mut s, 1_000));
        let mut expected = model_sessions(&events, 10);
        expected.sort_by_key(|&(k, s, e, _)| (e, s, k));
        out.sort_by_key(|&(k, s, e, _)| (e, s, k));
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn every_event_lands_in_exactly_the_sliding_windows_that_contain_it(
        ts in -100_000i64..100_000, size_slides in 1i64..6, slide in 1i64..1_000
    ) {
        let size = slide * size_slides;
        let w = SlidingWindows::<u64, u64>::new(size, slide);
        let windows: Vec<Window> = w.windows_of(ts).collect();
        prop_assert_eq!(windows.len() as i64, size_slides);
        for win in windows {
            prop_assert!(win.contains(ts));
            prop_assert_eq!(win.start.rem_euclid(slide), 0);
        }
    }

    #[test]
    fn window_snapshots_do_not_depend_on_arrival_order(
        mut events in proptest::collection::vec((0i64..100, 0u64..5), 1..40)
    ) {
        let snapshot = |events: &[(i64, u64)]| {
            let mut w = SlidingWindows::<u64, u64>::new(20, 10);
            let mut ctx = ctx_at(i64::MIN);
            for &(ts, key) in events {
                let _ = w.add(&mut ctx, ts, &key, |n| *n += 1).unwrap();
            }
            codec::encode(&w).unwrap()
        };
        let forward = snapshot(&events);
        events.reverse();
        prop_assert_eq!(forward, snapshot(&events));
    }
}

#[test]
fn a_session_within_allowed_lateness_fires_again_when_a_late_event_joins_it() {
    let mut s = SessionWindows::<u64, u64>::new(10).with_allowed_lateness(20);
    let mut ctx = ctx_at(i64::MIN);
    let _ = s.add(&mut ctx, 0, &1, |n| *n += 1).unwrap();
    assert_eq!(fire_sessions(&mut s, 10), vec![(1, 0, 10, 1)]);
    assert_eq!(s.len(), 1, "kept for the allowed lateness");
    let mut ctx = ctx_at(15);
    assert_eq!(s.add(&mut ctx, 5, &1, |n| *n += 1).unwrap(), Admit::Added);
    assert!(ctx.timers.contains(&16), "re-fire at the next watermark");
    assert_eq!(fire_sessions(&mut s, 16), vec![(1, 0, 15, 2)]);
    assert_eq!(fire_sessions(&mut s, 34), vec![], "nothing changed since");
    assert_eq!(fire_sessions(&mut s, 35), vec![]);
    assert!(s.is_empty(), "purged at end + lateness");
    let mut ctx = ctx_at(35);
    assert_eq!(s.add(&mut ctx, 4, &1, |n| *n += 1).unwrap(), Admit::Late);
}
