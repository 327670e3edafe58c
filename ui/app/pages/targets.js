// /targets: every active scrape target of the cluster (from /api/v1/targets?state=active),
// all pools by default; filters by pool, health and text; the scrape error inline; paged on
// the client (100 per page) so thousands of targets stay responsive.

import { api } from '../api.js';
import { el, html, mount, errorBox, emptyBox, stateClass, labelBadges, ago, pager, debounce } from '../util.js';

const PAGE = 100;

export async function render(container) {
  container.append(el('h1', {}, 'Targets'));
  const pool = el('select', { 'data-testid': 'pool' }, el('option', { value: '' }, 'All pools'));
  const health = el('select', { 'data-testid': 'health' },
    el('option', { value: '' }, 'Any health'), el('option', { value: 'up' }, 'up'),
    el('option', { value: 'down' }, 'down'), el('option', { value: 'unknown' }, 'unknown'));
  const search = el('input', { type: 'search', placeholder: 'Filter by endpoint or labels', 'data-testid': 'filter' });
  const summary = el('span', { class: 'muted', 'data-testid': 'summary' });
  const out = el('div', { 'data-testid': 'targets' });
  container.append(el('div', { class: 'filters' }, pool, health, search, summary), out);

  let targets = [];
  let warnings = [];
  try {
    const res = await api('/api/v1/targets', { state: 'active' });
    targets = res.activeTargets || [];
  } catch (e) {
    mount(out, errorBox(e.message));
    return;
  }
  targets.sort((a, b) => a.scrapePool.localeCompare(b.scrapePool) || a.scrapeUrl.localeCompare(b.scrapeUrl));
  for (const p of [...new Set(targets.map((t) => t.scrapePool))]) pool.append(el('option', { value: p }, p));
  const up = targets.filter((t) => t.health === 'up').length;
  summary.textContent = `${targets.length} targets, ${up} up, ${targets.length - up} not up`;

  let page = 0;
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = targets.filter(
      (t) =>
        (!pool.value || t.scrapePool === pool.value) &&
        (!health.value || t.health === health.value) &&
        (!q || (t.scrapeUrl + ' ' + JSON.stringify(t.labels)).toLowerCase().includes(q)),
    );
    if (!targets.length) {
      mount(out, emptyBox('No scrape targets: add scrape_configs to the config.'));
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
    mount(out, html`${warnings.map((w) => html`<div class="alert warning">${w}</div>`)}<div class="table-wrap"><table class="data stack">
      <thead><tr><th>Endpoint</th><th>Pool</th><th>State</th><th>Labels</th><th>Last scrape</th><th>Duration</th><th>Error</th><th>Naming</th></tr></thead><tbody>
      ${rows.slice(pg.from, pg.to).map((t) => html`<tr data-testid="target">
        <td class="mono" data-label="Endpoint"><a href="${t.globalUrl || t.scrapeUrl}" rel="noreferrer">${t.scrapeUrl}</a></td>
        <td data-label="Pool">${t.scrapePool}</td>
        <td data-label="State"><span class="state ${stateClass(t.health)}" data-testid="health">${t.health}</span></td>
        <td data-label="Labels"><span>${labelBadges(t.labels)}</span></td>
        <td data-label="Last scrape">${ago(t.lastScrape)}</td>
        <td class="num" data-label="Duration">${(t.lastScrapeDuration * 1000).toFixed(1)}ms</td>
        <td data-label="Error">${t.lastError ? html`<span style="color:var(--err)" data-testid="last-error">${t.lastError}</span>` : ''}</td>
        <td data-label="Naming">${lintCell(t.lintProblems)}</td></tr>`)}
      </tbody></table></div>`);
    out.append(pg.node);
  };
  const reset = () => {
    page = 0;
    draw();
  };
  pool.addEventListener('change', reset);
  health.addEventListener('change', reset);
  search.addEventListener('input', debounce(reset));
  draw();
}

// Naming problems of the target's exposition (Strata's lintProblems field): a count that
// opens to promtool-style lines.
function lintCell(problems) {
  if (!problems || !problems.length) return '';
  return html`<details data-testid="lint"><summary>${problems.length} problem${problems.length === 1 ? '' : 's'}</summary>
    <ul class="mono">${problems.map((p) => html`<li>${p.metric} ${p.text}</li>`)}</ul></details>`;
}
