// Bundles src/otel-web.js and its locked dependencies into one ES module that the gateway
// serves as a plain file: nginx/html/assets/otel-web.js. Run `npm ci && npm run build` here
// after changing the source or package-lock.json, and commit the result; the test suite
// rebuilds it from the lock file and checks that the committed file is identical.
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const outfile = process.argv[2] ??
  fileURLToPath(new URL('../nginx/html/assets/otel-web.js', import.meta.url));

await build({
  entryPoints: [fileURLToPath(new URL('src/otel-web.js', import.meta.url))],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  banner: {
    js: '/* The storefront\'s OpenTelemetry web SDK (Apache-2.0), bundled from storefront/ ' +
      'by build.mjs: do not edit. */',
  },
  logLevel: 'warning',
});
