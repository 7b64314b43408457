// A task of a run: its definition and parameters, rendered arguments, tries, results, and the
// log of a try, tailed live while the try runs. Actions: clear and mark, each with a preview.
import { api, enc, runPath, stream } from './api.js';
import { body, clearWithPreview, el, fmtDuration, fmtTime, markDrawn, markWithPreview, pollMs, stateBadge } from './common.js';

const flowId = body.flowId, runId = body.runId, taskId = body.taskId;
const base = `${runPath(flowId, runId)}/tasks/${enc(taskId)}`;
const logBox = document.getElementById('task-log');
const logStatus = document.getElementById('log-status');
const trySelect = document.getElementById('log-try');
let current = null, tries = [], tailing = null, timer = null;
// Whether the person chose an older try in the menu: then it stays shown; otherwise the log
// follows the newest try (a retry's log as it starts), as Airflow's log view does.
let pinned = false;

const ACTIVE = new Set(['queued', 'running', 'scheduled', 'up_for_retry', 'up_for_reschedule', 'none']);

async function load() {
  const [task, attempts] = await Promise.all([api(base), api(`${base}/tries`)]);
  current = task; tries = attempts;
  const badge = document.getElementById('task-state');
  badge.className = `state s-${task.state}`; badge.textContent = task.state.replaceAll('_', ' ');
  badge.dataset.state = task.state;
  // A reschedule gives its try back (as in Airflow): while it waits, the try shown is the one that checks next.
  const tryShown = task.state === 'up_for_reschedule' ? task.try_number + 1 : task.try_number;
  // A task that ended without a try (skipped as its run was cancelled, upstream failed) read
  // "try 0 of 1" over an empty table: it says it never ran, and why.
  const tryText = tryShown >= 1 && (attempts.length || ACTIVE.has(task.state)) ? `try ${tryShown} of ${task.max_tries}`
    : ACTIVE.has(task.state) ? 'not started yet' : 'never ran';
  document.getElementById('task-summary').textContent = `${task.operator} · ${tryText}` + (task.duration != null ? ` · ${fmtDuration(task.duration)}` : '');
  details(task);
  triesTable(attempts, task);
  rendered(attempts);
  await results();
  await why();
  syncLog();
  if (document.body.dataset.drawn !== 'task') markDrawn('task');
  clearTimeout(timer);
  if (ACTIVE.has(task.state)) timer = setTimeout(() => load().catch(() => {}), pollMs);
}

function details(task) {
  const d = task.definition;
  const rows = [
    ['operator', d.family || task.operator], ['trigger rule', d.trigger_rule || 'all_success'],
    ['retries', String(d.retries || 0)], ['pool', task.pool], ['priority', String(task.priority_weight)],
    ['group', task.group || '—'], ['started', fmtTime(task.start_date)], ['ended', fmtTime(task.end_date)],
    ['upstream', task.upstream.length ? task.upstream : '—'], ['downstream', task.downstream.length ? task.downstream : '—'],
  ];
  if (d.doc) rows.push(['doc', d.doc]);
  if (task.next_try_at) rows.push(['next try', fmtTime(task.next_try_at)]);
  document.getElementById('task-details').replaceChildren(...rows.flatMap(([k, v]) => [
    el('dt', { text: k }),
    el('dd', {}, Array.isArray(v) ? v.flatMap((t, i) => [i ? ', ' : '', el('a', { href: `${runPath(flowId, runId)}/tasks/${enc(t)}`, text: t })]) : v),
  ]));
  const params = { ...(d.params || {}) };
  const box = document.getElementById('task-params');
  const entries = Object.entries(params);
  box.replaceChildren(entries.length ? el('dl', { class: 'kv' }, entries.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { class: 'mono', text: String(v) })])) : 'no task parameters');
}

// Why the task ran or not: what changed since its last successful try, what matched, or which
// outputs were missing (the same answer as ``ductwork why``).
async function why() {
  const box = document.getElementById('task-why');
  let info;
  try { info = await api(`${base}/why`); } catch (e) { box.textContent = e.message; return; }
  box.className = '';
  box.dataset.decision = info.decision;
  // A task that was up to date, or whose outputs existed, did not run: the heading says so.
  const skipped = ['up_to_date', 'complete', 'taken', 'not_run'].includes(info.decision);
  document.getElementById('task-why-title').textContent = skipped ? 'Why it did not run' : 'Why it ran';
  const items = (info.reasons || []).map((r) => el('li', { text: r.text }));
  const parts = [el('p', { class: 'why-text', text: info.text })];
  if (items.length) parts.push(el('ul', { class: 'why-reasons' }, ...items));
  if (info.matched_run_id) parts.push(el('p', {}, 'reused the results of ', el('a', { href: `${runPath(flowId, info.matched_run_id)}/tasks/${enc(taskId)}`, text: info.matched_run_id })));
  if (info.matched && info.matched.length) parts.push(el('p', { class: 'muted', text: `matched: ${info.matched.join(', ')}` }));
  box.replaceChildren(...parts);
}

function noTriesRow(task) {
  const why = task.state_reason ? ` (${task.state_reason})` : '';
  const text = ACTIVE.has(task.state) ? `no try yet: the task has not started (${task.state.replaceAll('_', ' ')})`
    : `no tries: the task ended ${task.state.replaceAll('_', ' ')} without running${why}`;
  return el('tr', { id: 'no-tries' }, el('td', { colspan: 5, class: 'muted', text }));
}

function triesTable(attempts, task) {
  const tbody = document.querySelector('#task-tries tbody');
  if (!attempts.length) tbody.replaceChildren(noTriesRow(task));
  else tbody.replaceChildren(...attempts.slice().reverse().flatMap((t) => {
    const row = el('tr', {}, el('td', { text: t.try_number }), el('td', {}, stateBadge(t.state)),
      el('td', { text: fmtTime(t.start_date) }), el('td', { text: fmtDuration(t.duration) }),
      el('td', { class: 'muted', text: t.hostname ? `${t.hostname} pid ${t.pid ?? '?'}` : '—' }));
    const extra = t.error ? [el('tr', {}, el('td', { colspan: 5 }, el('div', { class: 'error', text: t.error }),
      t.traceback ? el('details', {}, el('summary', { text: 'traceback' }), el('pre', { class: 'block', text: t.traceback })) : ''))] : [];
    return [row, ...extra];
  }));
  const options = attempts.map((t) => el('option', { value: t.try_number, text: `try ${t.try_number}` }));
  const keep = trySelect.value;
  trySelect.replaceChildren(...options);
  if (pinned && keep && attempts.some((t) => String(t.try_number) === keep)) trySelect.value = keep;
  else if (attempts.length) trySelect.value = String(attempts[attempts.length - 1].try_number);
}

function rendered(attempts) {
  const last = [...attempts].reverse().find((t) => t.rendered);
  const box = document.getElementById('task-rendered');
  document.getElementById('rendered-try').textContent = last ? `(try ${last.try_number})` : '';
  if (!last) { box.replaceChildren('not rendered yet'); return; }
  box.replaceChildren(el('dl', { class: 'kv' }, Object.entries(last.rendered).flatMap(([k, v]) => [
    el('dt', { text: k }), el('dd', {}, el('pre', { class: 'block', text: typeof v === 'string' ? v : JSON.stringify(v, null, 1) })),
  ])));
}

async function results() {
  const found = await api(`${base}/results`);
  const box = document.getElementById('task-results');
  box.replaceChildren(...(found.length ? found.map((r) => el('div', {},
    el('div', {}, el('strong', { class: 'mono', text: r.key }), el('span', { class: 'muted', text: ` · ${r.size} bytes · ${r.serializer}` })),
    el('pre', { class: 'block result', text: r.preview + (r.truncated ? '\n…' : '') }))) : ['none']));
  const down = document.getElementById('task-downstream');
  down.textContent = found.length && current.downstream.length ? `passed to: ${current.downstream.join(', ')}` : '';
}

function noTryText(task) {
  const why = task.state_reason ? ` (${task.state_reason})` : '';
  if (task.state === 'skipped') return `no log: the task was skipped, so it never ran${why}`;
  if (task.state === 'upstream_failed') return 'no log: the task never ran, as a task upstream of it failed';
  if (!ACTIVE.has(task.state)) return `no log: the task ended ${task.state.replaceAll('_', ' ')} without running${why}`;
  return 'no log yet: the task has not started';
}

function syncLog() {
  const wanted = trySelect.value ? Number(trySelect.value) : null;
  if (wanted === null) { logBox.textContent = noTryText(current); return; }
  const attempt = tries.find((t) => t.try_number === wanted);
  const live = attempt && (attempt.state === 'running' || attempt.state === 'queued');
  if (attempt && !live && !attempt.has_log) { // nothing to ask the server for (it would answer 404)
    if (tailing) tailing.abort.abort();
    tailing = null; logStatus.textContent = '';
    logBox.textContent = `no log: try ${wanted} ended ${attempt.state.replaceAll('_', ' ')} without writing one` +
      (current.operator === 'EmptyOperator' ? ' (an EmptyOperator has nothing to run)' : '');
    document.body.dataset.logLoaded = String(wanted);
    return;
  }
  if (tailing && tailing.tryNumber === wanted && (tailing.live || !live)) return;
  showLog(wanted, live);
}

async function showLog(tryNumber, live) {
  if (tailing) tailing.abort.abort();
  const abort = new AbortController();
  tailing = { tryNumber, live, abort };
  logBox.textContent = '';
  logStatus.textContent = live ? '● live' : '';
  try {
    await stream(`${base}/logs?try_number=${tryNumber}${live ? '&follow=true' : ''}`, (chunk) => {
      const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
      logBox.append(chunk);
      if (atBottom) logBox.scrollTop = logBox.scrollHeight;
    }, abort.signal);
    if (!logBox.textContent) logBox.textContent = '(empty log)';
    logStatus.textContent = live ? 'ended' : '';
    document.body.dataset.logLoaded = String(tryNumber);
  } catch (e) {
    if (e.name === 'AbortError') return;
    logBox.textContent = e.message; logStatus.textContent = '';
  }
  if (tailing && tailing.abort === abort) tailing = { tryNumber, live: false, abort };
}

trySelect.addEventListener('change', () => {
  pinned = trySelect.selectedIndex !== trySelect.options.length - 1; // the newest: follow the newest
  if (tailing) tailing.abort.abort();
  tailing = null; syncLog();
});

const result = document.getElementById('action-result');
function say(kind, text) { result.replaceChildren(el('div', { class: kind, text })); }

document.getElementById('clear-task')?.addEventListener('click', async () => {
  try {
    const done = await clearWithPreview(flowId, runId, [taskId], {
      downstream: document.getElementById('opt-downstream').checked, upstream: document.getElementById('opt-upstream').checked,
    });
    if (done) { say('ok', `cleared ${done.task_ids.length} task(s): they will run again`); await load(); }
  } catch (e) { say('error', e.message); }
});
for (const state of ['success', 'failed']) {
  document.getElementById(`mark-${state}`)?.addEventListener('click', async () => {
    try {
      const done = await markWithPreview(flowId, runId, [taskId], state, {
        downstream: document.getElementById('mark-downstream').checked, upstream: document.getElementById('mark-upstream').checked,
      });
      if (!done) return;
      say('ok', done.unchanged ? `nothing to mark: already ${state}` : `marked ${done.task_ids.length} task(s) ${state}`);
      await load();
    } catch (e) { say('error', e.message); }
  });
}

load().catch((e) => { say('error', e.message); });
