// /cardinality: the cluster's series, samples per second, head bytes and bucket bytes per
// metric name, per job and per label name (/api/v1/status/cardinality, replicas counted
// once). The inputs (match[], focusLabel, limit) live in the page's URL, so a view can be
// linked; a metric name narrows the view to that metric, a label name focuses on it.

import { apiFull } from '../api.js';
import { el, html, mount, errorBox, warningBox, emptyBox, formatNumber, formatBytes, formatTime } from '../util.js';

const S = window.STRATA || { prefix: '' };

export function formatRate(v) {
  const n = Number(v || 0);
  if (n === 0) return '0';
  if (n >= 100) return formatNumber(Math.round(n));
  return n.toFixed(n >= 10 ? 1 : 2);
}

function viewUrl(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.append(k, v);
  const qs = q.toString();
  return `${S.prefix}/cardinality${qs ? '?' + qs : ''}`;
}

function share(part, total) {
  if (!total) return '';
  const p = (100 * part) / total;
  return p >= 10 ? `${Math.round(p)}%` : `${p.toFixed(1)}%`;
}

function costTable(testid, rows, total, nameCell) {
  if (!rows || !rows.length) return emptyBox('No series.');
  return html`<div class="table-wrap"><table class="data" data-testid="${testid}"><thead><tr>
    <th>Name</th><th class="num">Series</th><th class="num">Share</th><th class="num">Samples/s</th><th class="num">Head bytes</th><th class="num">Bucket bytes</th></tr></thead><tbody>
    ${rows.map((r) => html`<tr><td class="mono">${nameCell(r.name)}</td><td class="num">${formatNumber(r.series)}</td>
      <td class="num muted">${share(r.series, total)}</td><td class="num">${formatRate(r.samplesPerSecond)}</td>
      <td class="num">${formatBytes(r.headBytes)}</td><td class="num">${formatBytes(r.bucketBytes)}</td></tr>`)}
  </tbody></table></div>`;
}

function totalsBox(t, nodes) {
  const item = (label, value, id) => html`<div class="stat" data-testid="total-${id}"><div class="value">${value}</div><div class="label">${label}</div></div>`;
  return html`<div class="stats-row" data-testid="totals">
    ${item('Series', formatNumber(t.series), 'series')}
    ${item('Metric names', formatNumber(t.metrics), 'metrics')}
    ${item('Label names', formatNumber(t.labelNames), 'labels')}
    ${item('Samples/s', formatRate(t.samplesPerSecond), 'rate')}
    ${item('Head bytes', formatBytes(t.headBytes), 'head-bytes')}
    ${item('Bucket bytes', formatBytes(t.bucketBytes), 'bucket-bytes')}
    ${item('Blocks', formatNumber(t.blocks), 'blocks')}
    ${item('Nodes', formatNumber((nodes || []).length), 'nodes')}
  </div>`;
}

export async function render(container) {
  const params = new URLSearchParams(location.search);
  const state = {
    match: params.get('match[]') || '',
    focusLabel: params.get('focusLabel') || '',
    limit: params.get('limit') || '10',
  };
  container.append(el('h1', {}, 'Cardinality'));
  const match = el('input', { type: 'text', value: state.match, placeholder: 'match[] selector, e.g. {job="node"}', 'data-testid': 'match', size: 40 });
  const focus = el('input', { type: 'text', value: state.focusLabel, placeholder: 'e.g. instance', 'data-testid': 'focus', size: 18 });
  const limit = el('input', { type: 'text', value: state.limit, 'data-testid': 'limit', size: 5, title: 'Entries per list (1 to 10000)' });
  const go = () => {
    location.href = viewUrl({ 'match[]': match.value.trim(), focusLabel: focus.value.trim(), limit: limit.value.trim() === '10' ? '' : limit.value.trim() });
  };
  const onEnter = (e) => {
    if (e.key === 'Enter') go();
  };
  [match, focus, limit].forEach((i) => i.addEventListener('keydown', onEnter));
  const apply = el('button', { class: 'primary', 'data-testid': 'apply', onclick: go }, 'Apply');
  container.append(
    el('div', { class: 'filters' },
      el('label', {}, 'Series ', match),
      el('label', {}, 'Focus label ', focus),
      el('label', {}, 'Limit ', limit),
      apply,
      state.match || state.focusLabel ? el('a', { href: viewUrl({}) }, 'Reset') : null),
    el('p', { class: 'muted' }, 'Series of the last hour in every ScraperShipper’s head and in the bucket’s blocks, HA replicas counted once. Samples/s come from the heads; bytes are stored chunk bytes.'),
  );
  const out = el('div', { 'data-testid': 'cardinality' });
  container.append(out);
  mount(out, html`<p class="muted">Loading…</p>`);
  let r;
  try {
    r = await apiFull('/api/v1/status/cardinality', { 'match[]': state.match || undefined, focusLabel: state.focusLabel, limit: state.limit });
  } catch (e) {
    mount(out, errorBox(e.message));
    return;
  }
  const d = r.data;
  const t = d.totals || {};
  const metricLink = (name) => html`<a href="${viewUrl({ 'match[]': name, focusLabel: state.focusLabel })}" title="Only this metric">${name}</a>`;
  const jobLink = (name) => (name ? html`<a href="${viewUrl({ 'match[]': `{job=${JSON.stringify(name)}}`, focusLabel: state.focusLabel })}" title="Only this job">${name}</a>` : html`<span class="muted">(no job)</span>`);
  const labelLink = (name) => html`<a href="${viewUrl({ 'match[]': state.match, focusLabel: name })}" title="Series per value of this label">${name}</a>`;
  const focusRows = d.seriesCountByFocusLabelValue;
  const n = Number(state.limit) || 10;
  mount(out, html`
    ${r.warnings.map((w) => warningBox(w))}
    <div class="muted" data-testid="range">${formatTime(d.start)} – ${formatTime(d.end)} UTC${state.match ? html` · series matching <code>${state.match}</code>` : ''}</div>
    ${totalsBox(t, d.nodes)}
    ${focusRows ? html`<h2>Series by value of <code>${d.focusLabel}</code> (top ${n})</h2>${costTable('focus-values', focusRows, t.series, (v) => (state.match ? v : html`<a href="${viewUrl({ 'match[]': `{${d.focusLabel}=${JSON.stringify(v)}}` })}" title="Only these series">${v}</a>`))}` : ''}
    <h2>Top ${n} metric names</h2>
    ${costTable('metrics', d.seriesCountByMetricName, t.series, metricLink)}
    <h2>Top ${n} jobs</h2>
    ${costTable('jobs', d.seriesCountByJob, t.series, jobLink)}
    <h2>Top ${n} label names by distinct values</h2>
    ${(d.seriesCountByLabelName || []).length ? html`<div class="table-wrap"><table class="data" data-testid="labels"><thead><tr><th>Label name</th><th class="num">Distinct values</th><th class="num">Series with it</th></tr></thead><tbody>
      ${d.seriesCountByLabelName.map((l) => html`<tr><td class="mono">${labelLink(l.name)}</td><td class="num">${formatNumber(l.values)}</td><td class="num">${formatNumber(l.series)}</td></tr>`)}
    </tbody></table></div>` : emptyBox('No labels.')}
    <h2>Nodes</h2>
    <div class="table-wrap"><table class="data" data-testid="nodes"><thead><tr><th>Node</th><th class="num">Head series</th><th class="num">Bucket series</th><th class="num">Blocks served</th></tr></thead><tbody>
      ${(d.nodes || []).map((x) => html`<tr><td class="mono">${x.node}</td><td class="num">${formatNumber(x.headSeries)}</td><td class="num">${formatNumber(x.bucketSeries)}</td><td class="num">${formatNumber(x.blocks)}</td></tr>`)}
    </tbody></table></div>
    <p class="muted">Per node before deduplication: replicas hold the same series.</p>`);
}
