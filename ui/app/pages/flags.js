// /flags: the node's command-line flags and effective settings (/api/v1/status/flags), searchable.

import { api } from '../api.js';
import { el, html, mount, errorBox, emptyBox, debounce } from '../util.js';

export async function render(container) {
  container.append(el('h1', {}, 'Command-line flags'));
  const search = el('input', { type: 'search', placeholder: 'Filter by flag name or value', 'data-testid': 'filter' });
  const out = el('div', { 'data-testid': 'flags' });
  container.append(el('div', { class: 'filters' }, search), out);
  let flags;
  try {
    flags = await api('/api/v1/status/flags');
  } catch (e) {
    mount(out, errorBox(e.message));
    return;
  }
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const rows = Object.keys(flags).sort().filter((k) => !q || k.toLowerCase().includes(q) || String(flags[k]).toLowerCase().includes(q));
    if (!rows.length) return mount(out, emptyBox('No flag matches.'));
    mount(out, html`<div class="table-wrap"><table class="data kv"><thead><tr><th>Flag</th><th>Value</th></tr></thead><tbody>
      ${rows.map((k) => html`<tr data-testid="flag"><th class="mono">${k}</th><td class="mono">${flags[k]}</td></tr>`)}</tbody></table></div>`);
  };
  search.addEventListener('input', debounce(draw));
  draw();
}
