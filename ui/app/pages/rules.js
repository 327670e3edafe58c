// /rules: every rule group (from /api/v1/rules) with its interval, last evaluation and duration,
// and per rule its health and last error.

import { api } from '../api.js';
import { el, html, mount, errorBox, emptyBox, stateClass, ago, formatDuration, debounce } from '../util.js';

export async function render(container) {
  container.append(el('h1', {}, 'Rules'));
  const search = el('input', { type: 'search', placeholder: 'Filter by group or rule name', 'data-testid': 'filter' });
  const health = el('select', { 'data-testid': 'health' },
    el('option', { value: '' }, 'Any health'), el('option', { value: 'ok' }, 'ok'),
    el('option', { value: 'err' }, 'err'), el('option', { value: 'unknown' }, 'unknown'));
  const out = el('div', { 'data-testid': 'rules' });
  container.append(el('div', { class: 'filters' }, search, health), out);
  let groups = [];
  try {
    groups = (await api('/api/v1/rules')).groups || [];
  } catch (e) {
    mount(out, errorBox(e.message));
    return;
  }
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const h = health.value;
    const cards = [];
    for (const g of groups) {
      const rules = g.rules.filter((r) => (!h || r.health === h) && (!q || g.name.toLowerCase().includes(q) || r.name.toLowerCase().includes(q)));
      if (!rules.length) continue;
      cards.push(html`<div class="card" data-testid="rule-group"><div class="head"><b>${g.name}</b>
        <span class="muted">${g.file}</span><span class="spacer"></span>
        <span class="muted">interval ${formatDuration(g.interval)} · last evaluation ${ago(g.lastEvaluation)} · took ${formatDuration(g.evaluationTime)}${g.evaluatedBy ? ' · by ' + g.evaluatedBy.join(', ') : ''}</span></div>
        <div class="table-wrap"><table class="data"><thead><tr><th>Rule</th><th>Health</th><th>Last evaluation</th><th class="num">Duration</th></tr></thead><tbody>
        ${rules.map((r) => html`<tr data-testid="rule"><td><pre style="margin:0">${r.type === 'alerting' ? 'alert' : 'record'}: ${r.name}\nexpr: ${r.query}${r.duration ? `\nfor: ${formatDuration(r.duration)}` : ''}${r.labels && Object.keys(r.labels).length ? '\nlabels: ' + JSON.stringify(r.labels) : ''}</pre>
          ${r.lastError ? errorBox(r.lastError) : ''}</td>
          <td><span class="state ${stateClass(r.health)}">${r.health}</span></td><td>${ago(r.lastEvaluation)}</td><td class="num">${formatDuration(r.evaluationTime)}</td></tr>`)}
        </tbody></table></div></div>`);
    }
    if (!groups.length) mount(out, emptyBox('No rule groups are configured (rule_files), or no rule evaluator runs them yet.'));
    else if (!cards.length) mount(out, emptyBox('No rule matches the filters.'));
    else mount(out, html`${cards}`);
  };
  search.addEventListener('input', debounce(draw));
  health.addEventListener('change', draw);
  draw();
}
