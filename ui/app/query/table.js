// The Table tab: an instant query's result (vector, scalar, string, or a matrix from a range
// selector) as rows of series and values, capped at MAX_ROWS with a warning so a huge result
// never freezes the browser.

import { html, raw, esc, formatTime } from '../util.js';

export const MAX_ROWS = 10000;

// Built as strings (not html``) because this runs for up to MAX_ROWS rows.
function seriesCell(metric) {
  const m = metric || {};
  const name = m.__name__ || '';
  const keys = Object.keys(m).filter((k) => k !== '__name__').sort();
  if (!keys.length) return `<span class="labels">${esc(name || '{}')}</span>`;
  const pairs = keys.map((k) => `<span class="name">${esc(k)}</span>=${esc(JSON.stringify(m[k]))}`).join(', ');
  return `<span class="labels">${esc(name)}{${pairs}}</span>`;
}

function valueCell(type, s) {
  if (type === 'matrix') return (s.values || []).map(([t, v]) => `${esc(v)} @${esc(t)}`).join('<br>');
  if (s.histogram) return esc(JSON.stringify(s.histogram[1]));
  return esc(s.value ? s.value[1] : '');
}

/** { html, shown, total } for the data of a `/api/v1/query` answer. */
export function tableHtml(data) {
  const type = data && data.resultType;
  const result = (data && data.result) || [];
  if (type === 'scalar' || type === 'string') {
    const [t, v] = result;
    return {
      html: html`<table class="data" data-testid="table"><thead><tr><th>${type} at ${formatTime(t)}</th><th>Value</th></tr></thead>
        <tbody><tr data-testid="row"><td class="muted">${type}</td><td class="num">${v}</td></tr></tbody></table>`,
      shown: 1,
      total: 1,
    };
  }
  if (!result.length) {
    return { html: html`<div class="empty" data-testid="empty">Empty query result</div>`, shown: 0, total: 0 };
  }
  const shown = Math.min(result.length, MAX_ROWS);
  const rows = [];
  for (let i = 0; i < shown; i++) {
    const s = result[i];
    rows.push(`<tr data-testid="row"><td>${seriesCell(s.metric)}</td><td class="num">${valueCell(type, s)}</td></tr>`);
  }
  return {
    html: html`<div class="table-wrap"><table class="data" data-testid="table">
      <thead><tr><th>Series</th><th class="num">Value</th></tr></thead><tbody>${raw(rows.join(''))}</tbody></table></div>`,
    shown,
    total: result.length,
  };
}
