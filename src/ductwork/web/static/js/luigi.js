// Luigi's view: families with counts per state, a filterable task list, workers, resources.
import { api, enc } from './api.js';
import { COLOURS, el, fmtTime, markDrawn, pollMs, taskUrl } from './common.js';

const LUIGI_COLOURS = {
  pending: COLOURS.none, running: COLOURS.running, done: COLOURS.success, failed: COLOURS.failed,
  upstream_failed: COLOURS.upstream_failed, disabled: '#6b7280',
};
const hours = document.getElementById('luigi-hours');
const family = document.getElementById('task-family');
const state = document.getElementById('task-state');
const search = document.getElementById('task-search');

function pill(name, count) {
  return el('span', { class: 'pill', style: `background:${LUIGI_COLOURS[name]};${name === 'pending' ? 'color:#111827' : ''}`, text: count });
}

async function families() {
  const data = await api(`/luigi/families?hours=${hours.value}`);
  const tbody = document.querySelector('#families tbody');
  const keep = family.value;
  family.replaceChildren(el('option', { value: '', text: 'all families' }), ...data.families.map((f) => el('option', { value: f.family, text: f.family })));
  family.value = keep;
  tbody.replaceChildren(...data.families.map((f) => {
    const total = Object.values(f.counts).reduce((a, b) => a + b, 0) || 1;
    const bar = el('div', { class: 'family-bar' }, data.states.filter((s) => f.counts[s]).map((s) => el('i', { style: `width:${(100 * f.counts[s]) / total}%;background:${LUIGI_COLOURS[s]}` })));
    return el('tr', { 'data-family': f.family },
      el('td', {}, el('a', { href: '#', onclick: (e) => { e.preventDefault(); family.value = f.family; state.value = ''; tasks(); }, text: f.family })),
      ...data.states.map((s) => el('td', {}, f.counts[s] ? el('a', { href: '#', onclick: (e) => { e.preventDefault(); family.value = f.family; state.value = s; tasks(); } }, pill(s, f.counts[s])) : el('span', { class: 'muted', text: '0' }))),
      el('td', {}, bar));
  }));
  if (!data.families.length) tbody.replaceChildren(el('tr', {}, el('td', { colspan: 8, class: 'muted', text: 'No tasks in this period.' })));
}

async function tasks() {
  const q = new URLSearchParams({ hours: hours.value, limit: '200' });
  if (family.value) q.set('family', family.value);
  if (state.value) q.set('state', state.value);
  if (search.value.trim()) q.set('search', search.value.trim());
  const page = await api(`/luigi/tasks?${q}`);
  document.getElementById('task-count').textContent = `${page.total} task(s)${page.total > page.items.length ? `, first ${page.items.length} shown` : ''}`;
  document.querySelector('#luigi-tasks tbody').replaceChildren(...page.items.map((t) => el('tr', {},
    el('td', {}, el('a', { href: taskUrl(t.flow_id, t.run_id, t.task_id), class: 'mono', text: t.task_id })),
    el('td', { text: t.family }),
    el('td', {}, pill(t.luigi_state, t.luigi_state.replaceAll('_', ' '))),
    el('td', {}, el('a', { href: `/flows/${enc(t.flow_id)}/grid`, text: t.flow_id }), el('span', { class: 'muted', text: ` · ${t.run_id}` })),
    el('td', { text: fmtTime(t.start_date) }),
    el('td', { class: 'muted', text: t.hostname ? `${t.hostname}:${t.pid}` : '' }))));
}

async function workers() {
  const data = await api('/luigi/workers');
  const box = document.getElementById('workers');
  const parts = [];
  parts.push(el('h3', { text: `Schedulers (${data.schedulers.length})`, style: 'font-size:13px;margin:4px 0' }));
  parts.push(data.schedulers.length ? el('ul', {}, data.schedulers.map((s) => el('li', {},
    el('span', { class: `dot ${s.alive ? 's-success' : 's-failed'}` }), `${s.kind} on ${s.hostname} pid ${s.pid} · heartbeat ${fmtTime(s.heartbeat_at)}`))) : el('p', { class: 'muted', text: 'no scheduler is running' }));
  parts.push(el('h3', { text: `Busy workers (${data.workers.length})`, style: 'font-size:13px;margin:8px 0 4px' }));
  parts.push(data.workers.length ? el('ul', { id: 'worker-list' }, data.workers.map((w) => el('li', {},
    el('strong', { text: `${w.hostname} pid ${w.pid ?? '?'}` }), el('span', { class: 'muted', text: ` · heartbeat ${fmtTime(w.last_heartbeat)}` }),
    el('ul', {}, w.tasks.map((t) => el('li', {}, el('a', { href: taskUrl(t.flow_id, t.run_id, t.task_id), class: 'mono', text: t.task_id }), el('span', { class: 'muted', text: ` (${t.family}) since ${fmtTime(t.start_date)}` }))))))) : el('p', { class: 'muted', text: 'no worker is running a task' }));
  box.classList.remove('muted');
  box.replaceChildren(...parts);
}

async function resources() {
  const data = await api('/luigi/resources');
  const box = document.getElementById('resources');
  box.classList.remove('muted');
  const table = (head, rows) => el('table', { class: 'list' }, el('thead', {}, el('tr', {}, head.map((h) => el('th', { text: h })))), el('tbody', {}, rows));
  box.replaceChildren(
    data.resources.length ? table(['resource', 'used', 'limit'], data.resources.map((r) => el('tr', {}, el('td', { text: r.name }), el('td', { text: r.used }), el('td', { text: r.limit ?? 'unlimited' }))))
      : el('p', { class: 'muted', text: 'No Luigi resources are set or in use.' }),
    el('h3', { text: 'Pools', style: 'font-size:13px;margin:10px 0 4px' }),
    table(['pool', 'running', 'queued', 'open', 'slots'], data.pools.map((p) => el('tr', {}, el('td', { text: p.name }), el('td', { text: p.running_slots }), el('td', { text: p.queued_slots }), el('td', { text: p.open_slots }), el('td', { text: p.slots })))),
  );
}

async function all() {
  await Promise.all([families(), tasks(), workers(), resources()]);
  markDrawn('luigi');
}

hours.addEventListener('change', all);
family.addEventListener('change', tasks);
state.addEventListener('change', tasks);
let typing = null;
search.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(tasks, 250); });
all().catch((e) => { document.getElementById('workers').textContent = e.message; });
setInterval(() => { families(); workers(); resources(); }, Math.max(5000, pollMs * 3));
