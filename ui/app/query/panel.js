// One query panel: the PromQL editor (window.StrataEditor, vendored codemirror-promql with
// completion from this node's API), Table and Graph tabs, the range/end/step and stacked
// controls, Thanos's dedup / partial response / max source resolution, the query's stats and
// its warnings or error exactly as the API words them.

import { apiFull } from '../api.js';
import { el, mount, html, errorBox, warningBox, formatDuration, parseDuration } from '../util.js';
import { TAB_GRAPH, TAB_TABLE, autoStep, thanosParams, formatTimeInput, parseTimeInput } from './state.js';
import { tableHtml, MAX_ROWS } from './table.js';
import { drawGraph, MAX_SERIES } from './graph.js';

const S = window.STRATA || { prefix: '' };
const RESOLUTIONS = [
  ['auto', 'Auto downsampling'],
  ['0s', 'Only raw data'],
  ['5m', 'Max 5m downsampling'],
  ['1h', 'Max 1h downsampling'],
];

/** A fallback editor when the bundle did not load: a textarea with the same keys. */
function plainEditor(parent, { doc, onRun, onChange }) {
  const ta = el('textarea', { rows: 2, style: 'width:100%;border:0;background:transparent;color:inherit;font-family:var(--mono);padding:6px', spellcheck: 'false' });
  ta.value = doc || '';
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      onRun(ta.value);
    }
  });
  ta.addEventListener('input', () => onChange(ta.value));
  parent.append(ta);
  return { getValue: () => ta.value, setValue: (t) => (ta.value = t), focus: () => ta.focus() };
}

export class Panel {
  /** state: a panel from state.js; onChange(): the URL should be rewritten; onRemove(): gone. */
  constructor(state, index, { onChange, onRemove, canRemove }) {
    this.s = state;
    this.index = index;
    this.onChange = onChange;
    this.graph = null;
    this.seq = 0;
    this.root = el('section', { class: 'panel', 'data-testid': `panel-${index}` });
    this.build(onRemove, canRemove);
  }

  build(onRemove, canRemove) {
    const s = this.s;
    const editorBox = el('div', { class: 'editor', 'data-testid': 'editor' });
    const runBtn = el('button', { class: 'primary', 'data-testid': 'execute', onclick: () => this.run() }, 'Execute');
    const formatBtn = el('button', { title: 'Format the expression (/api/v1/format_query)', 'data-testid': 'format', onclick: () => this.format() }, 'Format');
    const row = el('div', { class: 'editor-row' }, editorBox, formatBtn, runBtn);
    if (canRemove) row.append(el('button', { title: 'Remove panel', onclick: onRemove }, '✕'));
    const factory = window.StrataEditor && window.StrataEditor.createEditor ? window.StrataEditor.createEditor : plainEditor;
    this.editor = factory(editorBox, {
      doc: s.expr,
      remoteUrl: location.origin + S.prefix,
      onRun: () => this.run(),
      onChange: (text) => {
        s.expr = text;
      },
    });

    this.tabBtns = [
      el('button', { class: 'tab', 'data-testid': 'tab-table', onclick: () => this.setTab(TAB_TABLE) }, 'Table'),
      el('button', { class: 'tab', 'data-testid': 'tab-graph', onclick: () => this.setTab(TAB_GRAPH) }, 'Graph'),
    ];
    this.stats = el('div', { class: 'stats', 'data-testid': 'stats' });
    const tabs = el('div', { class: 'tabs' }, ...this.tabBtns, this.stats);

    // Graph controls: range, end, step, stacked.
    this.rangeIn = el('input', { class: 'range', value: formatDuration(s.range), title: 'Range (e.g. 1h, 30m, 2d)', 'data-testid': 'range' });
    this.endIn = el('input', { class: 'end', value: formatTimeInput(s.end), placeholder: 'end: now', title: 'End time, UTC (YYYY-MM-DD HH:MM:SS); empty = now', 'data-testid': 'end' });
    this.stepIn = el('input', { class: 'step', value: s.step ? String(s.step) : '', placeholder: 'auto', title: 'Resolution: seconds or a duration', 'data-testid': 'step' });
    const stacked = el('input', { type: 'checkbox', 'data-testid': 'stacked' });
    stacked.checked = s.stacked;
    const commit = () => {
      const r = parseDuration(this.rangeIn.value);
      if (r) s.range = r;
      this.rangeIn.value = formatDuration(s.range);
      s.end = parseTimeInput(this.endIn.value);
      this.endIn.value = formatTimeInput(s.end);
      s.step = parseDuration(this.stepIn.value);
      s.stacked = stacked.checked;
      this.run();
    };
    for (const i of [this.rangeIn, this.endIn, this.stepIn]) {
      i.addEventListener('keydown', (e) => e.key === 'Enter' && commit());
      i.addEventListener('change', commit);
    }
    stacked.addEventListener('change', commit);
    const shift = (dir) => {
      const end = s.end === null ? Date.now() / 1000 : s.end;
      s.end = Math.round(end + (dir * s.range) / 2);
      this.endIn.value = formatTimeInput(s.end);
      this.run();
    };
    const zoom = (f) => {
      s.range = Math.max(1, Math.round(s.range * f));
      this.rangeIn.value = formatDuration(s.range);
      this.run();
    };
    this.graphControls = el('div', { class: 'controls', 'data-testid': 'graph-controls' },
      el('button', { title: 'Shorter range', onclick: () => zoom(0.5) }, '−'),
      this.rangeIn,
      el('button', { title: 'Longer range', onclick: () => zoom(2) }, '+'),
      el('button', { title: 'Earlier', onclick: () => shift(-1) }, '«'),
      this.endIn,
      el('button', { title: 'Later', onclick: () => shift(1) }, '»'),
      el('button', { title: 'Back to now', onclick: () => { s.end = null; this.endIn.value = ''; this.run(); } }, 'Now'),
      el('label', {}, 'Res.', this.stepIn),
      el('label', {}, stacked, 'Stacked'),
    );
    this.tableControls = el('div', { class: 'controls' },
      el('label', { title: 'Evaluation time, UTC; empty = now' }, 'Evaluation time'),
      this.tableTimeIn = el('input', { class: 'end', value: formatTimeInput(s.end), placeholder: 'now', 'data-testid': 'moment' }),
    );
    this.tableTimeIn.addEventListener('change', () => {
      s.end = parseTimeInput(this.tableTimeIn.value);
      this.tableTimeIn.value = formatTimeInput(s.end);
      this.run();
    });

    // Thanos's knobs.
    const dedup = el('input', { type: 'checkbox', 'data-testid': 'dedup' });
    dedup.checked = s.dedup;
    const partial = el('input', { type: 'checkbox', 'data-testid': 'partial-response' });
    partial.checked = s.partial;
    const msr = el('select', { 'data-testid': 'max-source-resolution', title: 'max_source_resolution' });
    for (const [v, t] of RESOLUTIONS) msr.append(el('option', { value: v, selected: v === s.msr }, t));
    if (!RESOLUTIONS.some(([v]) => v === s.msr)) msr.append(el('option', { value: s.msr, selected: true }, s.msr));
    const thanos = () => {
      s.dedup = dedup.checked;
      s.partial = partial.checked;
      s.msr = msr.value;
      this.run();
    };
    dedup.addEventListener('change', thanos);
    partial.addEventListener('change', thanos);
    msr.addEventListener('change', thanos);
    const thanosRow = el('div', { class: 'controls thanos' },
      el('label', { title: 'dedup: merge the replicas of HA pairs' }, dedup, 'Use deduplication'),
      el('label', { title: 'partial_response: answer even when some sources fail' }, partial, 'Use partial response'),
      msr,
    );

    this.messages = el('div', { 'data-testid': 'messages' });
    this.result = el('div', { class: 'result', 'data-testid': 'result' });
    this.root.append(row, tabs, thanosRow, this.graphControls, this.tableControls, el('div', { style: 'padding:0 10px' }, this.messages), this.result);
    this.showTab();
    if (!s.expr.trim()) mount(this.result, html`<div class="empty">No query run yet: type an expression and press Enter.</div>`);
  }

  /** Replaces the expression with the engine's own formatting of it. */
  async format() {
    const expr = this.editor.getValue();
    if (!expr.trim()) return;
    try {
      const res = await apiFull('/api/v1/format_query', { query: expr });
      this.editor.setValue(res.data);
      this.s.expr = res.data;
      this.onChange();
      mount(this.messages, '');
    } catch (e) {
      mount(this.messages, errorBox(e && e.message ? e.message : String(e)));
    }
  }

  setTab(tab) {
    if (this.s.tab === tab) return;
    this.s.tab = tab;
    this.showTab();
    this.run();
  }

  showTab() {
    const graph = this.s.tab === TAB_GRAPH;
    this.tabBtns[0].classList.toggle('active', !graph);
    this.tabBtns[1].classList.toggle('active', graph);
    this.graphControls.classList.toggle('hidden', !graph);
    this.tableControls.classList.toggle('hidden', graph);
  }

  destroyGraph() {
    if (this.graph) this.graph.destroy();
    this.graph = null;
  }

  /** Runs the panel's query for its tab and shows the result. */
  async run() {
    const s = this.s;
    s.expr = this.editor.getValue();
    this.onChange();
    const seq = ++this.seq;
    if (!s.expr.trim()) {
      this.destroyGraph();
      mount(this.messages, '');
      mount(this.stats, '');
      mount(this.result, html`<div class="empty">Enter an expression and press Enter to run it.</div>`);
      return;
    }
    this.root.dataset.state = 'loading';
    mount(this.stats, 'Loading…');
    const params = Object.assign({ query: s.expr }, thanosParams(s));
    try {
      if (s.tab === TAB_TABLE) {
        if (s.end !== null) params.time = s.end;
        const res = await apiFull('/api/v1/query', params);
        if (seq !== this.seq) return;
        this.destroyGraph();
        const t = tableHtml(res.data);
        const warnings = [...res.warnings];
        if (t.total > t.shown) warnings.push(`Showing only the first ${MAX_ROWS} of ${t.total} series: narrow the query to see the rest.`);
        this.showMessages(warnings, res.infos);
        mount(this.result, t.html);
        this.showStats(res, t.total);
      } else {
        const end = s.end === null ? Math.floor(Date.now() / 1000) : s.end;
        const start = end - s.range;
        const step = s.step || autoStep(s.range);
        Object.assign(params, { start, end, step });
        const res = await apiFull('/api/v1/query_range', params);
        if (seq !== this.seq) return;
        let matrix = res.data.result || [];
        const warnings = [...res.warnings];
        const total = matrix.length;
        if (total > MAX_SERIES) {
          matrix = matrix.slice(0, MAX_SERIES);
          warnings.push(`Showing only the first ${MAX_SERIES} of ${total} series: narrow the query (or aggregate it) to see the rest.`);
        }
        this.showMessages(warnings, res.infos);
        this.destroyGraph();
        if (!matrix.length) {
          mount(this.result, html`<div class="empty" data-testid="empty">Empty query result</div>`);
        } else {
          this.result.replaceChildren();
          this.graph = drawGraph(this.result, {
            matrix, start, end, step, stacked: s.stacked,
            onZoom: (a, b) => {
              s.end = Math.round(b);
              s.range = Math.max(1, Math.round(b - a));
              this.rangeIn.value = formatDuration(s.range);
              this.endIn.value = formatTimeInput(s.end);
              this.run();
            },
          });
        }
        this.showStats(res, total, step);
        // When the graph was drawn (ms since navigation): the UI's budget figure.
        this.root.dataset.drawnMs = String(Math.round(performance.now()));
      }
      this.root.dataset.state = 'done';
    } catch (e) {
      if (seq !== this.seq) return;
      this.destroyGraph();
      mount(this.stats, '');
      mount(this.messages, errorBox(e && e.message ? e.message : String(e)));
      mount(this.result, '');
      this.root.dataset.state = 'error';
    }
  }

  showMessages(warnings, infos) {
    mount(this.messages, html`${warnings.map((w) => warningBox(w))}${(infos || []).map((i) => html`<div class="alert info">${i}</div>`)}`);
  }

  showStats(res, series, step) {
    const parts = [`Load time: ${Math.round(res.ms)}ms`];
    if (step) parts.push(`Resolution: ${formatDuration(step)}`);
    parts.push(`Result series: ${series}`);
    const resolutions = res.headers.get('X-Strata-Resolutions');
    if (resolutions) parts.push(`Source resolutions: ${resolutions}`);
    const servedBy = res.headers.get('X-Strata-Served-By');
    if (servedBy) parts.push(`Served by: ${servedBy}`);
    mount(this.stats, parts.join(' · '));
  }
}
