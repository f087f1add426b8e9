// The web dashboard (/app/), the partner portal (/portal/), their hashed assets (/assets/…) and the
// embeddable widget (/widget.js, cached five minutes, loadable from any origin),
// built by `npm run build` (Vite, sources in src/web/) into dist/web and read from there once, on
// the first request. HTML pages are revalidated on every visit (no-cache); hashed assets are cached
// by browsers for good. Every page carries a Content-Security-Policy that allows only refgraph
// itself, so nothing can be loaded from another host even if it tried.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { acceptsGzip } from '../graphiql.js';

const gzipAsync = promisify(gzip);

/** Where `npm run build` writes the web build, relative to the project root. */
export const WEB_BUILD_DIR = path.resolve(import.meta.dirname, '../../', 'dist/web');

export const WEB_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

interface Asset {
  type: string;
  body: Buffer;
  etag: string;
  gzipped: Promise<Buffer> | null;
}

/** The embeddable widget (src/web/widget), a classic script with a fixed name: `/widget.js`. */
export const WIDGET_FILE = 'widget.js';

/** Is this path one of the web app's? */
export function isWebPath(urlPath: string): boolean {
  return (
    urlPath === '/app' ||
    urlPath.startsWith('/app/') ||
    urlPath === '/portal' ||
    urlPath.startsWith('/portal/') ||
    urlPath.startsWith('/assets/') ||
    urlPath === `/${WIDGET_FILE}`
  );
}

export class WebAssets {
  private loaded: Promise<Map<string, Asset>> | null = null;

  constructor(private readonly dir: string = WEB_BUILD_DIR) {}

  async serve(req: IncomingMessage, res: ServerResponse, urlPath: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('Method not allowed.\n');
      return;
    }
    // /app and /portal without the slash: the pages refer to nothing relative, but a canonical URL
    // keeps bookmarks and history tidy.
    if (urlPath === '/app' || urlPath === '/portal') {
      res.writeHead(308, { location: `${urlPath}/`, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    let assets: Map<string, Asset>;
    try {
      assets = await this.load();
    } catch {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end('The web dashboard is not built: run `npm run build` (it writes dist/web), then restart refgraph.\n');
      return;
    }
    // Both apps route inside the page (after the #), so every path under /app/ is the app's page.
    const name = urlPath.startsWith('/app/')
      ? 'app/index.html'
      : urlPath.startsWith('/portal/')
        ? 'portal/index.html'
        : urlPath.slice(1);
    const asset = assets.get(name);
    if (!asset) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end('No such file (the page may be from another version of refgraph: reload it).\n');
      return;
    }
    const isPage = name.endsWith('.html');
    const headers: Record<string, string> = {
      'content-type': asset.type,
      'cache-control': name.startsWith('assets/')
        ? 'public, max-age=31536000, immutable'
        : isPage
          ? 'no-cache'
          : 'public, max-age=300',
      etag: asset.etag,
      vary: 'Accept-Encoding',
      'x-content-type-options': 'nosniff',
    };
    if (name === WIDGET_FILE) {
      // Embedded by the company's own pages (another origin): any page may load it, and it is
      // fetched without credentials. A fixed name, so browsers keep it for five minutes only.
      headers['access-control-allow-origin'] = '*';
      headers['cross-origin-resource-policy'] = 'cross-origin';
    }
    if (isPage) {
      headers['content-security-policy'] = WEB_CSP;
      headers['referrer-policy'] = 'no-referrer';
      headers['x-frame-options'] = 'DENY';
    }
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    let body = asset.body;
    if (acceptsGzip(req.headers['accept-encoding']) && body.length > 1024) {
      asset.gzipped ??= gzipAsync(asset.body, { level: 9 });
      body = await asset.gzipped;
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = String(body.length);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private load(): Promise<Map<string, Asset>> {
    this.loaded ??= (async () => {
      const assets = new Map<string, Asset>();
      const files = await fs.readdir(this.dir, { recursive: true, withFileTypes: true });
      for (const file of files) {
        if (!file.isFile()) continue;
        const full = path.join(file.parentPath, file.name);
        const name = path.relative(this.dir, full).split(path.sep).join('/');
        const body = await fs.readFile(full);
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
        assets.set(name, { type: TYPES[path.extname(name)] ?? 'application/octet-stream', body, etag, gzipped: null });
      }
      if (!assets.has('app/index.html')) throw new Error(`no web build in ${this.dir}`);
      return assets;
    })().catch((error: unknown) => {
      this.loaded = null; // try again on the next request (e.g. after `npm run build`)
      throw error;
    });
    return this.loaded;
  }
}
