// Small DOM and formatting helpers every page shares. No framework: pages build HTML strings
// with `html` (which escapes every interpolated value unless it is `raw(...)`) or nodes with `el`.

const RAW = Symbol('raw');

/** Marks trusted HTML so `html` does not escape it. */
export function raw(s) {
  return { [RAW]: String(s) };
}

export function esc(s) {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function part(v) {
  if (v === null || v === undefined || v === false) return '';
  if (Array.isArray(v)) return v.map(part).join('');
  if (typeof v === 'object' && RAW in v) return v[RAW];
  return esc(v);
}

/** Tagged template: `html\`<b>${name}</b>\`` escapes `name`; returns a raw() value. */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => {
    out += part(v) + strings[i + 1];
  });
  return raw(out);
}

/** Puts an html`` value (or a string of text) into a container. */
export function mount(container, content) {
  container.innerHTML = part(content);
}

/** Creates an element: el('button', {class: 'x', onclick: f}, 'text', child). */
export function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') n.addEventListener(k.slice(2), v);
    else if (k === 'class') n.className = v;
    else if (k === 'dataset') Object.assign(n.dataset, v);
    else if (v === true) n.setAttribute(k, '');
    else n.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

export function errorBox(message) {
  return html`<div class="alert error" data-testid="error">${message}</div>`;
}

export function warningBox(message) {
  return html`<div class="alert warning" data-testid="warning">${message}</div>`;
}

export function emptyBox(message) {
  return html`<div class="empty" data-testid="empty">${message}</div>`;
}

/** `{__name__="up", job="x"}` → `up{job="x"}` (Prometheus's way of writing a series). */
export function formatSeries(metric) {
  const m = metric || {};
  const name = m.__name__ || '';
  const rest = Object.keys(m)
    .filter((k) => k !== '__name__')
    .sort()
    .map((k) => `${k}=${JSON.stringify(m[k])}`);
  return rest.length || !name ? `${name}{${rest.join(', ')}}` : name;
}

/** The same as formatSeries, as HTML with the label names emphasised. */
export function seriesHtml(metric) {
  const m = metric || {};
  const name = m.__name__ || '';
  const rest = Object.keys(m)
    .filter((k) => k !== '__name__')
    .sort();
  if (!rest.length && name) return html`<span class="labels"><span class="name">${name}</span></span>`;
  const pairs = rest.map((k, i) => html`${i ? ', ' : ''}<span class="name">${k}</span>=${JSON.stringify(m[k])}`);
  return html`<span class="labels">${name}{${pairs}}</span>`;
}

export function labelBadges(labels) {
  return Object.keys(labels || {})
    .sort()
    .map((k) => html`<span class="label-badge">${k}="${labels[k]}"</span>`);
}

/** Seconds → "1h2m3s"-style (Prometheus durations); sub-second as ms. */
export function formatDuration(seconds) {
  if (!isFinite(seconds)) return String(seconds);
  if (seconds < 1 && seconds > 0) return `${Math.round(seconds * 1000)}ms`;
  let s = Math.round(seconds);
  if (s === 0) return '0s';
  const units = [
    ['y', 365 * 86400], ['w', 7 * 86400], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1],
  ];
  let out = '';
  for (const [u, n] of units) {
    if (s >= n) {
      out += `${Math.floor(s / n)}${u}`;
      s %= n;
    }
  }
  return out;
}

/** "1h30m", "90s", "2d", "500ms" → seconds; null if it does not parse. A bare number is seconds. */
export function parseDuration(text) {
  const t = String(text || '').trim();
  if (!t) return null;
  if (/^\d+(\.\d+)?$/.test(t)) return parseFloat(t);
  const re = /(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)/g;
  const mult = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  let consumed = '';
  let m;
  while ((m = re.exec(t)) !== null) {
    total += parseFloat(m[1]) * mult[m[2]];
    consumed += m[0];
  }
  return consumed === t && total > 0 ? total : null;
}

/** How long ago an RFC 3339 time was, "3.2s ago"; "never" for Go's zero time. */
export function ago(iso) {
  if (!iso || iso.startsWith('0001-')) return 'never';
  const t = Date.parse(iso);
  if (isNaN(t)) return iso;
  const s = (Date.now() - t) / 1000;
  if (s < 0) return 'in ' + formatDuration(-s);
  if (s < 60) return `${s.toFixed(1)}s ago`;
  return `${formatDuration(s)} ago`;
}

/** Unix seconds or ms → "2026-12-07 12:00:00" UTC. */
export function formatTime(t, ms = false) {
  const d = new Date(ms ? t : t * 1000);
  if (isNaN(d.getTime())) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '').replace('Z', '');
}

export function formatBytes(n) {
  if (n === null || n === undefined || isNaN(n)) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export function formatNumber(n) {
  if (n === null || n === undefined || n === '') return '—';
  const v = Number(n);
  if (!isFinite(v)) return String(n);
  return v.toLocaleString('en-US');
}

/** Client-side paging: renders `pageSize` rows and a pager; calls `draw(rows, pager)`. */
export function pager(total, page, pageSize, onPage) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const p = Math.min(Math.max(0, page), pages - 1);
  const node = el('div', { class: 'pager', 'data-testid': 'pager' });
  if (pages > 1) {
    node.append(
      el('button', { disabled: p === 0, onclick: () => onPage(p - 1) }, '‹ Prev'),
      el('span', { class: 'muted' }, `page ${p + 1} of ${pages} (${total} items)`),
      el('button', { disabled: p >= pages - 1, onclick: () => onPage(p + 1) }, 'Next ›'),
    );
  }
  return { node, page: p, from: p * pageSize, to: Math.min(total, (p + 1) * pageSize) };
}

/** A CSS class for a state word (up, down, firing, ...). */
export function stateClass(s) {
  return String(s || 'unknown').toLowerCase();
}

/** Debounces a function (for text filters). */
export function debounce(fn, ms = 150) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
