// The admin API from the browser: the bearer token (kept in sessionStorage, so it leaves with
// the tab) added to every `/api/v1/admin/...` call, and a small form to enter it when the API
// answers "unauthorized".

import { apiFull } from './api.js';
import { el } from './util.js';

const KEY = 'strata.adminToken';

export function adminToken() {
  try {
    return sessionStorage.getItem(KEY) || '';
  } catch (e) {
    return '';
  }
}

export function setAdminToken(t) {
  try {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  } catch (e) {
    /* private mode: the token lasts for this page only */
  }
}

function authHeaders() {
  const t = adminToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

/** `data` of an admin API call, with the token. */
export async function adminApi(path, params = {}, opts = {}) {
  return (await apiFull(path, params, Object.assign({}, opts, { headers: Object.assign(authHeaders(), opts.headers || {}) }))).data;
}

/** A form that stores the token and calls `onSet()`. */
export function tokenForm(onSet) {
  const input = el('input', { type: 'password', placeholder: 'admin token', autocomplete: 'off', 'data-testid': 'admin-token' });
  input.value = adminToken();
  const save = () => {
    setAdminToken(input.value.trim());
    onSet();
  };
  input.addEventListener('keydown', (e) => e.key === 'Enter' && save());
  return el('div', { class: 'row' }, el('span', { class: 'muted' }, 'Admin token (admin.token_file):'), input,
    el('button', { onclick: save }, 'Use token'),
    el('button', { onclick: () => { input.value = ''; save(); } }, 'Forget'));
}

export function isUnauthorized(e) {
  return e && (e.status === 401 || e.errorType === 'unauthorized');
}
