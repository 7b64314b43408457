// Your API tokens: create one (its secret is shown once), revoke one.
import { api } from './api.js';
import { el, fmtTime } from './common.js';

async function list() {
  const tokens = await api('/tokens');
  document.querySelector('#tokens tbody').replaceChildren(...tokens.map((t) => el('tr', {},
    el('td', { text: t.name }), el('td', { class: 'mono', text: `${t.prefix}…` }), el('td', { text: fmtTime(t.created_at) }),
    el('td', { text: fmtTime(t.last_used_at) }), el('td', { text: t.expires_at ? fmtTime(t.expires_at) : 'never' }),
    el('td', {}, el('button', { class: 'danger', text: 'Revoke', onclick: async () => { if (confirm(`Revoke ${t.name}?`)) { await api(`/tokens/${t.id}`, { method: 'DELETE' }); list(); } } })))));
  if (!tokens.length) document.querySelector('#tokens tbody').replaceChildren(el('tr', {}, el('td', { colspan: 6, class: 'muted', text: 'No tokens yet.' })));
}

document.getElementById('token-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  document.getElementById('new-token').replaceChildren();  // a refused token leaves no earlier secret shown as if new
  const form = new FormData(event.target);
  const days = form.get('days');
  try {
    const made = await api('/tokens', { method: 'POST', body: { name: form.get('name'), expires_in_days: days ? Number(days) : null } });
    document.getElementById('new-token').replaceChildren(el('div', { class: 'ok' }, 'Your new token (copy it now; it is not shown again): ', el('code', { id: 'token-secret', text: made.token })));
    event.target.reset();
    list();
  } catch (e) { alert(e.message); }
});
list();
