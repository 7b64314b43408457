// The flows page: filter rows as you type, pause and unpause with a switch.
import { api, enc } from './api.js';
import { el } from './common.js';

const search = document.getElementById('flow-search');
const rows = [...document.querySelectorAll('#flows-table tbody tr[data-flow-id]')];
search?.addEventListener('input', () => {
  const needle = search.value.trim().toLowerCase();
  for (const row of rows) row.style.display = !needle || row.dataset.search.includes(needle) ? '' : 'none';
});
// The Next run cell after a pause or unpause: it kept the time of a run a paused flow will not
// start (and a flow unpaused showed none) until the page was loaded again.
function nextRun(row, flow) {
  const cell = row && row.querySelector('.next-run');
  if (!cell) return;
  if (flow.is_paused) {
    if (cell.dataset.shown === undefined) cell.dataset.shown = cell.innerHTML;
    cell.textContent = '—';
  } else if (cell.dataset.shown) {
    cell.innerHTML = cell.dataset.shown;
    delete cell.dataset.shown;
  } else if (flow.next_run_after) {
    const at = (iso) => iso.replace('T', ' ').slice(0, 16);
    cell.replaceChildren(el('span', { title: `starts after ${at(flow.next_run_after)} UTC`, text: at(flow.next_run_after) }));
    if (flow.next_logical_date) cell.append(el('div', { class: 'muted', text: `logical date ${at(flow.next_logical_date)}` }));
  }
}

for (const toggle of document.querySelectorAll('.pause-toggle')) {
  toggle.addEventListener('change', async () => {
    toggle.disabled = true;
    try {
      const flow = await api(`/flows/${enc(toggle.dataset.flowId)}`, { method: 'PATCH', body: { is_paused: !toggle.checked } });
      toggle.checked = !flow.is_paused;
      toggle.parentElement.title = flow.is_paused ? 'Paused: click to unpause' : 'Active: click to pause';
      nextRun(toggle.closest('tr'), flow);
    } catch (e) {
      toggle.checked = !toggle.checked;
      alert(e.message);
    } finally { toggle.disabled = false; }
  });
}
document.body.dataset.drawn = 'flows';
