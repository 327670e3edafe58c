// The Graph tab: a range-query matrix drawn with uPlot (window.uPlot, vendored). Columnar data
// on the query's step grid with null gaps; stacked mode draws cumulative sums with bands
// between neighbours while hover shows each series' own value; a tooltip names the series
// nearest the cursor; a legend below toggles series; drag-selecting a time span calls
// `onZoom(start, end)` so the panel can re-query that range.

import { el, formatSeries, formatTime } from '../util.js';

export const MAX_SERIES = 1000;
const LEGEND_MAX = 200;

/** A distinct colour per series index (golden-angle hues). */
export function seriesColor(i) {
  const hue = (i * 137.508 + 20) % 360;
  return `hsl(${hue.toFixed(1)}, 70%, 50%)`;
}

function withAlpha(hsl, a) {
  return hsl.replace('hsl(', 'hsla(').replace(')', `, ${a})`);
}

function parseValue(v) {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return parseFloat(v);
}

/**
 * Matrix → { xs, ys, labels }: xs on the grid start + k*step; each series an array with null
 * where it has no sample (or a non-finite one, which cannot be drawn).
 */
export function toColumns(matrix, start, end, step) {
  const n = Math.max(1, Math.floor((end - start) / step) + 1);
  const xs = new Array(n);
  for (let k = 0; k < n; k++) xs[k] = start + k * step;
  const ys = matrix.map((s) => {
    const col = new Array(n).fill(null);
    for (const [t, v] of s.values || []) {
      const k = Math.round((t - start) / step);
      if (k < 0 || k >= n) continue;
      const f = parseValue(v);
      col[k] = isFinite(f) ? f : null;
    }
    return col;
  });
  return { xs, ys, labels: matrix.map((s) => formatSeries(s.metric)) };
}

/** Cumulative sums of the columns (null adds nothing but stays null where the series has none). */
export function stack(ys) {
  const acc = ys.length ? new Array(ys[0].length).fill(0) : [];
  return ys.map((col) =>
    col.map((v, k) => {
      if (v === null) return null;
      acc[k] += v;
      return acc[k];
    }),
  );
}

const pad = (n) => String(n).padStart(2, '0');

/** Tick labels in UTC, 24-hour: the date when ticks are days apart or the day changes. */
export function timeTicks(splits, incr) {
  let lastDay = '';
  return splits.map((ts) => {
    const d = new Date(ts * 1000);
    const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    const time = incr < 60 ? `${hm}:${pad(d.getUTCSeconds())}` : hm;
    const label = incr >= 86400 ? day : day !== lastDay && lastDay !== '' ? `${day}\n${time}` : time;
    lastDay = day;
    return label;
  });
}

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function tooltipPlugin(box, raw, labels) {
  const tip = el('div', { class: 'graph-tip hidden', 'data-testid': 'graph-tooltip' });
  box.append(tip);
  return {
    hooks: {
      setCursor: (u) => {
        const idx = u.cursor.idx;
        const top = u.cursor.top;
        if (idx === null || idx === undefined || top === undefined || top < 0) {
          tip.classList.add('hidden');
          return;
        }
        let best = -1;
        let bestDist = Infinity;
        for (let i = 1; i < u.series.length; i++) {
          if (!u.series[i].show) continue;
          const v = u.data[i][idx];
          if (v === null || v === undefined) continue;
          const d = Math.abs(u.valToPos(v, 'y') - top);
          if (d < bestDist) {
            bestDist = d;
            best = i;
          }
        }
        if (best < 0) {
          tip.classList.add('hidden');
          return;
        }
        const value = raw[best - 1][idx];
        tip.replaceChildren(
          el('div', { class: 'muted' }, formatTime(u.data[0][idx]) + ' UTC'),
          el('div', {},
            el('span', { class: 'swatch', style: `background:${seriesColor(best - 1)}` }), ' ',
            el('b', {}, String(value))),
          el('div', { class: 'labels' }, labels[best - 1]),
        );
        tip.classList.remove('hidden');
        const left = u.cursor.left + u.over.offsetLeft;
        const w = tip.offsetWidth;
        const x = left + 16 + w > box.clientWidth ? left - w - 16 : left + 16;
        tip.style.left = `${Math.max(0, x)}px`;
        tip.style.top = `${top + u.over.offsetTop + 12}px`;
      },
    },
  };
}

/**
 * Draws the graph into `container` (emptied first). Returns a handle with destroy().
 * opts: { matrix, start, end, step, stacked, onZoom(start, end) }
 */
export function drawGraph(container, opts) {
  container.replaceChildren();
  if (!window.uPlot) {
    container.append(el('div', { class: 'alert error' }, 'uPlot did not load; the graph cannot be drawn.'));
    return { destroy() {} };
  }
  const { xs, ys, labels } = toColumns(opts.matrix, opts.start, opts.end, opts.step);
  const drawn = opts.stacked ? stack(ys) : ys;
  const box = el('div', { class: 'graph-box', 'data-testid': 'graph' });
  container.append(box);
  const axisColor = cssVar('--muted', '#777');
  const gridColor = cssVar('--border', '#ddd');
  const series = [{ value: (u, v) => (v === null ? '' : formatTime(v)) }];
  labels.forEach((label, i) => {
    const color = seriesColor(i);
    // uPlot's default points.show draws points only where they fit, so lone samples still show.
    // With many series the points would hide the lines: lines only.
    const s = { label, stroke: color, width: 1.5, spanGaps: false };
    if (labels.length > 100) s.points = { show: false };
    if (opts.stacked) s.fill = withAlpha(color, 0.35);
    series.push(s);
  });
  const bands = [];
  if (opts.stacked) {
    for (let i = 2; i <= labels.length; i++) bands.push({ series: [i, i - 1] });
  }
  // The box has no padding: its clientWidth is the room the chart has.
  const width = () => Math.max(240, Math.floor(box.clientWidth) || 800);
  const height = () => (window.innerWidth < 720 ? 260 : 380);
  const axis = { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor } };
  const u = new window.uPlot(
    {
      width: width(),
      height: height(),
      series,
      bands,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false }, focus: { prox: 30 } },
      // Stacked areas start at zero; lines fit their data.
      scales: { x: { time: true }, y: opts.stacked ? { range: (self, min, max) => [Math.min(0, min), max > 0 ? max * 1.05 : 1] } : { auto: true } },
      tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      axes: [
        Object.assign({ values: (self, splits, ai, space, incr) => timeTicks(splits, incr) }, axis),
        Object.assign({ size: 60 }, axis),
      ],
      plugins: [tooltipPlugin(box, ys, labels)],
      hooks: {
        setSelect: [
          (self) => {
            const sel = self.select;
            if (sel.width < 4) return;
            const a = self.posToVal(sel.left, 'x');
            const b = self.posToVal(sel.left + sel.width, 'x');
            self.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            if (opts.onZoom && b > a) opts.onZoom(a, b);
          },
        ],
      },
    },
    [xs, ...drawn],
    box,
  );
  const legend = el('div', { class: 'graph-legend', 'data-testid': 'graph-legend' });
  if (labels.length <= LEGEND_MAX) {
    labels.forEach((label, i) => {
      const item = el('div', { class: 'item', title: 'Click to hide or show' },
        el('span', { class: 'swatch', style: `background:${seriesColor(i)}` }), label);
      item.addEventListener('click', () => {
        const show = !u.series[i + 1].show;
        u.setSeries(i + 1, { show });
        item.classList.toggle('off', !show);
      });
      legend.append(item);
    });
  } else {
    legend.append(el('span', { class: 'muted' }, `${labels.length} series: hover the graph to see their labels.`));
  }
  container.append(legend);
  // Resize on width changes only, a frame later (a resize inside the observer's callback
  // would make the browser report a ResizeObserver loop error).
  let lastWidth = width();
  const ro = new ResizeObserver(() => {
    requestAnimationFrame(() => {
      const w = width();
      if (w !== lastWidth) {
        lastWidth = w;
        u.setSize({ width: w, height: height() });
      }
    });
  });
  ro.observe(box);
  return {
    destroy() {
      ro.disconnect();
      u.destroy();
    },
  };
}
