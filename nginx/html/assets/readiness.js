// Is the telemetry warm yet? The first two things `./lab status` says (labkit/readiness.py),
// read through the gateway from the same backends: has a trace of the lab been stored (the
// trace store's /api/services), and has every scrape target been scraped and found up
// (Prometheus's /api/v1/targets)? How far each rate window has filled is `./lab status`'s to
// say: it reads the windows from the alert rules. Right after a start an empty panel or search
// is the telemetry warming up, not a fault; this line says which.
import RULES from './lab-rules.js';

const POLL_MS = 10000;

/** The traces row: ready once the store holds a span of one of the lab's services. */
export function tracesSignal(services) {
  const prefix = RULES.service_prefix;
  const lab = (Array.isArray(services) ? services : []).filter((s) => s.startsWith(prefix));
  if (!lab.length) {
    return { ready: false, detail: 'no trace stored yet: the first comes with the first request' };
  }
  const names = lab.sort().map((s) => s.slice(prefix.length)).join(', ');
  return { ready: true, detail: `traces stored, from ${names}` };
}

/** The targets row: ready when every active target has been scraped, and each is up. */
export function targetsSignal(targets) {
  const active = Array.isArray(targets) ? targets : [];
  const jobs = (health) => active.filter((t) => t.health === health)
    .map((t) => (t.labels && t.labels.job) || '?').sort().join(', ');
  if (!active.length) return { ready: false, detail: 'Prometheus has no scrape target yet' };
  if (jobs('down')) return { ready: false, detail: `scrape targets down: ${jobs('down')}` };
  if (jobs('unknown')) return { ready: false, detail: `not scraped yet: ${jobs('unknown')}` };
  return { ready: true, detail: `all ${active.length} scrape targets up` };
}

async function readJson(fetcher, path) {
  try {
    const response = await fetcher(path, { headers: { Accept: 'application/json' } });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

/** Keep `element` saying how warm the telemetry is, until it is ready. */
export async function watchReadiness(fetcher, element) {
  for (;;) {
    const [services, targets] = await Promise.all([
      readJson(fetcher, '/api/services'), readJson(fetcher, '/api/v1/targets')]);
    const rows = [
      services ? tracesSignal(services.data) : { ready: false, detail: 'the trace store does not answer' },
      targets ? targetsSignal(targets.data && targets.data.activeTargets)
        : { ready: false, detail: 'Prometheus does not answer' },
    ];
    const ready = rows.every((row) => row.ready);
    element.dataset.ready = String(ready);
    element.textContent = ready
      ? `Telemetry ready: ${rows.map((r) => r.detail).join('; ')}. How far the rate windows `
        + 'have filled: ./lab status.'
      : `Telemetry warming up (an empty panel now is not a fault): ${
        rows.filter((r) => !r.ready).map((r) => r.detail).join('; ')}.`;
    if (ready) return;
    await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
  }
}
