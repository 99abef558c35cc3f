//! [`MetricTable`]: the counters and gauges one guest instance reports
//! through the `sluice.metric` import.
//!
//! Updates made during a call are staged and applied only when the call
//! succeeds. The engine drains the table: counters as deltas since the last
//! drain, gauges as the last value set. The number of distinct names is
//! bounded, and a name allocates only the first time it is seen.

/// Most distinct metric names one instance may report.
pub const MAX_METRIC_NAMES: usize = 256;
/// Longest metric name, in bytes.
pub const MAX_METRIC_NAME_BYTES: usize = 64;

/// The kind of a guest-reported metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic; drained as the amount added since the last drain.
    Counter,
    /// Drained as the last value set.
    Gauge,
}

impl MetricKind {
    pub(crate) fn from_abi(kind: i32) -> Option<MetricKind> {
        match kind {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
}

#[derive(Debug)]
struct Slot {
    kind: MetricKind,
    name: String,
    /// Counter delta or gauge value awaiting the next drain.
    value: i64,
    dirty: bool,
    /// Counter delta or gauge value of the current call.
    staged: i64,
    staged_in_call: bool,
}

/// The metrics of one instance.
#[derive(Debug, Default)]
pub(crate) struct MetricTable {
    slots: Vec<Slot>,
    /// Slots updated in the current call.
    touched: Vec<usize>,
}

impl MetricTable {
    /// Stages one update from the guest; the error completes "the guest …".
    pub(crate) fn stage(
        &mut self,
        kind: MetricKind,
        name: &[u8],
        value: i64,
    ) -> Result<(), String> {
        let index = match self.slots.iter().position(|s| s.name.as_bytes() == name) {
            Some(i) if self.slots[i].kind == kind => i,
            Some(i) => {
                return Err(format!(
                    "reported metric `{}` as a {}, but earlier as a {}; a metric name has one kind",
                    self.slots[i].name,
                    kind.as_str(),
                    self.slots[i].kind.as_str()
                ));
            }
            None => self.add(kind, name)?,
        };
        let slot = &mut self.slots[index];
        if !slot.staged_in_call {
            slot.staged_in_call = true;
            slot.staged = 0;
            self.touched.push(index);
        }
        match kind {
            MetricKind::Counter => slot.staged = slot.staged.wrapping_add(value),
            MetricKind::Gauge => slot.staged = value,
        }
        Ok(())
    }

    fn add(&mut self, kind: MetricKind, name: &[u8]) -> Result<usize, String> {
        let valid = !name.is_empty()
            && name.len() <= MAX_METRIC_NAME_BYTES
            && name
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        let Some(text) = std::str::from_utf8(name).ok().filter(|_| valid) else {
            return Err(format!(
                "reported a metric named {:?}; a metric name is 1 to {MAX_METRIC_NAME_BYTES} bytes \
                 of a-z, 0-9 or _",
                String::from_utf8_lossy(&name[..name.len().min(80)])
            ));
        };
        if self.slots.len() == MAX_METRIC_NAMES {
            return Err(format!(
                "reported metric `{text}`, one more than the {MAX_METRIC_NAMES} distinct metric \
                 names (MAX_METRIC_NAMES) an instance may report"
            ));
        }
        self.slots.push(Slot {
            kind,
            name: text.to_string(),
            value: 0,
            dirty: false,
            staged: 0,
            staged_in_call: false,
        });
        Ok(self.slots.len() - 1)
    }

    /// Applies the updates of a call that succeeded.
    pub(crate) fn commit(&mut self) {
        for &i in &self.touched {
            let slot = &mut self.slots[i];
            match slot.kind {
                MetricKind::Counter => slot.value = slot.value.wrapping_add(slot.staged),
                MetricKind::Gauge => slot.value = slot.staged,
            }
            slot.dirty = true;
            slot.staged_in_call = false;
        }
        self.touched.clear();
    }

    /// Forgets the updates of a call that failed.
    pub(crate) fn rollback(&mut self) {
        for &i in &self.touched {
            self.slots[i].staged_in_call = false;
        }
        self.touched.clear();
    }

    /// Hands every metric updated since the last drain to `f`.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(MetricKind, &str, i64)) {
        for slot in self.slots.iter_mut().filter(|s| s.dirty) {
            f(slot.kind, &slot.name, slot.value);
            slot.dirty = false;
            if slot.kind == MetricKind::Counter {
                slot.value = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drained(table: &mut MetricTable) -> Vec<(MetricKind, String, i64)> {
        let mut out = Vec::new();
        table.drain(|k, n, v| out.push((k, n.to_string(), v)));
        out
    }

    #[test]
    fn counters_drain_as_deltas_and_gauges_as_last_value() {
        let mut t = MetricTable::default();
        t.stage(MetricKind::Counter, b"seen", 3).unwrap();
        t.stage(MetricKind::Counter, b"seen", 4).unwrap();
        t.stage(MetricKind::Gauge, b"depth", 9).unwrap();
        t.stage(MetricKind::Gauge, b"depth", 5).unwrap();
        t.commit();
        assert_eq!(
            drained(&mut t),
            vec![
                (MetricKind::Counter, "seen".into(), 7),
                (MetricKind::Gauge, "depth".into(), 5)
            ]
        );
        assert!(drained(&mut t).is_empty());
        t.stage(MetricKind::Counter, b"seen", 1).unwrap();
        t.commit();
        assert_eq!(
            drained(&mut t),
            vec![(MetricKind::Counter, "seen".into(), 1)]
        );
    }

    #[test]
    fn rolled_back_updates_are_never_drained() {
        let mut t = MetricTable::default();
        t.stage(MetricKind::Counter, b"seen", 3).unwrap();
        t.rollback();
        assert!(drained(&mut t).is_empty());
        t.stage(MetricKind::Counter, b"seen", 2).unwrap();
        t.commit();
        assert_eq!(
            drained(&mut t),
            vec![(MetricKind::Counter, "seen".into(), 2)]
        );
    }

    #[test]
    fn bad_names_kind_changes_and_too_many_names_are_refused() {
        let mut t = MetricTable::default();
        assert!(
            t.stage(MetricKind::Counter, b"Bad Name", 1)
                .unwrap_err()
                .contains("a-z, 0-9 or _")
        );
        t.stage(MetricKind::Counter, b"x", 1).unwrap();
        assert!(
            t.stage(MetricKind::Gauge, b"x", 1)
                .unwrap_err()
                .contains("one kind")
        );
        for i in 1..MAX_METRIC_NAMES {
            t.stage(MetricKind::Gauge, format!("g{i}").as_bytes(), 0)
                .unwrap();
        }
        assert!(
            t.stage(MetricKind::Gauge, b"last", 0)
                .unwrap_err()
                .contains("MAX_METRIC_NAMES")
        );
    }
}
