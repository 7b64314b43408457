// The graph of a run as it was recorded, coloured by state and updated live while the run
// goes. Groups collapse into one node; dagre lays the graph out in a worker; the drawing is
// SVG with pan and zoom. Past MAX_NODES visible nodes the page shows the neighbourhood of the
// tasks that need attention (or of a task searched for) instead of an unreadable hairball.
import { api, runPath } from './api.js';
import {
  body, COLOURS, decoder, markDrawn, pollMs, runActions, setRunState, showTip, hideTip, taskUrl,
} from './common.js';
import { groupStates, taskPaths } from './tree.js';

const flowId = body.flowId, runId = body.runId;
const svg = document.getElementById('graph-svg');
const statusBox = document.getElementById('graph-status');
const summary = document.getElementById('graph-summary');
const NS = 'http://www.w3.org/2000/svg';
const MAX_NODES = 1500, FOCUS_NODES = 400, AUTO_COLLAPSE = 150;
const DARK_TEXT = new Set(['none', 'scheduled', 'skipped', 'up_for_reschedule', 'up_for_retry', 'absent']);

let g = null, decode = null, paths = [], collapsed = new Set(), states = [], runState = 'queued';
let focusTask = null, view = null, layout = null, nodeEls = new Map();
let transform = { x: 0, y: 0, k: 1 };
let worker = null, drawnOnce = false, pollTimer = null, generation = 0;

async function loadGraph() {
  const t0 = performance.now();
  g = await api(`${runPath(flowId, runId)}/graph`);
  decode = decoder(g.codes);
  states = Array.from(g.states, decode);
  paths = taskPaths(g.groups, g.group_parents);
  if (g.task_ids.length > AUTO_COLLAPSE && !drawnOnce) for (const p of paths) if (p.length) collapsed.add(p[0]);
  statusBox.textContent = `loaded ${g.task_ids.length} tasks in ${Math.round(performance.now() - t0)} ms; laying out…`;
  await render();
}

function stateOfNode(node) {
  if (node.kind === 'task') return states[node.index];
  return view.groupAgg.get(node.id) || 'none';
}

function buildView() {
  const ids = g.task_ids;
  const rep = ids.map((id, i) => {
    const hidden = paths[i].find((p) => collapsed.has(p));
    return hidden ? `group:${hidden}` : `task:${id}`;
  });
  const nodes = new Map();
  ids.forEach((id, i) => {
    const key = rep[i];
    if (!nodes.has(key)) {
      const group = key.startsWith('group:') ? key.slice(6) : null;
      // A task that was up to date (cache) did not run: its box says so, as `ductwork runs show` does.
      const cached = !group && g.reused && g.reused[id];
      nodes.set(key, group ? { key, kind: 'group', id: group, label: group, members: 0 } : { key, kind: 'task', id, index: i, label: cached ? `${id} · cached` : id, reused: cached || null });
    }
    if (key.startsWith('group:')) nodes.get(key).members += 1;
  });
  let keep = null, note = '';
  if (nodes.size > MAX_NODES || focusTask !== null) {
    keep = focusSet(rep);
    note = focusTask !== null
      ? `showing the neighbourhood of ${ids[focusTask]}`
      : `${nodes.size} nodes are too many to read: showing the ${keep.size} around unfinished and failed tasks (search a task to see its neighbourhood)`;
  }
  const edges = new Set();
  g.upstream.forEach((ups, i) => {
    for (const u of ups) {
      const a = rep[u], b = rep[i];
      if (a === b || (keep && (!keep.has(a) || !keep.has(b)))) continue;
      edges.add(`${a}\u0000${b}`);
    }
  });
  const shown = keep ? [...nodes.values()].filter((n) => keep.has(n.key)) : [...nodes.values()];
  for (const n of shown) if (n.kind === 'group') n.label = `${n.id.split('.').pop()} (${n.members})`;
  return { nodes: shown, edges: [...edges].map((e) => e.split('\u0000')), note, groupAgg: groupStates(paths, (i) => states[i]) };
}

// Tasks that need attention (or the searched task) and their neighbours, as node keys.
function focusSet(rep) {
  const down = g.task_ids.map(() => []);
  g.upstream.forEach((ups, i) => ups.forEach((u) => down[u].push(i)));
  let seeds;
  if (focusTask !== null) seeds = [focusTask];
  else {
    seeds = [];
    states.forEach((s, i) => { if (!['success', 'none', 'skipped'].includes(s)) seeds.push(i); });
    if (!seeds.length) seeds = g.task_ids.map((_, i) => i).filter((i) => !g.upstream[i].length).slice(0, 50);
  }
  const keep = new Set();
  let frontier = seeds;
  for (let hop = 0; hop < 3 && frontier.length && keep.size < FOCUS_NODES; hop++) {
    const next = [];
    for (const i of frontier) {
      if (keep.size >= FOCUS_NODES) break;
      if (!keep.has(rep[i])) keep.add(rep[i]);
      for (const j of [...g.upstream[i], ...down[i]]) next.push(j);
    }
    frontier = next;
  }
  return keep;
}

function measure(node) {
  const chars = node.label.length;
  return { id: node.key, width: Math.max(70, Math.min(300, 16 + chars * 7.2)), height: node.kind === 'group' ? 32 : 26 };
}

function runLayout(nodes, edges) {
  if (!worker) worker = new Worker('/static/js/layout-worker.js');
  return new Promise((resolve, reject) => {
    worker.onmessage = (event) => resolve(event.data);
    worker.onerror = (event) => reject(new Error(event.message || 'layout failed'));
    worker.postMessage({ nodes: nodes.map(measure), edges, ranker: nodes.length > 600 ? 'longest-path' : 'tight-tree' });
  });
}

async function render() {
  const mine = ++generation;
  view = buildView();
  const t0 = performance.now();
  statusBox.style.display = '';
  statusBox.textContent = `laying out ${view.nodes.length} nodes…`;
  const placed = await runLayout(view.nodes, view.edges);
  if (mine !== generation) return;
  layout = placed;
  draw();
  statusBox.style.display = view.note ? '' : 'none';
  statusBox.textContent = view.note;
  summary.textContent = `${g.task_ids.length} tasks · ${view.nodes.length} nodes shown · layout ${Math.round(performance.now() - t0)} ms`;
  if (!drawnOnce) { fit(true); drawnOnce = true; markDrawn('graph'); schedulePoll(); } else applyTransform();
}

function draw() {
  svg.replaceChildren();
  const defs = document.createElementNS(NS, 'defs');
  defs.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#9ca3af"/></marker>';
  svg.append(defs);
  const root = document.createElementNS(NS, 'g');
  root.id = 'viewport';
  for (const e of layout.edges) {
    const path = document.createElementNS(NS, 'path');
    path.setAttribute('class', 'edge');
    path.setAttribute('marker-end', 'url(#arrow)');
    path.setAttribute('d', e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(''));
    root.append(path);
  }
  nodeEls = new Map();
  for (const node of view.nodes) {
    const box = layout.nodes[node.key];
    const el = document.createElementNS(NS, 'g');
    el.setAttribute('class', `node ${node.kind}${focusTask !== null && node.index === focusTask ? ' focus' : ''}`);
    el.setAttribute('transform', `translate(${(box.x - box.width / 2).toFixed(1)},${(box.y - box.height / 2).toFixed(1)})`);
    el.dataset.id = node.id; el.dataset.kind = node.kind;
    // Reachable with Tab and opened with Enter or Space, as the links and buttons they stand for.
    el.setAttribute('tabindex', '0');
    el.setAttribute('role', node.kind === 'group' ? 'button' : 'link');
    if (node.reused) {
      el.classList.add('reused');
      el.dataset.reused = node.reused;
      const title = document.createElementNS(NS, 'title');
      title.textContent = `up to date (cache): reused run ${node.reused}`;
      el.append(title);
    }
    const rect = document.createElementNS(NS, 'rect');
    rect.setAttribute('width', box.width); rect.setAttribute('height', box.height);
    const text = document.createElementNS(NS, 'text');
    text.setAttribute('x', 8); text.setAttribute('y', box.height / 2 + 4);
    text.textContent = node.kind === 'group' ? `▸ ${node.label}` : node.label.length > 40 ? `…${node.label.slice(-39)}` : node.label;
    el.append(rect, text);
    root.append(el);
    nodeEls.set(node.key, { el, rect, text, node });
    paint(nodeEls.get(node.key));
  }
  svg.append(root);
}

function paint(entry) {
  const state = stateOfNode(entry.node);
  if (entry.el.dataset.state === state) return;
  entry.el.dataset.state = state;
  const { node } = entry;
  entry.el.setAttribute('aria-label', node.kind === 'group' ? `group ${node.id} (${node.members} tasks), ${state}: open` : `task ${node.id}, ${state.replaceAll('_', ' ')}`);
  entry.rect.setAttribute('fill', COLOURS[state] || COLOURS.none);
  entry.text.setAttribute('fill', DARK_TEXT.has(state) ? '#111827' : '#ffffff');
}

function applyTransform() {
  const root = document.getElementById('viewport');
  if (root) root.setAttribute('transform', `translate(${transform.x},${transform.y}) scale(${transform.k})`);
}

// ``readable``: never zoom out so far that labels cannot be read; show the start of the
// graph instead (the Fit button shows all of it, however small).
function fit(readable = false) {
  const w = svg.clientWidth, h = svg.clientHeight;
  if (!layout || !layout.width) return;
  const whole = Math.min(1.5, (w - 20) / layout.width, (h - 20) / layout.height);
  const k = readable ? Math.max(whole, 0.8) : whole;
  const x = layout.width * k <= w ? (w - layout.width * k) / 2 : 10;
  const y = layout.height * k <= h ? (h - layout.height * k) / 2 : 10;
  transform = { k, x, y };
  applyTransform();
}

function centerOn(key) {
  const box = layout && layout.nodes[key];
  if (!box) return;
  transform.k = Math.max(transform.k, 0.9);
  transform.x = svg.clientWidth / 2 - box.x * transform.k;
  transform.y = svg.clientHeight / 2 - box.y * transform.k;
  applyTransform();
}

// --- live updates ------------------------------------------------------------------------
function schedulePoll() {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, pollMs);
}

async function poll() {
  try {
    const now = await api(`${runPath(flowId, runId)}/states`);
    runState = now.state;
    setRunState(now.state, now.reason);
    if (now.count !== g.task_ids.length) { await loadGraph(); }
    else if (now.states !== g.states) {
      g.states = now.states;
      states = Array.from(now.states, decode);
      view.groupAgg = groupStates(paths, (i) => states[i]);
      for (const entry of nodeEls.values()) paint(entry);
    }
  } catch (e) { statusBox.style.display = ''; statusBox.textContent = e.message; }
  if (runState === 'queued' || runState === 'running') schedulePoll();
  else document.body.dataset.finished = runState;
}

function refreshSoon() { clearTimeout(pollTimer); runState = 'running'; poll(); }

// --- interaction -------------------------------------------------------------------------
let drag = null;
svg.addEventListener('pointerdown', (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; svg.setPointerCapture(e.pointerId); });
svg.addEventListener('pointermove', (e) => {
  if (drag) {
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; svg.classList.add('dragging'); }
    if (drag.moved) { transform.x += dx; transform.y += dy; drag.x = e.clientX; drag.y = e.clientY; applyTransform(); }
    return;
  }
  const target = e.target.closest && e.target.closest('g.node');
  if (target) showTip(`${target.dataset.id}\n${target.dataset.state}`, e.clientX, e.clientY); else hideTip();
});
svg.addEventListener('pointerup', (e) => {
  const moved = drag && drag.moved;
  drag = null; svg.classList.remove('dragging');
  if (moved) return;
  const target = document.elementsFromPoint(e.clientX, e.clientY).find((n) => n.closest && n.closest('g.node'));
  const nodeEl = target && target.closest('g.node');
  if (nodeEl) activate(nodeEl);
});
svg.addEventListener('keydown', (e) => {
  const nodeEl = e.target.closest && e.target.closest('g.node');
  if (!nodeEl || (e.key !== 'Enter' && e.key !== ' ')) return;
  e.preventDefault();
  activate(nodeEl, true);
});

// A node reached with Tab outside the part of the graph in view is brought into view.
svg.addEventListener('focusin', (e) => {
  const nodeEl = e.target.closest && e.target.closest('g.node');
  if (!nodeEl) return;
  const box = nodeEl.getBoundingClientRect(), view = svg.getBoundingClientRect();
  if (box.left < view.left || box.right > view.right || box.top < view.top || box.bottom > view.bottom) {
    centerOn(`${nodeEl.dataset.kind}:${nodeEl.dataset.id}`);
  }
});

// A group opens in place (its first task centred, and focused when the keyboard opened it); a task opens its page.
function activate(nodeEl, byKeyboard = false) {
  if (nodeEl.dataset.kind === 'group') {
    const group = nodeEl.dataset.id;
    collapsed.delete(group);
    const first = paths.findIndex((p) => p.includes(group));
    render().then(() => {
      if (first < 0) return;
      const key = `task:${g.task_ids[first]}`;
      centerOn(key);
      if (byKeyboard) nodeEls.get(key)?.el.focus();
    });
  }
  else location.href = taskUrl(flowId, runId, nodeEl.dataset.id);
}
svg.addEventListener('wheel', (e) => {
  e.preventDefault();
  const rect = svg.getBoundingClientRect();
  const px = e.clientX - rect.left, py = e.clientY - rect.top;
  const k = Math.min(4, Math.max(0.05, transform.k * Math.exp(-e.deltaY * 0.0015)));
  transform.x = px - ((px - transform.x) * k) / transform.k;
  transform.y = py - ((py - transform.y) * k) / transform.k;
  transform.k = k;
  applyTransform();
}, { passive: false });
document.getElementById('graph-fit').addEventListener('click', () => fit());
document.getElementById('graph-expand').addEventListener('click', () => { collapsed.clear(); render().then(() => fit(true)); });
document.getElementById('graph-collapse').addEventListener('click', () => {
  for (const p of paths) if (p.length) collapsed.add(p[0]);
  render().then(() => fit(true));
});
document.getElementById('graph-search').addEventListener('keydown', (e) => {
  if (e.key !== 'Enter') return;
  const text = e.target.value.trim().toLowerCase();
  if (!text) { focusTask = null; render().then(() => fit(true)); return; }
  const i = g.task_ids.findIndex((t) => t.toLowerCase().includes(text));
  if (i < 0) { statusBox.style.display = ''; statusBox.textContent = `no task matches “${text}”`; return; }
  for (const p of paths[i]) collapsed.delete(p);
  const wasHidden = !nodeEls.has(`task:${g.task_ids[i]}`);
  focusTask = wasHidden && view.note ? i : null;
  render().then(() => centerOn(`task:${g.task_ids[i]}`));
});

runActions(flowId, runId, refreshSoon);
loadGraph().catch((e) => { statusBox.textContent = e.message; });
