//! The sorted set: members with scores, ordered by (score, member).
//!
//! Two indexes over the same members, kept equal by every mutation: a hash map for O(1)
//! `ZSCORE` and membership, and an ordered tree for ranges and pops.

use std::cmp::Ordering;
use std::collections::btree_set;
use std::collections::BTreeSet;
use std::ops::Bound;

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
    ///
    /// A `-0` score is stored as `0`, as Redis stores it in a small (listpack) sorted set, so
    /// `ZSCORE` and `DEBUG DIGEST` show `0`.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan());
        let score = if score == 0.0 { 0.0 } else { score };
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

impl ZSet {
    /// Elements ranked `start..=end` (0-based ascending ranks, `start <= end < len`), in
    /// ascending order, or descending with `descending`.
    ///
    /// Walks the tree from whichever end is nearer: O(min(start, len - 1 - end) + count).
    pub fn range_by_rank(&self, start: usize, end: usize, descending: bool) -> Vec<&Entry> {
        debug_assert!(start <= end && end < self.len());
        let count = end - start + 1;
        let from_top = self.len() - 1 - end;
        let mut out: Vec<&Entry> = if start <= from_top {
            self.ordered.iter().skip(start).take(count).collect()
        } else {
            self.ordered
                .iter()
                .rev()
                .skip(from_top)
                .take(count)
                .collect()
        };
        if (start <= from_top) == descending {
            out.reverse();
        }
        out
    }

    /// Elements whose score lies in `range`, ascending (the iterator is double-ended).
    /// O(log n) to find the first, O(1) per element after it.
    pub fn range_by_score(&self, range: &ScoreRange) -> btree_set::Range<'_, Entry> {
        let probe = |score: f64| Entry {
            score,
            member: Bstr::new(b""),
        };
        let empty = || {
            let at = probe(f64::NEG_INFINITY);
            self.ordered
                .range((Bound::Included(at.clone()), Bound::Excluded(at)))
        };
        if range.is_empty() || (range.min_exclusive && range.min == f64::INFINITY) {
            return empty();
        }
        // Every bound becomes "score >= low" and "score < high": the empty member sorts
        // before every other member of the same score.
        let low = if range.min_exclusive {
            range.min.next_up()
        } else {
            range.min
        };
        let high = match (range.max_exclusive, range.max) {
            (false, max) if max == f64::INFINITY => None,
            (false, max) => Some(max.next_up()),
            (true, max) => Some(max),
        };
        match high {
            Some(high) if high < low => empty(),
            Some(high) => self
                .ordered
                .range((Bound::Included(probe(low)), Bound::Excluded(probe(high)))),
            None => self
                .ordered
                .range((Bound::Included(probe(low)), Bound::Unbounded)),
        }
    }

    /// Elements whose member lies in the lexicographic `range`, ascending, or descending with
    /// `descending`.
    ///
    /// Lexicographic ranges assume every element has the same score (as Redis documents).
    /// Then this is O(log n) to find the first element; otherwise it scans in (score, member)
    /// order the way Redis scans a small sorted set: from the first element at or after `min`
    /// (the last at or before `max` when descending) while elements stay within the range.
    pub fn range_by_lex<'a>(
        &'a self,
        range: &'a LexRange,
        descending: bool,
    ) -> Box<dyn Iterator<Item = &'a Entry> + 'a> {
        let (Some(first), Some(last)) = (self.ordered.first(), self.ordered.last()) else {
            return Box::new(std::iter::empty());
        };
        if range.is_empty() || !range.above_min(&last.member) || !range.below_max(&first.member) {
            return Box::new(std::iter::empty());
        }
        if first.score == last.score {
            let probe = |member: &[u8]| Entry {
                score: first.score,
                member: Bstr::new(member),
            };
            let low = match &range.min {
                LexBound::Min => Bound::Unbounded,
                LexBound::Inclusive(m) => Bound::Included(probe(m)),
                LexBound::Exclusive(m) => Bound::Excluded(probe(m)),
                LexBound::Max => unreachable!("empty range rejected above"),
            };
            let high = match &range.max {
                LexBound::Max => Bound::Unbounded,
                LexBound::Inclusive(m) => Bound::Included(probe(m)),
                LexBound::Exclusive(m) => Bound::Excluded(probe(m)),
                LexBound::Min => unreachable!("empty range rejected above"),
            };
            let run = self.ordered.range((low, high));
            return if descending {
                Box::new(run.rev())
            } else {
                Box::new(run)
            };
        }
        if descending {
            Box::new(
                self.ordered
                    .iter()
                    .rev()
                    .skip_while(|e| !range.below_max(&e.member))
                    .take_while(|e| range.above_min(&e.member)),
            )
        } else {
            Box::new(
                self.ordered
                    .iter()
                    .skip_while(|e| !range.above_min(&e.member))
                    .take_while(|e| range.below_max(&e.member)),
            )
        }
    }
}

/// A score interval as `ZRANGEBYSCORE` takes it: `min`/`max` each inclusive or exclusive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub min_exclusive: bool,
    pub max_exclusive: bool,
}

impl ScoreRange {
    /// True when no score can satisfy the range.
    pub fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_exclusive || self.max_exclusive))
    }

    pub fn contains(&self, score: f64) -> bool {
        let above = if self.min_exclusive {
            score > self.min
        } else {
            score >= self.min
        };
        let below = if self.max_exclusive {
            score < self.max
        } else {
            score <= self.max
        };
        above && below
    }
}

/// One end of a lexicographic range: `-`, `+`, `[member`, `(member`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every string.
    Min,
    /// `+`: above every string.
    Max,
    Inclusive(Vec<u8>),
    Exclusive(Vec<u8>),
}

/// A lexicographic interval as `ZRANGEBYLEX` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    /// True when no string can satisfy the range (`min` after `max`, or equal and either end
    /// exclusive).
    pub fn is_empty(&self) -> bool {
        use LexBound::*;
        match (&self.min, &self.max) {
            (Max, _) | (_, Min) => true,
            (Min, _) | (_, Max) => false,
            (Inclusive(a), Inclusive(b)) => a > b,
            (Inclusive(a), Exclusive(b))
            | (Exclusive(a), Inclusive(b))
            | (Exclusive(a), Exclusive(b)) => a >= b,
        }
    }

    /// True when `member` satisfies the lower end.
    pub fn above_min(&self, member: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Inclusive(m) => member >= m.as_slice(),
            LexBound::Exclusive(m) => member > m.as_slice(),
        }
    }

    /// True when `member` satisfies the upper end.
    pub fn below_max(&self, member: &[u8]) -> bool {
        match &self.max {
            LexBound::Max => true,
            LexBound::Min => false,
            LexBound::Inclusive(m) => member <= m.as_slice(),
            LexBound::Exclusive(m) => member < m.as_slice(),
        }
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

    fn sample() -> ZSet {
        let mut z = ZSet::default();
        for (i, m) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            z.insert(m.as_bytes(), i as f64);
        }
        z
    }

    fn members<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<String> {
        entries
            .into_iter()
            .map(|e| String::from_utf8_lossy(&e.member).into_owned())
            .collect()
    }

    #[test]
    fn negative_zero_is_stored_as_zero() {
        let mut z = ZSet::default();
        z.insert(b"m", -0.0);
        assert!(z.score(b"m").unwrap().is_sign_positive());
    }

    #[test]
    fn rank_ranges_walk_from_either_end() {
        let z = sample();
        assert_eq!(members(z.range_by_rank(1, 2, false)), ["b", "c"]);
        assert_eq!(members(z.range_by_rank(3, 4, false)), ["d", "e"]);
        assert_eq!(members(z.range_by_rank(3, 4, true)), ["e", "d"]);
        assert_eq!(members(z.range_by_rank(0, 1, true)), ["b", "a"]);
    }

    #[test]
    fn score_ranges_honour_exclusive_and_infinite_bounds() {
        let z = sample();
        let r = |min, max, min_exclusive, max_exclusive| ScoreRange {
            min,
            max,
            min_exclusive,
            max_exclusive,
        };
        assert_eq!(
            members(z.range_by_score(&r(1.0, 3.0, false, false))),
            ["b", "c", "d"]
        );
        assert_eq!(members(z.range_by_score(&r(1.0, 3.0, true, true))), ["c"]);
        let all = r(f64::NEG_INFINITY, f64::INFINITY, false, false);
        assert_eq!(z.range_by_score(&all).count(), 5);
        assert_eq!(z.range_by_score(&r(3.0, 1.0, false, false)).count(), 0);
        assert_eq!(z.range_by_score(&r(2.0, 2.0, true, false)).count(), 0);
        let top = r(f64::INFINITY, f64::INFINITY, true, false);
        assert_eq!(z.range_by_score(&top).count(), 0);
        assert_eq!(
            members(z.range_by_score(&r(3.0, 9.0, true, false)).rev()),
            ["e"]
        );
    }

    #[test]
    fn lex_ranges_on_equal_scores_and_mixed_scores() {
        let mut z = ZSet::default();
        for m in ["a", "b", "c", "d"] {
            z.insert(m.as_bytes(), 0.0);
        }
        let range = LexRange {
            min: LexBound::Exclusive(b"a".to_vec()),
            max: LexBound::Inclusive(b"c".to_vec()),
        };
        assert_eq!(members(z.range_by_lex(&range, false)), ["b", "c"]);
        assert_eq!(members(z.range_by_lex(&range, true)), ["c", "b"]);
        let all = LexRange {
            min: LexBound::Min,
            max: LexBound::Max,
        };
        assert_eq!(z.range_by_lex(&all, false).count(), 4);
        // Mixed scores: like Redis, nothing when the last element sorts below `min`.
        z.insert(b"a", 5.0);
        assert_eq!(z.range_by_lex(&range, false).count(), 0);
        assert_eq!(members(z.range_by_lex(&all, true)), ["a", "d", "c", "b"]);
        let backwards = LexRange {
            min: LexBound::Max,
            max: LexBound::Min,
        };
        assert!(backwards.is_empty());
    }
}
