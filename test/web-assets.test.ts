// The web build (dist/web: the dashboard, the partner portal, /widget.js) served by refgraph over
// HTTP: pages revalidated on every visit under a Content-Security-Policy that allows only refgraph
// itself, hashed assets cached for good (ETag, 304, gzip), nothing in the build that would fetch
// from another host, and a clear 503 when the build is missing. The build itself is made by
// test/global-setup.ts when src/web changed.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_BUILD_DIR, WebAssets } from '../src/http/web-assets.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

/** A GET whose body is not decoded (fetch would gunzip it). */
function rawGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** The files of the build, by path relative to dist/web. */
function builtFiles(): string[] {
  return fs
    .readdirSync(WEB_BUILD_DIR, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(WEB_BUILD_DIR, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'));
}

/** The assets a page names (script src, stylesheet and module preload href). */
async function pageAssets(page: string): Promise<string[]> {
  const html = await (await fetch(`${server.url}${page}`)).text();
  return [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
}

// XML namespace names in the DOM libraries' code: identifiers, never fetched.
const NAMESPACE_URIS = new Set([
  'http://www.w3.org/1998/Math/MathML',
  'http://www.w3.org/1999/xhtml',
  'http://www.w3.org/2000/svg',
  'http://www.w3.org/1999/xlink',
  'http://www.w3.org/XML/1998/namespace',
  'http://www.w3.org/2000/xmlns/',
]);

describe('the web pages', () => {
  it.each(['/app/', '/portal/', '/portal/anything/below', '/app/partners/123'])(
    '%s: the page, revalidated on every visit, under a policy that allows only refgraph itself',
    async (page) => {
      const res = await fetch(`${server.url}${page}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('etag')).toMatch(/^"[\w-]{22}"$/);
      const csp = res.headers.get('content-security-policy') ?? '';
      for (const directive of [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
      ])
        expect(csp).toContain(directive);
      // 'self' and 'none' only: no host, scheme or 'unsafe-…' anywhere in the policy.
      for (const source of csp.split(';').flatMap((directive) => directive.trim().split(/\s+/).slice(1)))
        expect(["'self'", "'none'", 'data:']).toContain(source);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      const html = await res.text();
      expect(html).toContain('<div id="root"></div>');
      expect(html).not.toMatch(/https?:\/\/|\/\/[a-z0-9.-]+\.[a-z]{2,}/i); // no absolute or protocol-relative URL
      expect(html).not.toMatch(/<style|style="/i); // nothing the policy's style-src would block
      expect(await pageAssets(page)).toEqual(
        expect.arrayContaining([expect.stringMatching(/^\/assets\/[\w-]+-[\w-]{8}\.js$/)]),
      );
      const again = await fetch(`${server.url}${page}`, { headers: { 'if-none-match': res.headers.get('etag')! } });
      expect(again.status).toBe(304);
    },
  );

  it('redirects /app and /portal to the page with the slash (308)', async () => {
    for (const page of ['/app', '/portal']) {
      const res = await fetch(`${server.url}${page}`, { redirect: 'manual' });
      expect(res.status).toBe(308);
      expect(res.headers.get('location')).toBe(`${page}/`);
    }
  });

  it('names no other host in anything it builds: every URL in the HTML, scripts and styles is a namespace name', () => {
    const files = builtFiles().filter((name) => /\.(html|js|css)$/.test(name));
    expect(files.some((name) => name.endsWith('.css'))).toBe(true);
    const found: string[] = [];
    for (const name of files) {
      const text = fs.readFileSync(path.join(WEB_BUILD_DIR, name), 'utf8');
      for (const [url] of text.matchAll(/https?:\/\/[^\s"'`)<>\\]+/g))
        if (!NAMESPACE_URIS.has(url)) found.push(`${name}: ${url}`);
      // url(…) in styles: only relative paths under /assets/ (no data: URLs either: assetsInlineLimit 0).
      if (name.endsWith('.css'))
        for (const [, ref] of text.matchAll(/url\(\s*["']?([^"')]+)/g)) expect(ref, name).toMatch(/^(\/assets\/|\.\/)/);
    }
    expect(found).toEqual([]);
  });
});

describe('the hashed assets', () => {
  it('are cached for good, gzipped, with an ETag that answers 304', async () => {
    const assets = [...new Set([...(await pageAssets('/app/')), ...(await pageAssets('/portal/'))])];
    expect(assets.length).toBeGreaterThanOrEqual(3); // each page's script, their shared chunk and the stylesheet
    let gzipped = 0;
    for (const asset of assets) {
      const res = await rawGet(`${server.url}${asset}`, { 'accept-encoding': 'gzip, deflate, br' });
      expect(res.status, asset).toBe(200);
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(res.headers['content-type']).toMatch(/^text\/(javascript|css); charset=utf-8$/);
      expect(res.headers['content-security-policy']).toBeUndefined(); // a page's header, not an asset's
      const etag = res.headers['etag'] as string;
      expect(etag).toMatch(/^"[\w-]{22}"$/);
      expect(Number(res.headers['content-length'])).toBe(res.body.length);
      if (res.headers['content-encoding'] === 'gzip') {
        gzipped++;
        const plain = gunzipSync(res.body);
        expect(plain.length).toBeGreaterThan(res.body.length);
        expect(plain.equals(fs.readFileSync(path.join(WEB_BUILD_DIR, asset)))).toBe(true);
      } else {
        expect(res.body.length).toBeLessThanOrEqual(1024); // only tiny files go uncompressed
      }
      const again = await rawGet(`${server.url}${asset}`, { 'if-none-match': etag });
      expect(again.status).toBe(304);
      expect(again.body.length).toBe(0);
    }
    expect(gzipped).toBeGreaterThan(0);
    const [script] = assets.filter((asset) => asset.endsWith('.js'));
    const plain = await rawGet(`${server.url}${script}`, { 'accept-encoding': 'identity' });
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.equals(fs.readFileSync(path.join(WEB_BUILD_DIR, script!)))).toBe(true);
  });

  it('answers HEAD like GET without the body', async () => {
    const [asset] = await pageAssets('/portal/');
    const res = await fetch(`${server.url}${asset}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await res.text()).toBe('');
  });

  it('answers 404 for an unknown asset and 405 for anything but GET and HEAD', async () => {
    const unknown = await fetch(`${server.url}/assets/portal-00000000.js`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('cache-control')).toBe('no-store');
    expect(await unknown.text()).toMatch(/reload/);
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(`${server.url}/portal/`, { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
    }
  });
});

describe('/widget.js', () => {
  it('is one classic script with a fixed name, cached five minutes, loadable from any origin, small', async () => {
    const res = await rawGet(`${server.url}/widget.js`, { 'accept-encoding': 'gzip', origin: 'https://shop.example' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=300');
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['cross-origin-resource-policy']).toBe('cross-origin');
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(res.body.length).toBeLessThan(4096); // gzipped
    const code = gunzipSync(res.body).toString();
    // An IIFE assigning one global: no import/export (a classic script), no chunk it would load.
    expect(code).toMatch(/^var RefgraphWidget=\(function/);
    expect(code).not.toMatch(/\bimport\s*[({"'`]|^export\s/m);
    expect(code).not.toContain('/assets/');
    const again = await fetch(`${server.url}/widget.js`, { headers: { 'if-none-match': String(res.headers['etag']) } });
    expect(again.status).toBe(304);
  });
});

describe('without a build', () => {
  it('answers 503 saying how to build it, and serves the build once it is there', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'refgraph-web-'));
    const web = new WebAssets(dir);
    const plain = http.createServer((req, res) => void web.serve(req, res, new URL(req.url!, 'http://x').pathname));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(plain.address() as { port: number }).port}`;
    try {
      const res = await fetch(`${url}/portal/`);
      expect(res.status).toBe(503);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.text()).toBe(
        'The web dashboard is not built: run `npm run build` (it writes dist/web), then restart refgraph.\n',
      );
      // The redirect needs no build.
      expect((await fetch(`${url}/portal`, { redirect: 'manual' })).status).toBe(308);
      // A build that appears later is picked up (the failed read is not remembered).
      fs.cpSync(WEB_BUILD_DIR, dir, { recursive: true });
      expect((await fetch(`${url}/portal/`)).status).toBe(200);
    } finally {
      await new Promise<void>((resolve) => plain.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the GraphQL endpoint from another origin', () => {
  it('lets a Bearer request through CORS, never with the browser’s credentials', async () => {
    const origin = 'https://shop.example';
    const preflight = await fetch(`${server.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization, content-type');
    expect(preflight.headers.get('access-control-allow-methods')).toBe('POST');
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();

    const ws = await server.workspace('CORS');
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { origin, 'content-type': 'application/json', authorization: `Bearer ${ws.keys.test.secret}` },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    expect(await res.json()).toEqual({ data: { viewer: { role: 'ADMIN' } } });
    expect(res.headers.get('access-control-allow-origin')).toBe(origin);
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });
});
