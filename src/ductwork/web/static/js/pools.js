// The pools page (admins): set a pool's slots, delete a pool.
import { api, enc } from './api.js';

// The form saves what it shows: naming an existing pool fills in its slots and description, so
// changing its slots does not wipe its description (an empty box would have been saved as such).
const rows = new Map([...document.querySelectorAll('#pools-table tr[data-pool]')].map((r) => [r.dataset.pool, r]));
const nameBox = document.getElementById('pool-name');
function fillFrom(name) {
  const row = rows.get(name);
  if (!row) return;
  document.getElementById('pool-slots').value = row.dataset.slots;
  document.getElementById('pool-description').value = row.dataset.description;
}
nameBox?.addEventListener('change', () => fillFrom(nameBox.value.trim()));
for (const button of document.querySelectorAll('.pool-edit')) {
  button.addEventListener('click', () => {
    nameBox.value = button.dataset.pool;
    fillFrom(button.dataset.pool);
    document.getElementById('pool-slots').focus();
  });
}

document.getElementById('pool-form')?.addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const name = String(form.get('name') || '').trim();
  if (!name) { alert('A pool needs a name.'); return; }
  try {
    await api(`/pools/${enc(name)}`, { method: 'PUT', body: { slots: Number(form.get('slots')), description: form.get('description') || '' } });
    location.reload();
  } catch (e) { alert(e.message); }
});
for (const button of document.querySelectorAll('.pool-delete')) {
  button.addEventListener('click', async () => {
    if (!confirm(`Delete pool ${button.dataset.pool}?`)) return;
    try { await api(`/pools/${enc(button.dataset.pool)}`, { method: 'DELETE' }); location.reload(); } catch (e) { alert(e.message); }
  });
}
document.body.dataset.drawn = 'pools';
