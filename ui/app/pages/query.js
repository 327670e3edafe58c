// /query (alias /graph): panels of PromQL queries, their state kept in the URL with
// Prometheus's g<i>.* parameters (query/state.js) so links open the same view.

import { el } from '../util.js';
import { Panel } from '../query/panel.js';
import { panelsFromSearch, searchFromPanels, defaultPanel, MAX_PANELS } from '../query/state.js';

export async function render(container) {
  const states = panelsFromSearch(location.search);
  const list = el('div', { 'data-testid': 'panels' });
  const addBtn = el('button', { 'data-testid': 'add-panel' }, '+ Add panel');
  container.append(list, addBtn);

  const writeUrl = () => {
    const qs = searchFromPanels(states);
    history.replaceState(null, '', `${location.pathname}?${qs}`);
  };

  let panels = [];
  const draw = () => {
    panels = states.map(
      (s, i) =>
        new Panel(s, i, {
          onChange: writeUrl,
          canRemove: states.length > 1,
          onRemove: () => {
            states.splice(i, 1);
            draw();
            writeUrl();
          },
        }),
    );
    list.replaceChildren(...panels.map((p) => p.root));
    addBtn.disabled = states.length >= MAX_PANELS;
  };
  addBtn.addEventListener('click', () => {
    states.push(defaultPanel());
    draw();
    panels[panels.length - 1].editor.focus();
  });
  draw();
  // Panels that came with an expression run at once; the first gets the focus.
  await Promise.all(panels.filter((p) => p.s.expr.trim()).map((p) => p.run()));
  if (panels[0]) panels[0].editor.focus();
}
