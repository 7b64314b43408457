// The pipelines page: open a pipeline to see its objects' instances; activate and deactivate.
import { api, enc } from './api.js';

for (const button of document.querySelectorAll('.expand')) {
  button.addEventListener('click', () => {
    const row = document.getElementById(button.getAttribute('aria-controls'));
    const open = button.getAttribute('aria-expanded') !== 'true';
    row.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    button.textContent = open ? '▼' : '▶';
  });
}
// A schedule that started more than a day ago is refused unless the person asks for the backfill
// (a run for every period since): a second confirmation asks, naming the start.
async function change(name, action) {
  const path = `/pipelines/${enc(name)}/${action}`;
  try {
    await api(path, { method: 'POST', body: {} });
  } catch (e) {
    if (e.code !== 'backfill_refused') throw e;
    const start = e.data.start;
    if (!confirm(`${name}: its schedule started at ${start}, more than a day ago.\n\nActivate and backfill from ${start}? ` +
      'A run is created for every period since.')) return false;
    await api(path, { method: 'POST', body: { allow_backfill: true } });
  }
  return true;
}

for (const [selector, action] of [['.pipeline-activate', 'activate'], ['.pipeline-deactivate', 'deactivate']]) {
  for (const button of document.querySelectorAll(selector)) {
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        if (await change(button.dataset.pipeline, action)) location.reload();
        else button.disabled = false;
      } catch (e) { alert(e.message); button.disabled = false; }
    });
  }
}
document.body.dataset.drawn = 'pipelines';
