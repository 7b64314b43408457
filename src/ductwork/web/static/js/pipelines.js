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
for (const [selector, action] of [['.pipeline-activate', 'activate'], ['.pipeline-deactivate', 'deactivate']]) {
  for (const button of document.querySelectorAll(selector)) {
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await api(`/pipelines/${enc(button.dataset.pipeline)}/${action}`, { method: 'POST', body: {} });
        location.reload();
      } catch (e) { alert(e.message); button.disabled = false; }
    });
  }
}
document.body.dataset.drawn = 'pipelines';
