//! `strata tools tsdb import openmetrics FILE DIR`: backfills OpenMetrics text into blocks,
//! like `promtool tsdb create-blocks-from openmetrics`. The text is read with the scrape
//! parser (`scrape::parser`, Prometheus 2.42's OpenMetrics grammar, which is what promtool
//! runs too) and the samples go to `storage::tools::BlockBackfill`, which writes the blocks;
//! this glue lives here because storage may not import scrape. As in promtool, every sample
//! must carry a timestamp, and the whole input is read before parsing.

use std::io::Read;
use std::path::Path;

use super::{CliError, Result};
use crate::scrape::parser::{Entry, Format, Parser};
use crate::storage::block::BlockMeta;
use crate::storage::tools::bench::{block_bytes_per_sample, synth_openmetrics, Workload};
use crate::storage::tools::format::go_labels;
use crate::storage::tools::{BlockBackfill, BytesPerSample, TsdbToolError};

/// Reads OpenMetrics text (ending with `# EOF`) and writes one block per `block_duration_ms`
/// window that holds samples into `out_dir`. Returns the metas in time order. Errors name the
/// input line.
pub fn import_openmetrics(
    input: &mut impl Read,
    out_dir: &Path,
    block_duration_ms: i64,
) -> Result<Vec<BlockMeta>> {
    let mut backfill = BlockBackfill::new(block_duration_ms)?;
    let mut body = Vec::new();
    input
        .read_to_end(&mut body)
        .map_err(|e| TsdbToolError::Invalid(format!("reading the input: {e}")))?;
    let mut parser = Parser::new(&body, Format::OpenMetrics);
    while let Some(entry) = parser.next_entry()? {
        let Entry::Sample(s) = entry else {
            continue;
        };
        let labels = s.to_labels();
        let Some(t) = s.timestamp else {
            return Err(CliError::from(TsdbToolError::Parse {
                line: s.line,
                reason: format!(
                    "expected timestamp for series {}, got none",
                    go_labels(&labels)
                ),
            }));
        };
        backfill.append(s.line, labels, t, s.value)?;
    }
    Ok(backfill.write(out_dir)?)
}

/// Generates the workload, imports it with 2h blocks into `dir` and measures the result.
pub fn bench_block_bytes_per_sample(
    kind: Workload,
    series: usize,
    samples: usize,
    dir: &Path,
) -> Result<BytesPerSample> {
    let text = synth_openmetrics(kind, series, samples, 1_700_006_400_000);
    import_openmetrics(&mut text.as_bytes(), dir, 7_200_000)?;
    Ok(block_bytes_per_sample(dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(text: &str, dir: &Path) -> Result<Vec<BlockMeta>> {
        import_openmetrics(&mut text.as_bytes(), dir, 7_200_000)
    }

    #[test]
    fn import_requires_eof_and_reports_lines() {
        let dir = tempfile::tempdir().unwrap();
        let e = import("a 1 1\nb{ 2 2\n# EOF\n", dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(import("a 1 1\n", dir.path())
            .unwrap_err()
            .to_string()
            .contains("# EOF"));
        let e = import("a 1 1\na 1\n# EOF\n", dir.path())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "line 2: expected timestamp for series {__name__=\"a\"}, got none"
        );
        let e = import("a 1 2\na 2 1\n# EOF\n", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("line 2: series {__name__=\"a\"}: out of order"),
            "{e}"
        );
        assert!(import_openmetrics(&mut "# EOF\n".as_bytes(), dir.path(), 0).is_err());
        let metas = import("# TYPE a gauge\na 1 1\na 2 7300\n# EOF\n", dir.path()).unwrap();
        assert_eq!(metas.len(), 2);
        assert_eq!((metas[0].min_time, metas[0].max_time), (1000, 1001));
        assert_eq!(
            (metas[1].min_time, metas[1].max_time),
            (7_300_000, 7_300_001)
        );
        assert_eq!(metas[1].compaction.sources, vec![metas[1].ulid]);
    }

    /// The import reads what promtool 2.42's `create-blocks-from openmetrics` reads: the
    /// scrape parser's OpenMetrics grammar (checked against promtool in
    /// `tests/promtool_openmetrics.rs`), not a looser line format.
    #[test]
    fn import_grammar_is_promtools() {
        let dir = tempfile::tempdir().unwrap();
        for refused in [
            "a 1 1\n\n# EOF\n",
            "a 1 1\n# EOF\n\n",
            "a 1 1\r\n# EOF\n",
            "a  1 1\n# EOF\n",
            "a{b=\"c\",} 1 1\n# EOF\n",
            "a +NaN 1\n# EOF\n",
            "a 1e400 1\n# EOF\n",
            "a 1 1 # {x=\"y\"} 1\n# EOF\n",
            "# TYPE a bogus\na 1 1\n# EOF\n",
            "# foo\na 1 1\n# EOF\n",
        ] {
            assert!(import(refused, dir.path()).is_err(), "{refused:?} accepted");
        }
        let metas = import(
            "a{b=\"\\x\"} NaN 1.5\na_total 1 1 # {x=\"y\"} 1 1\n# EOF",
            dir.path(),
        )
        .unwrap();
        assert_eq!(metas[0].stats.num_samples, 2);
    }

    #[test]
    fn counters_compress_well_and_jitter_costs_more() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = bench_block_bytes_per_sample(Workload::Counter, 4, 480, a.path()).unwrap();
        let j = bench_block_bytes_per_sample(Workload::JitteredCounter, 4, 480, b.path()).unwrap();
        assert_eq!(c.samples, 4 * 480);
        assert!(c.chunk_bps < 2.5, "{c:?}");
        assert!(j.chunk_bps > c.chunk_bps, "{j:?} vs {c:?}");
    }
}
