// /stores: every StoreAPI source the query planner fans out to (GET /api/v1/stores, Thanos's
// shape: sources grouped by kind — `store` for StoreShards' bucket blocks, `sidecar` for the
// local TSDB of ScraperShippers and RuleEvaluators, `unreachable` for peers that did not
// answer), each with its node, announced label sets, time range, last check and last error.

import { api } from '../api.js';
import { el, html, mount, errorBox, emptyBox, formatTime, ago } from '../util.js';

const KINDS = {
  store: 'Store (bucket blocks, StoreShard)',
  sidecar: 'Sidecar (local TSDB, ScraperShipper / RuleEvaluator)',
  unreachable: 'Unreachable',
};

function range(min, max) {
  // Thanos reports an empty store as minTime = MaxInt64, maxTime = MinInt64.
  if (min > max || Math.abs(min) >= 9e15 || Math.abs(max) >= 9e15) return html`<span class="muted">no data</span>`;
  return html`${formatTime(min, true)} – ${formatTime(max, true)}`;
}

function labelSets(sets) {
  if (!sets || !sets.length) return html`<span class="muted">none</span>`;
  return sets.map((s) => html`<div>${Object.keys(s).sort().map((k) => html`<span class="label-badge">${k}="${s[k]}"</span>`)}</div>`);
}

export async function render(container) {
  container.append(el('h1', {}, 'Stores'));
  const out = el('div', { 'data-testid': 'stores' });
  container.append(out);
  let data;
  try {
    data = await api('/api/v1/stores');
  } catch (e) {
    mount(out, errorBox(e.message));
    return;
  }
  const kinds = Object.keys(data || {}).sort((a, b) => Object.keys(KINDS).indexOf(a) - Object.keys(KINDS).indexOf(b));
  if (!kinds.length) {
    mount(out, emptyBox('The query planner knows no StoreAPI source yet.'));
    return;
  }
  mount(out, html`${kinds.map((kind) => html`<div class="card"><div class="head"><b>${KINDS[kind] || kind}</b><span class="muted">${data[kind].length} source(s)</span></div>
    <div class="table-wrap"><table class="data stack"><thead><tr><th>Endpoint</th><th>Health</th><th>Label sets</th><th>Time range (UTC)</th><th>Last check</th><th>Last error</th></tr></thead><tbody>
    ${data[kind].map((s) => html`<tr data-testid="store">
      <td data-label="Endpoint" class="mono">${s.name}</td>
      <td data-label="Health"><span class="state ${s.lastError ? 'down' : 'up'}">${s.lastError ? 'down' : 'up'}</span></td>
      <td data-label="Label sets">${labelSets(s.labelSets)}</td>
      <td data-label="Time range">${range(s.minTime, s.maxTime)}</td>
      <td data-label="Last check">${ago(s.lastCheck)}</td>
      <td data-label="Last error">${s.lastError ? html`<span style="color:var(--err)">${s.lastError}</span>` : ''}</td></tr>`)}
    </tbody></table></div></div>`)}`);
}
