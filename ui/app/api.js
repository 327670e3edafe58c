// The one way the app talks to the node: `api(path, params)` GETs `<prefix><path>` and returns
// the `data` of the Prometheus envelope, or throws an ApiError whose message is the API's own
// `error` text (prefixed with its errorType only when it has one, as Prometheus's UI shows it).

const S = window.STRATA || { prefix: '' };

export class ApiError extends Error {
  constructor(message, { status = 0, errorType = '' } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.errorType = errorType;
  }
}

/** The URL of an API path below the route prefix, with query parameters (arrays repeat). */
export function apiUrl(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, String(v));
  }
  const qs = q.toString();
  return `${S.prefix}${path}${qs ? '?' + qs : ''}`;
}

/**
 * GET (or POST with a form body when `opts.method` is POST) an API path.
 * Resolves to { data, warnings, infos, headers, ms }.
 */
export async function apiFull(path, params = {}, opts = {}) {
  const started = performance.now();
  const method = opts.method || 'GET';
  let resp;
  try {
    if (method === 'GET') {
      resp = await fetch(apiUrl(path, params), { headers: opts.headers || {}, signal: opts.signal });
    } else {
      const body = opts.body !== undefined ? opts.body : new URLSearchParams(params).toString();
      resp = await fetch(`${S.prefix}${path}`, {
        method,
        headers: Object.assign({ 'Content-Type': opts.contentType || 'application/x-www-form-urlencoded' }, opts.headers || {}),
        body,
        signal: opts.signal,
      });
    }
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(`cannot reach the server: ${e && e.message ? e.message : e}`);
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (e) {
    json = null;
  }
  const ms = performance.now() - started;
  if (!json || typeof json !== 'object') {
    const snippet = text.trim().slice(0, 300);
    throw new ApiError(`HTTP ${resp.status}${snippet ? ': ' + snippet : ''}`, { status: resp.status });
  }
  if (json.status !== 'success') {
    const msg = json.error || `HTTP ${resp.status}`;
    throw new ApiError(json.errorType ? `${json.errorType}: ${msg}` : msg, {
      status: resp.status,
      errorType: json.errorType || '',
    });
  }
  return { data: json.data, warnings: json.warnings || [], infos: json.infos || [], headers: resp.headers, ms };
}

/** Just the `data` of an API answer. */
export async function api(path, params = {}, opts = {}) {
  return (await apiFull(path, params, opts)).data;
}
