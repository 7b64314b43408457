// Task groups as a tree, shared by the grid and the graph: which groups a task is in, which
// rows are visible when some groups are collapsed, and a group's summary state.
import { URGENCY } from './common.js';

const RANK = Object.fromEntries(URGENCY.map((s, i) => [s, i]));

export function groupPath(group, parents) {
  const path = [];
  for (let g = group, guard = 0; g && guard < 64; g = parents[g], guard++) path.unshift(g);
  return path;
}

export function moreUrgent(a, b) { return (RANK[a] ?? 99) <= (RANK[b] ?? 99) ? a : b; }

// paths[i]: the groups task i is in, outermost first.
export function taskPaths(groups, parents) {
  const memo = new Map();
  return groups.map((g) => {
    if (!g) return [];
    if (!memo.has(g)) memo.set(g, groupPath(g, parents));
    return memo.get(g);
  });
}

const INSTANCE = /^(.+)\[\d+\]$/;

// Rows to show: {kind: 'group'|'task', id, depth, index (tasks), size (groups)}. A mapped task's
// instance (t[3], listed right after t by the server) is one level deeper than its task.
export function visibleRows(taskIds, paths, collapsed) {
  const rows = [];
  const emitted = new Set();
  const known = new Set(taskIds);
  const sizes = new Map();
  for (const path of paths) for (const g of path) sizes.set(g, (sizes.get(g) || 0) + 1);
  taskIds.forEach((id, i) => {
    const path = paths[i];
    let hidden = false;
    for (let d = 0; d < path.length; d++) {
      const g = path[d];
      if (!emitted.has(g)) { emitted.add(g); rows.push({ kind: 'group', id: g, depth: d, size: sizes.get(g) }); }
      if (collapsed.has(g)) { hidden = true; break; }
    }
    const base = id.endsWith(']') ? INSTANCE.exec(id) : null;
    const instance = base !== null && known.has(base[1]);
    if (!hidden) rows.push({ kind: 'task', id, depth: path.length + (instance ? 1 : 0), index: i });
  });
  return rows;
}

// For each group, the most urgent state of its tasks, given state(i) for task i.
export function groupStates(paths, state) {
  const out = new Map();
  paths.forEach((path, i) => {
    if (!path.length) return;
    const s = state(i);
    for (const g of path) out.set(g, out.has(g) ? moreUrgent(out.get(g), s) : s);
  });
  return out;
}
