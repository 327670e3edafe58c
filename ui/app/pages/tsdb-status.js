// /tsdb-status: the head block's figures and its top-10 cardinality lists
// (/api/v1/status/tsdb): series per metric name, values per label name, memory per label
// name, series per label pair.

import { api } from '../api.js';
import { el, html, mount, errorBox, formatTime, formatNumber, formatBytes } from '../util.js';

function top(title, rows, fmt = formatNumber) {
  return html`<h2>${title}</h2><div class="table-wrap"><table class="data"><thead><tr><th>Name</th><th class="num">${title.includes('memory') ? 'Bytes' : 'Count'}</th></tr></thead><tbody>
    ${(rows || []).length ? rows.map((r) => html`<tr><td class="mono">${r.name}</td><td class="num">${fmt(r.value)}</td></tr>`) : html`<tr><td colspan="2" class="muted">none</td></tr>`}
  </tbody></table></div>`;
}

export async function render(container) {
  container.append(el('h1', {}, 'TSDB status'));
  const out = el('div', { 'data-testid': 'tsdb' });
  container.append(out);
  let d;
  try {
    d = await api('/api/v1/status/tsdb');
  } catch (e) {
    mount(out, errorBox(e.message));
    return;
  }
  const h = d.headStats || {};
  const time = (ms) => (ms && Math.abs(ms) < 8.64e15 && h.numSeries ? `${formatTime(ms, true)} UTC` : '—');
  mount(out, html`<h2>Head</h2><div class="table-wrap"><table class="data"><thead><tr><th class="num">Series</th><th class="num">Chunks</th><th class="num">Label pairs</th><th>Min time</th><th>Max time</th></tr></thead>
    <tbody><tr><td class="num">${formatNumber(h.numSeries)}</td><td class="num">${formatNumber(h.chunkCount)}</td><td class="num">${formatNumber(h.numLabelPairs)}</td>
    <td>${time(h.minTime)}</td><td>${time(h.maxTime)}</td></tr></tbody></table></div>
    ${top('Top 10 series count by metric name', d.seriesCountByMetricName)}
    ${top('Top 10 label names with value count', d.labelValueCountByLabelName)}
    ${top('Top 10 label names with high memory usage', d.memoryInBytesByLabelName, formatBytes)}
    ${top('Top 10 series count by label value pairs', d.seriesCountByLabelValuePair)}`);
}
