//! SIEVE eviction order (Zhang et al., NSDI '24): a FIFO queue with one "visited" bit per
//! member and a hand that walks from the oldest member towards the newest. A hit only sets
//! the bit; eviction clears set bits as the hand passes and removes the first member whose
//! bit was clear. Web traffic is skewed (a few pages take most requests) and full of
//! one-hit wonders (crawlers, random 404s): a new member that is never hit again is the
//! first to go, while popular members survive any scan. It beats LRU's hit ratio on web
//! traces and needs no reordering on a hit.
//!
//! Members are small integer ids chosen by the caller (slots of its own table); the queue
//! keeps 12 bytes per id, all of an id's state in one place so a hit touches one cache line.

const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Link {
    /// Towards the newest member.
    newer: u32,
    /// Towards the oldest member.
    older: u32,
    visited: bool,
    member: bool,
}

const UNLINKED: Link = Link {
    newer: NIL,
    older: NIL,
    visited: false,
    member: false,
};

/// A SIEVE queue of ids.
pub struct Sieve {
    links: Vec<Link>,
    newest: u32,
    oldest: u32,
    hand: u32,
    len: usize,
}

impl Default for Sieve {
    fn default() -> Self {
        Sieve {
            links: Vec::new(),
            newest: NIL,
            oldest: NIL,
            hand: NIL,
            len: 0,
        }
    }
}

impl Sieve {
    /// How many ids are queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no id is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `id` is queued.
    pub fn contains(&self, id: u32) -> bool {
        self.links.get(id as usize).is_some_and(|l| l.member)
    }

    /// Queues `id` as the newest member, not yet visited. It must not be queued already.
    pub fn insert(&mut self, id: u32) {
        let i = id as usize;
        if self.links.len() <= i {
            self.links.resize(i + 1, UNLINKED);
        }
        assert!(!self.links[i].member, "id {id} is queued already");
        self.links[i] = Link {
            newer: NIL,
            older: self.newest,
            visited: false,
            member: true,
        };
        if self.newest != NIL {
            self.links[self.newest as usize].newer = id;
        } else {
            self.oldest = id;
        }
        self.newest = id;
        self.len += 1;
    }

    /// Records a hit on `id` (a no-op if it is not queued).
    pub fn touch(&mut self, id: u32) {
        if let Some(l) = self.links.get_mut(id as usize) {
            l.visited = l.member;
        }
    }

    /// Removes `id` (a no-op if it is not queued).
    pub fn remove(&mut self, id: u32) {
        if !self.contains(id) {
            return;
        }
        let Link { newer, older, .. } = self.links[id as usize];
        if self.hand == id {
            self.hand = newer;
        }
        match newer {
            NIL => self.newest = older,
            n => self.links[n as usize].older = older,
        }
        match older {
            NIL => self.oldest = newer,
            o => self.links[o as usize].newer = newer,
        }
        self.links[id as usize] = UNLINKED;
        self.len -= 1;
    }

    /// Removes and returns the member to evict, `None` when empty.
    pub fn evict(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mut at = if self.hand == NIL {
            self.oldest
        } else {
            self.hand
        };
        // Terminates: each step either clears a bit or stops, so at most len + 1 steps
        // pass before an unvisited member is found.
        while self.links[at as usize].visited {
            self.links[at as usize].visited = false;
            at = match self.links[at as usize].newer {
                NIL => self.oldest,
                n => n,
            };
        }
        self.hand = self.links[at as usize].newer;
        self.remove(at);
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_in_insertion_order_without_hits() {
        let mut s = Sieve::default();
        for id in 0..5 {
            s.insert(id);
        }
        assert_eq!(s.evict(), Some(0));
        assert_eq!(s.evict(), Some(1));
        s.insert(7);
        assert_eq!(s.len(), 4);
        assert_eq!(s.evict(), Some(2));
        assert_eq!(s.evict(), Some(3));
        assert_eq!(s.evict(), Some(4));
        assert_eq!(s.evict(), Some(7));
        assert_eq!(s.evict(), None);
        assert!(s.is_empty());
    }

    #[test]
    fn visited_members_survive_and_one_hit_wonders_go_first() {
        let mut s = Sieve::default();
        for id in 0..4 {
            s.insert(id);
        }
        s.touch(0);
        s.touch(2);
        assert_eq!(s.evict(), Some(1));
        // A scan of new ids, never hit again, evicts only the scan itself.
        for id in 10..20 {
            s.insert(id);
            if s.len() > 4 {
                let gone = s.evict().unwrap();
                assert!(
                    gone != 0 && gone != 2,
                    "popular member {gone} evicted by a scan"
                );
            }
        }
        assert!(s.contains(0) && s.contains(2));
    }

    #[test]
    fn removal_keeps_the_queue_and_the_hand_consistent() {
        let mut s = Sieve::default();
        for id in 0..6 {
            s.insert(id);
        }
        for id in 0..6 {
            s.touch(id);
        }
        s.touch(9); // not queued: ignored
        assert_eq!(s.evict(), Some(0)); // every bit cleared on the way round
        s.remove(1); // the hand's position
        s.remove(5);
        s.remove(5);
        assert_eq!(s.len(), 3);
        let mut rest: Vec<u32> = std::iter::from_fn(|| s.evict()).collect();
        rest.sort();
        assert_eq!(rest, vec![2, 3, 4]);
        s.insert(1);
        assert_eq!(s.evict(), Some(1));
    }
}
