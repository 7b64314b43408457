// Shared by the pages: state names and colours, formatting, the confirm dialog, run actions.
import { api, runPath, enc } from './api.js';

export const body = document.body.dataset;
export const canOperate = body.role === 'operator' || body.role === 'admin';
export const pollMs = Number(body.pollMs || 1500);

export const COLOURS = {
  none: '#d1d5db', scheduled: '#c8a97e', queued: '#9ca3af', running: '#38bdf8', success: '#16a34a',
  failed: '#dc2626', up_for_retry: '#eab308', up_for_reschedule: '#2dd4bf', skipped: '#f472b6',
  upstream_failed: '#f97316', absent: '#ffffff',
};
// The page's colours that a canvas cannot take from CSS (the grid): read from the stylesheet's
// variables at each drawing, so the light or dark scheme (prefers-color-scheme) shows there too.
export function themeColours() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    panel: v('--panel', '#ffffff'), ink: v('--ink', '#111827'), muted: v('--muted', '#6b7280'),
    line: v('--line', '#e5e7eb'), accent: v('--accent', '#2563eb'), stripe: v('--grid-stripe', '#fafafa'),
    group: v('--group-ink', '#374151'),
  };
}

// Redraw when the system switches between light and dark while the page is open.
export function onSchemeChange(redraw) {
  window.matchMedia?.('(prefers-color-scheme: dark)').addEventListener?.('change', redraw);
}
// Which state a collapsed group shows: the most urgent of its tasks' states.
export const URGENCY = ['failed', 'upstream_failed', 'up_for_retry', 'running', 'queued', 'up_for_reschedule',
  'scheduled', 'none', 'skipped', 'success', 'absent'];

export function decoder(codes) {
  const byCode = { '-': 'absent', '?': 'none', ...codes };
  return (c) => byCode[c] || 'none';
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

export function stateBadge(state) { return el('span', { class: `state s-${state}`, text: state.replaceAll('_', ' ') }); }

// A moment in UTC, saying so: the pages show every time in UTC (as the run header's logical
// date), and a bare "23:39" read as the browser's own time was hours off away from UTC.
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return `${d.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return m < 120 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

const tip = document.getElementById('tooltip');
export function showTip(text, x, y) {
  if (!tip) return;
  tip.textContent = text; tip.style.display = 'block';
  tip.style.left = `${Math.min(x + 14, innerWidth - tip.offsetWidth - 8)}px`; tip.style.top = `${y + 14}px`;
}
export function hideTip() { if (tip) tip.style.display = 'none'; }

// A modal confirmation; resolves true when the person confirms. ``dismissText`` names what the
// other button does when "Cancel" would be read as the action: the dialog of Cancel run said
// "Cancel" and "Cancel run", and either could be the one that cancels the run.
export function confirmDialog(title, content, okText = 'Confirm', dismissText = 'Cancel') {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  const box = document.getElementById('confirm-body');
  box.replaceChildren(content);
  document.getElementById('confirm-ok').textContent = okText;
  document.getElementById('confirm-cancel').textContent = dismissText;
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

export function listOf(ids, limit = 40, attrs = { id: 'preview-list' }) {
  const shown = ids.slice(0, limit).map((t) => el('li', { class: 'mono', text: t }));
  if (ids.length > limit) shown.push(el('li', { class: 'muted', text: `and ${ids.length - limit} more` }));
  return el('ul', attrs, shown);
}

// Clear tasks with a preview of exactly what will be cleared (a dry run of the same call).
export async function clearWithPreview(flowId, runId, taskIds, { downstream = true, upstream = false } = {}) {
  const path = `${runPath(flowId, runId)}/tasks/clear`;
  const preview = await api(path, { method: 'POST', body: { task_ids: taskIds, downstream, upstream, dry_run: true } });
  const content = el('div', {}, el('p', { text: `These ${preview.task_ids.length} task(s) will run again:` }), listOf(preview.task_ids));
  // An ExternalTaskMarker among them clears tasks of other flows' runs too: say which.
  for (const other of preview.other_runs || []) {
    content.append(
      el('p', { class: 'other-run', text: `and ${other.task_ids.length} task(s) of ${other.flow_id} ${other.run_id} (ExternalTaskMarker):` }),
      listOf(other.task_ids, 40, { class: 'preview-other' }),
    );
  }
  if (!(await confirmDialog('Clear tasks', content, 'Clear'))) return null;
  return api(path, { method: 'POST', body: { task_ids: taskIds, downstream, upstream } });
}

// Mark tasks success or failed, after showing exactly which tasks would change (a dry run).
export async function markWithPreview(flowId, runId, taskIds, state, { downstream = false, upstream = false } = {}) {
  const path = `${runPath(flowId, runId)}/tasks/mark`;
  const preview = await api(path, { method: 'POST', body: { task_ids: taskIds, state, downstream, upstream, dry_run: true } });
  if (!preview.task_ids.length) return { task_ids: [], unchanged: true };
  const content = el('div', {}, el('p', { text: `These ${preview.task_ids.length} task(s) will be marked ${state}:` }), listOf(preview.task_ids));
  if (!(await confirmDialog(`Mark ${state}?`, content, `Mark ${state}`))) return null;
  return api(path, { method: 'POST', body: { task_ids: taskIds, state, downstream, upstream } });
}

// The run header's buttons (graph and Gantt pages). A refusal (say, the run finished meanwhile)
// is shown under the header.
export function runActions(flowId, runId, onChange) {
  const box = document.getElementById('run-action-result');
  const say = (kind, text) => box?.replaceChildren(el('div', { class: kind, role: kind === 'error' ? 'alert' : 'status', text }));
  const action = (id, handler) => document.getElementById(id)?.addEventListener('click', async () => {
    box?.replaceChildren();
    try { await handler(); } catch (e) { say('error', e.message); }
  });
  action('cancel-run', async () => {
    const ok = await confirmDialog('Cancel this run?', el('p', { text: 'Running tasks are marked failed and their tries stopped; tasks not started are skipped.' }), 'Cancel run', 'Keep running');
    if (!ok) return;
    await api(`${runPath(flowId, runId)}/cancel`, { method: 'POST' });
    onChange();
  });
  action('delete-run', async () => {
    // A dry run of the same call says what would go; the person confirms that.
    const path = runPath(flowId, runId);
    const plan = await api(`${path}?dry_run=true`, { method: 'DELETE' });
    const content = el('div', {}, el('p', { id: 'delete-preview', text:
      `This deletes the run with ${plan.task_instances} task instance(s), ${plan.tries} tr(ies), ` +
      `${plan.results} result(s), ${plan.log_files} log file(s) and ${plan.events} event(s). It cannot be undone.` }));
    if (!(await confirmDialog('Delete this run?', content, 'Delete run', 'Keep the run'))) return;
    await api(path, { method: 'DELETE' });
    window.location = `/flows/${enc(flowId)}/grid`;
  });
  action('clear-failed', async () => {
    const failed = await api(`${runPath(flowId, runId)}/tasks?state=failed&state=upstream_failed&state=up_for_retry`);
    if (!failed.length) { say('ok', 'This run has no failed tasks.'); return; }
    const done = await clearWithPreview(flowId, runId, onlyFailedInstances(failed.map((t) => t.task_id)), { downstream: true });
    if (done) say('ok', `cleared ${done.task_ids.length} task(s): they will run again`);
    onChange();
  });
}

// A mapped task ``t`` is failed when one of its instances ``t[i]`` failed, and clearing ``t``
// clears every instance: "Clear failed tasks" would run the instances that succeeded again. The
// failed instances are cleared instead; ``t`` and what follows it come with them (downstream).
function onlyFailedInstances(ids) {
  const mapped = new Set(ids.filter((id) => /\[\d+\]$/.test(id)).map((id) => id.replace(/\[\d+\]$/, '')));
  return ids.filter((id) => !mapped.has(id));
}

// ``reason``: why the run ended, when its tasks did not decide it (cancelled...), from the
// polled states; shown beside the badge as the run ends, where it appeared only on a reload.
export function setRunState(state, reason) {
  const badge = document.getElementById('run-state');
  if (badge) { badge.className = `state s-${state}`; badge.textContent = state; }
  if (badge && reason !== undefined) {
    let said = document.getElementById('run-reason');
    if (!said && reason) { said = el('span', { class: 'muted', id: 'run-reason' }); badge.after(said); }
    if (said) said.textContent = reason;
  }
  const cancel = document.getElementById('cancel-run');
  if (cancel) cancel.disabled = state === 'success' || state === 'failed';
  // A run that ends is deletable unless the page said it stays anyway (the flow's latest run).
  const remove = document.getElementById('delete-run');
  if (remove) {
    const ended = state === 'success' || state === 'failed';
    const refusal = ended ? remove.dataset.protected : `This run is ${state}: only finished runs can be deleted (cancel it first).`;
    remove.disabled = Boolean(refusal);
    remove.title = refusal || 'Delete this finished run with its tries, results, logs and events';
  }
}

export function taskUrl(flowId, runId, taskId) { return `${runPath(flowId, runId)}/tasks/${enc(taskId)}`; }

export function markDrawn(name) {
  performance.mark(`ductwork:${name}:drawn`);
  document.body.dataset.drawn = name;
}
