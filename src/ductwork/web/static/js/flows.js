// The flows page: filter rows as you type, pause and unpause with a switch.
import { api, enc } from './api.js';

const search = document.getElementById('flow-search');
const rows = [...document.querySelectorAll('#flows-table tbody tr[data-flow-id]')];
search?.addEventListener('input', () => {
  const needle = search.value.trim().toLowerCase();
  for (const row of rows) row.style.display = !needle || row.dataset.search.includes(needle) ? '' : 'none';
});
for (const toggle of document.querySelectorAll('.pause-toggle')) {
  toggle.addEventListener('change', async () => {
    toggle.disabled = true;
    try {
      const flow = await api(`/flows/${enc(toggle.dataset.flowId)}`, { method: 'PATCH', body: { is_paused: !toggle.checked } });
      toggle.checked = !flow.is_paused;
      toggle.parentElement.title = flow.is_paused ? 'Paused: click to unpause' : 'Active: click to pause';
    } catch (e) {
      toggle.checked = !toggle.checked;
      alert(e.message);
    } finally { toggle.disabled = false; }
  });
}
document.body.dataset.drawn = 'flows';
