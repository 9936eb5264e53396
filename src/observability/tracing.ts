// OpenTelemetry tracing, off by default (telemetry.tracing). When on: a Node tracer provider with
// an OTLP/HTTP (JSON) exporter, W3C trace context read from the agent (MCP `_meta` first, then the
// HTTP `traceparent` header) and written to upstreams. When off, no tracer exists: call sites hold
// `undefined` and skip span work entirely, so the call path pays one optional-chaining check.
import {
  type Attributes,
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-node';
import type { Config } from '../config/load.js';
import { version } from '../version.js';

export { SpanKind, SpanStatusCode };

/** Names of every span Mandate creates (docs/operations.md lists them; a test checks). */
export const SPANS = {
  /** A token endpoint request (kind server). */
  token: 'mandate.token',
  /** A tools/call on /mcp (kind server), parent of the spans below. */
  toolsCall: 'mcp.tools/call',
  /** Deciding a tools/call (mandate chain, budgets, org policy). */
  decide: 'mandate.decide',
  /** One audit event, from submission to durable commit. */
  auditAppend: 'mandate.audit.append',
  /** The forwarded tools/call to the upstream (kind client); its context is the upstream's `traceparent`. */
  upstreamCall: 'mandate.upstream.call',
} as const;

export interface Tracing {
  readonly tracer: Tracer;
  /** Trace context of a request: the first carrier holding a `traceparent` (MCP `_meta`, then HTTP headers). */
  parentOf(...carriers: (Readonly<Record<string, unknown>> | undefined)[]): Context;
  /**
   * Runs `fn` inside a new span (a child of `parent`, or of the active span), ending it when `fn`
   * settles; a thrown error marks the span as failed (its registry code only, never the message).
   */
  inSpan<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T>;
  /** `traceparent` (and `tracestate`) naming `span`, for an outgoing request. */
  carrierOf(span: Span): Record<string, string>;
  /** Exports the spans that ended so far (the exporter otherwise sends them in batches). */
  flush(): Promise<void>;
  /** Flushes and stops the exporter. */
  shutdown(): Promise<void>;
}

export interface SpanOptions {
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  readonly parent?: Context;
}

const getter: TextMapGetter<Readonly<Record<string, unknown>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
  },
};

/** Only one tracing broker per process owns the global provider (OTel's API is global). */
let owner: object | undefined;

/** The broker's tracing, or undefined when telemetry.tracing.enabled is false. */
export function createTracing(config: Config): Tracing | undefined {
  const t = config.telemetry.tracing;
  if (!t.enabled) return undefined;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': t.serviceName, 'service.version': version }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(t.sampleRatio) }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: t.endpoint, timeoutMillis: t.exportTimeoutMs }), {
        scheduledDelayMillis: 1000,
        exportTimeoutMillis: t.exportTimeoutMs,
      }),
    ],
  });
  const self = {};
  // The W3C propagator and the AsyncLocalStorage context manager (children find their parent
  // across awaits) are process-wide in OpenTelemetry's API; the first tracing broker installs them.
  if (owner === undefined) {
    provider.register();
    owner = self;
  }
  const tracer = provider.getTracer('mandate', version);
  return {
    tracer,
    parentOf(...carriers) {
      for (const carrier of carriers) {
        if (carrier !== undefined && getter.get(carrier, 'traceparent') !== undefined) {
          return propagation.extract(ROOT_CONTEXT, carrier, getter);
        }
      }
      return context.active();
    },
    inSpan(name, options, fn) {
      const parent = options.parent ?? context.active();
      const span = tracer.startSpan(
        name,
        { kind: options.kind ?? SpanKind.INTERNAL, ...(options.attributes === undefined ? {} : { attributes: options.attributes }) },
        parent,
      );
      return context.with(trace.setSpan(parent, span), async () => {
        try {
          return await fn(span);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          span.setStatus({ code: SpanStatusCode.ERROR, ...(typeof code === 'string' ? { message: code } : {}) });
          throw err;
        } finally {
          span.end();
        }
      });
    },
    carrierOf(span) {
      const carrier: Record<string, string> = {};
      propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier);
      return carrier;
    },
    async flush() {
      await provider.forceFlush();
    },
    async shutdown() {
      await provider.shutdown().catch(() => {});
      if (owner === self) {
        trace.disable();
        propagation.disable();
        context.disable();
        owner = undefined;
      }
    },
  };
}
