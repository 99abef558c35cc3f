//! `activity`: what one session accumulates, and how two sessions merge when
//! an event bridges them. Order-independent by construction — counts add,
//! flags or, pages are a sorted set cut to the first `max_pages` — so a
//! session's result does not depend on the order its events arrived in.

use serde::{Deserialize, Serialize};
use sluice_sdk::Merge;

/// The accumulator of one session.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Every event of the session.
    pub events: u64,
    /// Click events.
    pub page_views: u64,
    /// Distinct pages viewed, sorted, at most `max_pages` (the first ones).
    pub pages: Vec<String>,
    /// Cart `add` events.
    pub cart_adds: u64,
    /// A cart `checkout` happened.
    pub checked_out: bool,
    /// An order happened.
    pub ordered: bool,
}

impl Activity {
    /// A page view.
    pub fn view(&mut self, page: &str, max_pages: usize) {
        self.page_views += 1;
        if let Err(at) = self.pages.binary_search_by(|p| p.as_str().cmp(page))
            && at < max_pages
        {
            self.pages.insert(at, page.to_owned());
            self.pages.truncate(max_pages);
        }
    }

    /// A cart event; actions other than `add` and `checkout` only count as events.
    pub fn cart(&mut self, action: &str) {
        match action {
            "add" => self.cart_adds += 1,
            "checkout" => self.checked_out = true,
            _ => {}
        }
    }

    /// Keeps the first `max_pages` pages (after a merge, or a smaller config).
    pub fn cap_pages(&mut self, max_pages: usize) {
        self.pages.truncate(max_pages);
    }

    /// Items went into the cart and the session never checked out.
    pub fn is_abandoned(&self) -> bool {
        self.cart_adds > 0 && !self.checked_out
    }
}

impl Merge for Activity {
    fn merge(&mut self, other: Self) {
        self.events += other.events;
        self.page_views += other.page_views;
        self.cart_adds += other.cart_adds;
        self.checked_out |= other.checked_out;
        self.ordered |= other.ordered;
        for page in other.pages {
            if let Err(at) = self.pages.binary_search(&page) {
                self.pages.insert(at, page);
            }
        }
        // The caller caps the pages right after (the cap is config).
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_the_sorted_first_distinct_ones_whatever_the_order() {
        let mut a = Activity::default();
        let mut b = Activity::default();
        for p in ["/c", "/a", "/d", "/a", "/b"] {
            a.view(p, 3);
        }
        for p in ["/b", "/d", "/a", "/c", "/a"] {
            b.view(p, 3);
        }
        assert_eq!(a.pages, ["/a", "/b", "/c"]);
        assert_eq!(a, b);
    }

    #[test]
    fn merging_adds_counts_and_unions_pages() {
        let mut a = Activity::default();
        a.view("/x", 2);
        a.cart("add");
        let mut b = Activity::default();
        b.view("/a", 2);
        b.view("/y", 2);
        b.cart("checkout");
        a.merge(b);
        a.cap_pages(2);
        assert_eq!(a.pages, ["/a", "/x"]);
        assert_eq!((a.page_views, a.cart_adds, a.checked_out), (3, 1, true));
        assert!(!a.is_abandoned());
    }
}
