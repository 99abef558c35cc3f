//! The bytes of records waiting in a merge, one arena per input stream.
//!
//! A merge releases the records of one stream in the order they arrived, so
//! each stream's keys and values can sit back to back in one buffer, taken
//! from the front as they leave. That replaces two heap allocations per
//! record (an owned key and value) with appends to a buffer that is reused.

/// Keys and values of one stream's waiting records, oldest first.
#[derive(Default)]
pub struct Arena {
    buf: Vec<u8>,
    /// Where the oldest waiting record starts; everything before has left.
    head: usize,
}

/// Bytes that may sit unused at the front before they are reclaimed.
const RECLAIM_BYTES: usize = 64 << 10;

impl Arena {
    /// Appends a record's key and value.
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        } else if self.head >= RECLAIM_BYTES && self.head * 2 >= self.buf.len() {
            // Fewer bytes wait than have left, so the move costs no more than
            // what was taken since the last one.
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
    }

    /// Takes the oldest record's key and value, given their lengths.
    pub fn pop(&mut self, key_len: usize, value_len: usize) -> (&[u8], &[u8]) {
        let k = self.head;
        let v = k + key_len;
        let end = v + value_len;
        assert!(
            end <= self.buf.len(),
            "arena underflow: a record's lengths do not match its push"
        );
        self.head = end;
        (&self.buf[k..v], &self.buf[v..end])
    }

    /// Bytes of the records still waiting.
    #[cfg(test)]
    fn waiting_bytes(&self) -> usize {
        self.buf.len() - self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> (Vec<u8>, Vec<u8>) {
        (
            format!("k{i}").into_bytes(),
            vec![i as u8; 1 + (i * 7919) % 3000],
        )
    }

    #[test]
    fn records_leave_in_arrival_order_and_the_front_is_reclaimed_while_records_wait() {
        let mut a = Arena::default();
        let mut waiting = std::collections::VecDeque::new();
        let (mut next, mut pushed) = (0, 0);
        for round in 0..3_000 {
            for _ in 0..1 + round % 3 {
                let (k, v) = record(next);
                a.push(&k, &v);
                pushed += k.len() + v.len();
                waiting.push_back(next);
                next += 1;
            }
            // Some wait all the time, so only moving them frees the front.
            assert!(
                a.buf.len() <= 2 * a.waiting_bytes() + RECLAIM_BYTES + 6_000,
                "{} bytes held for {} waiting",
                a.buf.len(),
                a.waiting_bytes()
            );
            while waiting.len() > 10 {
                let i = waiting.pop_front().unwrap();
                let (k, v) = record(i);
                assert_eq!(a.pop(k.len(), v.len()), (&k[..], &v[..]), "record {i}");
            }
        }
        assert!(
            pushed > 20 * a.buf.capacity(),
            "{pushed} bytes went through"
        );
        while let Some(i) = waiting.pop_front() {
            let (k, v) = record(i);
            assert_eq!(a.pop(k.len(), v.len()), (&k[..], &v[..]), "record {i}");
        }
        assert_eq!(a.waiting_bytes(), 0);
    }
}
