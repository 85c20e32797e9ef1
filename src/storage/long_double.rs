//! Exact emulation of the x87 80-bit `long double` operations HINCRBYFLOAT needs: glibc's
//! `strtold` (as Redis' `string2ld` filters it), addition rounded to nearest-even, and
//! `%.17Lf` printing with Redis' trailing-zero stripping (`ld2string` in human mode).
//!
//! A finite value is `±significand × 2^exponent` with a 64-bit significand, the x87 format's
//! precision; arithmetic is done exactly on big integers and rounded once.
//!
//! INCRBYFLOAT and HINCRBYFLOAT both go through here, so both match redis-server on x86-64
//! digit for digit, including after long chains of increments whose results have 20+
//! significant digits.

use std::cmp::Ordering;

/// Significand width of the x87 extended format (explicit integer bit included).
const SIGNIFICAND_BITS: i64 = 64;
/// Exponent of the lowest bit of the smallest subnormal, 2^-16445.
const LSB_EXPONENT_MIN: i64 = -16445;
/// Finite values are below 2^16384.
const MAGNITUDE_EXPONENT_LIMIT: i64 = 16384;
/// `MAX_LONG_DOUBLE_CHARS` in Redis: longer inputs are rejected.
const TEXT_LEN_MAX: usize = 5 * 1024;
/// Digits after the point in `%.17Lf`.
const FRACTION_DIGITS: u32 = 17;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongDouble {
    negative: bool,
    infinite: bool,
    significand: u64,
    exponent: i64,
}

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble {
        negative: false,
        infinite: false,
        significand: 0,
        exponent: 0,
    };

    fn infinity(negative: bool) -> LongDouble {
        LongDouble {
            negative,
            infinite: true,
            significand: 0,
            exponent: 0,
        }
    }

    pub fn is_infinite(&self) -> bool {
        self.infinite
    }

    /// `%.17Lf` without trailing zeros (and without a trailing point); `-0` prints `0`.
    pub fn to_human_string(self) -> String {
        if self.infinite {
            return if self.negative { "-inf" } else { "inf" }.to_string();
        }
        let mut scaled = Big::from_u128(self.significand as u128);
        for _ in 0..FRACTION_DIGITS {
            scaled.mul_small(10);
        }
        let fixed = if self.exponent >= 0 {
            scaled.shl(self.exponent as u64)
        } else {
            shift_right_rounded(&scaled, (-self.exponent) as u64)
        };
        let mut digits = fixed.to_decimal();
        while digits.len() <= FRACTION_DIGITS as usize {
            digits.insert(0, '0');
        }
        let point = digits.len() - FRACTION_DIGITS as usize;
        let mut text = String::with_capacity(digits.len() + 2);
        if self.negative {
            text.push('-');
        }
        text.push_str(&digits[..point]);
        let fraction = digits[point..].trim_end_matches('0');
        if !fraction.is_empty() {
            text.push('.');
            text.push_str(fraction);
        }
        if text == "-0" {
            text = "0".to_string();
        }
        text
    }
}

/// `n >> shift`, rounded to nearest, ties to even.
fn shift_right_rounded(n: &Big, shift: u64) -> Big {
    let mut quotient = n.shr(shift);
    let half = shift > 0 && n.bit(shift - 1);
    let rest = shift > 1 && n.any_below(shift - 1);
    if half && (rest || quotient.bit(0)) {
        quotient.add_small(1);
    }
    quotient
}

/// Rounds `±(n + sticky) × 2^exponent` to the format, where `sticky` means "plus a
/// nonzero amount below the lowest bit of n".
fn round(n: &Big, sticky: bool, exponent: i64, negative: bool) -> LongDouble {
    if n.is_zero() {
        return LongDouble {
            negative,
            ..LongDouble::ZERO
        };
    }
    let len = n.bit_len() as i64;
    let mut shift = (len - SIGNIFICAND_BITS).max(LSB_EXPONENT_MIN - exponent);
    let mut significand: u128;
    if shift <= 0 {
        significand = n.low_u128() << (-shift) as u32;
    } else {
        significand = n.shr(shift as u64).low_u128();
        let half = n.bit(shift as u64 - 1);
        let rest = sticky || (shift > 1 && n.any_below(shift as u64 - 1));
        if half && (rest || significand & 1 == 1) {
            significand += 1;
            if significand == 1u128 << SIGNIFICAND_BITS {
                significand >>= 1;
                shift += 1;
            }
        }
    }
    debug_assert!(significand < 1u128 << SIGNIFICAND_BITS);
    let exponent = exponent + shift;
    if significand == 0 {
        return LongDouble {
            negative,
            ..LongDouble::ZERO
        };
    }
    let magnitude = (128 - significand.leading_zeros()) as i64 + exponent;
    if magnitude > MAGNITUDE_EXPONENT_LIMIT {
        return LongDouble::infinity(negative);
    }
    LongDouble {
        negative,
        infinite: false,
        significand: significand as u64,
        exponent,
    }
}

/// Parses `text` as Redis' `string2ld` accepts it: `strtold` syntax (sign, decimal digits
/// with an optional point and exponent, `inf`/`infinity`) covering the whole text, not NaN,
/// not overflowing, not underflowing to zero. Hexadecimal floats are not supported.
pub fn parse(text: &[u8]) -> Option<LongDouble> {
    if text.is_empty() || text.len() >= TEXT_LEN_MAX {
        return None;
    }
    let (negative, body) = match text[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(LongDouble::infinity(negative));
    }
    let mut mantissa = Big::default();
    let mut exponent10: i64 = 0;
    let mut digits = 0usize;
    let mut index = 0;
    while index < body.len() && body[index].is_ascii_digit() {
        mantissa.mul_small(10);
        mantissa.add_small((body[index] - b'0') as u32);
        digits += 1;
        index += 1;
    }
    if index < body.len() && body[index] == b'.' {
        index += 1;
        while index < body.len() && body[index].is_ascii_digit() {
            mantissa.mul_small(10);
            mantissa.add_small((body[index] - b'0') as u32);
            exponent10 -= 1;
            digits += 1;
            index += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if index < body.len() && (body[index] == b'e' || body[index] == b'E') {
        index += 1;
        let exponent_negative = match body.get(index) {
            Some(b'-') => {
                index += 1;
                true
            }
            Some(b'+') => {
                index += 1;
                false
            }
            _ => false,
        };
        let start = index;
        let mut exponent: i64 = 0;
        while index < body.len() && body[index].is_ascii_digit() {
            exponent = (exponent * 10 + (body[index] - b'0') as i64).min(1 << 40);
            index += 1;
        }
        if index == start {
            return None;
        }
        exponent10 += if exponent_negative {
            -exponent
        } else {
            exponent
        };
    }
    if index != body.len() {
        return None;
    }
    if mantissa.is_zero() {
        return Some(LongDouble {
            negative,
            ..LongDouble::ZERO
        });
    }
    // Decimal magnitude: the largest finite value is about 1.19e4932, the smallest
    // subnormal about 3.65e-4951. Far outside that, answer without big arithmetic.
    let magnitude10 = exponent10 + (mantissa.bit_len() as i64 * 30103 / 100000) + 1;
    if magnitude10 > 4940 {
        return None;
    }
    if magnitude10 < -4960 {
        return None;
    }
    let value = if exponent10 >= 0 {
        let mut n = mantissa;
        for _ in 0..exponent10 {
            n.mul_small(10);
        }
        round(&n, false, 0, negative)
    } else {
        // m / 10^k = m / 5^k × 2^-k; divide with enough quotient bits to round correctly.
        let k = (-exponent10) as u64;
        let mut power = Big::from_u128(1);
        for _ in 0..k {
            power.mul_small(5);
        }
        let extra = (power.bit_len() as i64 - mantissa.bit_len() as i64 + SIGNIFICAND_BITS + 2)
            .max(0) as u64;
        let (quotient, remainder_nonzero) = mantissa.shl(extra).div_rem(&power);
        round(
            &quotient,
            remainder_nonzero,
            -(k as i64) - extra as i64,
            negative,
        )
    };
    if value.infinite || value.significand == 0 {
        return None; // ERANGE: overflow to HUGE_VAL or underflow to zero.
    }
    Some(value)
}

/// `a + b` rounded to nearest-even; infinite if it overflows (or either input is).
pub fn add(a: LongDouble, b: LongDouble) -> LongDouble {
    if a.infinite || b.infinite {
        return LongDouble::infinity(if a.infinite { a.negative } else { b.negative });
    }
    if a.significand == 0 {
        return if b.significand == 0 {
            LongDouble {
                negative: a.negative && b.negative,
                ..LongDouble::ZERO
            }
        } else {
            b
        };
    }
    if b.significand == 0 {
        return a;
    }
    let exponent = a.exponent.min(b.exponent);
    let big_a = Big::from_u128(a.significand as u128).shl((a.exponent - exponent) as u64);
    let big_b = Big::from_u128(b.significand as u128).shl((b.exponent - exponent) as u64);
    if a.negative == b.negative {
        return round(&big_a.add(&big_b), false, exponent, a.negative);
    }
    match big_a.cmp(&big_b) {
        Ordering::Equal => LongDouble::ZERO,
        Ordering::Greater => round(&big_a.sub(&big_b), false, exponent, a.negative),
        Ordering::Less => round(&big_b.sub(&big_a), false, exponent, b.negative),
    }
}

/// A minimal unsigned big integer: little-endian 32-bit limbs, no trailing zero limbs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u128(mut n: u128) -> Big {
        let mut limbs = Vec::new();
        while n != 0 {
            limbs.push(n as u32);
            n >>= 32;
        }
        Big(limbs)
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn bit_len(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(top) => self.0.len() as u64 * 32 - top.leading_zeros() as u64,
        }
    }

    fn bit(&self, index: u64) -> bool {
        let limb = (index / 32) as usize;
        limb < self.0.len() && self.0[limb] >> (index % 32) & 1 == 1
    }

    /// True if any bit below `index` is set.
    fn any_below(&self, index: u64) -> bool {
        let full = ((index / 32) as usize).min(self.0.len());
        if self.0[..full].iter().any(|&l| l != 0) {
            return true;
        }
        let bits = index % 32;
        full < self.0.len() && bits > 0 && self.0[full] & ((1u32 << bits) - 1) != 0
    }

    /// The low 128 bits.
    fn low_u128(&self) -> u128 {
        self.0
            .iter()
            .take(4)
            .enumerate()
            .fold(0, |acc, (i, &l)| acc | (l as u128) << (32 * i))
    }

    fn mul_small(&mut self, factor: u32) {
        let mut carry = 0u64;
        for limb in &mut self.0 {
            let product = *limb as u64 * factor as u64 + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn add_small(&mut self, addend: u32) {
        let mut carry = addend as u64;
        for limb in &mut self.0 {
            if carry == 0 {
                return;
            }
            let sum = *limb as u64 + carry;
            *limb = sum as u32;
            carry = sum >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn shl(&self, bits: u64) -> Big {
        if self.is_zero() {
            return Big::default();
        }
        let (limbs, bits) = ((bits / 32) as usize, (bits % 32) as u32);
        let mut out = vec![0u32; limbs];
        let mut carry = 0u32;
        for &limb in &self.0 {
            if bits == 0 {
                out.push(limb);
            } else {
                out.push(limb << bits | carry);
                carry = limb >> (32 - bits);
            }
        }
        if carry != 0 {
            out.push(carry);
        }
        Big(out)
    }

    fn shr(&self, bits: u64) -> Big {
        let (limbs, bits) = ((bits / 32) as usize, (bits % 32) as u32);
        if limbs >= self.0.len() {
            return Big::default();
        }
        let source = &self.0[limbs..];
        let mut out: Vec<u32> = (0..source.len())
            .map(|i| {
                let high = source.get(i + 1).copied().unwrap_or(0);
                if bits == 0 {
                    source[i]
                } else {
                    source[i] >> bits | high << (32 - bits)
                }
            })
            .collect();
        out.truncate(source.len());
        let mut big = Big(out);
        big.trim();
        big
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    fn add(&self, other: &Big) -> Big {
        let mut out = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            let sum =
                *self.0.get(i).unwrap_or(&0) as u64 + *other.0.get(i).unwrap_or(&0) as u64 + carry;
            out.push(sum as u32);
            carry = sum >> 32;
        }
        if carry != 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    /// `self - other`; `self` must not be smaller.
    fn sub(&self, other: &Big) -> Big {
        debug_assert!(self.cmp(other) != Ordering::Less);
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut difference = self.0[i] as i64 - *other.0.get(i).unwrap_or(&0) as i64 - borrow;
            borrow = 0;
            if difference < 0 {
                difference += 1 << 32;
                borrow = 1;
            }
            out.push(difference as u32);
        }
        debug_assert_eq!(borrow, 0);
        let mut big = Big(out);
        big.trim();
        big
    }

    /// `(self / divisor, self % divisor != 0)` by binary long division; the quotient is
    /// small here (about 66 bits), so this is cheap.
    fn div_rem(&self, divisor: &Big) -> (Big, bool) {
        debug_assert!(!divisor.is_zero());
        let mut remainder = self.clone();
        let mut quotient = Big::default();
        if self.cmp(divisor) == Ordering::Less {
            return (quotient, !self.is_zero());
        }
        let top = self.bit_len() - divisor.bit_len();
        for shift in (0..=top).rev() {
            let shifted = divisor.shl(shift);
            if remainder.cmp(&shifted) != Ordering::Less {
                remainder = remainder.sub(&shifted);
                quotient = quotient.add(&Big::from_u128(1).shl(shift));
            }
        }
        (quotient, !remainder.is_zero())
    }

    fn to_decimal(&self) -> String {
        const CHUNK: u64 = 1_000_000_000;
        let mut limbs = self.0.clone();
        let mut chunks = Vec::new();
        while !limbs.is_empty() {
            let mut remainder = 0u64;
            for limb in limbs.iter_mut().rev() {
                let current = remainder << 32 | *limb as u64;
                *limb = (current / CHUNK) as u32;
                remainder = current % CHUNK;
            }
            while limbs.last() == Some(&0) {
                limbs.pop();
            }
            chunks.push(remainder);
        }
        let mut text = chunks.pop().map_or("0".to_string(), |c| c.to_string());
        for chunk in chunks.iter().rev() {
            text.push_str(&format!("{chunk:09}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(current: &str, increment: &str) -> String {
        add(
            parse(current.as_bytes()).unwrap(),
            parse(increment.as_bytes()).unwrap(),
        )
        .to_human_string()
    }

    #[test]
    fn prints_like_percent_17lf_without_trailing_zeros() {
        let cases = [
            ("0.1", "0.1"),
            ("10.5", "10.5"),
            ("3", "3"),
            ("-0", "0"),
            ("-1e-20", "0"),
            ("5.0e3", "5000"),
            ("1.5e-7", "0.00000015"),
            ("123456789012345678", "123456789012345678"),
            ("1e30", "1000000000000000000024696061952"),
            ("2.5e-18", "0"),
            ("-3.7", "-3.7"),
        ];
        for (text, printed) in cases {
            assert_eq!(
                parse(text.as_bytes()).unwrap().to_human_string(),
                printed,
                "{text}"
            );
        }
    }

    #[test]
    fn adds_in_extended_precision() {
        // Values checked against redis-server 7.0 on x86-64.
        assert_eq!(incr("10.50", "0.1"), "10.6");
        assert_eq!(incr("0.1", "0.2"), "0.3");
        assert_eq!(incr("5.0e3", "2.0e2"), "5200");
        assert_eq!(incr("1", "-1"), "0");
        assert_eq!(incr("17179869184", "1.5"), "17179869185.5");
        assert_eq!(incr("1.1", "0"), "1.1");
        // 21 significant digits: needs an exact parse (checked against redis-server 7.0).
        assert_eq!(
            incr("1002.09999999999999998", "0.0000001"),
            "1002.10000009999999998"
        );
    }

    #[test]
    fn rejects_what_string2ld_rejects() {
        for bad in [
            "", " 1", "1 ", "abc", "nan", "1e", "1.5e+", ".", "-", "1x", "1e99999",
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(parse(b"1e-99999").is_none(), "underflow to zero");
        assert!(parse(b"inf").unwrap().is_infinite());
        assert!(parse(b"-Infinity").unwrap().is_infinite());
        assert!(parse(b".5").is_some() && parse(b"5.").is_some() && parse(b"+1E3").is_some());
    }

    #[test]
    fn overflow_becomes_infinite() {
        let big = parse(b"1e4932").unwrap();
        assert!(!big.is_infinite());
        assert!(add(big, big).is_infinite());
    }

    #[test]
    fn big_integer_division_and_decimal_round_trip() {
        let n = Big::from_u128(123_456_789_012_345_678_901_234_567_890);
        assert_eq!(n.to_decimal(), "123456789012345678901234567890");
        let (q, inexact) = n.div_rem(&Big::from_u128(10));
        assert_eq!(q.to_decimal(), "12345678901234567890123456789");
        assert!(!inexact);
        assert_eq!(n.shl(70).shr(70), n);
    }
}
