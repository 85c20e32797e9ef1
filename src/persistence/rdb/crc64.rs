//! CRC-64/Jones as Redis computes it (reflected, polynomial 0xad93d23594c935a9, init 0,
//! no final xor; check value of "123456789" is 0xe9c6d914c4b8d9ca).
//!
//! Saving a multi-gigabyte file runs every byte through here, so the work is done 16 bytes at
//! a time ("slicing by 16"): table `k` gives the effect of a byte followed by `k` zero bytes,
//! which lets 16 independent lookups replace 16 dependent byte steps. All tables are built at
//! compile time.

/// The polynomial with its bits reversed, as a reflected (LSB-first) CRC uses it.
const POLY_REFLECTED: u64 = 0xad93_d235_94c9_35a9u64.reverse_bits();

/// Number of slicing tables (bytes consumed per step of the fast loop).
const SLICES: usize = 16;

const fn build_tables() -> [[u64; 256]; SLICES] {
    let mut tables = [[0u64; 256]; SLICES];
    // Table 0: the classic byte-at-a-time table.
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    // Table k: table k-1 pushed through one more zero byte.
    let mut k = 1;
    while k < SLICES {
        let mut i = 0;
        while i < 256 {
            let prev = tables[k - 1][i];
            tables[k][i] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    tables
}

static TABLES: [[u64; 256]; SLICES] = build_tables();

/// Extends `crc` over `bytes`. `update(update(0, a), b) == update(0, a ++ b)`.
pub fn update(crc: u64, bytes: &[u8]) -> u64 {
    let t = &TABLES;
    let mut crc = crc;
    let mut chunks = bytes.chunks_exact(SLICES);
    for chunk in &mut chunks {
        let lo = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes")) ^ crc;
        let hi = &chunk[8..];
        crc = t[15][(lo & 0xff) as usize]
            ^ t[14][((lo >> 8) & 0xff) as usize]
            ^ t[13][((lo >> 16) & 0xff) as usize]
            ^ t[12][((lo >> 24) & 0xff) as usize]
            ^ t[11][((lo >> 32) & 0xff) as usize]
            ^ t[10][((lo >> 40) & 0xff) as usize]
            ^ t[9][((lo >> 48) & 0xff) as usize]
            ^ t[8][(lo >> 56) as usize]
            ^ t[7][hi[0] as usize]
            ^ t[6][hi[1] as usize]
            ^ t[5][hi[2] as usize]
            ^ t[4][hi[3] as usize]
            ^ t[3][hi[4] as usize]
            ^ t[2][hi[5] as usize]
            ^ t[1][hi[6] as usize]
            ^ t[0][hi[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time reference, straight from the definition.
    fn slow(mut crc: u64, bytes: &[u8]) -> u64 {
        for &b in bytes {
            crc ^= b as u64;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ POLY_REFLECTED
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn check_value() {
        assert_eq!(update(0, b"123456789"), 0xe9c6d914c4b8d9ca);
        assert_eq!(slow(0, b"123456789"), 0xe9c6d914c4b8d9ca);
        assert_eq!(update(0, b""), 0);
    }

    #[test]
    fn longer_vector() {
        // Redis' crc64 self-test hashes this text including its C string terminator.
        let mut text = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed \
do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis \
nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure \
dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. \
Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit \
anim id est laborum."
            .to_vec();
        text.push(0);
        assert_eq!(update(0, &text), 0xc7794709e69683b3);
    }

    #[test]
    fn matches_reference_at_every_length_and_split() {
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for len in 0..data.len() {
            let whole = update(0, &data[..len]);
            assert_eq!(whole, slow(0, &data[..len]), "len {len}");
            for split in [0, 1, 7, 8, 15, 16, 17, len / 2, len] {
                if split > len {
                    continue;
                }
                let parts = update(update(0, &data[..split]), &data[split..len]);
                assert_eq!(parts, whole, "len {len} split {split}");
            }
        }
    }
}
