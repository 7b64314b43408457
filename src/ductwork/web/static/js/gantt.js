// The tries of a run on a time axis: one bar per try, coloured by how it ended.
import { api, runPath } from './api.js';
import { body, COLOURS, fmtDuration, fmtTime, hideTip, markDrawn, pollMs, runActions, setRunState, showTip, taskUrl } from './common.js';

const flowId = body.flowId, runId = body.runId;
const box = document.getElementById('gantt');
const statusLine = document.getElementById('gantt-status');
const NS = 'http://www.w3.org/2000/svg';
const ROW_H = 20, LABEL_W = 300, MAX_ROWS = 5000;
let timer = null;

function svgEl(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function load() {
  const [data, run] = await Promise.all([api(`${runPath(flowId, runId)}/gantt`), api(`${runPath(flowId, runId)}/states`)]);
  setRunState(run.state, run.reason);
  draw(data);
  clearTimeout(timer);
  if (run.state === 'queued' || run.state === 'running') timer = setTimeout(load, Math.max(2000, pollMs));
}

function draw(data) {
  const bars = data.bars.slice(0, MAX_ROWS);
  if (!bars.length) { box.replaceChildren(); statusLine.textContent = 'no task has started yet'; markDrawn('gantt'); return; }
  const now = Date.now();
  const start = Math.min(...bars.map((b) => Date.parse(b.start)));
  const end = Math.max(...bars.map((b) => (b.end ? Date.parse(b.end) : now)));
  const span = Math.max(1, end - start);
  const width = Math.max(600, box.clientWidth - 20);
  const plot = width - LABEL_W - 20;
  const height = 30 + bars.length * ROW_H;
  const svg = svgEl('svg', { width, height, id: 'gantt-svg' });
  for (let t = 0; t <= 5; t++) {
    const x = LABEL_W + (plot * t) / 5;
    svg.append(svgEl('line', { x1: x, x2: x, y1: 20, y2: height, stroke: '#eef0f3' }));
    // The last tick ends at the right edge (it started there and was cut: "+2.").
    const label = t === 5
      ? svgEl('text', { x: x - 2, y: 14, 'font-size': 11, fill: '#6b7280', class: 'axis', 'text-anchor': 'end' })
      : svgEl('text', { x: x + 2, y: 14, 'font-size': 11, fill: '#6b7280', class: 'axis' });
    label.textContent = `+${fmtDuration((span * t) / 5000)}`;
    svg.append(label);
  }
  bars.forEach((b, i) => {
    const y = 24 + i * ROW_H;
    const s = Date.parse(b.start), e = b.end ? Date.parse(b.end) : now;
    const x = LABEL_W + ((s - start) / span) * plot;
    const w = Math.max(2, ((e - s) / span) * plot);
    const name = svgEl('text', { x: 8, y: y + 12, 'font-size': 12, fill: '#111827', class: 'name', 'data-task': b.task_id });
    const suffix = b.try_number > 1 ? ` (try ${b.try_number})` : '';
    name.textContent = b.task_id + suffix;
    const full = svgEl('title', {});
    full.textContent = b.task_id + suffix;
    name.append(full);
    name.style.cursor = 'pointer';
    name.addEventListener('click', () => { location.href = taskUrl(flowId, runId, b.task_id); });
    const rect = svgEl('rect', { x, y: y + 2, width: w, height: ROW_H - 6, rx: 3, fill: COLOURS[b.state] || COLOURS.none, class: 'bar', 'data-task': b.task_id, 'data-state': b.state });
    rect.style.cursor = 'pointer';
    rect.addEventListener('mousemove', (ev) => showTip(`${b.task_id} · try ${b.try_number}\n${b.state}\n${fmtTime(b.start)} → ${b.end ? fmtTime(b.end) : 'running'}\n${fmtDuration((e - s) / 1000)}`, ev.clientX, ev.clientY));
    rect.addEventListener('mouseleave', hideTip);
    rect.addEventListener('click', () => { location.href = taskUrl(flowId, runId, b.task_id); });
    svg.append(name, rect);
  });
  box.replaceChildren(svg);
  fitNames(svg, bars);
  statusLine.textContent = `${data.bars.length} tries over ${fmtDuration(span / 1000)}` + (data.bars.length > MAX_ROWS ? ` (first ${MAX_ROWS} shown)` : '');
  markDrawn('gantt');
}

// A task id longer than the label column ran on under the bars, its end (and "(try 2)") hidden:
// it is shortened with an ellipsis in the middle of the id, the try kept, the whole id in the
// tooltip. Measured once the chart is in the page (text has no length before).
function fitNames(svg, bars) {
  const room = LABEL_W - 16;
  svg.querySelectorAll('text.name').forEach((node, i) => {
    if (node.getComputedTextLength() <= room) return;
    const b = bars[i], id = b.task_id, suffix = b.try_number > 1 ? ` (try ${b.try_number})` : '';
    const shown = (n) => `${id.slice(0, Math.ceil(n / 2))}…${id.slice(id.length - Math.floor(n / 2))}${suffix}`;
    let lo = 0, hi = id.length - 1;
    while (lo < hi) {  // the most characters of the id that fit
      const mid = Math.ceil((lo + hi) / 2);
      node.firstChild.textContent = shown(mid);
      if (node.getComputedTextLength() <= room) lo = mid; else hi = mid - 1;
    }
    node.firstChild.textContent = shown(lo);
  });
}

runActions(flowId, runId, load);
load().catch((e) => { statusLine.textContent = e.message; });
