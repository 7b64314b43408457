// Lays a graph out with dagre, off the page's main thread, so a large graph never freezes
// the page while it is laid out.
/* global dagre */
importScripts('/static/vendor/dagre-1.1.4.min.js');

onmessage = (event) => {
  const { nodes, edges, ranker } = event.data;
  const started = performance.now();
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: 'LR', nodesep: 10, ranksep: 46, edgesep: 6, marginx: 16, marginy: 16, ranker: ranker || 'tight-tree' });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.id, { width: n.width, height: n.height });
  for (const [v, w] of edges) g.setEdge(v, w);
  dagre.layout(g);
  const placed = {};
  for (const id of g.nodes()) { const n = g.node(id); placed[id] = { x: n.x, y: n.y, width: n.width, height: n.height }; }
  const routed = g.edges().map((e) => ({ v: e.v, w: e.w, points: g.edge(e).points }));
  const size = g.graph();
  postMessage({ nodes: placed, edges: routed, width: size.width, height: size.height, ms: performance.now() - started });
};
