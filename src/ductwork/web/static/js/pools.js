// The pools page (admins): set a pool's slots, delete a pool.
import { api, enc } from './api.js';

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
