// /blocks: the bucket's blocks (GET /api/v1/blocks: each meta.json plus its marks and size) on
// a timeline, one lane per stream (external labels) and resolution, coloured by compaction
// level, marked blocks outlined; a search by ULID; details of a clicked block; totals per
// lane. Below, the compactor's status (GET /api/v1/admin/compactor).

import { el, html, mount, errorBox, emptyBox, formatTime, formatBytes, formatNumber, formatDuration, debounce } from '../util.js';
import { api } from '../api.js';
import { adminApi, tokenForm, isUnauthorized } from '../admin.js';

const LEVEL_COLORS = ['#4dabf7', '#69db7c', '#ffd43b', '#ff922b', '#f06595', '#9775fa'];

function levelOf(b) {
  return (b.compaction && b.compaction.level) || 1;
}

function resolutionOf(b) {
  return ((b.thanos || {}).downsample || {}).resolution || 0;
}

function laneKey(b) {
  const labels = (b.thanos || {}).labels || {};
  const ls = Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(', ');
  const res = resolutionOf(b);
  return `{${ls}} · ${res ? formatDuration(res / 1000) : 'raw'}`;
}

function marks(b) {
  const s = b.strata || {};
  return [s.deletionMark && 'deletion', s.noCompactMark && 'no-compact', s.noDownsampleMark && 'no-downsample'].filter(Boolean);
}

function details(b) {
  const st = b.stats || {};
  const s = b.strata || {};
  return html`<h2>Block</h2><table class="data kv" data-testid="block-details"><tbody>
    <tr><th>ULID</th><td class="mono">${b.ulid}</td></tr>
    <tr><th>Time range</th><td>${formatTime(b.minTime, true)} – ${formatTime(b.maxTime, true)} UTC</td></tr>
    <tr><th>Series / samples / chunks</th><td>${formatNumber(st.numSeries)} / ${formatNumber(st.numSamples)} / ${formatNumber(st.numChunks)}</td></tr>
    <tr><th>Size (index / chunks)</th><td>${formatBytes(s.sizeBytes)} (${formatBytes(s.indexBytes)} / ${formatBytes(s.chunkBytes)})</td></tr>
    <tr><th>Level</th><td>${levelOf(b)}</td></tr>
    <tr><th>Resolution</th><td>${resolutionOf(b) ? formatDuration(resolutionOf(b) / 1000) : 'raw'}</td></tr>
    <tr><th>Source</th><td>${(b.thanos || {}).source || ''}</td></tr>
    <tr><th>Labels</th><td class="mono">${JSON.stringify((b.thanos || {}).labels || {})}</td></tr>
    <tr><th>Marks</th><td>${marks(b).join(', ') || 'none'}</td></tr>
    </tbody></table><details><summary>meta.json</summary><pre>${JSON.stringify(Object.assign({}, b, { strata: undefined }), null, 2)}</pre></details>`;
}

/** The mark buttons of a block's details (POST /api/v1/blocks/mark with the admin token). */
function markForm(b, onMarked) {
  const detail = el('input', { placeholder: 'reason (optional)', 'data-testid': 'mark-detail' });
  const out = el('div');
  const send = async (action) => {
    try {
      await adminApi('/api/v1/blocks/mark', { id: b.ulid, action, detail: detail.value }, { method: 'POST' });
      onMarked(b.ulid);
    } catch (e) {
      mount(out, html`${errorBox(e.message)}`);
      if (isUnauthorized(e)) out.append(tokenForm(() => send(action)));
    }
  };
  return el('div', {},
    el('div', { class: 'row', style: 'margin:8px 0' }, detail,
      el('button', { 'data-testid': 'mark-deletion', onclick: () => send('DELETION') }, 'Mark for deletion'),
      el('button', { 'data-testid': 'mark-no-compaction', onclick: () => send('NO_COMPACTION') }, 'Mark no-compact')),
    out);
}

/** Blocks (meta.json objects) as a timeline with per-lane totals; click a block for details. */
export function drawBlocks(container, blocks, { selected = null, onMarked = () => {} } = {}) {
  if (!blocks.length) return mount(container, emptyBox('The bucket has no blocks.'));
  const minT = Math.min(...blocks.map((b) => b.minTime));
  const maxT = Math.max(...blocks.map((b) => b.maxTime));
  const span = Math.max(1, maxT - minT);
  const lanes = new Map();
  for (const b of blocks) {
    const key = laneKey(b);
    if (!lanes.has(key)) lanes.set(key, []);
    lanes.get(key).push(b);
  }
  const info = el('div');
  const showDetails = (b) => {
    mount(info, details(b));
    info.append(markForm(b, onMarked));
  };
  const tl = el('div', { class: 'timeline', 'data-testid': 'timeline' });
  const totals = [];
  for (const [key, bs] of lanes) {
    // Overlapping blocks of a lane go on sub-rows so none hides another.
    const rows = [];
    for (const b of bs.slice().sort((x, y) => x.minTime - y.minTime)) {
      let r = rows.findIndex((end) => end <= b.minTime);
      if (r < 0) {
        r = rows.length;
        rows.push(0);
      }
      rows[r] = b.maxTime;
      b.__row = r;
    }
    for (let r = 0; r < rows.length; r++) {
      const track = el('div', { class: 'track' });
      const lane = el('div', { class: 'lane' }, el('span', { class: 'lane-label', title: key }, r === 0 ? key : ''), track);
      for (const b of bs.filter((x) => x.__row === r)) {
        const m = marks(b);
        track.append(el('div', {
          class: 'block',
          title: `${b.ulid} · level ${levelOf(b)}${m.length ? ' · ' + m.join(', ') : ''}`,
          'data-testid': 'block',
          'data-ulid': b.ulid,
          style: `left:${((b.minTime - minT) / span) * 100}%;width:${((b.maxTime - b.minTime) / span) * 100}%;` +
            `background:${LEVEL_COLORS[(levelOf(b) - 1) % LEVEL_COLORS.length]};${m.length ? 'outline:2px dashed var(--err);' : ''}`,
          onclick: () => showDetails(b),
        }));
      }
      tl.append(lane);
    }
    totals.push(html`<tr><td class="mono">${key}</td><td class="num">${bs.length}</td>
      <td class="num">${formatNumber(bs.reduce((a, b) => a + ((b.stats || {}).numSeries || 0), 0))}</td>
      <td class="num">${formatBytes(bs.reduce((a, b) => a + ((b.strata || {}).sizeBytes || 0), 0))}</td></tr>`);
  }
  const legend = el('div', { class: 'row muted', style: 'margin:6px 0;font-size:12px' },
    `${formatTime(minT, true)} UTC`, el('span', { class: 'spacer' }),
    ...LEVEL_COLORS.slice(0, 4).map((c, i) => el('span', {}, el('span', { class: 'swatch', style: `background:${c}` }), ` level ${i + 1}`)),
    el('span', {}, '┆ marked'), el('span', { class: 'spacer' }), `${formatTime(maxT, true)} UTC`);
  const table = el('div', { class: 'table-wrap' });
  mount(table, html`<table class="data"><thead><tr><th>Stream · resolution</th><th class="num">Blocks</th><th class="num">Series</th><th class="num">Size</th></tr></thead><tbody>${totals}</tbody></table>`);
  container.replaceChildren(tl, legend, table, info);
  const again = selected && blocks.find((b) => b.ulid === selected);
  if (again) showDetails(again);
}

export async function render(container) {
  container.append(el('h1', {}, 'Blocks'));
  const search = el('input', { type: 'search', placeholder: 'Find a block by ULID', 'data-testid': 'filter' });
  const summary = el('span', { class: 'muted', 'data-testid': 'summary' });
  const msg = el('div');
  const out = el('div', { 'data-testid': 'blocks' });
  const status = el('div');
  const tokenBox = el('div', { class: 'hidden' });
  container.append(el('div', { class: 'filters' }, search, summary), msg, out, el('h2', {}, 'Compactor'), tokenBox, status);

  let blocks = [];
  let selected = null;
  const draw = () => {
    const q = search.value.trim().toUpperCase();
    drawBlocks(out, q ? blocks.filter((b) => b.ulid.includes(q)) : blocks, {
      selected,
      onMarked: (ulid) => {
        selected = ulid;
        load();
      },
    });
  };
  async function load() {
    try {
      const d = await api('/api/v1/blocks');
      blocks = d.blocks || [];
      summary.textContent = `${blocks.length} blocks${d.partialUploads ? `, ${d.partialUploads} partial uploads` : ''} · listed ${formatTime(Date.parse(d.refreshedAt), true)} UTC`;
      mount(msg, d.err ? html`<div class="alert warning">${d.err}</div>` : '');
      draw();
    } catch (e) {
      mount(out, errorBox(e.message));
    }
  }
  search.addEventListener('input', debounce(draw));
  await load();

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
