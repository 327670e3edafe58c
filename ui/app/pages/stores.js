// /stores: the sources a query fans out to — every live member running the scraper_shipper
// (recent data) or store_shard (bucket data) role, with its address and state. From
// GET /api/v1/admin/cluster; per-source time ranges, external labels and last errors need a
// stores API the node does not have yet, which the page says.

import { el, html, mount, errorBox, emptyBox, stateClass } from '../util.js';
import { adminApi, tokenForm, isUnauthorized } from '../admin.js';

const SOURCE_ROLES = { scraper_shipper: 'ScraperShipper (head, not yet shipped data)', store_shard: 'StoreShard (bucket blocks)', query_planner: 'QueryPlanner (fans out)' };

export async function render(container) {
  container.append(el('h1', {}, 'Stores'));
  const msg = el('div');
  const out = el('div', { 'data-testid': 'stores' });
  const tokenBox = el('div', { class: 'hidden' });
  container.append(tokenBox, msg, out);
  tokenBox.append(tokenForm(() => load()));

  async function load() {
    let d;
    try {
      d = await adminApi('/api/v1/admin/cluster');
      tokenBox.classList.add('hidden');
    } catch (e) {
      if (isUnauthorized(e)) tokenBox.classList.remove('hidden');
      mount(msg, errorBox(e.message));
      return;
    }
    mount(msg, '');
    const members = d.members || [];
    const groups = Object.keys(SOURCE_ROLES).map((role) => [role, members.filter((m) => (m.roles || []).includes(role))]);
    if (!members.length) return mount(out, emptyBox('No members known.'));
    mount(out, html`${groups.map(([role, ms]) => html`<div class="card"><div class="head"><b>${SOURCE_ROLES[role]}</b><span class="muted">${ms.length} node(s)</span></div>
      <div class="table-wrap"><table class="data"><thead><tr><th>Node</th><th>Endpoint</th><th>State</th></tr></thead><tbody>
      ${ms.length ? ms.map((m) => html`<tr data-testid="store"><td>${m.id}</td><td class="mono">${m.http_addr}</td><td><span class="state ${stateClass(m.state)}">${m.state}</span></td></tr>`) : html`<tr><td colspan="3" class="muted">none</td></tr>`}
      </tbody></table></div></div>`)}
      <div class="alert info">Time ranges, external labels and the last error of each source need a stores API (Thanos's <code>/api/v1/stores</code>), which Strata does not serve yet.</div>`);
  }
  await load();
}
