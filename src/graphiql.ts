// GraphiQL with no other host: the page, its code, styles, editor workers and icon are all served
// by refgraph from the installed @graphql-yoga/render-graphiql package (Yoga's default page loads
// them from a CDN, so without internet access it stays a blank "Loading…" page).
//
// @graphql-yoga/render-graphiql's own renderGraphiQL inlines everything into one 9 MB page, sent
// again on every visit. Here the page is small and points at its assets under
// `graphiql/<key>/…` (relative to the page, so a proxy may mount refgraph under a path prefix);
// the key changes with the installed package version and refgraph's boot script, so the assets
// are cached by browsers for good, read from the package once (on the first asset request) and
// gzipped once.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { GraphiQLOptions, Plugin } from 'graphql-yoga';

const gzipAsync = promisify(gzip);

/** Where the assets are served; the page refers to them relative to its own URL (`graphiql/<key>/…`). */
export const GRAPHIQL_ASSETS_PREFIX = '/graphiql/';

/**
 * Runs in the browser before the GraphiQL bundle: points Monaco's workers at their files, and once
 * the bundle is loaded renders GraphiQL with the options of the page. Subscriptions go over the
 * WebSocket (graphql-ws) with the `Authorization` header of the Headers pane as the
 * `authorization` of `connection_init`, which is where refgraph reads a socket's credential.
 */
const BOOT_SCRIPT = String.raw`(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('graphiql-config').textContent);
  var assets = new URL(config.assets, document.baseURI);
  var workers = { editorWorkerService: 'editor.worker.js', json: 'json.worker.js', graphql: 'graphql.worker.js' };
  self.MonacoEnvironment = {
    globalAPI: false,
    getWorkerUrl: function (_moduleId, label) {
      return new URL(workers[label] || workers.editorWorkerService, assets).href;
    },
  };

  // The Headers pane is JSON with comments (JSONC) and trailing commas: drop both, then parse.
  function parseHeaders(text) {
    var out = '', i = 0, n = text.length, inString = false;
    while (i < n) {
      var c = text[i];
      if (inString) {
        out += c;
        if (c === '\\' && i + 1 < n) { out += text[i + 1]; i += 2; continue; }
        if (c === '"') inString = false;
        i++;
      } else if (c === '"') { inString = true; out += c; i++; }
      else if (c === '/' && text[i + 1] === '/') { while (i < n && text[i] !== '\n') i++; }
      else if (c === '/' && text[i + 1] === '*') { var end = text.indexOf('*/', i + 2); i = end < 0 ? n : end + 2; }
      else if (c === ',') {
        var j = i + 1;
        while (j < n && /\s/.test(text[j])) j++;
        if (text[j] !== '}' && text[j] !== ']') out += c;
        i++;
      } else { out += c; i++; }
    }
    try {
      var value = JSON.parse(out.trim() || '{}');
      return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
    } catch (e) {
      return {};
    }
  }

  // The headers of the active tab, kept up to date by GraphiQL's callbacks.
  var headers = config.graphiql.defaultHeaders || '';
  try {
    var stored = JSON.parse(localStorage.getItem('graphiql:tabState') || 'null');
    var tab = stored && stored.tabs && stored.tabs[stored.activeTabIndex];
    if (tab && typeof tab.headers === 'string') headers = tab.headers;
  } catch (e) {}

  var options = Object.assign({}, config.graphiql, {
    onEditHeaders: function (value) { headers = value; },
    onTabChange: function (state) {
      var active = state && state.tabs && state.tabs[state.activeTabIndex];
      headers = (active && active.headers) || '';
    },
    // Asked each time the WebSocket (re)connects: it opens for a subscription and closes when the
    // last one ends, so a changed header applies from the next subscription started alone.
    connectionParams: function () {
      var parsed = parseHeaders(headers);
      for (var name in parsed) {
        if (name.toLowerCase() === 'authorization' && typeof parsed[name] === 'string') return { authorization: parsed[name] };
      }
      return {};
    },
  });
  window.addEventListener('DOMContentLoaded', function () {
    YogaGraphiQL.renderYogaGraphiQL(document.getElementById('root'), options);
  });
})();
`;

interface AssetSpec {
  /** The export of @graphql-yoga/render-graphiql/graphiql, or the boot script. */
  source: 'js' | 'css' | 'editorWorkerService' | 'jsonWorker' | 'graphqlWorker' | 'favicon' | 'boot';
  type: string;
}

const ASSETS: Record<string, AssetSpec> = {
  'refgraph-graphiql.js': { source: 'boot', type: 'text/javascript; charset=utf-8' },
  'yoga-graphiql.js': { source: 'js', type: 'text/javascript; charset=utf-8' },
  'yoga-graphiql.css': { source: 'css', type: 'text/css; charset=utf-8' },
  'editor.worker.js': { source: 'editorWorkerService', type: 'text/javascript; charset=utf-8' },
  'json.worker.js': { source: 'jsonWorker', type: 'text/javascript; charset=utf-8' },
  'graphql.worker.js': { source: 'graphqlWorker', type: 'text/javascript; charset=utf-8' },
  'favicon.ico': { source: 'favicon', type: 'image/x-icon' },
};

interface Asset {
  type: string;
  body: Buffer;
  etag: string;
  gzipped: Promise<Buffer> | null;
}

/** The installed version of @graphql-yoga/render-graphiql (its package.json is not exported). */
function renderGraphiQLVersion(): string {
  const entry = createRequire(import.meta.url).resolve('@graphql-yoga/render-graphiql');
  const manifest = JSON.parse(fs.readFileSync(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

/**
 * The Content-Security-Policy of the page: scripts, workers, styles and connections from refgraph
 * only (the WebSocket too: 'self' covers ws: and wss: of the same host), fonts and images the
 * stylesheet inlines as data: URLs. Nothing may load from another host even if it tried.
 */
export const GRAPHIQL_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "worker-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** GraphiQL's page and assets, read from the installed package on first use. */
export class GraphiQLAssets {
  /** Part of every asset URL: changes with the package version and the boot script. */
  readonly key: string;
  private loaded: Promise<Map<string, Asset>> | null = null;

  constructor() {
    this.key = createHash('sha256')
      .update(renderGraphiQLVersion())
      .update('\0')
      .update(BOOT_SCRIPT)
      .digest('hex')
      .slice(0, 12);
  }

  /** Yoga's `renderGraphiQL`: a small page that loads everything from `graphiql/<key>/`. */
  readonly render = (options: GraphiQLOptions): string => {
    const assets = `graphiql/${this.key}/`;
    const config = { assets, graphiql: options };
    // Inside <script type="application/json">: no "</script>" or "<!--" can end it early.
    const json = JSON.stringify(config).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
    return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="referrer" content="no-referrer" />
    <title>${escapeHtml(options.title ?? 'GraphiQL')}</title>
    <link rel="icon" href="${assets}favicon.ico" />
    <link rel="stylesheet" href="${assets}yoga-graphiql.css" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>GraphiQL needs JavaScript.</noscript>
    <div id="root"></div>
    <script type="application/json" id="graphiql-config">${json}</script>
    <script src="${assets}refgraph-graphiql.js"></script>
    <script src="${assets}yoga-graphiql.js"></script>
  </body>
</html>
`;
  };

  /** Sets the page's security and caching headers on Yoga's GraphiQL response. */
  plugin(): Plugin {
    return {
      onResponse: ({ request, response }) => {
        if (request.method !== 'GET' || !response.headers.get('content-type')?.startsWith('text/html')) return;
        response.headers.set('content-type', 'text/html; charset=utf-8');
        response.headers.set('content-security-policy', GRAPHIQL_CSP);
        response.headers.set('cache-control', 'no-cache');
        response.headers.set('x-content-type-options', 'nosniff');
        response.headers.set('referrer-policy', 'no-referrer');
      },
    };
  }

  /** Answers `GET|HEAD /graphiql/<key>/<file>`. */
  async serve(req: IncomingMessage, res: ServerResponse, urlPath: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('Method not allowed.\n');
      return;
    }
    const [key, name, ...rest] = urlPath.slice(GRAPHIQL_ASSETS_PREFIX.length).split('/');
    if (key !== this.key || !name || rest.length > 0 || !Object.hasOwn(ASSETS, name)) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end('No such GraphiQL asset (the page may be from another version of refgraph: reload it).\n');
      return;
    }
    const asset = (await this.load()).get(name)!;
    const headers: Record<string, string> = {
      'content-type': asset.type,
      'cache-control': 'public, max-age=31536000, immutable',
      etag: asset.etag,
      vary: 'Accept-Encoding',
      'x-content-type-options': 'nosniff',
    };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    let body = asset.body;
    if (acceptsGzip(req.headers['accept-encoding'])) {
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
      const bundle = await import('@graphql-yoga/render-graphiql/graphiql');
      const assets = new Map<string, Asset>();
      for (const [name, spec] of Object.entries(ASSETS)) {
        const body =
          spec.source === 'boot'
            ? Buffer.from(BOOT_SCRIPT)
            : spec.source === 'favicon'
              ? Buffer.from(bundle.favicon.slice(bundle.favicon.indexOf(',') + 1), 'base64') // a data:image/x-icon;base64 URL
              : Buffer.from(bundle[spec.source]);
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
        assets.set(name, { type: spec.type, body, etag, gzipped: null });
      }
      return assets;
    })().catch((error: unknown) => {
      this.loaded = null; // try again on the next request
      throw error;
    });
    return this.loaded;
  }
}

/** Does the request's Accept-Encoding allow gzip? */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return !q || Number(q.slice(2)) > 0;
  });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The first tab: where the credential goes, and a query that answers on the demo workspace. */
export const DEFAULT_QUERY = `# refgraph: referral and affiliate programs.
#
# Every operation needs a credential: a secret key
# (rg_test_… / rg_live_…), an access token or a partner
# token. Put it in the Headers pane below, as JSON:
#
#   { "Authorization": "Bearer rg_test_…" }
#
# No key yet? Run
#   npx refgraph seed --demo
# (on the embedded database, while the server is
# stopped). It creates a demo workspace (two programs,
# five partners with links, clicks, conversions,
# rewards) and prints its ADMIN keys, once: the "test"
# key sees the demo data.
# (\`npx refgraph workspace create --name NAME\` makes an
# empty workspace.)
#
# Run with Ctrl-Enter or the ▶ button; the Docs pane
# (top left) describes every type and field.
#
# Subscriptions go over the WebSocket at this same URL
# (graphql-ws), with the Authorization header of the
# Headers pane. In a new tab (+), try
#
#   subscription { events { type occurredAt payload } }
#
# then record a conversion from another tab.

query Demo {
  viewer {
    workspace { name }
    mode
    role
  }
  programs(first: 5) {
    edges {
      node {
        name
        type
        currency
        stats { partners clicks conversions referrals }
        enrollments(first: 5) {
          edges {
            node {
              partner { name externalId }
              links(first: 1) { code url clicks }
            }
          }
        }
      }
    }
  }
}
`;

/** The Headers pane of a new tab: JSON with comments (GraphiQL reads it as JSONC). */
export const DEFAULT_HEADERS = `{
  // Your key or token, e.g. the "test" key that
  // \`npx refgraph seed --demo\` printed:
  // "Authorization": "Bearer rg_test_…"
}
`;

/** refgraph's GraphiQL: the default tab above, the Headers pane open, subscriptions over graphql-ws. */
export const GRAPHIQL_OPTIONS: GraphiQLOptions = {
  title: 'refgraph',
  defaultQuery: DEFAULT_QUERY,
  defaultHeaders: DEFAULT_HEADERS,
  defaultEditorToolsVisibility: 'headers',
  // Keys are secrets: the Headers pane is not kept in the browser's storage unless the user
  // turns that on in GraphiQL's settings.
  shouldPersistHeaders: false,
  subscriptionsProtocol: 'WS',
};
