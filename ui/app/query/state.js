// The query page's state in the URL, Prometheus 2.x style so shared links open the same
// panels: g<i>.expr, g<i>.tab (0 graph, 1 table), g<i>.range_input (1h), g<i>.end_input
// ("2026-12-07 12:00:00" UTC, or unix seconds), g<i>.step_input (seconds or a duration),
// g<i>.stacked (0/1), g<i>.moment_input (the table's evaluation time), plus Thanos's
// g<i>.deduplicate, g<i>.partial_response and g<i>.max_source_resolution.

import { parseDuration, formatDuration } from '../util.js';

export const TAB_GRAPH = 0;
export const TAB_TABLE = 1;
export const MAX_PANELS = 10;

export function defaultPanel() {
  return {
    expr: '',
    tab: TAB_TABLE,
    range: 3600,
    end: null, // unix seconds; null = now
    step: null, // seconds; null = auto
    stacked: false,
    dedup: true,
    partial: true,
    msr: 'auto',
  };
}

/** "2026-12-07 12:00:00", ISO 8601 or unix seconds → unix seconds (UTC); null if empty/bad. */
export function parseTimeInput(text) {
  const t = String(text || '').trim();
  if (!t) return null;
  if (/^\d+(\.\d+)?$/.test(t)) return parseFloat(t);
  let iso = t.replace(' ', 'T');
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(iso)) iso += ':00';
  if (!/(Z|[+-]\d{2}:?\d{2})$/.test(iso)) iso += 'Z';
  const ms = Date.parse(iso);
  return isNaN(ms) ? null : ms / 1000;
}

/** Unix seconds → "2026-12-07 12:00:00" (UTC), the form end_input takes. */
export function formatTimeInput(sec) {
  if (sec === null || sec === undefined) return '';
  return new Date(sec * 1000).toISOString().replace('T', ' ').replace(/(\.\d+)?Z$/, '');
}

function flag(v, dflt) {
  if (v === null || v === undefined || v === '') return dflt;
  return !(v === '0' || v === 'false');
}

/** Panels from a query string; at least one. */
export function panelsFromSearch(search) {
  const q = new URLSearchParams(search);
  const panels = [];
  for (let i = 0; i < MAX_PANELS; i++) {
    const g = (k) => q.get(`g${i}.${k}`);
    const keys = ['expr', 'tab', 'range_input', 'end_input', 'step_input', 'moment_input'];
    if (!keys.some((k) => q.has(`g${i}.${k}`))) {
      if (i === 0) continue;
      break;
    }
    const p = defaultPanel();
    p.expr = g('expr') || '';
    const tab = g('tab');
    if (tab === '0' || tab === 'graph') p.tab = TAB_GRAPH;
    if (tab === '1' || tab === 'table') p.tab = TAB_TABLE;
    const range = parseDuration(g('range_input'));
    if (range) p.range = range;
    const end = parseTimeInput(g('end_input') || (p.tab === TAB_TABLE ? g('moment_input') : ''));
    if (end !== null) p.end = end;
    const step = parseDuration(g('step_input'));
    if (step) p.step = step;
    p.stacked = flag(g('stacked'), false);
    p.dedup = flag(g('deduplicate'), true);
    p.partial = flag(g('partial_response'), true);
    const msr = g('max_source_resolution');
    if (msr) p.msr = msr;
    panels.push(p);
  }
  if (!panels.length) panels.push(defaultPanel());
  return panels;
}

/** The query string of the panels (what `panelsFromSearch` reads back). */
export function searchFromPanels(panels) {
  const q = new URLSearchParams();
  panels.forEach((p, i) => {
    q.set(`g${i}.expr`, p.expr);
    q.set(`g${i}.tab`, String(p.tab));
    q.set(`g${i}.range_input`, formatDuration(p.range));
    if (p.end !== null) q.set(`g${i}.end_input`, formatTimeInput(p.end));
    if (p.step) q.set(`g${i}.step_input`, String(p.step));
    if (p.stacked) q.set(`g${i}.stacked`, '1');
    if (!p.dedup) q.set(`g${i}.deduplicate`, '0');
    if (!p.partial) q.set(`g${i}.partial_response`, '0');
    if (p.msr && p.msr !== 'auto') q.set(`g${i}.max_source_resolution`, p.msr);
  });
  return q.toString();
}

/** Prometheus 2.x's automatic step: range/250, at least one second. */
export function autoStep(rangeSeconds) {
  return Math.max(Math.floor(rangeSeconds / 250), 1);
}

/** The API parameters every query of a panel sends (Thanos's knobs). */
export function thanosParams(p) {
  return {
    dedup: p.dedup ? 'true' : 'false',
    partial_response: p.partial ? 'true' : 'false',
    max_source_resolution: p.msr || 'auto',
  };
}
