// /blocks: the bucket's blocks. Strata has no blocks-listing API yet (Thanos's
// GET /api/v1/blocks); until it does this page shows what the compactor reports
// (GET /api/v1/admin/compactor: the pass in progress, held streams, the last pass) and says
// what is missing. `drawBlocks` already draws a list of meta.json objects (the shape of
// Thanos's /api/v1/blocks) as a timeline, for when the API exists.

import { el, html, mount, errorBox, formatTime, formatBytes, formatNumber } from '../util.js';
import { adminApi, tokenForm, isUnauthorized } from '../admin.js';

const LEVEL_COLORS = ['#4dabf7', '#69db7c', '#ffd43b', '#ff922b', '#f06595', '#9775fa'];

/** Blocks (meta.json objects) as a timeline: one lane per stream (external labels) and resolution. */
export function drawBlocks(container, blocks) {
  if (!blocks.length) return mount(container, html`<div class="empty">The bucket has no blocks.</div>`);
  const minT = Math.min(...blocks.map((b) => b.minTime));
  const maxT = Math.max(...blocks.map((b) => b.maxTime));
  const span = Math.max(1, maxT - minT);
  const lanes = new Map();
  for (const b of blocks) {
    const th = b.thanos || {};
    const key = `${JSON.stringify(th.labels || {})} · ${(th.downsample && th.downsample.resolution) || 0}ms`;
    if (!lanes.has(key)) lanes.set(key, []);
    lanes.get(key).push(b);
  }
  const details = el('div');
  const tl = el('div', { class: 'timeline', 'data-testid': 'timeline' });
  for (const [key, bs] of lanes) {
    const lane = el('div', { class: 'lane' }, el('span', { class: 'lane-label' }, key));
    for (const b of bs) {
      const level = (b.compaction && b.compaction.level) || 1;
      const left = ((b.minTime - minT) / span) * 100;
      const width = ((b.maxTime - b.minTime) / span) * 100;
      lane.append(el('div', {
        class: 'block', title: b.ulid, 'data-testid': 'block',
        style: `left:${left}%;width:${width}%;background:${LEVEL_COLORS[(level - 1) % LEVEL_COLORS.length]}`,
        onclick: () => mount(details, html`<table class="data kv"><tbody>
          <tr><th>ULID</th><td class="mono">${b.ulid}</td></tr>
          <tr><th>Time range</th><td>${formatTime(b.minTime, true)} – ${formatTime(b.maxTime, true)} UTC</td></tr>
          <tr><th>Series / samples / chunks</th><td>${formatNumber((b.stats || {}).numSeries)} / ${formatNumber((b.stats || {}).numSamples)} / ${formatNumber((b.stats || {}).numChunks)}</td></tr>
          <tr><th>Level</th><td>${level}</td></tr><tr><th>Resolution</th><td>${((b.thanos || {}).downsample || {}).resolution || 0}ms</td></tr>
          <tr><th>Source</th><td>${(b.thanos || {}).source || ''}</td></tr>
          <tr><th>Size</th><td>${formatBytes(((b.thanos || {}).files || []).reduce((a, f) => a + (f.size_in_bytes || 0), 0))}</td></tr>
          </tbody></table>`),
      }));
    }
    tl.append(lane);
  }
  container.replaceChildren(tl, details);
}

export async function render(container) {
  container.append(el('h1', {}, 'Blocks'));
  const out = el('div', { 'data-testid': 'blocks' });
  const status = el('div');
  const tokenBox = el('div', { class: 'hidden' });
  container.append(out, el('h2', {}, 'Compactor'), tokenBox, status);
  // No node serves a blocks API yet (asking would only add a failed request): say so.
  mount(out, html`<div class="alert info" data-testid="blocks-missing">Listing the bucket's blocks needs a blocks API (Thanos's <code>GET /api/v1/blocks</code>), which Strata does not serve yet; <code>strata tools bucket ls</code> lists them meanwhile.</div>`);
  tokenBox.append(tokenForm(() => loadCompactor()));
  async function loadCompactor() {
    try {
      const d = await adminApi('/api/v1/admin/compactor');
      tokenBox.classList.add('hidden');
      const s = d.status || {};
      mount(status, html`<table class="data kv" data-testid="compactor"><tbody>
        <tr><th>Node</th><td>${d.node}</td></tr>
        <tr><th>Running a pass</th><td>${s.running ? 'yes' : 'no'}${s.current_stream ? ` (stream ${s.current_stream}, plan ${s.current_plan})` : ''}</td></tr>
        <tr><th>Streams held</th><td class="mono">${(s.held_streams || []).join(', ') || 'none'}</td></tr>
        <tr><th>Passes</th><td>${s.passes}</td></tr>
        <tr><th>Last success</th><td>${s.last_success_ms ? formatTime(s.last_success_ms, true) + ' UTC' : 'never'}</td></tr>
        <tr><th>Last error</th><td>${s.last_error || 'none'}</td></tr>
        </tbody></table>${s.last_pass ? html`<details><summary>Last pass report</summary><pre>${JSON.stringify(s.last_pass, null, 2)}</pre></details>` : ''}`);
    } catch (e) {
      if (isUnauthorized(e)) tokenBox.classList.remove('hidden');
      mount(status, errorBox(e.message));
    }
  }
  await loadCompactor();
}
