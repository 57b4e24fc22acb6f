//! S3-FIFO eviction order (Yang et al., SOSP '23): a small FIFO queue that new members enter,
//! a main FIFO queue for those asked for again, and a *ghost* record of what the small queue
//! dropped. A hit only raises the member's 2-bit frequency; nothing moves.
//!
//! - Eviction takes from the small queue while it holds a tenth of the weight or more: its
//!   oldest member goes to the main queue if it was hit since it came in, or out (and into
//!   the ghost record) if not. One-hit wonders (crawlers, a long tail of random pages) leave
//!   after a short stay and never push popular members out.
//! - Otherwise the main queue's oldest member goes, unless its frequency is above zero:
//!   then it is lowered by one and the member goes round again (CLOCK with a counter).
//! - A member dropped from the small queue and inserted again while still remembered goes
//!   straight to the main queue. The record is a stamp per id, remembered for as many
//!   small-queue evictions as there are members.
//!
//! Why not SIEVE, which this replaced: on bench/'s Zipf load (50 000 pages, 16 000
//! descriptors) SIEVE made 16.8% of requests reopen a file, S3-FIFO 7.5% and LRU 8.5%
//! (simulated over the bench's own request sequence); for small files' bytes, 2.1% vs 0.85%
//! of requests found them out of memory. SIEVE keeps no frequency: a page asked for once in
//! a while and one asked for every second look alike to it as soon as both were hit once.
//!
//! Members are small integer ids chosen by the caller (slots of its own table), each with a
//! weight (bytes, or 1). What a hit reads and writes (queue and frequency) is 2 bytes per id
//! in an array of its own (128 KiB for 65 536 entries), apart from the 16-byte links that
//! only insertion and eviction follow: a hit on an entry touches three such arrays (the
//! entries' order and the two budgets'), not three 20-byte records spread over 4 MiB.

const NIL: u32 = u32::MAX;

/// Which queue an id is in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Queue {
    Out,
    Small,
    Main,
}

/// Most hits counted: a member with this many goes round the main queue this many times.
const MAX_FREQ: u8 = 3;

/// An id's queue and hit count: what a hit reads and writes, kept apart from the links; also
/// where a member stood, to put it back after its weight changed (see [`S3Fifo::remove`]).
#[derive(Clone, Copy, Debug)]
pub struct Standing {
    queue: Queue,
    freq: u8,
}

const OUT: Standing = Standing {
    queue: Queue::Out,
    freq: 0,
};

/// Where an id is linked, and what eviction needs to know of it.
#[derive(Clone, Copy)]
struct Link {
    /// Towards the newest member of its queue.
    newer: u32,
    /// Towards the oldest.
    older: u32,
    /// Its weight, saturated at `u32::MAX` (it only balances the two queues).
    weight: u32,
    /// The small-queue eviction count when it was dropped from the small queue; 0: none.
    ghost: u32,
}

const UNLINKED: Link = Link {
    newer: NIL,
    older: NIL,
    weight: 0,
    ghost: 0,
};

/// One FIFO queue, linked through the shared records.
#[derive(Clone, Copy)]
struct Fifo {
    newest: u32,
    oldest: u32,
    len: usize,
    weight: u64,
}

const EMPTY: Fifo = Fifo {
    newest: NIL,
    oldest: NIL,
    len: 0,
    weight: 0,
};

/// An S3-FIFO order of weighted ids.
pub struct S3Fifo {
    hot: Vec<Standing>,
    links: Vec<Link>,
    small: Fifo,
    main: Fifo,
    /// Small-queue evictions so far (the ghost record's clock); starts at 1 so that 0 can
    /// mean "never dropped".
    dropped: u32,
}

impl Default for S3Fifo {
    fn default() -> Self {
        S3Fifo {
            hot: Vec::new(),
            links: Vec::new(),
            small: EMPTY,
            main: EMPTY,
            dropped: 1,
        }
    }
}

impl S3Fifo {
    /// How many ids are members.
    pub fn len(&self) -> usize {
        self.small.len + self.main.len
    }

    /// Whether no id is a member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: u32) -> bool {
        self.hot
            .get(id as usize)
            .is_some_and(|h| h.queue != Queue::Out)
    }

    /// Adds `id` (not a member) with `weight`: where it stood if given, else to the main
    /// queue if the small queue dropped it recently, else to the small queue.
    pub fn insert(&mut self, id: u32, weight: u64, standing: Option<Standing>) {
        let i = id as usize;
        if self.links.len() <= i {
            self.links.resize(i + 1, UNLINKED);
            self.hot.resize(i + 1, OUT);
        }
        assert!(!self.contains(id), "id {id} is a member already");
        let remembered = self.links[i].ghost != 0
            && self.dropped.wrapping_sub(self.links[i].ghost) as usize <= self.len();
        let Standing { queue, freq } = standing.unwrap_or(Standing {
            queue: if remembered {
                Queue::Main
            } else {
                Queue::Small
            },
            freq: 0,
        });
        self.links[i].weight = weight.min(u32::MAX as u64) as u32;
        self.links[i].ghost = 0;
        self.hot[i].freq = freq;
        self.push(id, queue);
    }

    /// Records a hit on `id` (a no-op if it is not a member).
    pub fn touch(&mut self, id: u32) {
        if let Some(h) = self.hot.get_mut(id as usize) {
            if h.queue != Queue::Out && h.freq < MAX_FREQ {
                h.freq += 1;
            }
        }
    }

    /// Removes `id` and forgets that the small queue ever dropped it (its id may be given
    /// to another key next). Returns where it stood if it was a member.
    pub fn remove(&mut self, id: u32) -> Option<Standing> {
        self.links.get_mut(id as usize)?.ghost = 0;
        let standing = self.hot[id as usize];
        if standing.queue == Queue::Out {
            return None;
        }
        self.unlink(id);
        Some(standing)
    }

    /// Removes and returns the member to evict, `None` when empty.
    pub fn evict(&mut self) -> Option<u32> {
        // Terminates: every pass either evicts, moves a member from the small queue to the
        // main one (once per member), or lowers a frequency.
        loop {
            let total = self.small.weight + self.main.weight;
            if self.small.len > 0 && (self.small.weight * 10 >= total || self.main.len == 0) {
                let id = self.small.oldest;
                self.unlink(id);
                let h = &mut self.hot[id as usize];
                if h.freq > 0 {
                    h.freq = 0;
                    self.push(id, Queue::Main);
                    continue;
                }
                self.links[id as usize].ghost = self.dropped;
                self.dropped = self.dropped.wrapping_add(1).max(1);
                return Some(id);
            }
            if self.main.len == 0 {
                return None;
            }
            let id = self.main.oldest;
            self.unlink(id);
            let h = &mut self.hot[id as usize];
            if h.freq > 0 {
                h.freq -= 1;
                self.push(id, Queue::Main);
                continue;
            }
            return Some(id);
        }
    }

    fn fifo(&mut self, queue: Queue) -> &mut Fifo {
        match queue {
            Queue::Small => &mut self.small,
            Queue::Main => &mut self.main,
            Queue::Out => unreachable!("no queue for ids that are out"),
        }
    }

    /// Links `id` (out, its weight and frequency set) as the newest of `queue`.
    fn push(&mut self, id: u32, queue: Queue) {
        let weight = self.links[id as usize].weight as u64;
        let fifo = self.fifo(queue);
        let older = fifo.newest;
        fifo.newest = id;
        if older == NIL {
            fifo.oldest = id;
        }
        fifo.len += 1;
        fifo.weight += weight;
        if older != NIL {
            self.links[older as usize].newer = id;
        }
        let l = &mut self.links[id as usize];
        l.older = older;
        l.newer = NIL;
        self.hot[id as usize].queue = queue;
    }

    /// Unlinks member `id` from its queue; it keeps its weight, frequency and ghost stamp.
    fn unlink(&mut self, id: u32) {
        let Link {
            newer,
            older,
            weight,
            ..
        } = self.links[id as usize];
        let queue = self.hot[id as usize].queue;
        match newer {
            NIL => self.fifo(queue).newest = older,
            n => self.links[n as usize].older = older,
        }
        match older {
            NIL => self.fifo(queue).oldest = newer,
            o => self.links[o as usize].newer = newer,
        }
        let fifo = self.fifo(queue);
        fifo.len -= 1;
        fifo.weight -= weight as u64;
        let l = &mut self.links[id as usize];
        l.newer = NIL;
        l.older = NIL;
        self.hot[id as usize].queue = Queue::Out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_of(ids: impl IntoIterator<Item = u32>) -> S3Fifo {
        let mut s = S3Fifo::default();
        for id in ids {
            s.insert(id, 1, None);
        }
        s
    }

    #[test]
    fn evicts_in_insertion_order_without_hits() {
        let mut s = order_of(0..5);
        assert_eq!(s.evict(), Some(0));
        assert_eq!(s.evict(), Some(1));
        s.insert(7, 1, None);
        assert_eq!(s.len(), 4);
        let rest: Vec<u32> = std::iter::from_fn(|| s.evict()).collect();
        assert_eq!(rest, vec![2, 3, 4, 7]);
        assert!(s.is_empty());
    }

    #[test]
    fn members_hit_again_survive_a_scan_of_one_hit_wonders() {
        let mut s = order_of(0..10);
        for id in [0, 2] {
            s.touch(id);
        }
        // A scan of new ids, never hit again: each insertion past ten evicts one.
        for id in 100..1000 {
            s.insert(id, 1, None);
            let gone = s.evict().unwrap();
            assert!(
                gone != 0 && gone != 2,
                "popular member {gone} evicted by a scan"
            );
        }
        assert!(s.contains(0) && s.contains(2));
    }

    #[test]
    fn frequency_decides_among_the_main_queue() {
        // 0..4 hit once each move to the main queue; then 1 and 3 are hit thrice more.
        let mut s = order_of(0..4);
        for id in 0..4 {
            s.touch(id);
        }
        s.insert(9, 1, None);
        assert_eq!(s.evict(), Some(9), "the unhit newcomer goes first");
        for _ in 0..3 {
            s.touch(1);
            s.touch(3);
        }
        assert_eq!(s.evict(), Some(0));
        assert_eq!(s.evict(), Some(2));
        assert_eq!(s.evict(), Some(1));
        assert_eq!(s.evict(), Some(3));
    }

    #[test]
    fn a_dropped_member_inserted_again_soon_goes_to_the_main_queue() {
        let mut s = order_of(0..4);
        assert_eq!(s.evict(), Some(0)); // dropped from the small queue: remembered
        s.insert(0, 1, None);
        s.insert(5, 1, None);
        // 1, 2, 3 and 5 are in the small queue, 0 in the main one: the small queue holds
        // more than a tenth, so its members go first.
        let order: Vec<u32> = std::iter::from_fn(|| s.evict()).collect();
        assert_eq!(order, vec![1, 2, 3, 5, 0]);
    }

    #[test]
    fn removal_forgets_the_ghost_so_a_reused_id_starts_small() {
        let mut s = order_of(0..3);
        assert_eq!(s.evict(), Some(0));
        assert!(s.remove(0).is_none(), "not a member");
        s.insert(0, 1, None); // a new key given id 0: not remembered
        let order: Vec<u32> = std::iter::from_fn(|| s.evict()).collect();
        assert_eq!(order, vec![1, 2, 0]);
    }

    #[test]
    fn a_member_put_back_keeps_its_standing() {
        let mut s = order_of(0..3);
        s.touch(1);
        s.touch(1);
        let standing = s.remove(1).expect("member");
        s.insert(1, 50, Some(standing));
        assert_eq!(s.len(), 3);
        // 1 is still in the small queue with a frequency of two: it moves to main, where
        // it outlives 0 and 2.
        let order: Vec<u32> = std::iter::from_fn(|| s.evict()).collect();
        assert_eq!(order, vec![0, 2, 1]);
        assert_eq!(s.small.weight + s.main.weight, 0);
    }

    #[test]
    fn weights_balance_the_queues() {
        // The small queue gives up members while it holds a tenth of the weight or more;
        // below that, the main queue's oldest goes.
        for (main_weight, first_out) in [(10, 0), (5, 1)] {
            let mut s = order_of(0..2);
            assert_eq!(s.evict(), Some(0)); // dropped from the small queue, remembered
            s.insert(0, main_weight, None); // so back in the main queue
                                            // The small queue holds 1 of 11 (under a tenth), or 1 of 6 (over).
            assert_eq!(s.evict(), Some(first_out), "main weighs {main_weight}");
        }
    }

    #[test]
    fn every_member_comes_out_exactly_once_under_a_random_mix() {
        let mut s = S3Fifo::default();
        let mut members = std::collections::BTreeSet::new();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % 64) as u32;
            match x >> 60 {
                0..=5 => {
                    if !s.contains(id) {
                        s.insert(id, x % 9 + 1, None);
                        members.insert(id);
                    }
                }
                6..=10 => s.touch(id),
                11..=12 => {
                    if s.remove(id).is_some() {
                        members.remove(&id);
                    }
                }
                _ => {
                    if let Some(gone) = s.evict() {
                        assert!(members.remove(&gone), "{gone} evicted but not a member");
                    }
                }
            }
            assert_eq!(s.len(), members.len());
        }
        while let Some(gone) = s.evict() {
            assert!(members.remove(&gone));
        }
        assert!(members.is_empty());
        assert_eq!(s.small.weight + s.main.weight, 0);
    }
}
