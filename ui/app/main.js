// The app's entry: draws the top bar, picks the page module by location.pathname (minus the
// route prefix) and renders it into <main>. Pages are ES modules under pages/ exporting
// `render(container, ctx)`; ctx carries the settings the server put into the shell.

import { el } from './util.js';

const S = window.STRATA || { prefix: '', nodeId: '', version: '' };

const PAGES = {
  '/query': 'query',
  '/graph': 'query',
  '/alerts': 'alerts',
  '/rules': 'rules',
  '/targets': 'targets',
  '/service-discovery': 'service-discovery',
  '/status': 'status',
  '/tsdb-status': 'tsdb-status',
  '/flags': 'flags',
  '/config': 'config',
  '/stores': 'stores',
  '/blocks': 'blocks',
  '/cluster': 'cluster',
  '/cardinality': 'cardinality',
  '/unused': 'unused',
};

// The nav: Prometheus's pages, then Thanos's, then Strata's own.
const NAV = [
  ['/query', 'Query'],
  ['/alerts', 'Alerts'],
  ['/rules', 'Rules'],
  ['/targets', 'Targets'],
  ['/service-discovery', 'Service discovery'],
  null,
  ['/status', 'Status'],
  ['/tsdb-status', 'TSDB'],
  ['/flags', 'Flags'],
  ['/config', 'Config'],
  null,
  ['/stores', 'Stores'],
  ['/blocks', 'Blocks'],
  ['/cluster', 'Cluster'],
  ['/cardinality', 'Cardinality'],
  ['/unused', 'Never queried'],
];

/** The page path without the route prefix, "/query" style. */
export function pagePath() {
  let p = location.pathname;
  if (S.prefix && p.startsWith(S.prefix)) p = p.slice(S.prefix.length);
  p = p.replace(/\/+$/, '');
  return p || '/';
}

function currentTheme() {
  const set = document.documentElement.getAttribute('data-theme');
  if (set) return set;
  return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function toggleTheme() {
  const next = currentTheme() === 'dark' ? 'light' : 'dark';
  document.documentElement.setAttribute('data-theme', next);
  try {
    localStorage.setItem('strata.theme', next);
  } catch (e) {
    /* private mode: the toggle still works for this page */
  }
  window.dispatchEvent(new CustomEvent('strata-theme', { detail: next }));
}

function drawTopbar(active) {
  const bar = document.getElementById('topbar');
  const nav = el('nav', { 'data-testid': 'nav' });
  for (const item of NAV) {
    if (!item) {
      nav.append(el('span', { class: 'sep' }));
      continue;
    }
    const [path, title] = item;
    const isActive = PAGES[path] === PAGES[active];
    nav.append(el('a', { href: S.prefix + path, class: isActive ? 'active' : '' }, title));
  }
  const themeBtn = el('button', { title: 'Toggle dark/light theme', 'data-testid': 'theme-toggle', onclick: toggleTheme }, '◐');
  const menuBtn = el('button', { class: 'menu-toggle', title: 'Menu', onclick: () => nav.classList.toggle('open') }, '☰');
  bar.replaceChildren(
    el('a', { class: 'brand', href: S.prefix + '/query' }, '▤ Strata', el('span', { class: 'node' }, S.nodeId || '')),
    menuBtn,
    nav,
    el('div', { class: 'tools' }, themeBtn),
  );
}

async function start() {
  const path = pagePath();
  const name = PAGES[path];
  drawTopbar(path);
  const main = document.getElementById('page');
  if (!name) {
    main.innerHTML = '';
    main.append(el('h1', {}, 'Not found'), el('p', {}, `No page at ${path}.`));
    return;
  }
  document.title = `Strata · ${name} · ${S.nodeId || ''}`;
  const mod = await import(`./pages/${name}.js`);
  main.innerHTML = '';
  main.dataset.page = name;
  await mod.render(main, { settings: S, path });
  main.dataset.ready = '1';
}

start().catch((e) => {
  const main = document.getElementById('page');
  main.innerHTML = '';
  main.append(el('div', { class: 'alert error', 'data-testid': 'error' }, `The page failed to load: ${e && e.message ? e.message : e}`));
  throw e;
});
