// A trace as a waterfall, and a journey's log lines beneath it: what the order page draws.
// The data model (buildTrace, slowestExemplar) is plain functions with no DOM, so that
// tests/unit/test_trace_view.py runs them in Node on a real Jaeger answer; the views below
// them take a document. The tree follows the rules of labkit/jaeger.py (Jaeger's UI's):
// a parent is the CHILD_OF reference of the same trace, a duplicate span id keeps every span,
// a parent not (yet) in the trace makes a root, a reference cycle is cut. What a span's
// component is, when it is in error and the service-name prefix come from lab-rules.js, the
// one copy the lab's Python reads too (labkit/rules.py).

import RULES from './lab-rules.js';

const { service_prefix: SERVICE_PREFIX, trace_tree: TREE, span_error: SPAN_ERROR } = RULES;

/** A typed Jaeger tag's value: int64 may come as a string (too large for JavaScript). */
function tagValue(tag) {
  if (tag.type === 'int64' && typeof tag.value === 'string' && /^-?\d+$/.test(tag.value)) {
    const n = Number(tag.value);
    return Number.isSafeInteger(n) ? n : tag.value;
  }
  return tag.value;
}

function sameTrace(a, b) {
  const digits = TREE.trace_id_hex_digits;
  return String(a).toLowerCase().padStart(digits, '0')
    === String(b).toLowerCase().padStart(digits, '0');
}

export function shortService(service) {
  return service.startsWith(SERVICE_PREFIX) ? service.slice(SERVICE_PREFIX.length) : service;
}

/** Which part of the system a span stands for: database, queue, or its service. */
export function componentOf(tags, service) {
  const rule = RULES.span_component.find((r) => (r.tag !== undefined && r.tag in tags)
    || (r.kinds || []).includes(tags['span.kind']));
  return rule ? rule.component : shortService(service);
}

function isError(tags) {
  return Object.entries(SPAN_ERROR.tags).some(([key, values]) => values.includes(tags[key]));
}

function errorMessage(tags) {
  const key = SPAN_ERROR.message_tags.find((k) => tags[k]);
  return key ? String(tags[key]) : '';
}

/**
 * One trace object of Jaeger's JSON model as rows to draw, depth first, siblings by start:
 * {traceId, startUs, durationUs, services, errorCount, rows: [{key, spanId, parentKey, depth,
 * childCount, operation, service, component, offsetUs, durationUs, error, errorMessage,
 * attributes: [[key, value]], missingParent, warnings}]}.
 */
export function buildTrace(trace) {
  const traceId = String(trace?.traceID || '');
  const processes = trace?.processes || {};
  const spans = [];
  const first = new Map();
  const seen = new Map();
  for (const raw of trace?.spans || []) {
    const spanId = String(raw.spanID || '');
    const n = (seen.get(spanId) || 0) + 1;
    seen.set(spanId, n);
    const tags = {};
    for (const tag of raw.tags || []) if (tag && 'key' in tag) tags[tag.key] = tagValue(tag);
    const service = String((processes[raw.processID] || raw.process || {}).serviceName || 'unknown');
    const span = {
      key: n === 1 ? spanId : `${spanId}#${n}`, spanId, tags, service,
      operation: String(raw.operationName || ''),
      startUs: Number(raw.startTime) || 0, durationUs: Number(raw.duration) || 0,
      references: raw.references || [], warnings: [...(raw.warnings || [])],
      parent: null, children: [], missingParent: null,
    };
    if (n > 1) span.warnings.push(`duplicate span id ${spanId} (occurrence ${n})`);
    if (!first.has(spanId)) first.set(spanId, span);
    spans.push(span);
  }
  for (const span of spans) {
    const ref = span.references.find((r) => r.refType === TREE.parent_reference
      && sameTrace(r.traceID, traceId));
    if (!ref) continue;
    const parent = first.get(String(ref.spanID));
    if (!parent) span.missingParent = String(ref.spanID);
    else if (parent === span) span.warnings.push('references itself as its parent');
    else span.parent = parent;
  }
  for (const span of spans) {
    const ancestors = new Set([span]);
    for (let node = span.parent; node; node = node.parent) {
      if (ancestors.has(node)) {
        span.parent = null;
        span.warnings.push('reference cycle cut here');
        break;
      }
      ancestors.add(node);
    }
  }
  for (const span of spans) span.parent?.children.push(span);
  const byStart = (a, b) => a.startUs - b.startUs;
  const startUs = spans.length ? Math.min(...spans.map((s) => s.startUs)) : 0;
  const endUs = spans.length ? Math.max(...spans.map((s) => s.startUs + s.durationUs)) : 0;
  const rows = [];
  const visit = (span, depth) => {
    span.children.sort(byStart);
    rows.push({
      key: span.key, spanId: span.spanId, parentKey: span.parent?.key ?? null, depth,
      childCount: span.children.length, operation: span.operation, service: span.service,
      component: componentOf(span.tags, span.service),
      offsetUs: span.startUs - startUs, durationUs: span.durationUs,
      error: isError(span.tags),
      errorMessage: errorMessage(span.tags),
      attributes: Object.entries(span.tags).sort(([a], [b]) => a.localeCompare(b)),
      missingParent: span.missingParent, warnings: span.warnings,
    });
    for (const child of span.children) visit(child, depth + 1);
  };
  for (const root of spans.filter((s) => !s.parent).sort(byStart)) visit(root, 0);
  return {
    traceId, startUs, durationUs: endUs - startUs, rows,
    services: [...new Set(spans.map((s) => shortService(s.service)))].sort(),
    errorCount: rows.filter((r) => r.error).length,
  };
}

/**
 * The slowest exemplar of a Prometheus query_exemplars answer that names a trace, as
 * {traceId, seconds, at} or null: the choice exercises 08 and 10 make
 * (labkit/prometheus.py, slowest_exemplar).
 */
export function slowestExemplar(answer) {
  let best = null;
  for (const series of answer?.data || []) {
    for (const e of series.exemplars || []) {
      const seconds = Number(e.value);
      const traceId = e.labels?.trace_id;
      if (traceId && Number.isFinite(seconds) && (!best || seconds > best.seconds)) {
        best = { traceId, seconds, at: Number(e.timestamp) };
      }
    }
  }
  return best;
}

export function formatUs(us) {
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)} s`;
  if (us >= 100 || us === 0) return `${(us / 1000).toFixed(1)} ms`;
  return `${us} µs`;
}

// --- views ------------------------------------------------------------------------------------

/** Build an element; text is always set as text, never parsed as HTML (app.js uses it too). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'className') node.className = value;
    // Through the CSSOM: a style attribute would be inline style, which the page's policy
    // (Content-Security-Policy: style-src 'self') blocks.
    else if (name === 'style') node.style.cssText = value;
    else node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function text(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * The waterfall of one trace, redrawn as its spans arrive. Keeps what the learner did between
 * redraws: collapsed spans, the span whose attributes are open, the highlighted span.
 */
export class Waterfall {
  constructor() {
    this.model = null;
    this.collapsed = new Set();
    this.selected = null;
    this.highlighted = null;
    this.node = el('div', { className: 'waterfall' });
  }

  update(model) {
    this.model = model;
    this.draw();
  }

  /** Highlight a span (a log line's), opening its ancestors; false when it is not drawn. */
  highlight(spanId) {
    const row = this.model?.rows.find((r) => r.spanId === spanId);
    if (!row) return false;
    for (let key = row.parentKey; key; key = this.model.rows.find((r) => r.key === key)?.parentKey) {
      this.collapsed.delete(key);
    }
    this.highlighted = row.key;
    this.draw();
    this.node.querySelector(`tr[data-key="${row.key}"]`)?.scrollIntoView({ block: 'center' });
    return true;
  }

  hidden(row, byKey) {
    for (let key = row.parentKey; key; key = byKey.get(key)?.parentKey) {
      if (this.collapsed.has(key)) return true;
    }
    return false;
  }

  draw() {
    const model = this.model;
    if (!model || !model.rows.length) return;
    const byKey = new Map(model.rows.map((r) => [r.key, r]));
    const total = Math.max(model.durationUs, 1);
    const body = el('tbody');
    for (const row of model.rows) {
      if (this.hidden(row, byKey)) continue;
      const open = !this.collapsed.has(row.key);
      const classes = ['span-row', row.error && 'error', this.highlighted === row.key && 'highlighted',
        this.selected === row.key && 'selected'].filter(Boolean).join(' ');
      const left = (row.offsetUs / total) * 100;
      const width = Math.max((row.durationUs / total) * 100, 0.3);
      body.append(el('tr', {
        className: classes, 'data-key': row.key, 'data-span-id': row.spanId,
        'data-operation': row.operation, 'data-service': shortService(row.service),
        'aria-selected': String(this.selected === row.key),
      },
      el('td', { className: 'op', style: `padding-left: ${0.4 + row.depth * 0.9}rem` },
        row.childCount ? el('button', {
          type: 'button', className: 'toggle', 'aria-expanded': String(open),
          'aria-label': `${open ? 'Collapse' : 'Expand'} ${row.operation}`,
          onclick: () => { this.toggle(row.key); },
        }, open ? '▾' : '▸') : el('span', { className: 'toggle-space' }),
        el('button', { type: 'button', className: 'span-name', onclick: () => this.select(row.key) },
          row.operation),
        row.error ? el('span', { className: 'error-badge' }, 'error') : null,
        row.missingParent ? el('span', { className: 'note' }, ' (parent not arrived)') : null),
      el('td', {}, shortService(row.service)),
      el('td', {}, row.component),
      el('td', { className: 'num' }, `+${formatUs(row.offsetUs)}`),
      el('td', { className: 'num' }, formatUs(row.durationUs)),
      el('td', { className: 'timeline', 'aria-hidden': 'true' },
        el('span', { className: 'bar', style: `left: ${left}%; width: ${width}%` }))));
      if (this.selected === row.key) body.append(this.attributesRow(row));
    }
    this.node.replaceChildren(el('table', {},
      el('caption', {}, `Trace ${model.traceId}: ${model.rows.length} spans from `
        + `${model.services.join(', ')}, ${formatUs(model.durationUs)}`
        + (model.errorCount ? `, ${model.errorCount} in error` : '')),
      el('thead', {}, el('tr', {}, ['operation', 'service', 'component', 'start', 'duration',
        'timeline'].map((h) => el('th', { scope: 'col' }, h)))),
      body));
  }

  attributesRow(row) {
    return el('tr', { className: 'attributes-row' }, el('td', { colspan: '6' },
      el('dl', { className: 'attributes', 'aria-label': `Attributes of ${row.operation}` },
        el('dt', {}, 'span id'), el('dd', {}, el('code', {}, row.spanId)),
        row.errorMessage ? [el('dt', {}, 'error'), el('dd', {}, row.errorMessage)] : null,
        row.attributes.flatMap(([key, value]) => [el('dt', {}, key), el('dd', {}, text(value))]),
        row.warnings.flatMap((w) => [el('dt', {}, 'warning'), el('dd', {}, w)]))));
  }

  toggle(key) {
    if (this.collapsed.has(key)) this.collapsed.delete(key);
    else this.collapsed.add(key);
    this.draw();
  }

  select(key) {
    this.selected = this.selected === key ? null : key;
    this.draw();
  }
}

/** The journey's log lines, merged in time order by the API; a click highlights the span. */
export function logList(lines, onPick) {
  return el('ol', { className: 'journey-logs' }, lines.map((line) => {
    const shown = Object.entries(line).filter(([k]) => !['at', 'source', 'service', 'timestamp',
      'time', 'msec', 'level', 'event', 'correlation_id', 'trace_id', 'span_id'].includes(k));
    const body = [
      el('span', { className: 'log-time' }, new Date(line.at).toISOString().slice(11, 23)),
      el('span', { className: `log-source source-${line.source}` }, line.source),
      el('span', { className: `log-level level-${line.level || 'info'}` }, line.level || ''),
      el('span', { className: 'log-event' }, line.event || ''),
      el('span', { className: 'log-fields' }, shown.map(([k, v]) => `${k}=${text(v)}`).join(' ')),
      line.span_id ? el('code', { className: 'log-span' }, `span ${line.span_id}`) : null,
    ];
    return el('li', { className: 'log-line', 'data-source': line.source,
      'data-span-id': line.span_id || null },
    line.span_id
      ? el('button', { type: 'button', className: 'log-pick', onclick: () => onPick(line.span_id),
        title: 'Highlight its span in the waterfall' }, body)
      : el('div', { className: 'log-pick' }, body));
  }));
}
