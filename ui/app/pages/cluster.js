// /cluster: the SWIM members (state, addresses, incarnation, roles running), a node × role
// matrix where each box is the desired assignment — ticking one sends
// PUT /api/v1/admin/nodes/{id}/roles — with pending (desired ≠ running) marked, the compactor
// singleton's leases, and gossip counters. From GET /api/v1/admin/cluster; above them a
// health card per member from GET /api/v1/status/nodes (no token needed).

import { el, html, mount, errorBox, emptyBox, stateClass, ago, formatNumber, formatBytes, formatDuration } from '../util.js';
import { api } from '../api.js';
import { adminApi, tokenForm, isUnauthorized } from '../admin.js';

export const ROLES = ['scraper_shipper', 'store_shard', 'query_planner', 'compactor', 'rule_evaluator'];

export async function render(container) {
  container.append(el('h1', {}, 'Cluster'));
  const msg = el('div', { 'data-testid': 'messages' });
  const out = el('div', { 'data-testid': 'cluster' });
  const cards = el('div', { 'data-testid': 'node-cards' });
  const tokenBox = el('div', { class: 'hidden' });
  container.append(cards, tokenBox, msg, out);
  loadCards(cards);
  tokenBox.append(tokenForm(() => load()));
  let refresh = null;

  async function load() {
    let d;
    try {
      d = await adminApi('/api/v1/admin/cluster');
      tokenBox.classList.add('hidden');
    } catch (e) {
      if (isUnauthorized(e)) tokenBox.classList.remove('hidden');
      mount(msg, errorBox(e.message));
      mount(out, '');
      return;
    }
    mount(msg, '');
    draw(d);
  }

  function draw(d) {
    const members = (d.members || []).slice().sort((a, b) => a.id.localeCompare(b.id));
    const assignments = d.assignments || {};
    if (!members.length) {
      mount(out, emptyBox('No members known.'));
      return;
    }
    const memberRows = members.map((m) => html`<tr data-testid="member"><td><b>${m.id}</b>${m.local ? html` <span class="muted">(this node)</span>` : ''}</td>
      <td><span class="state ${stateClass(m.state)}">${m.state}</span></td><td class="mono">${m.http_addr}</td><td class="mono">${m.gossip_addr}</td>
      <td class="mono">${m.rpc_addr}</td><td class="num">${m.incarnation}</td><td class="num">${m.role_epoch}</td>
      <td>${m.started_at_ms ? ago(new Date(m.started_at_ms).toISOString()) : ''}</td></tr>`);
    const leases = (d.singletons && d.singletons.compactor) || {};
    const leaseList = Array.isArray(leases.leases) ? leases.leases : [];
    mount(out, html`<h2>Members</h2><div class="table-wrap"><table class="data"><thead><tr><th>Node</th><th>State</th><th>HTTP</th><th>Gossip</th><th>RPC</th><th>Incarnation</th><th>Role epoch</th><th>Started</th></tr></thead>
      <tbody>${memberRows}</tbody></table></div>
      <h2>Roles</h2><p class="muted">A ticked box is the desired assignment; ● marks a role running now. Ticking or clearing a box moves the role (the admin API spreads it by gossip; the node reconciles).</p>
      <div class="table-wrap" data-testid="matrix-box"></div>
      <h2>Singletons</h2>
      <div class="table-wrap"><table class="data"><thead><tr><th>Compactor lease (stream)</th><th>Holder</th><th>Expires</th></tr></thead><tbody>
      ${leaseList.length ? leaseList.map((l) => html`<tr><td class="mono">${l.name}</td><td>${l.holder}</td><td>${new Date(l.expires_at_ms).toISOString()}</td></tr>`) : html`<tr><td colspan="3" class="muted">${leases.leases && leases.leases.error ? leases.leases.error : 'No lease held.'}</td></tr>`}
      </tbody></table></div>
      <p class="muted">Nodes assigned the compactor role: ${(leases.assigned || []).join(', ') || 'none'}.</p>
      <h2>Gossip</h2><p class="muted mono">${Object.entries(d.gossip || {}).map(([k, v]) => `${k}: ${typeof v === 'number' ? formatNumber(v) : v}`).join(' · ')}</p>`);

    const table = el('table', { class: 'data matrix', 'data-testid': 'role-matrix' });
    table.append(el('thead', {}, el('tr', {}, el('th', {}, 'Node'), ...ROLES.map((r) => el('th', {}, r)), el('th', {}, 'State'))));
    const body = el('tbody');
    for (const m of members) {
      const desired = new Set(((assignments[m.id] || {}).roles) || m.roles || []);
      const running = new Set(m.roles || []);
      const pending = ROLES.some((r) => desired.has(r) !== running.has(r));
      const tr = el('tr', { 'data-testid': `roles-${m.id}` }, el('td', {}, m.id));
      for (const r of ROLES) {
        const cb = el('input', { type: 'checkbox', 'data-testid': `role-${m.id}-${r}`, title: `${r} on ${m.id}` });
        cb.checked = desired.has(r);
        cb.addEventListener('change', async () => {
          const next = ROLES.filter((x) => (x === r ? cb.checked : desired.has(x)));
          cb.disabled = true;
          try {
            await adminApi(`/api/v1/admin/nodes/${encodeURIComponent(m.id)}/roles`, {}, {
              method: 'PUT', contentType: 'application/json', body: JSON.stringify({ roles: next }),
            });
            mount(msg, html`<div class="alert info">Roles of ${m.id} set to ${next.join(', ') || 'none'}; waiting for the node to reconcile.</div>`);
          } catch (e) {
            cb.checked = !cb.checked;
            mount(msg, errorBox(e.message));
          }
          clearTimeout(refresh);
          refresh = setTimeout(load, 800);
        });
        tr.append(el('td', { class: 'role', 'data-testid': `cell-${m.id}-${r}`, 'data-running': running.has(r) ? '1' : '0' }, cb, running.has(r) ? ' ●' : ''));
      }
      tr.append(el('td', {}, pending ? el('span', { class: 'state pending' }, 'pending') : el('span', { class: 'state ok' }, 'reconciled')));
      body.append(tr);
    }
    table.append(body);
    out.querySelector('[data-testid="matrix-box"]').append(table);
    // While a change is pending, look again until the nodes have reconciled.
    clearTimeout(refresh);
    if (members.some((m) => out.querySelector(`[data-testid="roles-${CSS.escape(m.id)}"] .state.pending`))) {
      refresh = setTimeout(load, 1500);
    }
  }

  await load();
}

/** A health card per member (GET /api/v1/status/nodes: id, state, health or error). */
async function loadCards(box) {
  let members;
  try {
    members = await api('/api/v1/status/nodes');
  } catch (e) {
    mount(box, errorBox(e.message));
    return;
  }
  const row = (k, v) => html`<tr><th>${k}</th><td>${v}</td></tr>`;
  mount(box, html`<h2>Nodes</h2><div class="cards">
    ${(members || []).map((m) => {
      const h = m.health;
      const badge = h
        ? html`<span class="state ${h.ready ? 'ok' : 'pending'}">${h.ready ? 'ready' : 'not ready'}</span>`
        : html`<span class="state err">${m.state}</span>`;
      const body = h
        ? html`<table class="data kv"><tbody>
            ${row('Roles', (h.roles || []).join(', ') || 'none')}
            ${row('Head series', h.head_series === null || h.head_series === undefined ? '—' : formatNumber(h.head_series))}
            ${row('Targets', html`<span style="color:var(--ok)">${h.targets_up} up</span> · <span style="color:var(--err)">${h.targets_down} down</span>${h.targets_unknown ? ` · ${h.targets_unknown} unknown` : ''}`)}
            ${row('Shipping lag', h.shipping_lag_seconds === null || h.shipping_lag_seconds === undefined ? '—' : formatDuration(h.shipping_lag_seconds))}
            ${row('Queries in flight', h.queries_in_flight)}
            ${row('Memory (RSS)', h.resident_memory_bytes ? formatBytes(h.resident_memory_bytes) : '—')}
            ${row('Version', h.version)}
            ${row('Started', ago(h.started_at))}
          </tbody></table>`
        : errorBox(m.error || 'no answer');
      return html`<div class="card node-card" data-testid="node-card"><div class="head"><b>${m.id}</b><span class="muted mono">${m.http_addr}</span><span class="spacer"></span>${badge}</div>
        <div class="body">${body}</div></div>`;
    })}
  </div>`);
}
