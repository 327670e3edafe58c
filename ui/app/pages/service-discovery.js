// /service-discovery: for every discovered target, its labels before relabeling (discovered)
// and after (the target's labels) side by side, per pool, plus the targets relabeling dropped.
// From /api/v1/targets; paged on the client.

import { api } from '../api.js';
import { el, html, mount, errorBox, emptyBox, labelBadges, pager, debounce } from '../util.js';

const PAGE = 100;

export async function render(container) {
  container.append(el('h1', {}, 'Service discovery'));
  const pool = el('select', { 'data-testid': 'pool' }, el('option', { value: '' }, 'All pools'));
  const show = el('select', { 'data-testid': 'show' },
    el('option', { value: 'all' }, 'Kept and dropped'), el('option', { value: 'active' }, 'Kept only'),
    el('option', { value: 'dropped' }, 'Dropped only'));
  const search = el('input', { type: 'search', placeholder: 'Filter by label', 'data-testid': 'filter' });
  const summary = el('div', { class: 'muted', 'data-testid': 'summary' });
  const out = el('div', { 'data-testid': 'sd' });
  container.append(el('div', { class: 'filters' }, pool, show, search), summary, out);

  let data;
  try {
    data = await api('/api/v1/targets');
  } catch (e) {
    mount(out, errorBox(e.message));
    return;
  }
  const active = (data.activeTargets || []).map((t) => ({ pool: t.scrapePool, discovered: t.discoveredLabels, labels: t.labels }));
  const dropped = (data.droppedTargets || []).map((t) => ({
    pool: (t.discoveredLabels || {}).job || '',
    discovered: t.discoveredLabels,
    labels: null,
  }));
  const all = [...active, ...dropped].sort((a, b) => a.pool.localeCompare(b.pool));
  for (const p of [...new Set(all.map((t) => t.pool))]) pool.append(el('option', { value: p }, p));
  const pools = {};
  for (const t of all) {
    pools[t.pool] = pools[t.pool] || { active: 0, dropped: 0 };
    pools[t.pool][t.labels ? 'active' : 'dropped']++;
  }
  mount(summary, html`${Object.entries(pools).map(([p, c]) => html`<span class="label-badge">${p || '(no job)'}: ${c.active} kept / ${c.active + c.dropped} discovered</span>`)}`);

  let page = 0;
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = all.filter(
      (t) =>
        (!pool.value || t.pool === pool.value) &&
        (show.value === 'all' || (show.value === 'active') === !!t.labels) &&
        (!q || JSON.stringify([t.discovered, t.labels]).toLowerCase().includes(q)),
    );
    if (!all.length) {
      mount(out, emptyBox('Nothing discovered: add scrape_configs to the config.'));
      return;
    }
    if (!rows.length) {
      mount(out, emptyBox('No target matches the filters.'));
      return;
    }
    const pg = pager(rows.length, page, PAGE, (p) => {
      page = p;
      draw();
    });
    page = pg.page;
    mount(out, html`<div class="table-wrap"><table class="data"><thead><tr><th>Pool</th><th>Discovered labels</th><th>Target labels</th></tr></thead><tbody>
      ${rows.slice(pg.from, pg.to).map((t) => html`<tr data-testid="sd-target"><td>${t.pool}</td><td>${labelBadges(t.discovered)}</td>
        <td>${t.labels ? labelBadges(t.labels) : html`<span class="state dead">dropped</span>`}</td></tr>`)}
      </tbody></table></div>`);
    out.append(pg.node);
  };
  const reset = () => {
    page = 0;
    draw();
  };
  pool.addEventListener('change', reset);
  show.addEventListener('change', reset);
  search.addEventListener('input', debounce(reset));
  draw();
}
