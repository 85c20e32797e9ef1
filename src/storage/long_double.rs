//! C's `long double` on x86-64 Linux (the x87 80-bit extended format), which Redis uses for
//! INCRBYFLOAT (and HINCRBYFLOAT). Reproducing its results digit for digit needs the same
//! 64-bit mantissa arithmetic, so additions and scalings run on the x87 unit; conversions to
//! and from text are done here.
//!
//! Parsing is exact (one rounding, as `strtold`) for up to 19 significant digits with a
//! decimal exponent within ±27 — every number a person types or INCRBYFLOAT writes back in
//! practice; longer inputs are scaled in steps and may differ from `strtold` in the last
//! bit. Hexadecimal floats (`0x1p3`), which `strtold` also accepts, are rejected.

/// Exponent bias of the 80-bit format.
const EXPONENT_BIAS: i32 = 16383;
/// Largest power of ten whose value is exact in a 64-bit mantissa (5^27 < 2^64).
const EXACT_POWER_OF_TEN_MAX: i32 = 27;
/// Longest text `string2ld` accepts (`MAX_LONG_DOUBLE_CHARS` in Redis).
const TEXT_LEN_MAX: usize = 5 * 1024;
/// Digits after the point that `%.17Lf` prints.
const FRACTION_DIGITS: u32 = 17;

/// Raw 80-bit value: bytes 0..8 the mantissa (explicit integer bit), 8..10 the sign and
/// the 15-bit biased exponent, little-endian — the layout `fld tbyte` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongDouble([u8; 10]);

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble([0; 10]);

    fn from_parts(negative: bool, exponent_field: u16, mantissa: u64) -> LongDouble {
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&mantissa.to_le_bytes());
        let top = exponent_field | if negative { 0x8000 } else { 0 };
        bytes[8..].copy_from_slice(&top.to_le_bytes());
        LongDouble(bytes)
    }

    fn mantissa(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes"))
    }

    fn top(&self) -> u16 {
        u16::from_le_bytes([self.0[8], self.0[9]])
    }

    fn is_negative(&self) -> bool {
        self.top() & 0x8000 != 0
    }

    fn exponent_field(&self) -> u16 {
        self.top() & 0x7fff
    }

    pub fn is_finite(&self) -> bool {
        self.exponent_field() != 0x7fff
    }

    fn is_zero(&self) -> bool {
        self.mantissa() == 0 && self.is_finite()
    }

    /// An exact integer (every u64 fits the 64-bit mantissa).
    fn from_u64(n: u64) -> LongDouble {
        if n == 0 {
            return LongDouble::ZERO;
        }
        let shift = n.leading_zeros();
        let exponent = EXPONENT_BIAS + 63 - shift as i32;
        LongDouble::from_parts(false, exponent as u16, n << shift)
    }

    fn infinity(negative: bool) -> LongDouble {
        LongDouble::from_parts(negative, 0x7fff, 1 << 63)
    }

    fn negate(self) -> LongDouble {
        let mut bytes = self.0;
        bytes[9] ^= 0x80;
        LongDouble(bytes)
    }

    /// 10^k, exact for `k <= EXACT_POWER_OF_TEN_MAX`.
    fn power_of_ten(k: i32) -> LongDouble {
        debug_assert!((0..=EXACT_POWER_OF_TEN_MAX).contains(&k));
        let five = 5u64.pow(k as u32);
        let shift = five.leading_zeros();
        let exponent = EXPONENT_BIAS + 63 - shift as i32 + k;
        LongDouble::from_parts(false, exponent as u16, five << shift)
    }

    pub fn plus(self, other: LongDouble) -> LongDouble {
        x87(self, other, Operation::Add)
    }

    fn mul(self, other: LongDouble) -> LongDouble {
        x87(self, other, Operation::Mul)
    }

    fn div(self, other: LongDouble) -> LongDouble {
        x87(self, other, Operation::Div)
    }

    /// Redis' `ld2string(.., LD_STR_HUMAN)`: `%.17Lf`, trailing zeros and a trailing
    /// point removed, `-0` shown as `0`.
    pub fn format_human(&self) -> String {
        let negative = self.is_negative();
        let mantissa = self.mantissa();
        let exponent = match self.exponent_field() {
            0 => 1 - EXPONENT_BIAS - 63,
            field => field as i32 - EXPONENT_BIAS - 63,
        };
        // value = mantissa * 2^exponent
        let (integer, fraction) = if exponent >= 0 {
            (big_integer_decimal(mantissa, exponent as u32), 0u64)
        } else {
            let scale = 10u128.pow(FRACTION_DIGITS);
            let scaled = rounded_shift_right(mantissa as u128 * scale, (-exponent) as u32);
            ((scaled / scale).to_string(), (scaled % scale) as u64)
        };
        let mut text = String::new();
        if negative {
            text.push('-');
        }
        text.push_str(&integer);
        if fraction != 0 {
            let digits = format!("{fraction:017}");
            text.push('.');
            text.push_str(digits.trim_end_matches('0'));
        }
        if text == "-0" {
            text = "0".into();
        }
        text
    }
}

/// `n / 2^shift`, rounded to nearest, ties to even (what printf's exact conversion does).
fn rounded_shift_right(n: u128, shift: u32) -> u128 {
    if shift == 0 {
        return n;
    }
    if shift >= 128 {
        return 0;
    }
    let quotient = n >> shift;
    let remainder = n & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    if remainder > half || (remainder == half && quotient & 1 == 1) {
        quotient + 1
    } else {
        quotient
    }
}

/// Decimal digits of `mantissa * 2^exponent` (up to ~4,950 digits for the largest
/// finite value), with base-10^9 limbs.
fn big_integer_decimal(mantissa: u64, mut exponent: u32) -> String {
    const LIMB: u64 = 1_000_000_000;
    const SHIFT_STEP: u32 = 29; // 10^9 * 2^29 < 2^64
    let mut limbs: Vec<u64> = Vec::new(); // least significant first
    let mut rest = mantissa;
    while rest > 0 {
        limbs.push(rest % LIMB);
        rest /= LIMB;
    }
    while exponent > 0 {
        let step = exponent.min(SHIFT_STEP);
        exponent -= step;
        let mut carry = 0u64;
        for limb in limbs.iter_mut() {
            let v = (*limb << step) + carry;
            *limb = v % LIMB;
            carry = v / LIMB;
        }
        while carry > 0 {
            limbs.push(carry % LIMB);
            carry /= LIMB;
        }
    }
    let mut text = match limbs.last() {
        Some(top) => top.to_string(),
        None => return "0".into(),
    };
    for limb in limbs.iter().rev().skip(1) {
        text.push_str(&format!("{limb:09}"));
    }
    text
}

#[derive(Clone, Copy)]
enum Operation {
    Add,
    Mul,
    Div,
}

/// `a <op> b` on the x87 unit, rounded once to the 64-bit mantissa (the precision
/// control Linux sets for every process).
#[cfg(target_arch = "x86_64")]
fn x87(a: LongDouble, b: LongDouble, operation: Operation) -> LongDouble {
    let mut out = [0u8; 10];
    // SAFETY: the three pointers address 10-byte buffers that live across the asm block
    // (`a` and `b` are read, `out` written, with `tbyte` accesses of exactly 10 bytes);
    // the x87 stack is left empty, as the ABI requires, and every x87 register is
    // declared clobbered.
    unsafe {
        match operation {
            Operation::Add => std::arch::asm!(
                "fld tbyte ptr [{b}]",
                "fld tbyte ptr [{a}]",
                "fadd st(0), st(1)",
                "fstp tbyte ptr [{out}]",
                "fstp st(0)",
                a = in(reg) a.0.as_ptr(),
                b = in(reg) b.0.as_ptr(),
                out = in(reg) out.as_mut_ptr(),
                out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                options(nostack),
            ),
            Operation::Mul => std::arch::asm!(
                "fld tbyte ptr [{b}]",
                "fld tbyte ptr [{a}]",
                "fmul st(0), st(1)",
                "fstp tbyte ptr [{out}]",
                "fstp st(0)",
                a = in(reg) a.0.as_ptr(),
                b = in(reg) b.0.as_ptr(),
                out = in(reg) out.as_mut_ptr(),
                out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                options(nostack),
            ),
            Operation::Div => std::arch::asm!(
                "fld tbyte ptr [{b}]",
                "fld tbyte ptr [{a}]",
                "fdiv st(0), st(1)",
                "fstp tbyte ptr [{out}]",
                "fstp st(0)",
                a = in(reg) a.0.as_ptr(),
                b = in(reg) b.0.as_ptr(),
                out = in(reg) out.as_mut_ptr(),
                out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                options(nostack),
            ),
        }
    }
    LongDouble(out)
}

/// Without an x87 unit, fall back to f64 arithmetic (results may differ from Redis on
/// x86-64 in the last digits).
#[cfg(not(target_arch = "x86_64"))]
fn x87(a: LongDouble, b: LongDouble, operation: Operation) -> LongDouble {
    let (a, b) = (to_f64(a), to_f64(b));
    from_f64(match operation {
        Operation::Add => a + b,
        Operation::Mul => a * b,
        Operation::Div => a / b,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn to_f64(v: LongDouble) -> f64 {
    let sign = if v.is_negative() { -1.0 } else { 1.0 };
    if !v.is_finite() {
        return sign * f64::INFINITY;
    }
    let exponent = v.exponent_field() as i32 - EXPONENT_BIAS - 63;
    sign * v.mantissa() as f64 * 2f64.powi(exponent)
}

#[cfg(not(target_arch = "x86_64"))]
fn from_f64(x: f64) -> LongDouble {
    if x.is_infinite() {
        return LongDouble::infinity(x < 0.0);
    }
    if x == 0.0 {
        return LongDouble::ZERO;
    }
    let bits = x.abs().to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exponent) = if exponent == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), exponent - 1075)
    };
    let shift = mantissa.leading_zeros() as i32;
    let field = exponent + EXPONENT_BIAS + 63 - shift;
    LongDouble::from_parts(x < 0.0, field as u16, mantissa << shift)
}

/// Parses text as Redis' `string2ld` accepts it (decimal, optional exponent,
/// `inf`/`infinity`; no spaces, no NaN, no overflow or total underflow).
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
    let mut significand: u64 = 0;
    let mut significant_digits = 0u32;
    let mut dropped_nonzero = false;
    let mut decimal_exponent: i64 = 0;
    let mut any_digit = false;
    let mut position = 0;
    let mut seen_point = false;
    while position < body.len() {
        let c = body[position];
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if c.is_ascii_digit() {
            any_digit = true;
            let digit = (c - b'0') as u64;
            if significant_digits < 19 {
                if significand != 0 || digit != 0 {
                    significand = significand * 10 + digit;
                    significant_digits += 1;
                }
                if seen_point {
                    decimal_exponent -= 1;
                }
            } else {
                dropped_nonzero |= digit != 0;
                if !seen_point {
                    decimal_exponent += 1;
                }
            }
        } else {
            break;
        }
        position += 1;
    }
    if !any_digit {
        return None;
    }
    if position < body.len() {
        if body[position] != b'e' && body[position] != b'E' {
            return None;
        }
        let exponent_text = &body[position + 1..];
        let (exponent_negative, digits) = match exponent_text.first() {
            Some(b'-') => (true, &exponent_text[1..]),
            Some(b'+') => (false, &exponent_text[1..]),
            _ => (false, exponent_text),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut exponent: i64 = 0;
        for &d in digits {
            exponent = (exponent * 10 + (d - b'0') as i64).min(1_000_000);
        }
        decimal_exponent += if exponent_negative {
            -exponent
        } else {
            exponent
        };
    }
    let _ = dropped_nonzero; // the scaled result below is already as close as we get
    if significand == 0 {
        let zero = LongDouble::ZERO;
        return Some(if negative { zero.negate() } else { zero });
    }
    let mut value = LongDouble::from_u64(significand);
    let mut remaining = decimal_exponent;
    while remaining != 0 && value.is_finite() && !value.is_zero() {
        let step = remaining.clamp(
            -(EXACT_POWER_OF_TEN_MAX as i64),
            EXACT_POWER_OF_TEN_MAX as i64,
        );
        let power = LongDouble::power_of_ten(step.unsigned_abs() as i32);
        value = if step > 0 {
            value.mul(power)
        } else {
            value.div(power)
        };
        remaining -= step;
    }
    // strtold reports ERANGE for overflow and for underflow to zero; Redis rejects both.
    if !value.is_finite() || value.is_zero() {
        return None;
    }
    Some(if negative { value.negate() } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(a: &str, b: &str) -> String {
        parse(a.as_bytes())
            .unwrap()
            .plus(parse(b.as_bytes()).unwrap())
            .format_human()
    }

    #[test]
    fn sums_format_like_redis() {
        // Expected values are redis-server 7.0.15's replies on x86-64.
        let table = [
            ("0", "0.1", "0.1"),
            ("10.5", "0.1", "10.6"),
            ("5.0e3", "200", "5200"),
            ("3", "-3", "0"),
            ("-0.0", "0", "0"),
            ("1.1", "2.2", "3.3"),
            ("0.1", "0.2", "0.3"),
            ("10", "-0.00000000000000000001", "10"),
            ("1e20", "1", "100000000000000000000"),
            ("-1.5", "0", "-1.5"),
            ("17179869184", "0.000001", "17179869184.00000100024044514"),
            (
                "123456789.123456789",
                "0.987654321",
                "123456790.11111110999627272",
            ),
            ("0", "1e-20", "0"),
            ("3.0", "0.0000001", "3.0000001"),
            ("1", "1.23456789012345678901234", "2.23456789012345679"),
        ];
        for (a, b, expected) in table {
            assert_eq!(add(a, b), expected, "{a} + {b}");
        }
    }

    #[test]
    fn parse_rejects_what_strtold_rejects() {
        for bad in [
            "", " 1", "1 ", "abc", "nan", "1e", "1.2.3", ".", "1e99999", "--1",
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        assert!(!parse(b"-inf").unwrap().is_finite());
        assert!(parse(b".5").is_some());
        assert!(parse(b"5.").is_some());
    }
}
