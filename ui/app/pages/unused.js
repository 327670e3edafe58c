// /unused: metrics no query has read for a while (/api/v1/status/metric_usage?unused_for=),
// with their series and bytes (from /api/v1/status/cardinality), and per job the ready
// `metric_relabel_configs` rule that drops them, as YAML to copy, with what it saves. The
// duration lives in the page's URL (`?unused_for=30d`).

import { apiFull } from '../api.js';
import { el, html, mount, errorBox, warningBox, emptyBox, formatNumber, formatBytes, formatTime, parseDuration } from '../util.js';

const S = window.STRATA || { prefix: '' };
const DEFAULT_WINDOW = '30d';

/** A YAML single-quoted scalar. */
function yamlQuote(s) {
  return `'${String(s).replace(/'/g, "''")}'`;
}

/** The suggestion's relabel rules as a `metric_relabel_configs:` YAML block. */
export function relabelYaml(rules) {
  const lines = ['metric_relabel_configs:'];
  for (const r of rules || []) {
    lines.push(`  - source_labels: [${(r.source_labels || []).join(', ')}]`);
    lines.push(`    regex: ${yamlQuote(r.regex)}`);
    lines.push(`    action: ${r.action}`);
  }
  return lines.join('\n');
}

function copyButton(pre, testid) {
  const b = el('button', {
    'data-testid': testid,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(pre.textContent);
        b.textContent = 'Copied';
      } catch (e) {
        b.textContent = 'Copy failed: select the text instead';
      }
    },
  }, 'Copy');
  return b;
}

function suggestionCard(s) {
  const yaml = relabelYaml(s.metric_relabel_configs);
  const pre = el('pre', { 'data-testid': `yaml-${s.job}` }, yaml);
  const perDay = s.samples_per_day === null || s.samples_per_day === undefined ? 'unknown samples/day' : `${formatNumber(s.samples_per_day)} samples/day`;
  const head = el('div', { class: 'head' },
    el('strong', {}, `job ${s.job}`),
    el('span', { class: 'muted' }, `${s.metrics.length} metric${s.metrics.length === 1 ? '' : 's'}`),
    el('span', { class: 'saves', 'data-testid': `saves-${s.job}` }, `saves ${formatNumber(s.series)} series, ${perDay}`),
    el('span', { class: 'spacer' }),
    copyButton(pre, `copy-${s.job}`));
  const body = el('div', { class: 'body' },
    el('div', { class: 'muted' }, `Add to the scrape config of job "${s.job}":`),
    pre);
  return el('div', { class: 'card suggestion', 'data-testid': `suggestion-${s.job}` }, head, body);
}

export async function render(container) {
  const params = new URLSearchParams(location.search);
  const window_ = params.get('unused_for') || DEFAULT_WINDOW;
  container.append(el('h1', {}, 'Never queried'));
  const input = el('input', { type: 'text', value: window_, size: 8, 'data-testid': 'unused-for', title: 'A Prometheus duration: 30d, 12h, 90m' });
  const msg = el('span', { class: 'muted' });
  const go = () => {
    const v = input.value.trim();
    if (parseDuration(v) === null) {
      msg.textContent = `"${v}" is not a duration (e.g. 30d, 12h)`;
      return;
    }
    location.href = `${S.prefix}/unused?unused_for=${encodeURIComponent(v)}`;
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') go();
  });
  container.append(
    el('div', { class: 'filters' }, el('label', {}, 'Not queried for ', input), el('button', { class: 'primary', 'data-testid': 'apply', onclick: go }, 'Show'), msg),
    el('p', { class: 'muted' }, 'Usage counts every query the cluster’s QueryPlanners evaluate: dashboards, rules, ad hoc queries and scripts. A metric is listed when none of them has read it for the whole window.'),
  );
  const out = el('div', { 'data-testid': 'unused' });
  container.append(out);
  mount(out, html`<p class="muted">Loading…</p>`);
  let r;
  try {
    r = await apiFull('/api/v1/status/metric_usage', { unused_for: window_ });
  } catch (e) {
    mount(out, errorBox(e.message));
    return;
  }
  const d = r.data || {};
  const metrics = d.metrics || [];
  // Bytes per metric, when the cardinality report answers (it is optional here); asked for the
  // listed metrics only while their names make a URL of sensible length.
  let bytes = {};
  if (metrics.length) {
    try {
      const names = metrics.map((m) => m.name).filter((n) => /^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(n));
      const match = metrics.length <= 300 && names.length === metrics.length ? `{__name__=~"${names.join('|')}"}` : undefined;
      const c = await apiFull('/api/v1/status/cardinality', { 'match[]': match, limit: 10000 });
      for (const m of c.data.seriesCountByMetricName || []) bytes[m.name] = m;
    } catch (e) {
      bytes = {};
    }
  }
  const suggestions = d.suggestions || [];
  const totalSeries = metrics.reduce((a, m) => a + (m.series || 0), 0);
  const b = (name, k) => (bytes[name] ? formatBytes(bytes[name][k]) : '—');
  mount(out, html`
    ${r.warnings.map((w) => warningBox(w))}
    <div class="muted" data-testid="collected-since">Usage collected since ${d.collected_since || '—'}.</div>
    <h2>Metrics not queried for ${window_}</h2>
    ${metrics.length ? html`<p data-testid="unused-summary">${formatNumber(metrics.length)} metric${metrics.length === 1 ? '' : 's'}, ${formatNumber(totalSeries)} series.</p>
      <div class="table-wrap"><table class="data" data-testid="unused-metrics"><thead><tr><th>Metric</th><th class="num">Series</th><th class="num">Head bytes</th><th class="num">Bucket bytes</th><th>Last query</th></tr></thead><tbody>
      ${metrics.map((m) => html`<tr><td class="mono"><a href="${S.prefix}/cardinality?match[]=${encodeURIComponent(m.name)}">${m.name}</a></td><td class="num">${formatNumber(m.series)}</td>
        <td class="num">${b(m.name, 'headBytes')}</td><td class="num">${b(m.name, 'bucketBytes')}</td>
        <td class="muted">${m.usage && m.usage.last_ms ? `${formatTime(m.usage.last_ms, true)} UTC` : 'never'}</td></tr>`)}
      </tbody></table></div>` : emptyBox('No metric can be called unused for this window.')}
    <h2>Suggested drop rules</h2>
    <div data-testid="suggestions"></div>`);
  const box = out.querySelector('[data-testid="suggestions"]');
  if (!suggestions.length) mount(box, emptyBox('Nothing to drop.'));
  else box.append(...suggestions.map(suggestionCard));
  const covered = new Set(suggestions.flatMap((s) => s.metrics || []));
  // The scraper writes these itself: metric relabeling never sees them.
  const report = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped',
    'scrape_samples_post_metric_relabeling', 'scrape_series_added']);
  const uncovered = metrics.map((m) => m.name).filter((n) => !covered.has(n));
  const left = uncovered.filter((n) => !report.has(n));
  const own = uncovered.filter((n) => report.has(n));
  if (suggestions.length && left.length) {
    box.append(el('p', { class: 'muted', 'data-testid': 'no-rule' },
      `No drop rule for ${left.join(', ')}: ${left.length === 1 ? 'it has' : 'they have'} no job label (e.g. recording rule outputs); remove the rule that writes ${left.length === 1 ? 'it' : 'them'} instead.`));
  }
  if (suggestions.length && own.length) {
    box.append(el('p', { class: 'muted', 'data-testid': 'report-series' },
      `No drop rule for ${own.join(', ')}: every scrape writes ${own.length === 1 ? 'it' : 'them'} about itself, and metric relabeling never sees ${own.length === 1 ? 'it' : 'them'}.`));
  }
}
