//! Block chunk segment files (`chunks/000001`, …): a streaming writer that appends
//! `uvarint len | encoding | data | crc32c` records and cuts a new segment before 512 MiB, and
//! an mmap-backed reader that resolves `segment<<32 | offset` references with CRC checks.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::encoding::{crc32c, put_uvarint, Dec};
use super::{fsync_dir, io_err, BlockError, Result};

/// Magic number at the start of every block chunk segment.
pub const CHUNKS_MAGIC: u32 = 0x85BD_40DD;
/// Segment format version.
pub const CHUNKS_FORMAT_V1: u8 = 1;
/// Header: magic, version, three padding bytes.
pub const SEGMENT_HEADER_LEN: u64 = 8;
/// Prometheus' default maximum segment size.
pub const DEFAULT_MAX_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;

/// Six-digit segment file name for a 1-based sequence number.
pub fn segment_name(seq: u32) -> String {
    format!("{seq:06}")
}

/// Writes chunks into consecutive segment files of a `chunks/` directory.
pub struct ChunkWriter {
    dir: PathBuf,
    max_segment_size: u64,
    /// 0-based position of the current segment (its file is `position + 1`).
    position: Option<u32>,
    file: Option<BufWriter<File>>,
    file_path: PathBuf,
    offset: u64,
    buf: Vec<u8>,
}

impl ChunkWriter {
    pub fn new(dir: &Path, max_segment_size: u64) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            max_segment_size: max_segment_size.clamp(SEGMENT_HEADER_LEN + 16, u32::MAX as u64),
            position: None,
            file: None,
            file_path: PathBuf::new(),
            offset: 0,
            buf: Vec::with_capacity(1024),
        })
    }

    fn finish_segment(&mut self) -> Result<()> {
        if let Some(f) = self.file.take() {
            let file = f
                .into_inner()
                .map_err(|e| io_err(&self.file_path, e.into_error()))?;
            file.sync_all().map_err(|e| io_err(&self.file_path, e))?;
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<()> {
        self.finish_segment()?;
        let position = self.position.map_or(0, |p| p + 1);
        let path = self.dir.join(segment_name(position + 1));
        let f = File::create(&path).map_err(|e| io_err(&path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut header = CHUNKS_MAGIC.to_be_bytes().to_vec();
        header.extend_from_slice(&[CHUNKS_FORMAT_V1, 0, 0, 0]);
        w.write_all(&header).map_err(|e| io_err(&path, e))?;
        self.position = Some(position);
        self.file = Some(w);
        self.file_path = path;
        self.offset = SEGMENT_HEADER_LEN;
        Ok(())
    }

    /// Appends one chunk and returns its reference.
    pub fn write_chunk(&mut self, encoding: u8, data: &[u8]) -> Result<u64> {
        self.buf.clear();
        put_uvarint(&mut self.buf, data.len() as u64);
        self.buf.push(encoding);
        self.buf.extend_from_slice(data);
        let crc = crc32c(&self.buf[self.buf.len() - data.len() - 1..]);
        self.buf.extend_from_slice(&crc.to_be_bytes());
        let len = self.buf.len() as u64;
        if len + SEGMENT_HEADER_LEN > self.max_segment_size {
            return Err(BlockError::Invalid(format!(
                "chunk of {len} bytes exceeds the maximum segment size {}",
                self.max_segment_size
            )));
        }
        let full = self.offset + len > self.max_segment_size;
        if self.file.is_none() || (full && self.offset > SEGMENT_HEADER_LEN) {
            self.cut()?;
        }
        let (Some(position), Some(f)) = (self.position, self.file.as_mut()) else {
            return Err(BlockError::Invalid("chunk segment was not opened".into()));
        };
        f.write_all(&self.buf)
            .map_err(|e| io_err(&self.file_path, e))?;
        let reference = ((position as u64) << 32) | self.offset;
        self.offset += len;
        Ok(reference)
    }

    /// Flushes and fsyncs the last segment and the directory.
    pub fn close(mut self) -> Result<()> {
        self.finish_segment()?;
        fsync_dir(&self.dir)
    }
}

/// One mmapped segment file.
struct Segment {
    name: String,
    map: Mmap,
}

/// Reads chunks of a block's `chunks/` directory through mmap (no chunk data on the heap).
pub struct ChunkReader {
    dir: String,
    segments: Vec<Segment>,
}

impl ChunkReader {
    pub fn open(dir: &Path) -> Result<Self> {
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let entry = entry.map_err(|e| io_err(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only numeric names are segments; anything else (tmp files) is ignored, as upstream.
            if let Ok(seq) = name.parse::<u64>() {
                names.push((seq, entry.path()));
            }
        }
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        for (_, path) in names {
            let file = File::open(&path).map_err(|e| io_err(&path, e))?;
            // SAFETY: block files are immutable once the block directory is renamed into place;
            // nothing truncates them while a reader holds the map.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| io_err(&path, e))?;
            let name = path.display().to_string();
            let mut d = Dec::new(&map, 0, &name);
            let magic = d.be_u32("segment magic")?;
            if magic != CHUNKS_MAGIC {
                return Err(BlockError::Corrupt {
                    file: name,
                    offset: 0,
                    reason: format!("bad chunk segment magic {magic:#010x}"),
                });
            }
            let version = d.byte("segment version")?;
            if version != CHUNKS_FORMAT_V1 {
                return Err(BlockError::Corrupt {
                    file: name,
                    offset: 4,
                    reason: format!("unsupported chunk segment version {version}"),
                });
            }
            segments.push(Segment { name, map });
        }
        Ok(ChunkReader {
            dir: dir.display().to_string(),
            segments,
        })
    }

    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// Size in bytes of all segment files.
    pub fn size(&self) -> u64 {
        self.segments.iter().map(|s| s.map.len() as u64).sum()
    }

    /// The encoding byte and payload of the chunk at `reference`, checksum verified.
    pub fn chunk(&self, reference: u64) -> Result<(u8, &[u8])> {
        let position = (reference >> 32) as usize;
        let offset = reference & 0xffff_ffff;
        let Some(seg) = self.segments.get(position) else {
            return Err(BlockError::Corrupt {
                file: self.dir.clone(),
                offset,
                reason: format!("chunk ref {reference:#x} points to segment {position}, but there are {} segments", self.segments.len()),
            });
        };
        let start = usize::try_from(offset)
            .ok()
            .filter(|&o| o >= SEGMENT_HEADER_LEN as usize && o < seg.map.len());
        let Some(start) = start else {
            return Err(BlockError::Corrupt {
                file: seg.name.clone(),
                offset,
                reason: format!("chunk offset outside the segment ({} bytes)", seg.map.len()),
            });
        };
        let mut d = Dec::new(&seg.map[start..], offset, &seg.name);
        let len = d.uvarint("chunk length")?;
        let len =
            usize::try_from(len).map_err(|_| d.err(format!("chunk length {len} too large")))?;
        let enc_off = d.offset();
        let encoded = d.bytes(len.saturating_add(1), "chunk encoding and data")?;
        let want = d.be_u32("chunk checksum")?;
        let got = crc32c(encoded);
        if want != got {
            return Err(BlockError::Corrupt {
                file: seg.name.clone(),
                offset: enc_off,
                reason: format!(
                    "chunk checksum mismatch: stored {want:#010x}, computed {got:#010x}"
                ),
            });
        }
        Ok((encoded[0], &encoded[1..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_cuts_segments() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join("chunks");
        let mut w = ChunkWriter::new(&cdir, 64).unwrap();
        let mut refs = Vec::new();
        for i in 0..10u8 {
            refs.push(w.write_chunk(1, &[i; 20]).unwrap());
        }
        w.close().unwrap();
        assert_eq!(refs[0], 8);
        assert!(refs.windows(2).all(|p| p[0] < p[1]));
        let r = ChunkReader::open(&cdir).unwrap();
        assert!(r.num_segments() > 1);
        for (i, &rf) in refs.iter().enumerate() {
            assert_eq!(r.chunk(rf).unwrap(), (1, &[i as u8; 20][..]));
        }
        assert!(r.chunk(refs[0] + 1).is_err());
        assert!(r.chunk(99 << 32).is_err());
        let first = cdir.join("000001");
        let mut bytes = fs::read(&first).unwrap();
        bytes[12] ^= 1;
        fs::write(&first, bytes).unwrap();
        let r = ChunkReader::open(&cdir).unwrap();
        let e = r.chunk(refs[0]).unwrap_err().to_string();
        assert!(e.contains("000001") && e.contains("checksum"), "{e}");
    }
}
