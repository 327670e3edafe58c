//! The block `tombstones` file: deleted time intervals per series (magic, version, entries of
//! `uvarint seriesRef, varint mint, varint maxt`, CRC32C over the entries). New blocks get the
//! 9-byte empty file; the reader applies intervals when serving samples.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::encoding::{crc32c, put_uvarint, put_varint, Dec};
use super::{io_err, BlockError, Result};

pub const TOMBSTONES_FILENAME: &str = "tombstones";
pub const TOMBSTONES_MAGIC: u32 = 0x0130_BA30;
pub const TOMBSTONES_FORMAT_V1: u8 = 1;

/// An inclusive deleted interval in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub mint: i64,
    pub maxt: i64,
}

impl Interval {
    pub fn contains(&self, t: i64) -> bool {
        self.mint <= t && t <= self.maxt
    }
}

/// Deleted intervals keyed by series reference (the series ID in the block index).
#[derive(Clone, Debug, Default)]
pub struct Tombstones {
    map: HashMap<u64, Vec<Interval>>,
}

impl Tombstones {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.values().map(Vec::len).sum()
    }

    pub fn add(&mut self, series: u64, iv: Interval) {
        self.map.entry(series).or_default().push(iv);
    }

    pub fn get(&self, series: u64) -> Option<&[Interval]> {
        self.map.get(&series).map(Vec::as_slice)
    }

    /// Encodes the file: sorted by series for deterministic output.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = TOMBSTONES_MAGIC.to_be_bytes().to_vec();
        out.push(TOMBSTONES_FORMAT_V1);
        let mut keys: Vec<&u64> = self.map.keys().collect();
        keys.sort();
        let mut body = Vec::new();
        for k in keys {
            for iv in self.map.get(k).map(Vec::as_slice).unwrap_or(&[]) {
                put_uvarint(&mut body, *k);
                put_varint(&mut body, iv.mint);
                put_varint(&mut body, iv.maxt);
            }
        }
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32c(&body).to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8], file: &str) -> Result<Self> {
        let mut d = Dec::new(bytes, 0, file);
        let magic = d.be_u32("tombstones magic")?;
        if magic != TOMBSTONES_MAGIC {
            return Err(BlockError::Corrupt {
                file: file.into(),
                offset: 0,
                reason: format!("bad tombstones magic {magic:#010x}"),
            });
        }
        let version = d.byte("tombstones version")?;
        if version != TOMBSTONES_FORMAT_V1 {
            return Err(BlockError::Corrupt {
                file: file.into(),
                offset: 4,
                reason: format!("unsupported tombstones version {version}"),
            });
        }
        let Some(body_len) = d.remaining().checked_sub(4) else {
            return Err(d.err("tombstones file too short for its checksum"));
        };
        let body = d.bytes(body_len, "tombstone entries")?;
        let want = d.be_u32("tombstones checksum")?;
        if crc32c(body) != want {
            return Err(BlockError::Corrupt {
                file: file.into(),
                offset: 5,
                reason: "tombstones checksum mismatch".into(),
            });
        }
        let mut t = Tombstones::default();
        let mut e = Dec::new(body, 5, file);
        while e.remaining() > 0 {
            let series = e.uvarint("tombstone series")?;
            let mint = e.varint("tombstone mint")?;
            let maxt = e.varint("tombstone maxt")?;
            t.add(series, Interval { mint, maxt });
        }
        Ok(t)
    }

    /// Reads `<dir>/tombstones`; a missing file means no deletions.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(TOMBSTONES_FILENAME);
        match fs::read(&path) {
            Ok(b) => Tombstones::decode(&b, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tombstones::default()),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Writes `<dir>/tombstones` and fsyncs it.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(TOMBSTONES_FILENAME);
        let mut f = File::create(&path).map_err(|e| io_err(&path, e))?;
        f.write_all(&self.encode()).map_err(|e| io_err(&path, e))?;
        f.sync_all().map_err(|e| io_err(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_nine_bytes_and_roundtrips() {
        assert_eq!(
            Tombstones::default().encode(),
            [0x01, 0x30, 0xBA, 0x30, 0x01, 0, 0, 0, 0]
        );
        let mut t = Tombstones::default();
        t.add(6, Interval { mint: -5, maxt: 10 });
        t.add(6, Interval { mint: 20, maxt: 30 });
        let back = Tombstones::decode(&t.encode(), "t").unwrap();
        assert_eq!(back.get(6).unwrap().len(), 2);
        assert!(back.get(6).unwrap()[0].contains(-5));
        let mut bad = t.encode();
        bad[6] ^= 0xff;
        assert!(Tombstones::decode(&bad, "t").is_err());
        assert!(Tombstones::decode(&bad[..6], "t").is_err());
    }
}
