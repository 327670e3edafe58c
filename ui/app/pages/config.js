// /config: the configuration the node runs with (/api/v1/status/config), secrets shown as
// <secret>, in a <pre> with a copy button.

import { api } from '../api.js';
import { el, mount, errorBox } from '../util.js';

export async function render(container) {
  const pre = el('pre', { 'data-testid': 'config' });
  const copy = el('button', {
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(pre.textContent);
        copy.textContent = 'Copied';
      } catch (e) {
        copy.textContent = 'Copy failed: select the text instead';
      }
    },
  }, 'Copy to clipboard');
  const err = el('div');
  container.append(el('div', { class: 'row' }, el('h1', {}, 'Configuration'), el('span', { class: 'spacer' }), copy), err, pre);
  try {
    const d = await api('/api/v1/status/config');
    pre.textContent = d.yaml;
  } catch (e) {
    mount(err, errorBox(e.message));
  }
}
