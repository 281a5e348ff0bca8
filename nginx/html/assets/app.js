// The storefront: catalog, album, buy form and a live order page, in plain JavaScript served
// as is. Routes live in the URL's hash (#/album/3, #/order/12) because the gateway sends
// /products and /orders to the API. Tracing comes from otel-web.js (the bundled OpenTelemetry
// web SDK); if it cannot load, the shop still works, untraced. The order page draws the
// order's trace and log lines (trace-view.js), read through the gateway.

import {
  Waterfall, buildTrace, el, formatUs, logList, slowestExemplar,
} from './trace-view.js';
import RULES from './lab-rules.js';
import { watchReadiness } from './readiness.js';
import { NO_RECORD, gameDayLine, progressRows } from './progress.js';

// Taken before the SDK wraps fetch: reading the trace, the logs and the exemplars is the lab
// looking at itself, and must not add spans (a trace per poll) to what it looks at.
const plainFetch = window.fetch.bind(window);
const telemetry = await import('./otel-web.js').catch((error) => {
  console.warn('tracing is off: otel-web.js did not load', error);
  return {
    traced: (_name, _attributes, work) => work({ setAttribute() {} }),
    traceIdOf: () => '',
    flushTelemetry: async () => {},
  };
});
const { traced, traceIdOf, flushTelemetry } = telemetry;

const PAGE_SIZE = 12;
const FOLLOW_MS = 1500;
// A trace is taken as complete once nothing new arrived for this long after the order ended.
const SETTLED_MS = 8000;
const FOLLOW_MAX_MS = 120000;
const SLOWEST_WINDOW_S = 15 * 60;
const CHECKOUT_HISTOGRAM = 'http_request_duration_seconds_bucket{job="api",handler="/checkout"}';
const POLL_MS = 700;
const MAX_POLL_MS = 5000;
const STEPS = RULES.order_steps;
const FINAL = new Set(RULES.final_statuses);
const PAYMENT_METHODS = [
  ['credit_card', 'Credit card'],
  ['paypal', 'PayPal'],
  ['apple_pay', 'Apple Pay'],
  ['gift_card', 'Gift card'],
];
const STATUS_TEXT = {
  pending: 'the order is queued for the worker',
  processing: 'the worker is authorizing the payment',
  paid: 'the worker is reserving the stock and sending the e-mail',
  confirmed: 'the receipt is on its way',
  failed: 'the order could not be completed',
};

const main = document.getElementById('main');
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const lab = {
  host: window.location.hostname || 'localhost',
  jaegerPort: document.querySelector('meta[name="lab:jaeger-port"]')?.content || '16686',
  grafanaPort: document.querySelector('meta[name="lab:grafana-port"]')?.content || '3000',
};
// The ports .env gives Jaeger's UI and Grafana, which the gateway renders (GET /gateway/links);
// the meta tags' defaults stay when it cannot say. Read once, before the first view.
const linksRead = plainFetch('/gateway/links', { headers: { Accept: 'application/json' } })
  .then((response) => (response.ok ? response.json() : {}))
  .then((ports) => {
    if (/^[0-9]{1,5}$/.test(ports.jaeger_ui_port)) lab.jaegerPort = ports.jaeger_ui_port;
    if (/^[0-9]{1,5}$/.test(ports.grafana_port)) lab.grafanaPort = ports.grafana_port;
  })
  .catch(() => {});

// How warm the telemetry is (a trace stored, every target scraped), until it is ready.
const readinessLine = document.getElementById('telemetry-readiness');
if (readinessLine) watchReadiness(plainFetch, readinessLine);

// One correlation id per shopping journey: browsing, the album and the checkout share it, so
// `grep <id>` over the logs shows the whole visit. The next journey starts after an order.
let journeyId = newCorrelationId();
// The checkout answer, so the order page can show the ids before its first poll returns.
let lastCheckout = null;
// Each render bumps this; a slower, older view's callbacks then know they are stale.
let viewToken = 0;
// The first view keeps the browser's own focus (the top of the page); later ones move it.
let firstView = true;

function newCorrelationId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  const id = `web-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  const shown = document.getElementById('journey-id');
  if (shown) shown.textContent = id;
  return id;
}

// --- DOM ------------------------------------------------------------------------------------

function show(title, ...content) {
  document.title = `${title} · Record Store`;
  main.replaceChildren(...content.filter(Boolean));
  // Move focus to the new view's heading so keyboard and screen-reader users land on it.
  const heading = main.querySelector('h1');
  if (firstView) {
    firstView = false;
  } else if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

function cover(product, size = '') {
  const hue = (product.id * 47) % 360;
  return el('div', {
    className: `cover ${size}`.trim(),
    'aria-hidden': 'true',
    style: `--hue: ${hue}`,
  }, el('span', { className: 'cover-title' }, product.title));
}

// --- the API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor({ status, error, detail, correlationId, traceId = '' }) {
    super(`${status || 'no answer'} ${error}`);
    Object.assign(this, { status, error, detail, correlationId, traceId });
  }
}

function detailText(detail) {
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join('.') || 'request'}: ${d.msg}`).join('; ');
  }
  return detail ? String(detail) : '';
}

/**
 * One call to the API through the gateway. fetch() runs before the first await, so it is a
 * child of the caller's active span and carries its traceparent.
 */
async function api(path, { method = 'GET', body, correlationId = journeyId } = {}) {
  const headers = { Accept: 'application/json', 'X-Correlation-ID': correlationId };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const sent = fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let response;
  try {
    response = await sent;
  } catch {
    throw new ApiError({
      status: 0, error: 'gateway_unreachable', correlationId,
      detail: 'The browser got no answer from the gateway: is the lab running (./lab status)?',
    });
  }
  const answered = {
    correlationId: response.headers.get('X-Correlation-ID') || correlationId,
    traceId: response.headers.get('X-Trace-ID') || '',
  };
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok || data === null) {
    throw new ApiError({
      status: response.status,
      error: data?.error || (response.ok ? 'not_json' : `http_${response.status}`),
      detail: detailText(data?.detail) || response.statusText,
      correlationId: data?.correlation_id || answered.correlationId,
      traceId: answered.traceId,
    });
  }
  return { data, ...answered };
}

/**
 * A traced API call: the span is the shopper's action, the fetch its child. `onAnswer` may add
 * what the answer tells to the span; a failure keeps the browser's trace id for the error panel.
 */
function load(action, attributes, path, { onAnswer, ...options } = {}) {
  return traced(action, { 'recordstore.correlation_id': options.correlationId || journeyId, ...attributes },
    async (span) => {
      try {
        const answer = await api(path, options);
        onAnswer?.(span, answer);
        return answer;
      } catch (error) {
        if (error instanceof ApiError && !error.traceId) error.traceId = traceIdOf(span);
        throw error;
      }
    });
}

// --- links to the other signals ---------------------------------------------------------------

function jaegerUrl(path) {
  return `http://${lab.host}:${lab.jaegerPort}${path}`;
}

function grafanaUrl(correlationId, traceId) {
  const query = new URLSearchParams({ 'var-correlation_id': correlationId, 'var-trace_id': traceId });
  return `http://${lab.host}:${lab.grafanaPort}/d/purchase-journey/purchase-journey?${query}`;
}

function external(href, text) {
  return el('a', { href, target: '_blank', rel: 'noopener' }, text);
}

function traceLinks(traceId) {
  if (!traceId) return [];
  return [
    el('li', {}, external(jaegerUrl(`/trace/${traceId}`), 'The trace in Jaeger'),
      ' (Docker Compose)'),
    el('li', {}, external(jaegerUrl(`/api/traces/${traceId}`), 'The trace as JSON'),
      ' (Jaeger\'s query API; natively the trace stand-in, which has no UI)'),
  ];
}

// --- errors -----------------------------------------------------------------------------------

const ERROR_TITLES = {
  gateway_unreachable: 'The store is offline',
  api_unavailable: 'The checkout API is not answering',
  api_timeout: 'The checkout API is too slow to answer',
  database_unavailable: 'The store\'s database is down',
  database_busy: 'The store\'s database is busy',
  database_timeout: 'The store\'s database is too slow to answer',
  database_conflict: 'Your order clashed with another one',
  broker_unavailable: 'The store\'s message broker is down',
  product_not_found: 'That album does not exist',
  not_found: 'Not found',
  insufficient_stock: 'Not enough copies in stock',
  validation_error: 'Please check the form',
};

// What a learner can do about it; the lab's own commands, since this shop is a lab.
const ERROR_HINTS = {
  gateway_unreachable: 'Nothing answered at this address. Check the lab with ./lab status.',
  api_unavailable: 'The gateway is up, but the checkout API behind it is not. Nothing was ordered '
    + 'or charged. Check it with ./lab status; start it with ./lab start api.',
  api_timeout: 'The gateway gave up waiting for the checkout API. Look for the slow step in the trace.',
  database_unavailable: 'The API is up, but PostgreSQL is not. Start it with ./lab start db.',
  database_busy: 'PostgreSQL is up, but every connection of the API\'s pool is in use. Is a fault '
    + 'holding them? ./lab chaos show.',
  database_timeout: 'PostgreSQL is up, but a query ran past the statement timeout and was '
    + 'cancelled. Find the slow SQL span in the trace; ./lab chaos show.',
  database_conflict: 'PostgreSQL rolled the transaction back (deadlock or serialization '
    + 'failure). Nothing was saved: try again.',
};

function errorPanel(error, retry, { withTrace = false } = {}) {
  if (!(error instanceof ApiError)) {
    error = new ApiError({ status: 0, error: 'unexpected', detail: String(error), correlationId: journeyId });
  }
  const title = ERROR_TITLES[error.error] || 'Something went wrong';
  const status = error.status ? `${error.status} ${error.error}` : error.error;
  return el('div', { className: 'error-panel', role: 'alert', 'data-error': error.error },
    el('h2', {}, title),
    error.detail ? el('p', {}, error.detail) : null,
    ERROR_HINTS[error.error] ? el('p', {}, ERROR_HINTS[error.error]) : null,
    el('dl', { className: 'ids' },
      el('dt', {}, 'Correlation id'),
      el('dd', {}, el('code', { className: 'error-correlation-id' }, error.correlationId)),
      el('dt', {}, 'Response'), el('dd', {}, el('code', {}, status)),
      error.traceId ? [el('dt', {}, 'Trace id'), el('dd', {}, el('code', {}, error.traceId))] : null),
    el('p', {}, 'Follow it in the logs: ',
      el('code', {}, `./lab logs gateway | grep ${error.correlationId}`)),
    el('ul', { className: 'links' }, traceLinks(error.traceId)),
    retry ? el('button', { type: 'button', className: 'button', onclick: retry }, 'Try again') : null,
    withTrace && error.traceId ? followJourney({ traceId: error.traceId, token: viewToken }) : null);
}

// --- the trace and the log lines, live ----------------------------------------------------------

/** GET a JSON document without tracing it: {status, data} (status 0: no answer). */
async function readJson(path) {
  try {
    const response = await plainFetch(path, { headers: { Accept: 'application/json' } });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    return { status: response.status, data };
  } catch {
    return { status: 0, data: null };
  }
}

/**
 * A section that draws one trace as a waterfall and, for an order, its log lines beneath it,
 * polling both until the view changes or, once `isDone()`, nothing new arrived for SETTLED_MS.
 */
function followJourney({ traceId, orderId = null, token, isDone = () => true }) {
  const waterfall = new Waterfall();
  const traceState = el('p', { className: 'trace-state', role: 'status' }, `Reading trace ${traceId}…`);
  const logState = el('p', { className: 'log-state' }, 'Reading the log lines…');
  const logs = el('div', { className: 'logs' });
  let picked = null;
  const pick = (spanId) => {
    picked = spanId;
    for (const li of logs.querySelectorAll('.log-line')) {
      li.classList.toggle('picked', li.dataset.spanId === spanId);
    }
    traceState.textContent = waterfall.highlight(spanId)
      ? `Span ${spanId} is highlighted in the waterfall.`
      : `Span ${spanId} is not in the trace (yet).`;
  };
  const section = el('section', { className: 'journey', 'aria-labelledby': `journey-title-${traceId}` },
    el('h2', { id: `journey-title-${traceId}` }, 'The trace, live'),
    el('p', { className: 'hint' }, 'Each row is a span: click its name for its attributes, the ',
      el('span', { 'aria-hidden': 'true' }, '▾'), ' to fold its children.'),
    traceState, waterfall.node,
    orderId ? [el('h2', {}, 'Its log lines'),
      el('p', { className: 'hint' }, 'The gateway\'s, the API\'s and the worker\'s lines with the '
        + 'order\'s correlation id, in time order; click one to highlight its span.'),
      logState, logs] : null);

  let seen = '';
  let logsSeen = -1;
  let logsOff = !orderId;
  let settledAt = null;
  const started = Date.now();

  async function poll() {
    if (token !== viewToken) return;
    const [traceAnswer, logAnswer] = await Promise.all([
      readJson(`/api/traces/${traceId}`),
      logsOff ? null : readJson(`/orders/${orderId}/logs`)]);
    if (token !== viewToken) return;
    let changed = false;
    const trace = traceAnswer.data?.data?.[0];
    if (traceAnswer.status === 200 && trace) {
      const model = buildTrace(trace);
      const signature = model.rows.map((r) => `${r.key}:${r.durationUs}`).join();
      if (signature !== seen) {
        seen = signature;
        changed = true;
        waterfall.update(model);
        if (picked) waterfall.highlight(picked);
      }
      traceState.textContent = `${model.rows.length} spans from ${model.services.join(', ')}, `
        + `${formatUs(model.durationUs)} end to end${model.errorCount ? `, ${model.errorCount} in error` : ''}`
        + (isDone() && settledAt && Date.now() - settledAt >= SETTLED_MS ? '.' : '; still arriving…');
    } else if (traceAnswer.status === 404 || traceAnswer.status === 200) {
      traceState.textContent = `Trace ${traceId} has not reached the trace backend yet…`;
    } else {
      traceState.textContent = `The trace backend did not answer (${traceAnswer.status || 'no answer'}`
        + `${traceAnswer.data?.error ? ` ${traceAnswer.data.error}` : ''}); trying again…`;
    }
    if (logAnswer) {
      if (logAnswer.status === 200) {
        const lines = logAnswer.data.lines || [];
        if (lines.length !== logsSeen) {
          logsSeen = lines.length;
          changed = true;
          logs.replaceChildren(logList(lines, pick));
          if (picked) pick(picked);
        }
        logState.textContent = `${lines.length} lines${logAnswer.data.truncated ? ' (the latest)' : ''}`
          + ` with correlation id ${logAnswer.data.correlation_id}`;
      } else if (logAnswer.status === 503 && logAnswer.data?.error === 'logs_unavailable') {
        logsOff = true;
        logState.textContent = `No log lines here: ${logAnswer.data.detail}`;
      } else {
        logState.textContent = `The log lines did not load (${logAnswer.status || 'no answer'}`
          + `${logAnswer.data?.error ? ` ${logAnswer.data.error}` : ''}); trying again…`;
      }
    }
    if (changed || !seen || !isDone()) settledAt = null;
    else settledAt ??= Date.now();
    if (settledAt && Date.now() - settledAt >= SETTLED_MS) return;
    if (Date.now() - started > FOLLOW_MAX_MS) {
      traceState.append(' Stopped following: reload the page to look again.');
      return;
    }
    setTimeout(poll, FOLLOW_MS);
  }
  poll();
  return section;
}

// --- views ------------------------------------------------------------------------------------

function catalogHash({ genre = '', q = '', page = 1 }) {
  const query = new URLSearchParams();
  if (genre) query.set('genre', genre);
  if (q) query.set('q', q);
  if (page > 1) query.set('page', String(page));
  const text = query.toString();
  return text ? `#/?${text}` : '#/';
}

async function showCatalog({ genre, q, page }, token) {
  const query = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
  if (genre) query.set('genre', genre);
  if (q) query.set('q', q);
  let result;
  try {
    result = await load('browse_catalog', {
      'recordstore.catalog.genre': genre, 'recordstore.catalog.query': q,
      'recordstore.catalog.page': page,
    }, `/products?${query}`);
  } catch (error) {
    if (token !== viewToken) return;
    show('Catalog', el('h1', {}, 'Catalog'), errorPanel(error, () => route()));
    return;
  }
  if (token !== viewToken) return;
  const { items, total, genres } = result.data;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));

  const search = el('form', { className: 'search', role: 'search', onsubmit: (event) => {
    event.preventDefault();
    const text = event.target.elements.q.value.trim();
    window.location.hash = catalogHash({ genre, q: text });
  } },
  el('label', { for: 'search-q' }, 'Search title or artist'),
  el('div', { className: 'search-row' },
    el('input', { id: 'search-q', name: 'q', type: 'search', value: q, maxlength: '100',
      autocomplete: 'off', placeholder: 'e.g. Miles Davis' }),
    el('button', { type: 'submit', className: 'button' }, 'Search')));

  const genreButtons = el('div', { className: 'genres', role: 'group', 'aria-label': 'Genre' },
    ['', ...genres].map((name) => el('button', {
      type: 'button',
      className: 'chip',
      'aria-pressed': String(name === genre),
      onclick: () => { window.location.hash = catalogHash({ genre: name, q }); },
    }, name || 'All genres')));

  const grid = items.length
    ? el('ul', { className: 'grid' }, items.map((p) => el('li', { className: 'card' },
      el('a', { href: `#/album/${p.id}`, className: 'card-link' },
        cover(p),
        el('h2', { className: 'card-title' }, p.title),
        el('p', { className: 'card-artist' }, p.artist),
        el('p', { className: 'card-meta' }, `${p.genre} · ${p.format} · ${p.release_year}`),
        el('p', { className: 'card-price' }, money.format(p.price_cents / 100),
          p.stock > 0 ? null : el('span', { className: 'sold-out' }, ' · sold out'))))))
    : el('p', { className: 'notice' }, 'No album matches. Try another genre or search.');

  const pager = pages > 1 ? el('nav', { className: 'pager', 'aria-label': 'Pages' },
    page > 1 ? el('a', { href: catalogHash({ genre, q, page: page - 1 }), rel: 'prev' }, '← Previous') : el('span'),
    el('span', {}, `Page ${page} of ${pages}`),
    page < pages ? el('a', { href: catalogHash({ genre, q, page: page + 1 }), rel: 'next' }, 'Next →') : el('span'),
  ) : null;

  show(genre ? `${genre} records` : 'Catalog',
    el('h1', {}, q ? `Records matching “${q}”` : genre || 'All records'),
    search, genreButtons,
    el('p', { className: 'result-count', role: 'status' },
      `${total} album${total === 1 ? '' : 's'}${genre ? ` in ${genre}` : ''}`),
    grid, pager);
}

async function showAlbum(id, token) {
  let product;
  try {
    product = (await load('view_album', { 'recordstore.product.id': id }, `/products/${id}`)).data;
  } catch (error) {
    if (token !== viewToken) return;
    show('Album', backLink(), el('h1', {}, 'Album'), errorPanel(error, () => route()));
    return;
  }
  if (token !== viewToken) return;
  const maxQuantity = Math.max(1, Math.min(10, product.stock));
  const soldOut = product.stock < 1;
  const feedback = el('div', { className: 'form-feedback' }); // its error panel is a role=alert
  const total = el('output', { id: 'buy-total', for: 'buy-quantity', 'aria-live': 'polite' },
    money.format(product.price_cents / 100));
  const buyButton = el('button', { type: 'submit', className: 'button primary', disabled: soldOut },
    soldOut ? 'Sold out' : 'Buy now');

  const form = el('form', { className: 'buy-form', 'aria-labelledby': 'buy-title', onsubmit: onBuy },
    el('h2', { id: 'buy-title' }, 'Buy this record'),
    el('div', { className: 'field' },
      el('label', { for: 'buy-email' }, 'E-mail for the receipt'),
      el('input', { id: 'buy-email', name: 'customer_email', type: 'email', required: true,
        autocomplete: 'email', placeholder: 'you@example.com', value: remembered('email') })),
    el('div', { className: 'field' },
      el('label', { for: 'buy-quantity' }, `Quantity (1–${maxQuantity})`),
      el('input', { id: 'buy-quantity', name: 'quantity', type: 'number', min: '1', max: String(maxQuantity),
        step: '1', value: '1', required: true, inputmode: 'numeric',
        oninput: (event) => {
          const quantity = Number(event.target.value);
          if (Number.isInteger(quantity) && quantity >= 1) {
            total.textContent = money.format((quantity * product.price_cents) / 100);
          }
        } })),
    el('fieldset', { className: 'field payment' },
      el('legend', {}, 'Payment method'),
      PAYMENT_METHODS.map(([value, text], i) => el('label', { className: 'radio' },
        el('input', { type: 'radio', name: 'payment_method', value, checked: i === 0 }), ` ${text}`))),
    el('p', { className: 'total' }, 'Total: ', total),
    buyButton,
    feedback);

  function onBuy(event) {
    event.preventDefault();
    if (!form.reportValidity()) return;
    const fields = form.elements;
    const order = {
      product_id: product.id,
      quantity: Number(fields.quantity.value),
      customer_email: fields.customer_email.value.trim(),
      payment_method: fields.payment_method.value,
    };
    remember('email', order.customer_email);
    buyButton.disabled = true;
    buyButton.textContent = 'Placing your order…';
    feedback.replaceChildren();
    // The click is the root span of the purchase's trace: the API's and the worker's spans
    // hang beneath the fetch it makes.
    load('buy_record', {
      'recordstore.product.id': order.product_id, 'recordstore.order.quantity': order.quantity,
      'recordstore.payment.method': order.payment_method,
    }, '/checkout', {
      method: 'POST',
      body: order,
      onAnswer: (span, answer) => span.setAttribute('recordstore.order.id', answer.data.order_id),
    }).then((answer) => {
      lastCheckout = answer.data;
      journeyId = newCorrelationId();
      flushTelemetry();
      window.location.hash = `#/order/${answer.data.order_id}`;
    }, (error) => {
      buyButton.disabled = false;
      buyButton.textContent = 'Buy now';
      feedback.replaceChildren(errorPanel(error, null, { withTrace: true }));
      feedback.querySelector('h2')?.setAttribute('tabindex', '-1');
      feedback.querySelector('h2')?.focus();
    });
  }

  const stock = soldOut ? 'Sold out' : product.stock <= 5 ? `Only ${product.stock} left` : `${product.stock} in stock`;
  show(`${product.title} by ${product.artist}`,
    backLink(),
    el('article', { className: 'album' },
      cover(product, 'large'),
      el('div', { className: 'album-info' },
        el('h1', {}, product.title),
        el('p', { className: 'album-artist' }, `by ${product.artist}`),
        el('dl', { className: 'facts' },
          el('dt', {}, 'Genre'), el('dd', {}, el('a', { href: catalogHash({ genre: product.genre }) }, product.genre)),
          el('dt', {}, 'Format'), el('dd', {}, product.format),
          el('dt', {}, 'Released'), el('dd', {}, String(product.release_year)),
          el('dt', {}, 'SKU'), el('dd', {}, product.sku),
          el('dt', {}, 'Stock'), el('dd', {}, stock)),
        el('p', { className: 'album-price' }, money.format(product.price_cents / 100)),
        form)));
}

/** Seconds from the order's creation to its final state, as the learner saw them pass. */
function elapsed(order) {
  const start = Date.parse(order.timestamps?.pending);
  const end = Date.parse(order.timestamps?.[order.status]);
  return Number.isFinite(start) && Number.isFinite(end) ? `${((end - start) / 1000).toFixed(1)} s` : '';
}

// The e-mail is remembered for the next purchase; storage may be off (private windows).
function remembered(key) {
  try {
    return localStorage.getItem(key) || '';
  } catch {
    return '';
  }
}

function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // nothing to do: the form simply starts empty next time
  }
}

function backLink() {
  return el('nav', { className: 'crumbs', 'aria-label': 'Breadcrumb' }, el('a', { href: '#/' }, '← Back to the catalog'));
}

function showOrder(id, token) {
  const known = lastCheckout?.order_id === id ? lastCheckout : null;
  let correlationId = known?.correlation_id || journeyId;
  let shownStatus = '';
  let delay = POLL_MS;

  const heading = el('h1', {}, `Order #${id}`);
  const status = el('p', { className: 'order-status', role: 'status' }, 'Loading the order…');
  const steps = el('ol', { className: 'steps', 'aria-label': 'Progress' });
  const details = el('div', { className: 'order-details' });
  const problem = el('div', { className: 'order-problem' });
  const ids = el('section', { className: 'observe', 'aria-labelledby': 'observe-title' });
  const journey = el('div', { className: 'order-journey' });
  let following = '';
  let finalSeen = false;
  show(`Order #${id}`, backLink(), heading, status, steps, problem, details, ids, journey);
  if (known) renderIds(known.correlation_id, known.trace_id);
  followTrace(known?.trace_id);

  function followTrace(traceId) {
    if (!traceId || traceId === following) return;
    following = traceId;
    journey.replaceChildren(followJourney({ traceId, orderId: id, token, isDone: () => finalSeen }));
  }

  function renderIds(cid, traceId) {
    ids.replaceChildren(
      el('h2', { id: 'observe-title' }, 'Follow this order'),
      el('dl', { className: 'ids' },
        el('dt', {}, 'Correlation id'), el('dd', {}, el('code', { id: 'order-correlation-id' }, cid)),
        el('dt', {}, 'Trace id'), el('dd', {}, el('code', { id: 'order-trace-id' }, traceId || '—'))),
      el('ul', { className: 'links' },
        traceLinks(traceId),
        el('li', {}, external(grafanaUrl(cid, traceId || ''), 'The Purchase Journey dashboard in Grafana'),
          ' (Docker Compose; natively: ', el('code', {}, './lab dashboard "Purchase Journey"'), ')'),
        el('li', {}, 'Every log line of it: ', el('code', {}, `./lab logs api | grep ${cid}`)),
        el('li', {}, el('a', { href: '#/slowest' }, 'The slowest checkout in the last 15 min'),
          ' (from the exemplars of the checkout latency histogram)')));
  }

  function render(order) {
    const failedAt = order.status === 'failed';
    steps.replaceChildren(...STEPS.map((step) => {
      const at = order.timestamps?.[step];
      const state = at ? 'done' : (failedAt ? 'skipped' : 'todo');
      const current = step === order.status;
      return el('li', { className: `step ${state}${current ? ' current' : ''}`, 'aria-current': current ? 'step' : null },
        el('span', { className: 'step-name' }, step),
        el('span', { className: 'step-time' }, at ? new Date(at).toLocaleTimeString() : ''));
    }), ...(failedAt ? [el('li', { className: 'step failed current', 'aria-current': 'step' },
      el('span', { className: 'step-name' }, 'failed'),
      el('span', { className: 'step-time' }, order.timestamps?.failed ? new Date(order.timestamps.failed).toLocaleTimeString() : ''))] : []));
    if (order.status !== shownStatus) {
      // The live region changes only when the status does, so it is announced once per step.
      shownStatus = order.status;
      status.replaceChildren('Status: ',
        el('strong', { className: `status-${order.status}`, 'data-status': order.status }, order.status),
        ` — ${STATUS_TEXT[order.status] || ''}`,
        order.failure_reason ? `: ${order.failure_reason}` : '',
        FINAL.has(order.status) && elapsed(order) ? ` (${elapsed(order)} after the order was placed)` : '');
    }
    details.replaceChildren(
      el('table', { className: 'items' },
        el('caption', {}, `Receipt for ${order.customer_email}`),
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Album'), el('th', { scope: 'col' }, 'Qty'),
          el('th', { scope: 'col' }, 'Price'))),
        el('tbody', {}, order.items.map((item) => el('tr', {},
          el('td', {}, el('a', { href: `#/album/${item.product_id}` }, item.title), ` by ${item.artist}`),
          el('td', {}, String(item.quantity)),
          el('td', {}, money.format((item.quantity * item.unit_price_cents) / 100))))),
        el('tfoot', {}, el('tr', {}, el('th', { scope: 'row', colspan: '2' }, 'Total'),
          el('td', {}, money.format(order.total_cents / 100))))));
    renderIds(order.correlation_id, order.trace_id);
  }

  async function poll() {
    if (token !== viewToken) return;
    try {
      const { data } = await load('check_order', { 'recordstore.order.id': id }, `/orders/${id}`, { correlationId });
      if (token !== viewToken) return;
      correlationId = data.correlation_id || correlationId;
      problem.replaceChildren();
      finalSeen = FINAL.has(data.status);
      render(data);
      followTrace(data.trace_id);
      delay = POLL_MS;
      if (FINAL.has(data.status)) {
        flushTelemetry();
        return;
      }
    } catch (error) {
      if (token !== viewToken) return;
      if (error.status === 404) {
        status.textContent = `There is no order #${id}.`;
        problem.replaceChildren(errorPanel(error));
        return;
      }
      // Keep trying with a growing pause: the order is safe in the database meanwhile.
      problem.replaceChildren(errorPanel(error), el('p', { className: 'notice' }, 'Retrying…'));
      delay = Math.min(delay * 2, MAX_POLL_MS);
    }
    setTimeout(poll, delay);
  }
  poll();
}

/** The slowest checkout of the last 15 minutes, by the exemplars Prometheus keeps of it. */
async function showSlowest(token) {
  const heading = el('h1', {}, 'The slowest checkout in the last 15 minutes');
  const end = Date.now() / 1000;
  const query = new URLSearchParams({ query: CHECKOUT_HISTOGRAM,
    start: (end - SLOWEST_WINDOW_S).toFixed(3), end: end.toFixed(3) });
  const answer = await readJson(`/api/v1/query_exemplars?${query}`);
  if (token !== viewToken) return;
  const again = el('button', { type: 'button', className: 'button', onclick: () => route() }, 'Look again');
  const explain = el('p', { className: 'hint' }, 'Prometheus keeps, with each bucket of the API\'s ',
    el('code', {}, 'http_request_duration_seconds'), ' histogram, the trace id of a request it '
    + 'counted (an exemplar). The slowest exemplar of ', el('code', {}, 'POST /checkout'),
    ' leads to its trace.');
  if (answer.status !== 200) {
    show('Slowest checkout', backLink(), heading, explain, el('div', { className: 'error-panel', role: 'alert' },
      el('p', {}, `Prometheus did not answer (${answer.status || 'no answer'}`
        + `${answer.data?.error ? `: ${answer.data.error}` : ''}).`)), again);
    return;
  }
  const slowest = slowestExemplar(answer.data);
  if (!slowest) {
    show('Slowest checkout', backLink(), heading, explain,
      el('p', { className: 'notice', role: 'status' }, 'No checkout in the last 15 minutes carries an '
        + 'exemplar yet (they come with each scrape, every 5 s): buy a record, then look again.'), again);
    return;
  }
  show('Slowest checkout', backLink(), heading, explain,
    el('dl', { className: 'ids' },
      el('dt', {}, 'Took'), el('dd', { id: 'slowest-duration' }, formatUs(Math.round(slowest.seconds * 1e6))),
      el('dt', {}, 'At'), el('dd', {}, new Date(slowest.at * 1000).toLocaleTimeString()),
      el('dt', {}, 'Trace id'), el('dd', {}, el('code', { id: 'slowest-trace-id' }, slowest.traceId))),
    el('ul', { className: 'links' }, traceLinks(slowest.traceId)),
    followJourney({ traceId: slowest.traceId, token }));
}

/** The learner's progress through the exercises, as `./lab progress` prints it. */
async function showProgress(token) {
  const heading = el('h1', {}, 'Your progress through the exercises');
  const answer = await readJson('/lab/progress.json');
  if (token !== viewToken) return;
  const again = el('button', { type: 'button', className: 'button', onclick: () => route() }, 'Look again');
  if (answer.status !== 200 || !answer.data) {
    show('Progress', backLink(), heading,
      el('p', { className: 'notice', role: 'status', id: 'progress-none' }, NO_RECORD), again);
    return;
  }
  const { rows, passed, total } = progressRows(answer.data);
  const table = el('table', { className: 'progress', id: 'progress-table' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Exercise'), el('th', {}, 'Status'),
      el('th', {}, 'When'), el('th', {}, 'Runs, hints, reveals'))),
    el('tbody', {}, ...rows.map((r) => el('tr', { 'data-exercise': r.exercise },
      el('td', {}, `${r.exercise.slice(0, 2)} · ${r.title}`),
      el('td', { className: `status-${r.status.replace(' ', '-')}` }, r.status),
      el('td', {}, r.when || ''), el('td', {}, r.detail)))));
  const games = gameDayLine(answer.data);
  show('Progress', backLink(), heading,
    el('p', { id: 'progress-summary' }, `${passed} of ${total} passed, as the checks recorded it `
      + '(./lab progress prints the same).'), table,
    ...(games ? [el('p', { id: 'progress-gameday' }, games)] : []), again);
}

// --- routing ----------------------------------------------------------------------------------

function parseRoute() {
  const hash = window.location.hash;
  if (hash && !hash.startsWith('#/')) return null; // an in-page anchor, such as the skip link
  const [path, query = ''] = (hash || '#/').slice(1).split('?');
  const params = new URLSearchParams(query);
  let match = path.match(/^\/album\/(\d+)$/);
  if (match) return { view: 'album', id: Number(match[1]) };
  match = path.match(/^\/order\/(\d+)$/);
  if (match) return { view: 'order', id: Number(match[1]) };
  if (path === '/slowest') return { view: 'slowest' };
  if (path === '/progress') return { view: 'progress' };
  return {
    view: 'catalog',
    genre: params.get('genre') || '',
    q: params.get('q') || '',
    page: Math.max(1, Number.parseInt(params.get('page'), 10) || 1),
  };
}

function route(initial = false) {
  const where = parseRoute() || (initial && { view: 'catalog', genre: '', q: '', page: 1 });
  if (!where) return;
  viewToken += 1;
  const token = viewToken;
  if (where.view === 'album') showAlbum(where.id, token);
  else if (where.view === 'order') showOrder(where.id, token);
  else if (where.view === 'slowest') showSlowest(token);
  else if (where.view === 'progress') showProgress(token);
  else showCatalog(where, token);
}

document.getElementById('journey-id').textContent = journeyId;
document.querySelector('.skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', () => route());
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') flushTelemetry();
});
linksRead.then(() => route(true));
