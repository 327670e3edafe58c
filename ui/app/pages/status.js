// /status: build information and runtime information of this node
// (/api/v1/status/buildinfo and /api/v1/status/runtimeinfo), as Prometheus's status page.

import { api } from '../api.js';
import { el, html, mount, errorBox, ago } from '../util.js';

const S = window.STRATA || {};

function kvTable(testid, rows) {
  return html`<div class="table-wrap"><table class="data kv" data-testid="${testid}"><tbody>
    ${rows.map(([k, v]) => html`<tr><th>${k}</th><td class="mono">${v}</td></tr>`)}</tbody></table></div>`;
}

export async function render(container) {
  container.append(el('h1', {}, 'Status'));
  const build = el('div');
  const runtime = el('div');
  container.append(el('h2', {}, 'Build information'), build, el('h2', {}, 'Runtime information'), runtime);
  const [b, r] = await Promise.allSettled([api('/api/v1/status/buildinfo'), api('/api/v1/status/runtimeinfo')]);
  if (b.status === 'fulfilled') {
    const d = b.value;
    mount(build, kvTable('buildinfo', [
      ['Node', S.nodeId || ''],
      ['Version', d.version], ['Revision', d.revision], ['Branch', d.branch],
      ['Build user', d.buildUser], ['Build date', d.buildDate], ['Toolchain', d.goVersion],
    ]));
  } else mount(build, errorBox(b.reason.message));
  if (r.status === 'fulfilled') {
    const d = r.value;
    mount(runtime, kvTable('runtimeinfo', [
      ['Start time', `${d.startTime} (${ago(d.startTime)})`],
      ['Working directory', d.CWD],
      ['Configuration reload', d.reloadConfigSuccess ? 'Successful' : 'Unsuccessful'],
      ['Last successful configuration reload', d.lastConfigTime],
      ['WAL corruptions', d.corruptionCount],
      ['Threads', d.goroutineCount],
      ['CPUs used (GOMAXPROCS)', d.GOMAXPROCS],
      ['Storage retention', d.storageRetention],
    ]));
  } else mount(runtime, errorBox(r.reason.message));
}
