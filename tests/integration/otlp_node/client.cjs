// A Node.js "ERP" instrumented the way its team would do it: the OpenTelemetry Node SDK with the
// node:http instrumentation, spans exported as OTLP/JSON over HTTP to the exporter's /v1/traces.
//
// Reads a plan from stdin: {"endpoint": ".../v1/traces", "token": "...", "compression": "gzip"|"none",
// "calls": [{"method", "url", "headers", "body"}]}. Makes the calls one after another with node:http,
// prints the statuses it saw as JSON ("error" for a call that got no answer), then shuts the SDK
// down, which exports every span before the process exits. Service name and resource attributes
// come from the standard OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES variables.
'use strict';

const { NodeSDK } = require('@opentelemetry/sdk-node');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function call(http, spec) {
  return new Promise((resolve) => {
    const request = http.request(spec.url, { method: spec.method, headers: spec.headers || {} }, (response) => {
      response.resume(); // the body is the app's business; read it to the end like an app would
      response.on('end', () => resolve(response.statusCode));
    });
    request.setTimeout(5000, () => request.destroy(new Error('ETIMEDOUT')));
    request.on('error', () => resolve('error'));
    if (spec.body) request.write(spec.body);
    request.end();
  });
}

async function main() {
  const plan = await readStdin();
  const sdk = new NodeSDK({
    traceExporter: new OTLPTraceExporter({
      url: plan.endpoint,
      headers: { Authorization: `Bearer ${plan.token}` },
      compression: plan.compression === 'gzip' ? 'gzip' : 'none',
    }),
    instrumentations: [new HttpInstrumentation()],
  });
  sdk.start();
  const http = require('node:http'); // required after start(), so the instrumentation wraps it
  const statuses = [];
  for (const spec of plan.calls) statuses.push(await call(http, spec));
  await sdk.shutdown();
  process.stdout.write(JSON.stringify(statuses) + '\n');
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack || error) + '\n');
  process.exit(1);
});
