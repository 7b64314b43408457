// The grid: runs (columns, oldest left) by tasks (rows), coloured by state, drawn on a canvas
// with only the visible rows painted, so 10,000 tasks x 25 runs scroll smoothly.
import { api, enc, runPath } from './api.js';
import { body, COLOURS, decoder, fmtTime, hideTip, markDrawn, onSchemeChange, pollMs, showTip, taskUrl, themeColours } from './common.js';
import { groupStates, taskPaths, visibleRows } from './tree.js';

const flowId = body.flowId;
const wrap = document.getElementById('grid');
const spacer = document.getElementById('grid-spacer');
const statusLine = document.getElementById('grid-status');
const canvas = document.createElement('canvas');
canvas.style.position = 'absolute';
canvas.style.pointerEvents = 'none';
wrap.parentElement.style.position = 'relative';
wrap.parentElement.insertBefore(canvas, wrap.nextSibling);
const ctx = canvas.getContext('2d');

const HEAD_H = 64, ROW_H = 18, CELL = 16, BOX = 13;
// The task names' column: 340 px, but never more than 40% of the grid's box, so that on a
// narrow window (a phone) the runs' cells are not all hidden under it.
let NAME_W = 340;
function fitNames() { NAME_W = Math.max(120, Math.min(340, Math.floor(wrap.clientWidth * 0.4))); }
let data = null, paths = [], rows = [], collapsed = new Set(), decode = null, groupAgg = [];
let first = true, timer = null, toNewest = true;
// The keyboard's place in the grid (the grid box takes the focus with Tab): r is a row of
// `rows` (-1: the runs' bars above them), j a run's column (-1: the task names).
let cursor = null;
const announce = document.getElementById('grid-cursor');

async function load() {
  const limit = document.getElementById('grid-limit').value;
  const t0 = performance.now();
  data = await api(`/flows/${enc(flowId)}/grid?limit=${limit}`);
  decode = decoder(data.codes);
  paths = taskPaths(data.groups, data.group_parents);
  if (first) for (const path of paths) for (const g of path) collapsed.add(g);
  rebuild();
  if (toNewest) { wrap.scrollLeft = wrap.scrollWidth; toNewest = false; } // the newest runs are at the right
  const active = data.runs.some((r) => r.state === 'queued' || r.state === 'running');
  statusLine.textContent = `${data.task_ids.length} tasks × ${data.runs.length} of ${data.total_runs} runs · loaded in ${Math.round(performance.now() - t0)} ms` + (active ? ' · live' : '');
  if (first) { markDrawn('grid'); first = false; }
  clearTimeout(timer);
  if (active) timer = setTimeout(load, Math.max(3000, pollMs * 2));
}

function rebuild() {
  fitNames();
  rows = visibleRows(data.task_ids, paths, collapsed);
  groupAgg = data.runs.map((run) => groupStates(paths, (i) => decode(run.states[i])));
  spacer.style.width = `${NAME_W + data.runs.length * CELL + 40}px`;
  spacer.style.height = `${HEAD_H + rows.length * ROW_H + 10}px`;
  if (cursor) cursor = { r: Math.min(cursor.r, rows.length - 1), j: Math.min(cursor.j, data.runs.length - 1) };
  draw();
}

function draw() {
  const w = wrap.clientWidth, h = wrap.clientHeight, dpr = devicePixelRatio || 1;
  canvas.style.left = `${wrap.offsetLeft}px`; canvas.style.top = `${wrap.offsetTop}px`;
  canvas.style.width = `${w}px`; canvas.style.height = `${h}px`;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  if (!data) return;
  const top = wrap.scrollTop, left = wrap.scrollLeft;
  const firstRow = Math.max(0, Math.floor(top / ROW_H));
  const lastRow = Math.min(rows.length, firstRow + Math.ceil((h - HEAD_H) / ROW_H) + 1);
  const theme = themeColours();
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  for (let r = firstRow; r < lastRow; r++) {
    const row = rows[r];
    const y = HEAD_H + (r - firstRow) * ROW_H - (top % ROW_H);
    if (r % 2) { ctx.fillStyle = theme.stripe; ctx.fillRect(0, y, w, ROW_H); }
    ctx.fillStyle = row.kind === 'group' ? theme.group : theme.ink;
    const label = row.kind === 'group' ? `${collapsed.has(row.id) ? '▸' : '▾'} ${row.id.split('.').pop()}  (${row.size})` : row.id.split('.').pop();
    ctx.font = row.kind === 'group' ? '600 12px system-ui, sans-serif' : '12px system-ui, sans-serif';
    ctx.save(); ctx.beginPath(); ctx.rect(0, y, NAME_W - 8, ROW_H); ctx.clip();
    ctx.fillText(label, 8 + row.depth * 14, y + ROW_H / 2);
    ctx.restore();
    for (let j = 0; j < data.runs.length; j++) {
      const x = NAME_W + j * CELL - left;
      if (x < NAME_W - CELL || x > w) continue;
      const state = row.kind === 'group' ? (groupAgg[j].get(row.id) || 'absent') : decode(data.runs[j].states[row.index]);
      ctx.fillStyle = state === 'absent' ? theme.panel : (COLOURS[state] || COLOURS.none);
      ctx.fillRect(x + 1, y + (ROW_H - BOX) / 2, BOX, BOX);
      if (state === 'absent') { ctx.strokeStyle = theme.line; ctx.strokeRect(x + 1.5, y + (ROW_H - BOX) / 2 + 0.5, BOX - 1, BOX - 1); }
    }
  }
  // header: one bar per run, its height the run's duration relative to the longest
  ctx.fillStyle = theme.panel; ctx.fillRect(0, 0, w, HEAD_H);
  ctx.fillStyle = theme.muted; ctx.font = '600 11px system-ui, sans-serif';
  ctx.fillText('TASK', 8, HEAD_H - 12);
  const durations = data.runs.map(duration);
  const longest = Math.max(1, ...durations);
  data.runs.forEach((run, j) => {
    const x = NAME_W + j * CELL - left;
    if (x < NAME_W - CELL || x > w) return;
    const hBar = 6 + Math.round((HEAD_H - 20) * (durations[j] / longest));
    ctx.fillStyle = COLOURS[run.state === 'queued' ? 'queued' : run.state] || COLOURS.none;
    ctx.fillRect(x + 2, HEAD_H - 8 - hBar, BOX - 2, hBar);
  });
  ctx.strokeStyle = theme.line; ctx.beginPath(); ctx.moveTo(0, HEAD_H - 2.5); ctx.lineTo(w, HEAD_H - 2.5); ctx.stroke();
  if (cursor && document.activeElement === wrap) {
    const box = cursorBox();
    ctx.strokeStyle = theme.accent; ctx.lineWidth = 2;
    ctx.strokeRect(box.x, box.y, box.w, box.h);
    ctx.lineWidth = 1;
  }
}

// Where the cursor is drawn, in the grid box's coordinates.
function cursorBox() {
  const x = cursor.j < 0 ? 1 : NAME_W + cursor.j * CELL - wrap.scrollLeft;
  const w = cursor.j < 0 ? NAME_W - 6 : CELL;
  if (cursor.r < 0) return { x, y: 2, w, h: HEAD_H - 6 };
  return { x, y: HEAD_H + cursor.r * ROW_H - wrap.scrollTop, w, h: ROW_H };
}

function describe(c) {
  const run = c.j >= 0 ? data.runs[c.j] : null;
  if (c.r < 0) return run ? `run ${run.run_id}, ${run.state}, ${fmtTime(run.logical_date)}: Enter opens its graph` : 'runs';
  const row = rows[c.r];
  if (row.kind === 'group') {
    const state = run ? `, ${groupAgg[c.j].get(row.id) || 'absent'} in run ${run.run_id}` : '';
    return `group ${row.id} (${row.size} tasks, ${collapsed.has(row.id) ? 'collapsed' : 'open'})${state}: Enter ${collapsed.has(row.id) ? 'opens' : 'closes'} it`;
  }
  if (!run) return `task ${row.id}: Enter opens it in the newest run`;
  return `task ${row.id}, run ${run.run_id}, ${decode(run.states[row.index]).replaceAll('_', ' ')}: Enter opens it`;
}

// Scrolls the cursor's cell into view, shows what it is (the tooltip, and the live region
// that screen readers read) and draws the ring.
function moveTo(r, j) {
  cursor = { r: Math.max(-1, Math.min(rows.length - 1, r)), j: Math.max(-1, Math.min(data.runs.length - 1, j)) };
  const h = wrap.clientHeight, w = wrap.clientWidth;
  if (cursor.r >= 0) {
    const top = cursor.r * ROW_H;
    if (top < wrap.scrollTop) wrap.scrollTop = top;
    else if (top + ROW_H > wrap.scrollTop + h - HEAD_H) wrap.scrollTop = top + ROW_H - (h - HEAD_H);
  }
  if (cursor.j >= 0) {
    const left = cursor.j * CELL;
    if (left < wrap.scrollLeft) wrap.scrollLeft = left;
    else if (NAME_W + left + CELL > wrap.scrollLeft + w) wrap.scrollLeft = NAME_W + left + CELL - w;
  }
  draw();
  const text = describe(cursor);
  announce.textContent = text;
  const rect = wrap.getBoundingClientRect(), box = cursorBox();
  showTip(text.replace(/: Enter .*$/, ''), rect.left + box.x + box.w, rect.top + box.y);
}

// What a click on the cursor's cell does.
function activate() {
  const run = cursor.j >= 0 ? data.runs[cursor.j] : null;
  if (cursor.r < 0) { if (run) location.href = `${runPath(flowId, run.run_id)}/graph`; return; }
  const row = rows[cursor.r];
  if (row.kind === 'group') {
    if (collapsed.has(row.id)) collapsed.delete(row.id); else collapsed.add(row.id);
    rebuild(); moveTo(cursor.r, cursor.j); return;
  }
  const target = run || data.runs[data.runs.length - 1];
  if (target) location.href = taskUrl(flowId, target.run_id, row.id);
}

function duration(run) {
  if (!run.start_date) return 0;
  const end = run.end_date ? Date.parse(run.end_date) : Date.now();
  return Math.max(0, end - Date.parse(run.start_date)) / 1000;
}

function hit(event) {
  const rect = wrap.getBoundingClientRect();
  const x = event.clientX - rect.left, y = event.clientY - rect.top;
  if (!data) return null;
  const j = Math.floor((x + wrap.scrollLeft - NAME_W) / CELL);
  const run = x >= NAME_W && j >= 0 && j < data.runs.length ? data.runs[j] : null;
  if (y < HEAD_H) return run ? { kind: 'run', run } : null;
  const r = Math.floor((y - HEAD_H + wrap.scrollTop) / ROW_H);
  const row = rows[r];
  if (!row) return null;
  return { kind: x < NAME_W ? 'name' : 'cell', row, run, j };
}

wrap.addEventListener('scroll', () => requestAnimationFrame(draw));
addEventListener('resize', () => requestAnimationFrame(() => (data ? rebuild() : draw())));
onSchemeChange(() => requestAnimationFrame(draw));
wrap.addEventListener('mousemove', (event) => {
  const h = hit(event);
  if (!h) { hideTip(); wrap.style.cursor = 'default'; return; }
  wrap.style.cursor = 'pointer';
  if (h.kind === 'run') showTip(`${h.run.run_id}\n${h.run.state} · ${fmtTime(h.run.logical_date)}`, event.clientX, event.clientY);
  else if (h.kind === 'cell' && h.run) {
    const state = h.row.kind === 'group' ? groupAgg[h.j].get(h.row.id) : decode(h.run.states[h.row.index]);
    showTip(`${h.row.id}\n${h.run.run_id}\n${state}`, event.clientX, event.clientY);
  } else showTip(h.row.id, event.clientX, event.clientY);
});
wrap.addEventListener('mouseleave', hideTip);
wrap.addEventListener('click', (event) => {
  const h = hit(event);
  if (!h) return;
  if (h.kind === 'run') { location.href = `${runPath(flowId, h.run.run_id)}/graph`; return; }
  if (h.row.kind === 'group') {
    if (collapsed.has(h.row.id)) collapsed.delete(h.row.id); else collapsed.add(h.row.id);
    rebuild(); return;
  }
  const run = h.run || data.runs[data.runs.length - 1];
  if (run) location.href = taskUrl(flowId, run.run_id, h.row.id);
});
wrap.addEventListener('focus', () => { if (data) moveTo(cursor ? cursor.r : 0, cursor ? cursor.j : data.runs.length - 1); });
wrap.addEventListener('blur', () => { hideTip(); draw(); });
wrap.addEventListener('keydown', (event) => {
  if (!data || !cursor || event.altKey || event.metaKey) return;
  const page = Math.max(1, Math.floor((wrap.clientHeight - HEAD_H) / ROW_H) - 1);
  const moves = {
    ArrowDown: [1, 0], ArrowUp: [-1, 0], ArrowRight: [0, 1], ArrowLeft: [0, -1], PageDown: [page, 0], PageUp: [-page, 0],
  };
  if (moves[event.key]) moveTo(cursor.r + moves[event.key][0], cursor.j + moves[event.key][1]);
  else if (event.key === 'Home') moveTo(event.ctrlKey ? 0 : cursor.r, event.ctrlKey ? cursor.j : 0);
  else if (event.key === 'End') moveTo(event.ctrlKey ? rows.length - 1 : cursor.r, event.ctrlKey ? cursor.j : data.runs.length - 1);
  else if (event.key === 'Enter' || event.key === ' ') activate();
  else return;
  event.preventDefault();
});
document.getElementById('grid-limit').addEventListener('change', (event) => {
  // In the address too (replaced, not a new history entry): a bookmark or a reload keeps it.
  const url = new URL(location.href);
  url.searchParams.set('runs', event.target.value);
  history.replaceState(null, '', url);
  toNewest = true; load();
});
document.getElementById('expand-all').addEventListener('click', () => { collapsed.clear(); rebuild(); });
document.getElementById('collapse-all').addEventListener('click', () => {
  for (const path of paths) for (const g of path) collapsed.add(g);
  rebuild();
});

load().catch((e) => { statusLine.textContent = e.message; });
