// /alerts: the alerting rules by group (from /api/v1/rules?type=alert), each with its state and
// active alerts; filters by state and text. Dense, one line per rule until opened.

import { api } from '../api.js';
import { el, html, mount, errorBox, emptyBox, stateClass, labelBadges, ago, debounce, formatDuration } from '../util.js';

const STATES = ['firing', 'pending', 'inactive'];

export async function render(container) {
  container.append(el('h1', {}, 'Alerts'));
  const shown = new Set(STATES);
  const search = el('input', { type: 'search', placeholder: 'Filter by name or label', 'data-testid': 'filter' });
  const counts = {};
  const boxes = STATES.map((s) => {
    const cb = el('input', { type: 'checkbox', checked: true, 'data-testid': `state-${s}` });
    cb.addEventListener('change', () => {
      if (cb.checked) shown.add(s);
      else shown.delete(s);
      draw();
    });
    counts[s] = el('span', { class: 'muted' }, '');
    return el('label', {}, cb, el('span', { class: `state ${s}` }, s), counts[s]);
  });
  const out = el('div', { 'data-testid': 'alerts' });
  container.append(el('div', { class: 'filters' }, ...boxes, search), out);
  search.addEventListener('input', debounce(() => draw()));

  let groups = [];
  try {
    groups = (await api('/api/v1/rules', { type: 'alert' })).groups || [];
  } catch (e) {
    mount(out, errorBox(e.message));
    return;
  }
  for (const s of STATES) {
    const n = groups.reduce((a, g) => a + g.rules.filter((r) => r.state === s).length, 0);
    counts[s].textContent = `(${n})`;
  }

  function draw() {
    const q = search.value.trim().toLowerCase();
    const parts = [];
    for (const g of groups) {
      const rules = g.rules.filter((r) => shown.has(r.state) && (!q || JSON.stringify([r.name, r.labels, r.alerts]).toLowerCase().includes(q)));
      if (!rules.length) continue;
      parts.push(html`<div class="card"><div class="head"><b>${g.name}</b><span class="muted">${g.file}</span></div><div class="body">
        ${rules.map((r) => html`<details data-testid="alert-rule"><summary><span class="state ${stateClass(r.state)}">${r.state}</span>
          <b>${r.name}</b> <span class="muted">(${(r.alerts || []).length} active)</span></summary>
          <pre>alert: ${r.name}\nexpr: ${r.query}${r.duration ? `\nfor: ${formatDuration(r.duration)}` : ''}${Object.keys(r.labels || {}).length ? '\nlabels: ' + JSON.stringify(r.labels) : ''}${Object.keys(r.annotations || {}).length ? '\nannotations: ' + JSON.stringify(r.annotations, null, 1) : ''}</pre>
          ${(r.alerts || []).length ? html`<div class="table-wrap"><table class="data"><thead><tr><th>Labels</th><th>State</th><th>Active since</th><th>Value</th></tr></thead><tbody>
            ${r.alerts.map((a) => html`<tr><td>${labelBadges(a.labels)}</td><td><span class="state ${stateClass(a.state)}">${a.state}</span></td><td>${ago(a.activeAt)}</td><td class="num">${a.value}</td></tr>`)}
          </tbody></table></div>` : ''}
          ${r.lastError ? errorBox(r.lastError) : ''}
        </details>`)}
      </div></div>`);
    }
    if (!groups.length) mount(out, emptyBox('No alerting rules are configured (rule_files), or no rule evaluator runs them yet.'));
    else if (!parts.length) mount(out, emptyBox('No alerting rule matches the filters.'));
    else mount(out, html`${parts}`);
  }
  draw();
}
