//! The sorted set: members with scores, ordered by (score, member).
//!
//! Two indexes over the same members, kept equal by every mutation: a hash map for O(1)
//! `ZSCORE` and membership, and an ordered tree for ranges and pops.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::bstr::Bstr;
use super::value::Map;

/// A (score, member) pair ordered as Redis orders sorted-set elements.
/// Scores are never NaN (commands reject NaN before it gets here).
#[derive(Clone, Debug)]
pub struct Entry {
    pub score: f64,
    pub member: Bstr,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        debug_assert!(!self.score.is_nan() && !other.score.is_nan());
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| self.member.cmp(&other.member))
    }
}

/// A sorted set.
#[derive(Clone, Debug, Default)]
pub struct ZSet {
    scores: Map<Bstr, f64>,
    ordered: BTreeSet<Entry>,
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score; returns the previous score if it was present.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan());
        match self.scores.get_mut(member) {
            Some(old) => {
                let previous = *old;
                if previous != score || previous.is_sign_negative() != score.is_sign_negative() {
                    *old = score;
                    let key = Bstr::new(member);
                    self.ordered.remove(&Entry {
                        score: previous,
                        member: key.clone(),
                    });
                    self.ordered.insert(Entry { score, member: key });
                }
                Some(previous)
            }
            None => {
                let key = Bstr::new(member);
                self.scores.insert(key.clone(), score);
                self.ordered.insert(Entry { score, member: key });
                None
            }
        }
    }

    /// Removes `member`; returns its score if it was present.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.scores.swap_remove(member)?;
        let removed = self.ordered.remove(&Entry {
            score,
            member: Bstr::new(member),
        });
        debug_assert!(removed, "zset indexes disagree");
        Some(score)
    }

    /// Members in ascending (score, member) order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bstr, f64)> {
        self.ordered.iter().map(|e| (&e.member, e.score))
    }

    /// The ordered index, for range queries.
    pub fn ordered(&self) -> &BTreeSet<Entry> {
        &self.ordered
    }

    /// The hash index (insertion-ordered, random access by position), for ZRANDMEMBER/ZSCAN.
    pub fn scores(&self) -> &Map<Bstr, f64> {
        &self.scores
    }

    /// 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let probe = Entry {
            score,
            member: Bstr::new(member),
        };
        Some(self.ordered.range(..&probe).count())
    }

    /// Removes and returns the lowest (or, with `highest`, the highest) element.
    pub fn pop(&mut self, highest: bool) -> Option<Entry> {
        let entry = if highest {
            self.ordered.pop_last()?
        } else {
            self.ordered.pop_first()?
        };
        self.scores.swap_remove(entry.member.as_bytes());
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_score_then_member() {
        let mut z = ZSet::default();
        z.insert(b"b", 1.0);
        z.insert(b"a", 1.0);
        z.insert(b"c", 0.5);
        let order: Vec<&[u8]> = z.iter().map(|(m, _)| m.as_bytes()).collect();
        assert_eq!(order, vec![&b"c"[..], b"a", b"b"]);
        assert_eq!(z.rank(b"b"), Some(2));
    }

    #[test]
    fn update_moves_member_and_remove_keeps_indexes_equal() {
        let mut z = ZSet::default();
        assert_eq!(z.insert(b"m", 1.0), None);
        assert_eq!(z.insert(b"m", 3.0), Some(1.0));
        assert_eq!(z.ordered().len(), 1);
        assert_eq!(z.remove(b"m"), Some(3.0));
        assert!(z.is_empty() && z.ordered().is_empty());
        z.insert(b"x", 2.0);
        z.insert(b"y", 1.0);
        assert_eq!(z.pop(true).unwrap().member.as_bytes(), b"x");
        assert_eq!(z.len(), 1);
    }
}
