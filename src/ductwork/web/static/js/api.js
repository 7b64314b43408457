// Calls to the REST API from the pages: the session cookie authenticates, the page's CSRF
// token goes with every write, and errors come back as Error(detail).
const csrf = document.querySelector('meta[name="csrf-token"]')?.content || '';

export class ApiError extends Error {
  constructor(status, detail, code, data = {}) { super(detail); this.status = status; this.code = code; this.data = data; }
}

// The session ended (expired, logged out elsewhere, a new password): log in again and come back
// to this very page, its query (filters, the page of a list) and fragment included. The promise
// never settles: the page is going away, so no caller shows an error or undoes a switch meanwhile.
function toLogin() {
  window.location = '/login?next=' + encodeURIComponent(location.pathname + location.search + location.hash);
  return new Promise(() => {});
}

export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch('/api/v1' + path, {
    method, headers, signal, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) return toLogin();
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({ detail: response.statusText, error: 'error' }));
  if (!response.ok) throw new ApiError(response.status, data.detail || response.statusText, data.error, data);
  return data;
}

export const enc = encodeURIComponent;

export function runPath(flowId, runId) { return `/flows/${enc(flowId)}/runs/${enc(runId)}`; }

// A streamed text response (a live log): calls onChunk for each piece as it arrives.
export async function stream(path, onChunk, signal) {
  const response = await fetch('/api/v1' + path, { credentials: 'same-origin', signal });
  if (response.status === 401) return toLogin();
  if (!response.ok) {
    const data = await response.json().catch(() => ({ detail: response.statusText }));
    throw new ApiError(response.status, data.detail, data.error);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    onChunk(decoder.decode(value, { stream: true }));
  }
}
