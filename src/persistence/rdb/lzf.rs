//! LZF, the compression Redis applies to RDB strings (liblzf's format).
//!
//! # Format
//! A sequence of chunks, each starting with a control byte:
//!
//! ```text
//! 000LLLLL  <L+1 bytes>            literal run of 1..32 bytes copied as they are
//! LLLooooo  oooooooo               back-reference: copy L+2 bytes (L = 1..6) from
//!                                  `o+1` bytes back in the output (o = 0..8191)
//! 111ooooo  LLLLLLLL  oooooooo     long back-reference: copy LLLLLLLL+9 bytes (9..264)
//! ```
//!
//! A back-reference may overlap the bytes it produces (distance 1 repeats one byte).
//!
//! # Why the compressor mirrors liblzf step by step
//! `DUMP` payloads and RDB files should be byte-identical to Redis' own, so the compressor
//! makes the same choices as the liblzf build Redis ships (16-bit hash of three bytes, the
//! newest earlier position per hash slot, never a reference to offset 0, two positions
//! re-hashed after each match, the same output-space checks). The hash table is reused across
//! calls through a per-thread table whose slots carry the call's generation, so a call never
//! pays for clearing 64 Ki slots and never sees a previous call's positions.

use std::cell::RefCell;

/// Hash table size (liblzf `HLOG` 16).
const HASH_SLOTS: usize = 1 << 16;
/// Longest literal run.
const MAX_LITERAL: usize = 32;
/// Farthest back-reference distance (offset field + 1).
const MAX_DISTANCE: usize = 1 << 13;
/// Longest back-reference, in bytes.
const MAX_MATCH: usize = 264;

/// Strings of at most this many bytes are never compressed (Redis: even a run of one repeated
/// byte cannot gain from it).
pub const MIN_COMPRESS_LEN: usize = 20;
/// Compression must save at least this many bytes to be used.
const MIN_SAVING: usize = 4;

/// Appends the LZF compression of `input` to `out` and returns true, or returns false and
/// leaves `out` as it was when Redis would store the string uncompressed: when it is at most
/// [`MIN_COMPRESS_LEN`] bytes long, or when the compressed form would not fit in
/// `input.len() - 4` bytes (liblzf's conservative space checks included).
pub fn compress(input: &[u8], out: &mut Vec<u8>) -> bool {
    if input.len() <= MIN_COMPRESS_LEN || input.len() >= u32::MAX as usize {
        return false;
    }
    let base = out.len();
    let limit = input.len() - MIN_SAVING;
    // One spare byte: the reserved control byte of a run may sit just past `limit`.
    out.resize(base + limit + 1, 0);
    let written = TABLE
        .with(|table| compress_bounded(input, &mut out[base..], limit, &mut table.borrow_mut()));
    match written {
        Some(n) => {
            out.truncate(base + n);
            true
        }
        None => {
            out.truncate(base);
            false
        }
    }
}

/// Hash slots holding `generation << 32 | position`; a slot from another generation is empty.
struct Table {
    slots: Vec<u64>,
    generation: u32,
}

impl Table {
    fn begin(&mut self) {
        if self.slots.is_empty() {
            self.slots = vec![0; HASH_SLOTS];
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped: old tags could alias the new generation.
            self.slots.fill(0);
            self.generation = 1;
        }
    }

    #[inline(always)]
    fn swap(&mut self, slot: usize, pos: usize) -> Option<usize> {
        let tagged = self.slots[slot];
        self.slots[slot] = (self.generation as u64) << 32 | pos as u64;
        ((tagged >> 32) as u32 == self.generation).then_some((tagged & 0xffff_ffff) as usize)
    }

    #[inline(always)]
    fn set(&mut self, slot: usize, pos: usize) {
        self.slots[slot] = (self.generation as u64) << 32 | pos as u64;
    }
}

thread_local! {
    static TABLE: RefCell<Table> = const {
        RefCell::new(Table {
            slots: Vec::new(),
            generation: 0,
        })
    };
}

/// liblzf's hash of the three bytes at `p`: only their 24 bits matter.
#[inline(always)]
fn slot_of(input: &[u8], p: usize) -> usize {
    let h = (input[p] as u32) << 16 | (input[p + 1] as u32) << 8 | input[p + 2] as u32;
    ((h >> 8).wrapping_sub(h.wrapping_mul(5)) & (HASH_SLOTS as u32 - 1)) as usize
}

/// Compresses `input` into `buf` (at least `limit + 1` bytes) using at most `limit` bytes;
/// None when it does not fit. Positions are indices: `ip` in `input`, `op` in `buf`; `lit`
/// counts the bytes of the open literal run, whose control byte sits at `op - lit - 1`.
fn compress_bounded(
    input: &[u8],
    buf: &mut [u8],
    limit: usize,
    table: &mut Table,
) -> Option<usize> {
    let len = input.len();
    if len == 0 || limit == 0 {
        return None;
    }
    table.begin();
    let mut ip = 0usize;
    let mut op = 1usize; // byte 0 is the first run's control byte
    let mut lit = 0usize;

    while ip + 2 < len {
        let candidate = table.swap(slot_of(input, ip), ip);
        let reference = candidate.filter(|&r| {
            r > 0 && ip - r - 1 < MAX_DISTANCE && input[r..r + 3] == input[ip..ip + 3]
        });
        let Some(r) = reference else {
            if op >= limit {
                return None;
            }
            buf[op] = input[ip];
            op += 1;
            ip += 1;
            lit += 1;
            if lit == MAX_LITERAL {
                buf[op - lit - 1] = (MAX_LITERAL - 1) as u8;
                lit = 0;
                op += 1;
            }
            continue;
        };

        // Room for the back-reference and the next run's control byte.
        if op - usize::from(lit == 0) + 4 >= limit {
            return None;
        }
        // Close the open run; an empty one gives its control byte back.
        buf[op - lit - 1] = (lit as u8).wrapping_sub(1);
        if lit == 0 {
            op -= 1;
        }

        // Match length, measured exactly as liblzf does: a 16-byte unchecked stretch when more
        // than 16 bytes remain, then byte steps bounded by `max_len` (the stretch can pass it).
        let max_len = (len - ip - 2).min(MAX_MATCH);
        let mut n = 2;
        let mut ended = false;
        if max_len > 16 {
            for _ in 0..16 {
                n += 1;
                if input[r + n] != input[ip + n] {
                    ended = true;
                    break;
                }
            }
        }
        if !ended {
            loop {
                n += 1;
                if !(n < max_len && input[r + n] == input[ip + n]) {
                    break;
                }
            }
        }

        let code = n - 2; // 1..=262
        let distance_code = ip - r - 1;
        if code < 7 {
            buf[op] = ((distance_code >> 8) + (code << 5)) as u8;
            op += 1;
        } else {
            buf[op] = ((distance_code >> 8) + (7 << 5)) as u8;
            buf[op + 1] = (code - 7) as u8;
            op += 2;
        }
        buf[op] = distance_code as u8;
        op += 2; // the back-reference's last byte, then the next run's control byte
        lit = 0;

        ip += n;
        if ip + 2 >= len {
            break;
        }
        // Hash the last two positions the match covered, so the next match can start there.
        table.set(slot_of(input, ip - 2), ip - 2);
        table.set(slot_of(input, ip - 1), ip - 1);
    }

    if op + 3 > limit {
        return None;
    }
    while ip < len {
        buf[op] = input[ip];
        op += 1;
        ip += 1;
        lit += 1;
        if lit == MAX_LITERAL {
            buf[op - lit - 1] = (MAX_LITERAL - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    buf[op - lit - 1] = (lit as u8).wrapping_sub(1);
    if lit == 0 {
        op -= 1;
    }
    Some(op)
}

/// The most output one input byte can produce (a 3-byte back-reference yields 264 bytes).
const MAX_EXPANSION: usize = MAX_MATCH / 3;

/// Decompresses `input`, which must expand to exactly `expected_len` bytes. Corrupt input of
/// any kind is an error, never a panic, and a huge `expected_len` that `input` could not
/// possibly reach is refused before anything is allocated.
pub fn decompress(input: &[u8], expected_len: usize) -> Result<Vec<u8>, &'static str> {
    if expected_len > input.len().saturating_mul(MAX_EXPANSION) {
        return Err("LZF data is too short for its stated uncompressed length");
    }
    let mut out: Vec<u8> = Vec::with_capacity(expected_len);
    let mut i = 0usize;
    while i < input.len() {
        let control = input[i] as usize;
        i += 1;
        if control < 32 {
            let n = control + 1;
            if n > input.len() - i {
                return Err("LZF literal run goes past the end of the compressed data");
            }
            if n > expected_len - out.len() {
                return Err("LZF data expands beyond its stated uncompressed length");
            }
            out.extend_from_slice(&input[i..i + n]);
            i += n;
        } else {
            let mut n = control >> 5;
            if n == 7 {
                let Some(&extra) = input.get(i) else {
                    return Err("LZF back-reference is cut off by the end of the compressed data");
                };
                n += extra as usize;
                i += 1;
            }
            let Some(&low) = input.get(i) else {
                return Err("LZF back-reference is cut off by the end of the compressed data");
            };
            i += 1;
            n += 2;
            let distance = ((control & 0x1f) << 8) + low as usize + 1;
            if distance > out.len() {
                return Err("LZF back-reference points before the start of the output");
            }
            if n > expected_len - out.len() {
                return Err("LZF data expands beyond its stated uncompressed length");
            }
            let start = out.len() - distance;
            if distance >= n {
                out.extend_from_within(start..start + n);
            } else {
                // Overlapping copy: the reference repeats the last `distance` bytes. Copy the
                // period, then whatever was already produced, doubling each step (a run of
                // zeros, distance 1, is a handful of memcpys instead of a byte loop).
                let mut left = n;
                let mut chunk = distance;
                while left > 0 {
                    let take = chunk.min(left);
                    out.extend_from_within(start..start + take);
                    left -= take;
                    chunk += take;
                }
            }
        }
    }
    if out.len() != expected_len {
        return Err("LZF data expands to fewer bytes than its stated uncompressed length");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_back_references_repeat_their_period() {
        for distance in 1..=5usize {
            for n in [3usize, 7, 9, 20, 100, 264] {
                let literal: Vec<u8> = (0..distance as u8).map(|b| b'a' + b).collect();
                let mut input = vec![(distance - 1) as u8];
                input.extend_from_slice(&literal);
                let long = n - 2;
                if long >= 7 {
                    input.extend_from_slice(&[7 << 5, (long - 7) as u8]);
                } else {
                    input.push((long as u8) << 5);
                }
                input.push((distance - 1) as u8);
                let expected: Vec<u8> = (0..distance + n).map(|i| literal[i % distance]).collect();
                assert_eq!(
                    decompress(&input, expected.len()).unwrap(),
                    expected,
                    "distance {distance}, length {n}"
                );
            }
        }
    }

    fn compressed(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0xAB]; // existing content must survive
        if compress(input, &mut out) {
            assert_eq!(out[0], 0xAB);
            Some(out[1..].to_vec())
        } else {
            assert_eq!(
                out,
                [0xAB],
                "a refused compression must leave `out` untouched"
            );
            None
        }
    }

    fn round_trip(input: &[u8]) {
        if let Some(c) = compressed(input) {
            assert!(c.len() <= input.len() - 4);
            assert_eq!(decompress(&c, input.len()).unwrap(), input);
        }
    }

    /// xorshift, so tests are reproducible without a dependency on `rand`'s algorithms.
    fn noise(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn golden_run_of_one_byte() {
        // Worked out by hand from liblzf's rules: offset 0 may not be referenced, so two
        // literals come first; the match from position 2 stops two bytes before the end (its
        // bound), 46 bytes long (code 44 = 7 + 37), and the last two bytes are literals.
        let input = [b'a'; 50];
        assert_eq!(
            compressed(&input).unwrap(),
            [0x01, b'a', b'a', 0xE0, 37, 0x00, 0x01, b'a', b'a']
        );
        round_trip(&input);
    }

    #[test]
    fn golden_repeated_word() {
        // "abcd" x 6: "abcd" are literals, and so is the second "a" (its only earlier copy is
        // at offset 0). From position 5 the 16-byte unchecked stretch runs to the end, so the
        // match is 19 bytes (code 17 = 7 + 10) at distance 4, and nothing is left over.
        let input = b"abcdabcdabcdabcdabcdabcd";
        assert_eq!(
            compressed(input).unwrap(),
            [0x04, b'a', b'b', b'c', b'd', b'a', 0xE0, 10, 0x03]
        );
        round_trip(input);
    }

    #[test]
    fn short_and_incompressible_inputs_are_refused() {
        assert!(
            compressed(&[b'a'; 20]).is_none(),
            "20 bytes is at or below the minimum"
        );
        assert!(compressed(&[b'a'; 21]).is_some());
        let mut seed = 0x1234_5678_9abc_def0;
        let random: Vec<u8> = (0..1000).map(|_| noise(&mut seed) as u8).collect();
        assert!(compressed(&random).is_none());
        assert!(compressed(b"").is_none());
    }

    #[test]
    fn round_trips() {
        let mut seed = 42u64;
        for len in [
            21usize, 22, 33, 64, 100, 1000, 8191, 8192, 8193, 20_000, 100_000,
        ] {
            // Random bytes from a small alphabet: many short matches.
            let small: Vec<u8> = (0..len)
                .map(|_| b"abc"[noise(&mut seed) as usize % 3])
                .collect();
            round_trip(&small);
            // Text-like data with long repeats at varied distances.
            let text: Vec<u8> = (0..len)
                .map(|i| format!("key:{:06} ", i / 7).into_bytes()[i % 11])
                .collect();
            round_trip(&text);
            // Repeats farther than the window and exactly at it.
            let block: Vec<u8> = (0..9000).map(|_| noise(&mut seed) as u8).collect();
            let far: Vec<u8> = block
                .iter()
                .chain(block.iter())
                .copied()
                .take(len + 9000)
                .collect();
            round_trip(&far);
            round_trip(&vec![0u8; len]);
        }
    }

    #[test]
    fn decompress_rejects_corruption() {
        assert_eq!(decompress(&[], 0), Ok(vec![]));
        assert!(decompress(&[0x02, b'a'], 3).is_err(), "truncated literal");
        assert!(
            decompress(&[0x00, b'a', 0x20], 4).is_err(),
            "truncated reference"
        );
        assert!(
            decompress(&[0x00, b'a', 0xE0], 20).is_err(),
            "truncated long reference"
        );
        assert!(
            decompress(&[0x00, b'a', 0x20, 0x01], 4).is_err(),
            "reference before start"
        );
        assert!(
            decompress(&[0x00, b'a', 0x20, 0x00], 3).is_err(),
            "expands too far"
        );
        assert!(
            decompress(&[0x00, b'a', 0x20, 0x00], 5).is_err(),
            "expands too little"
        );
        assert_eq!(
            decompress(&[0x00, b'a', 0x20, 0x00], 4),
            Ok(b"aaaa".to_vec())
        );
        assert!(
            decompress(&[0x00, b'a'], usize::MAX).is_err(),
            "absurd length"
        );
    }

    #[test]
    fn decompress_never_panics_on_damaged_streams() {
        let input: Vec<u8> = (0..3000)
            .map(|i| format!("{}", i * i % 977).into_bytes()[0])
            .collect();
        let c = compressed(&input).expect("compressible");
        for cut in 0..c.len() {
            let _ = decompress(&c[..cut], input.len());
        }
        let mut seed = 7u64;
        for _ in 0..2000 {
            let mut damaged = c.clone();
            let at = noise(&mut seed) as usize % damaged.len();
            damaged[at] ^= 1 << (noise(&mut seed) % 8);
            let _ = decompress(&damaged, input.len());
        }
    }
}
