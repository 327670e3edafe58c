//! A compact label set for series kept in memory: one heap allocation holding uvarint-length
//! prefixed names and values, instead of a `Vec` plus two `String`s per label. This is what
//! keeps an idle head series well under 1 KiB; `Labels` are rebuilt only when a query or the
//! WAL needs them.

use crate::storage::model::{Label, Labels};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactLabels(Box<[u8]>);

fn put_uvarint(out: &mut Vec<u8>, mut x: usize) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Iterates raw (name, value) byte pairs; stops early on malformed bytes, which cannot occur
/// for buffers built by `from_labels`.
pub struct RawPairs<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> RawPairs<'a> {
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            len |= usize::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
        let end = self.pos.checked_add(len)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
}

impl<'a> Iterator for RawPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let name = self.bytes()?;
        let value = self.bytes()?;
        Some((name, value))
    }
}

/// (name, value) pairs as strings.
pub struct Pairs<'a>(RawPairs<'a>);

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let (n, v) = self.0.next()?;
        Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?))
    }
}

impl CompactLabels {
    pub fn from_labels(labels: &Labels) -> Self {
        let size: usize = labels
            .iter()
            .map(|l| l.name.len() + l.value.len() + 2)
            .sum();
        let mut buf = Vec::with_capacity(size);
        for l in labels.iter() {
            put_uvarint(&mut buf, l.name.len());
            buf.extend_from_slice(l.name.as_bytes());
            put_uvarint(&mut buf, l.value.len());
            buf.extend_from_slice(l.value.as_bytes());
        }
        CompactLabels(buf.into_boxed_slice())
    }

    fn raw(&self) -> RawPairs<'_> {
        RawPairs {
            buf: &self.0,
            pos: 0,
        }
    }

    pub fn iter(&self) -> Pairs<'_> {
        Pairs(self.raw())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let (_, v) = self.raw().find(|(n, _)| *n == name.as_bytes())?;
        std::str::from_utf8(v).ok()
    }

    /// Same label set as `labels`, without allocating (bytewise, no UTF-8 checks).
    pub fn eq_labels(&self, labels: &Labels) -> bool {
        let mut mine = self.raw();
        for l in labels.iter() {
            match mine.next() {
                Some((n, v)) if n == l.name.as_bytes() && v == l.value.as_bytes() => {}
                _ => return false,
            }
        }
        mine.next().is_none()
    }

    pub fn to_labels(&self) -> Labels {
        // Already sorted and unique: built from a `Labels`.
        Labels::new(self.iter().map(|(n, v)| Label::new(n, v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_lookup() {
        let long = "x".repeat(300);
        let l = Labels::from_pairs([("__name__", "up"), ("job", long.as_str()), ("é", "ü\n")]);
        let c = CompactLabels::from_labels(&l);
        assert_eq!(c.to_labels(), l);
        assert!(c.eq_labels(&l));
        assert!(!c.eq_labels(&l.with("job", "y")));
        assert!(!c.eq_labels(&l.without(&["é"])));
        assert_eq!(c.get("job"), Some(long.as_str()));
        assert_eq!(c.get("nope"), None);
        assert_eq!(
            CompactLabels::from_labels(&Labels::empty()).to_labels(),
            Labels::empty()
        );
    }
}
