//! [`Bstr`]: the binary-safe string every key, string value and container element is made of.
//!
//! Most keys and values in real data sets are short (`user:1000:name`, `42`), so a `Bstr` of
//! up to [`INLINE_CAPACITY`] bytes lives inline in its 24 bytes with no heap allocation, like
//! Redis' `embstr`; longer ones own one boxed slice, sized exactly (no spare capacity).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Longest string kept inline (the struct is 24 bytes: a tag, a length and 22 bytes).
pub const INLINE_CAPACITY: usize = 22;

/// An immutable binary-safe string.
#[derive(Clone)]
pub enum Bstr {
    /// Up to [`INLINE_CAPACITY`] bytes stored in place.
    Inline {
        len: u8,
        data: [u8; INLINE_CAPACITY],
    },
    /// Longer strings, one exact-size heap allocation.
    Heap(Box<[u8]>),
}

impl Bstr {
    pub fn new(bytes: &[u8]) -> Bstr {
        if bytes.len() <= INLINE_CAPACITY {
            let mut data = [0u8; INLINE_CAPACITY];
            data[..bytes.len()].copy_from_slice(bytes);
            Bstr::Inline {
                len: bytes.len() as u8,
                data,
            }
        } else {
            Bstr::Heap(bytes.into())
        }
    }

    pub fn from_vec(bytes: Vec<u8>) -> Bstr {
        if bytes.len() <= INLINE_CAPACITY {
            Bstr::new(&bytes)
        } else {
            Bstr::Heap(bytes.into_boxed_slice())
        }
    }

    pub fn from_i64(n: i64) -> Bstr {
        Bstr::new(itoa::Buffer::new().format(n).as_bytes())
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Bstr::Inline { len, data } => &data[..*len as usize],
            Bstr::Heap(b) => b,
        }
    }

    /// Bytes this string owns on the heap (0 when inline), for memory accounting.
    pub fn heap_size(&self) -> usize {
        match self {
            Bstr::Inline { .. } => 0,
            Bstr::Heap(b) => b.len(),
        }
    }
}

impl Deref for Bstr {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Bstr {
    #[inline]
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Bstr {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Bstr {
    #[inline]
    fn eq(&self, other: &Bstr) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}
impl Eq for Bstr {}

impl PartialOrd for Bstr {
    fn partial_cmp(&self, other: &Bstr) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bstr {
    fn cmp(&self, other: &Bstr) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Bstr {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly like `[u8]` so lookups by `&[u8]` find the entry.
        self.as_bytes().hash(state)
    }
}

impl From<&[u8]> for Bstr {
    fn from(bytes: &[u8]) -> Bstr {
        Bstr::new(bytes)
    }
}

impl From<&str> for Bstr {
    fn from(s: &str) -> Bstr {
        Bstr::new(s.as_bytes())
    }
}

impl fmt::Debug for Bstr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.as_bytes().escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bstr_is_three_words() {
        assert_eq!(std::mem::size_of::<Bstr>(), 24);
    }

    #[test]
    fn short_strings_are_inline_and_long_ones_on_heap() {
        let short = Bstr::new(b"key:000000000001");
        assert!(matches!(short, Bstr::Inline { .. }));
        assert_eq!(short.as_bytes(), b"key:000000000001");
        let long = Bstr::new(&[7u8; 23]);
        assert!(matches!(long, Bstr::Heap(_)));
        assert_eq!(long.len(), 23);
        assert_eq!(Bstr::new(b""), Bstr::from_vec(Vec::new()));
    }

    #[test]
    fn hashes_like_a_byte_slice() {
        use std::collections::HashSet;
        let mut set = HashSet::new();
        set.insert(Bstr::new(b"abc"));
        assert!(set.contains(&b"abc"[..]));
    }
}
