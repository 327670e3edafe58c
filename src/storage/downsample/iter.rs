//! Reading downsampled series back into samples: the counter-reset correction across chunks
//! (`CounterResets`, Thanos's `ApplyCounterResetsSeriesIterator`), window averages
//! (`average`), and `read_series`, which turns a series' chunks (aggregate or raw) into the
//! samples one `Read` asks for, clipped to a time range. The rules are in the module doc of
//! `storage::downsample`.

use super::aggr::{AggrChunk, AggrType, CHUNK_ENC_AGGR};
use super::plan::Read;
use super::{DownsampleError, Result};
use crate::storage::chunkenc::{self, ENCODING_XOR};
use crate::storage::model::{is_stale_nan, EncodedChunk, Sample};

/// Folds a series' counter samples, chunk after chunk, into a reset-corrected running total.
///
/// Feed it every sample of every chunk in order with `push`. NaNs (stale markers included)
/// are dropped. The first sample starts the total at its value. A later sample adds its
/// increase over the previous raw value, or its whole value when it is lower (a reset). A
/// sample at the same timestamp as the previous one is an aggregate chunk's true last raw
/// value: it emits nothing and only becomes the base the next chunk's first raw value is
/// compared with. A sample before the previous one is ignored.
#[derive(Clone, Debug, Default)]
pub struct CounterResets {
    started: bool,
    last_t: i64,
    /// Last raw value seen (not the total): what the next sample is compared with.
    last_v: f64,
    total: f64,
}

impl CounterResets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next raw or aggregate counter sample; returns the corrected sample to emit.
    pub fn push(&mut self, s: Sample) -> Option<Sample> {
        if s.v.is_nan() {
            return None;
        }
        if !self.started {
            self.started = true;
            self.last_t = s.t;
            self.last_v = s.v;
            self.total = s.v;
            return Some(Sample { t: s.t, v: s.v });
        }
        if s.t > self.last_t {
            if s.v >= self.last_v {
                self.total += s.v - self.last_v;
            } else {
                self.total += s.v;
            }
            self.last_t = s.t;
            self.last_v = s.v;
            return Some(Sample {
                t: s.t,
                v: self.total,
            });
        }
        if s.t == self.last_t {
            self.last_v = s.v;
        }
        None
    }

    /// The last raw value seen (the true last value when the input ended with an aggregate
    /// chunk), `None` before any sample.
    pub fn last_raw(&self) -> Option<f64> {
        self.started.then_some(self.last_v)
    }
}

/// Window averages: `sum / count` at each stamp. The two aggregates must have the same
/// stamps, as every writer produces them.
pub fn average(count: &[Sample], sum: &[Sample]) -> Result<Vec<Sample>> {
    if count.len() != sum.len() {
        return Err(DownsampleError::AverageNotAligned(format!(
            "{} count samples, {} sum samples",
            count.len(),
            sum.len()
        )));
    }
    let mut out = Vec::with_capacity(count.len());
    for (c, s) in count.iter().zip(sum) {
        if c.t != s.t {
            return Err(DownsampleError::AverageNotAligned(format!(
                "count at {}, sum at {}",
                c.t, s.t
            )));
        }
        out.push(Sample {
            t: c.t,
            v: s.v / c.v,
        });
    }
    Ok(out)
}

/// Extra points of the corrected counter for ranges shorter than three windows (module doc,
/// "Short ranges").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interpolation {
    /// Points go at every multiple of `step` ms.
    pub step: i64,
    /// Resolution of the downsampled data (the coarsest, when a series mixes levels): two
    /// points are joined only when they lie in the same or adjacent windows of this size.
    pub resolution: i64,
}

impl Interpolation {
    /// The interpolation a range function over `range` ms needs on data at `resolution` ms:
    /// none for raw data, for instant selectors, or when the range spans three windows or more.
    pub fn for_range(resolution: i64, range: i64) -> Option<Self> {
        if resolution <= 0 || range <= 0 || range >= resolution.saturating_mul(3) {
            return None;
        }
        Some(Interpolation {
            step: (range / 4).max(1),
            resolution,
        })
    }
}

/// What `read_series` returns: samples in `[mint, maxt]`, with optional counter interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    pub mint: i64,
    pub maxt: i64,
    /// Only used by `Read::Counter`.
    pub interpolation: Option<Interpolation>,
}

impl ReadOptions {
    /// Every sample, no interpolation.
    pub fn all() -> Self {
        ReadOptions {
            mint: i64::MIN,
            maxt: i64::MAX,
            interpolation: None,
        }
    }
}

/// Turns one series' chunks (time-ordered; `AggrChunk`s with encoding `0xff` and raw XOR
/// chunks, possibly mixed) into the samples `read` asks for, strictly increasing in time and
/// clipped to `[opts.mint, opts.maxt]`. A missing aggregate is an error ("aggregate min does
/// not exist"), never an empty series.
pub fn read_series(chunks: &[EncodedChunk], read: Read, opts: &ReadOptions) -> Result<Vec<Sample>> {
    let mut out = match read {
        Read::Counter => read_counter(chunks, opts.interpolation)?,
        _ => {
            let mut out: Vec<Sample> = Vec::new();
            for c in chunks {
                for s in chunk_samples(c, read)? {
                    // Overlapping chunks: never go back in time (Thanos seeks past the last
                    // timestamp when it moves to the next chunk).
                    if out.last().is_none_or(|prev| s.t > prev.t) {
                        out.push(s);
                    }
                }
            }
            out
        }
    };
    out.retain(|s| s.t >= opts.mint && s.t <= opts.maxt);
    Ok(out)
}

/// One chunk's samples for every read but `Counter`.
fn chunk_samples(c: &EncodedChunk, read: Read) -> Result<Vec<Sample>> {
    if c.encoding == ENCODING_XOR {
        let raw = chunkenc::decode_all(&c.data)?;
        if read != Read::SampleCount {
            return Ok(raw);
        }
        // Each raw sample is one sample; stale markers keep their meaning for the engine.
        let ones = raw.iter().map(|s| Sample {
            t: s.t,
            v: if is_stale_nan(s.v) { s.v } else { 1.0 },
        });
        return Ok(ones.collect());
    }
    let chunk = aggr_chunk(c)?;
    match read {
        Read::Aggregate(aggr) => chunk.samples(aggr),
        Read::SampleCount => chunk.samples(AggrType::Count),
        Read::Average => average(
            &chunk.samples(AggrType::Count)?,
            &chunk.samples(AggrType::Sum)?,
        ),
        Read::Counter => chunk.samples(AggrType::Counter),
    }
}

fn aggr_chunk(c: &EncodedChunk) -> Result<AggrChunk> {
    if c.encoding != CHUNK_ENC_AGGR {
        return Err(DownsampleError::UnsupportedRawEncoding(c.encoding));
    }
    Ok(AggrChunk::from_bytes(c.data.clone()))
}

/// The reset-corrected counter over all chunks, raw ones included, then interpolated.
fn read_counter(chunks: &[EncodedChunk], ip: Option<Interpolation>) -> Result<Vec<Sample>> {
    let mut resets = CounterResets::new();
    // Each corrected point with whether it came from an aggregate chunk.
    let mut points: Vec<(Sample, bool)> = Vec::new();
    for c in chunks {
        let from_aggr = c.encoding != ENCODING_XOR;
        let samples = if from_aggr {
            aggr_chunk(c)?.samples(AggrType::Counter)?
        } else {
            chunkenc::decode_all(&c.data)?
        };
        for s in samples {
            if let Some(p) = resets.push(s) {
                points.push((p, from_aggr));
            }
        }
    }
    let Some(ip) = ip else {
        return Ok(points.into_iter().map(|(s, _)| s).collect());
    };
    let mut out = Vec::with_capacity(points.len());
    for (i, &(b, b_aggr)) in points.iter().enumerate() {
        if let Some(&(a, a_aggr)) = i.checked_sub(1).and_then(|p| points.get(p)) {
            if a_aggr && b_aggr {
                interpolate_between(a, b, ip, &mut out);
            }
        }
        out.push(b);
    }
    Ok(out)
}

/// Appends the linear interpolation of `a`..`b` at every multiple of `ip.step` strictly
/// between them, when they lie in the same or adjacent windows.
fn interpolate_between(a: Sample, b: Sample, ip: Interpolation, out: &mut Vec<Sample>) {
    if ip.step <= 0 || ip.resolution <= 0 || b.t <= a.t {
        return;
    }
    let window = |t: i64| t.div_euclid(ip.resolution);
    if window(b.t) - window(a.t) > 1 {
        return;
    }
    let span = (b.t - a.t) as f64;
    // a.t < b.t, so a.t / step + 1 cannot overflow.
    let Some(mut g) = (a.t.div_euclid(ip.step) + 1).checked_mul(ip.step) else {
        return;
    };
    while g < b.t {
        let v = a.v + (b.v - a.v) * ((g - a.t) as f64 / span);
        out.push(Sample { t: g, v });
        let Some(next) = g.checked_add(ip.step) else {
            return;
        };
        g = next;
    }
}
