// The lineage of assets across flows: flows (blue) point at the assets their tasks write
// (green); assets point at the flows they start (solid) or that read them (dashed). Laid out
// with dagre in the layout worker, drawn as SVG; every node links to its page.
import { api } from './api.js';
import { markDrawn } from './common.js';

const svg = document.getElementById('lineage-svg');
const statusBox = document.getElementById('lineage-status');
const NS = 'http://www.w3.org/2000/svg';

function measure(n) { return { id: n.id, width: Math.max(80, Math.min(360, 18 + n.label.length * 7.2)), height: 28 }; }

function layout(nodes, edges) {
  const worker = new Worker('/static/js/layout-worker.js');
  return new Promise((resolve, reject) => {
    worker.onmessage = (event) => { worker.terminate(); resolve(event.data); };
    worker.onerror = (event) => reject(new Error(event.message || 'layout failed'));
    worker.postMessage({ nodes: nodes.map(measure), edges: edges.map((e) => [e.source, e.target]) });
  });
}

function link(node) {
  return node.kind === 'flow' ? `/flows/${encodeURIComponent(node.label)}/grid` : `/assets/detail?uri=${encodeURIComponent(node.label)}`;
}

async function draw() {
  const data = await api('/assets/lineage');
  if (!data.nodes.length) { statusBox.textContent = 'no flow writes, reads or is scheduled on an asset yet'; markDrawn('assets'); return; }
  const placed = await layout(data.nodes, data.edges);
  const kinds = new Map(data.edges.map((e) => [`${e.source}\u0000${e.target}`, e.kind]));
  svg.replaceChildren();
  const defs = document.createElementNS(NS, 'defs');
  defs.innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#9ca3af"/></marker>';
  svg.append(defs);
  const root = document.createElementNS(NS, 'g');
  root.setAttribute('transform', 'translate(10,10)');
  for (const e of placed.edges) {
    const path = document.createElementNS(NS, 'path');
    const kind = kinds.get(`${e.v}\u0000${e.w}`) || 'writes';
    path.setAttribute('class', `edge lineage-${kind}`);
    path.setAttribute('marker-end', 'url(#arrow)');
    if (kind === 'reads') path.setAttribute('stroke-dasharray', '5 4');
    path.setAttribute('d', e.points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(''));
    root.append(path);
  }
  for (const n of data.nodes) {
    const box = placed.nodes[n.id];
    const a = document.createElementNS(NS, 'a');
    a.setAttribute('href', link(n));
    const g = document.createElementNS(NS, 'g');
    g.setAttribute('class', `node lineage-node ${n.kind}`);
    g.dataset.id = n.id;
    g.setAttribute('transform', `translate(${(box.x - box.width / 2).toFixed(1)},${(box.y - box.height / 2).toFixed(1)})`);
    const rect = document.createElementNS(NS, 'rect');
    rect.setAttribute('width', box.width); rect.setAttribute('height', box.height);
    rect.setAttribute('rx', n.kind === 'asset' ? 14 : 3);
    rect.setAttribute('fill', n.kind === 'asset' ? '#15803d' : '#1d4ed8');
    const text = document.createElementNS(NS, 'text');
    text.setAttribute('x', 9); text.setAttribute('y', box.height / 2 + 4); text.setAttribute('fill', '#ffffff');
    text.textContent = n.label;
    g.append(rect, text); a.append(g); root.append(a);
  }
  svg.append(root);
  svg.setAttribute('viewBox', `0 0 ${placed.width + 20} ${placed.height + 20}`);
  svg.style.height = `${Math.min(600, placed.height + 40)}px`;
  statusBox.style.display = 'none';
  markDrawn('assets');
}

draw().catch((e) => { statusBox.textContent = `could not draw the lineage: ${e.message}`; });
