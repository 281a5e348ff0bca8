// The storefront's tracing: OpenTelemetry's web SDK, bundled by build.mjs into
// nginx/html/assets/otel-web.js. The shop's own code (nginx/html/assets/app.js) imports only
// what this module exports, so it stays plain JavaScript that needs no build.
import { SpanStatusCode, context, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { DocumentLoadInstrumentation } from '@opentelemetry/instrumentation-document-load';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, WebTracerProvider } from '@opentelemetry/sdk-trace-web';

export const SERVICE_NAME = 'kodekloud-record-store-web';
// Same origin as the page: the gateway passes /otlp/ on to the trace backend, so no CORS.
const OTLP_PATH = '/otlp/v1/traces';

const provider = new WebTracerProvider({
  resource: resourceFromAttributes({ 'service.name': SERVICE_NAME }),
  spanProcessors: [
    new BatchSpanProcessor(
      new OTLPTraceExporter({ url: new URL(OTLP_PATH, window.location.origin).href }),
      { scheduledDelayMillis: 1000 },
    ),
  ],
});
// The default context manager and the W3C traceparent propagator, as the API's.
provider.register();

registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [
    new DocumentLoadInstrumentation(),
    // Same-origin fetches carry traceparent without any CORS setting; never trace the export.
    new FetchInstrumentation({ ignoreUrls: [/\/otlp\//], clearTimingResources: true }),
  ],
});

const tracer = trace.getTracer('kodekloud-record-store-storefront');

/**
 * Run `work(span)` inside a new active span named `name`. Fetches that `work` starts before its
 * first await are the span's children and send its traceparent. The span ends when the promise
 * `work` returns settles; a rejection marks it as an error.
 */
export function traced(name, attributes, work) {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(error?.message ?? error) });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The trace id of a span `traced` handed out, as the API and Jaeger print it. */
export function traceIdOf(span) {
  return span.spanContext().traceId;
}

/** The trace id of the span active right now, or "" outside any span. */
export function activeTraceId() {
  return trace.getSpan(context.active())?.spanContext().traceId ?? '';
}

/** Send the finished spans now instead of at the next batch (a purchase's end, a page hide). */
export function flushTelemetry() {
  return provider.forceFlush();
}
