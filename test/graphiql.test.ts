// GraphiQL works with no internet access: the page and everything it loads come from refgraph
// itself. Over HTTP: the page names no other host, its assets are cached and compressed. In a real
// browser (Debian's headless Chromium through playwright-core): every request the page makes goes
// to the server (the page is watched by test/helpers/browser.ts: a request to another host, a CSP
// violation or a console error fails the test), the default tab's query runs on the demo data
// with the key typed into the Headers pane, and a subscription runs over the WebSocket.
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_HEADERS, DEFAULT_QUERY } from '../src/graphiql.js';
import { seedDemo, type DemoSeedResult } from '../src/modules/workspace/demo-seed.js';
import { describeBrowser, useBrowser } from './helpers/browser.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
let demo: DemoSeedResult;
beforeAll(async () => {
  server = await startTestServer();
  demo = await seedDemo(server.testDb.db);
});
afterAll(async () => {
  await server?.close();
});

/** A GET whose body is not decoded (fetch would gunzip it). */
function rawGet(
  url: string,
  headers: Record<string, string>,
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

async function page(): Promise<{ html: string; assets: string[]; response: Response }> {
  const response = await fetch(`${server.url}/graphql`, { headers: { accept: 'text/html' } });
  const html = await response.text();
  const assets = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
  return { html, assets, response };
}

describe('the GraphiQL page over HTTP', () => {
  it('names no other host: every asset is a path of refgraph, and the policy allows nothing else', async () => {
    const { html, assets, response } = await page();
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(html).not.toMatch(/https?:\/\/|\/\/[a-z0-9.-]+\.[a-z]{2,}/i); // no absolute or protocol-relative URL
    expect(html).not.toContain('unpkg');
    expect(assets.length).toBeGreaterThanOrEqual(4); // icon, stylesheet, boot script, bundle
    for (const asset of assets) expect(asset).toMatch(/^graphiql\/[0-9a-f]{12}\/[a-z.-]+$/);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("connect-src 'self';");
  });

  it('serves each asset from the installed package, cached for good, gzipped, with an ETag', async () => {
    const { assets } = await page();
    for (const asset of assets) {
      const res = await rawGet(`${server.url}/${asset}`, { 'accept-encoding': 'gzip, deflate, br' });
      expect(res.status, asset).toBe(200);
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(res.headers['vary']).toBe('Accept-Encoding');
      const etag = res.headers['etag'] as string;
      expect(etag).toMatch(/^"[\w-]{22}"$/);
      const zipped = res.body;
      expect(Number(res.headers['content-length'])).toBe(zipped.length);
      expect(gunzipSync(zipped).length).toBeGreaterThan(zipped.length);
      const again = await fetch(`${server.url}/${asset}`, { headers: { 'if-none-match': etag! } });
      expect(again.status).toBe(304);
    }
    const bundle = assets.find((a) => a.endsWith('yoga-graphiql.js'))!;
    const plain = await fetch(`${server.url}/${bundle}`, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(await plain.text()).toContain('renderYogaGraphiQL');
  });

  it('answers 404 for an asset of another version or an unknown file', async () => {
    const { assets } = await page();
    const bundle = assets.find((a) => a.endsWith('yoga-graphiql.js'))!;
    expect((await fetch(`${server.url}/${bundle.replace(/\/[0-9a-f]{12}\//, '/000000000000/')}`)).status).toBe(404);
    expect((await fetch(`${server.url}/${bundle.replace('yoga-graphiql.js', 'nope.js')}`)).status).toBe(404);
    expect((await fetch(`${server.url}/${bundle}`, { method: 'POST' })).status).toBe(405);
  });

  it('opens on a tab that says where the Authorization header goes, with a query for the demo data', async () => {
    expect(DEFAULT_QUERY).toContain('Headers pane');
    expect(DEFAULT_QUERY).toContain('"Authorization": "Bearer rg_test_…"');
    expect(DEFAULT_QUERY).toContain('npx refgraph seed --demo');
    expect(DEFAULT_HEADERS).toContain('// "Authorization": "Bearer rg_test_…"');
    expect(DEFAULT_QUERY + DEFAULT_HEADERS).not.toMatch(/rg_(test|live)_[A-Za-z0-9]/); // no real key
    // The example answers on the demo workspace (the browser test runs it through the UI too).
    const res = await server.gql(DEFAULT_QUERY, {}, demo.keys.test);
    expect(res.errors).toBeUndefined();
    const programs = (
      res.data as { programs: { edges: Array<{ node: { name: string; enrollments: { edges: unknown[] } } }> } }
    ).programs.edges;
    expect(programs.map((e) => e.node.name).sort()).toEqual(['Affiliates', 'Refer a friend']);
    for (const program of programs) expect(program.node.enrollments.edges).toHaveLength(5);
  });
});

describeBrowser('GraphiQL in headless Chromium', () => {
  const browser = useBrowser(() => [server.url]);
  let tab: Page;
  /** Every request the page made, the WebSockets it opened and what it sent on them. */
  const requests: string[] = [];
  const sockets: string[] = [];
  const sentOnSockets: string[] = [];

  beforeEach(async () => {
    // A fresh browser profile per test: nothing kept in storage from another.
    for (const list of [requests, sockets, sentOnSockets]) list.length = 0;
    tab = await browser.open({ viewport: { width: 1400, height: 1400 } });
    tab.setDefaultTimeout(15_000);
    tab.on('request', (request) => requests.push(request.url()));
    tab.on('websocket', (socket) => {
      sockets.push(socket.url());
      socket.on('framesent', ({ payload }) => sentOnSockets.push(String(payload)));
    });
  });

  const HEADERS_TOOL = 'section.graphiql-editor-tool[aria-label="Headers"]';

  /** Replaces the text of the Monaco editor inside `section`. */
  async function typeInto(section: string, text: string): Promise<void> {
    const editor = tab.locator(`${section} .monaco-editor:visible`);
    await editor.click();
    await tab.keyboard.press('ControlOrMeta+A');
    await tab.keyboard.press('Delete');
    await tab.keyboard.insertText(text); // as one input: no auto-closed brackets or quotes
  }

  /** The text an editor shows (its visible lines; Monaco renders spaces as no-break spaces). */
  async function editorText(section: string): Promise<string> {
    // biome-ignore lint/performance/useDomNodeTextContent: innerText keeps the line breaks between Monaco's line elements
    return (await tab.locator(`${section} .view-lines:visible`).innerText()).replace(/\u00a0/g, ' ');
  }
  const responseText = () => editorText('.graphiql-response');

  /** Opens GraphiQL on its default tab and types the demo key into the Headers pane (not kept across loads). */
  async function openWithKey(): Promise<void> {
    await tab.goto(`${server.url}/graphql`);
    await tab.locator('.graphiql-query-editor .view-lines', { hasText: 'query Demo' }).waitFor();
    // The Headers pane is open, with the commented-out example header.
    await tab.locator(`${HEADERS_TOOL} .view-lines`, { hasText: 'Authorization' }).waitFor();
    await typeInto(HEADERS_TOOL, `{ "Authorization": "Bearer ${demo.keys.test}" }`);
  }

  it('loads everything from the server and runs the default tab with the key typed into the Headers pane', async () => {
    await openWithKey();
    expect(await editorText('.graphiql-query-editor')).toContain('Put it in the Headers pane below');
    const answered = tab.waitForResponse(
      (r) =>
        r.url() === `${server.url}/graphql` &&
        r.request().method() === 'POST' &&
        (r.request().postData() ?? '').includes('query Demo'),
    );
    await tab.locator('button.graphiql-execute-button').click();
    const response = await answered;
    expect(response.request().headers()['authorization']).toBe(`Bearer ${demo.keys.test}`);
    const body = (await response.json()) as {
      data?: { viewer: { role: string }; programs: { edges: Array<{ node: { name: string } }> } };
    };
    expect(body.data?.viewer.role).toBe('ADMIN');
    expect(body.data?.programs.edges.map((e) => e.node.name).sort()).toEqual(['Affiliates', 'Refer a friend']);

    // What the user sees: the result pane shows the answer.
    await tab.locator('.graphiql-response .view-lines', { hasText: '"role": "ADMIN"' }).waitFor();
    const shown = await responseText();
    expect(shown).toContain(`"name": "${demo.workspace.name}"`);
    expect(shown).toContain('"mode": "TEST"');
    expect(shown).toMatch(/"name": "(Affiliates|Refer a friend)"/);

    expect(requests.filter((url) => !url.startsWith(`${server.url}/`))).toEqual([]); // every request went to the server
    expect(requests.some((url) => url.endsWith('yoga-graphiql.js'))).toBe(true);
    expect(browser.problems()).toEqual([]);
  });

  it('runs a subscription over the WebSocket of /graphql with the Authorization header as connection_init credential', async () => {
    // events(after:) replays what came after the cursor, then goes live: the partner created after
    // the cursor's event is the subscription's first result, however long the socket takes to open.
    const createPartner = async (externalId: string) => {
      const created = await server.gql(
        'mutation($input: CreatePartnerInput!) { createPartner(input: $input) { userErrors { code } } }',
        { input: { externalId, name: externalId } },
        demo.keys.test,
      );
      expect(created).toEqual({ data: { createPartner: { userErrors: [] } } });
    };
    await createPartner('graphiql-before');
    const before = await server.gql<{ events: { edges: Array<{ cursor: string }> } }>(
      '{ events(types: ["partner.created"], first: 100) { edges { cursor } } }',
      {},
      demo.keys.test,
    );
    const after = before.data!.events.edges.at(-1)!.cursor;
    const externalId = 'graphiql-seen-live';
    await createPartner(externalId);

    await openWithKey();
    await typeInto(
      '.graphiql-query-editor',
      `subscription Live { events(after: "${after}", types: ["partner.created"]) { type payload } }`,
    );
    // GraphiQL has parsed the new document once the tab is named after its operation.
    await tab.locator('.graphiql-tab-active', { hasText: 'Live' }).waitFor();
    const opened = tab.waitForEvent('websocket');
    await tab.locator('button.graphiql-execute-button').click();
    const socket = await opened;
    expect(socket.url()).toBe(`${server.url.replace(/^http/, 'ws')}/graphql`);
    await tab.locator('.graphiql-response .view-lines', { hasText: '"type": "partner.created"' }).waitFor();
    expect(await responseText()).toContain(externalId);
    const init = sentOnSockets.find((frame) => frame.includes('"connection_init"'));
    expect(JSON.parse(init!)).toEqual({
      type: 'connection_init',
      payload: { authorization: `Bearer ${demo.keys.test}` },
    });
    expect(sockets).toEqual([`${server.url.replace(/^http/, 'ws')}/graphql`]);
    expect(browser.problems()).toEqual([]);
  });
});
