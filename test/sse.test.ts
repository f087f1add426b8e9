// Subscriptions over Server-Sent Events, as Yoga serves them: POST /graphql with
// `Accept: text/event-stream` and the credential in the Authorization header, the same scoping and
// refusals as over graphql-ws.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventCursor } from '../src/modules/events/events.graphql.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await Promise.all(streams.map((s) => s.close()));
  await server?.close();
});

interface Result<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

interface EventStream<T> {
  status: number;
  contentType: string | null;
  /** The next `next` event's result, waiting up to `timeoutMs`; null when the stream completed instead. */
  next(timeoutMs?: number): Promise<Result<T> | null>;
  close(): Promise<void>;
}

const streams: Array<EventStream<unknown>> = [];

/** POST a subscription with `Accept: text/event-stream` and read the SSE frames as they come. */
async function sse<T>(
  query: string,
  variables: Record<string, unknown>,
  token: string | null,
): Promise<EventStream<T>> {
  const abort = new AbortController();
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
    signal: abort.signal,
  });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  /** Frames are separated by a blank line; `:` lines are keep-alive comments. */
  const frame = async (): Promise<{ event: string; data: string } | null> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const lines = buffer.slice(0, end).split('\n');
        buffer = buffer.slice(end + 2);
        const event = lines
          .find((l) => l.startsWith('event:'))
          ?.slice(6)
          .trim();
        if (!event) continue; // a ping
        return {
          event,
          data: lines
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trim())
            .join('\n'),
        };
      }
      const chunk = await reader.read();
      if (chunk.done) return null;
      buffer += chunk.value;
    }
  };
  // One read at a time: a frame read for a `next` that timed out is the next `next`'s.
  let reading: Promise<{ event: string; data: string } | null> | null = null;
  const stream: EventStream<T> = {
    status: res.status,
    contentType: res.headers.get('content-type'),
    next: async (timeoutMs = 10_000) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no SSE event within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        reading ??= frame();
        const next = await Promise.race([reading, timeout]);
        reading = null;
        if (!next || next.event === 'complete') return null;
        expect(next.event).toBe('next');
        return JSON.parse(next.data) as Result<T>;
      } finally {
        clearTimeout(timer);
      }
    },
    close: async () => {
      abort.abort();
      await reader.cancel().catch(() => {});
    },
  };
  streams.push(stream as EventStream<unknown>);
  return stream;
}

const EVENTS = 'subscription($after: String) { events(after: $after) { sequence type payload } }';
type Events = { events: { sequence: string; type: string; payload: string } };

async function createPartner(token: string, externalId: string): Promise<void> {
  const res = await server.gql(
    'mutation($e: String!) { createPartner(input: { externalId: $e }) { userErrors { code } } }',
    { e: externalId },
    token,
  );
  expect(res.errors).toBeUndefined();
}

describe('subscriptions over SSE', () => {
  it('stream the stored events after a cursor, then live ones', async () => {
    const ws = await server.workspace();
    const token = ws.keys.test.secret;
    await createPartner(token, 'stored');
    const stream = await sse<Events>(EVENTS, { after: eventCursor(0n) }, token);
    expect(stream.status).toBe(200);
    expect(stream.contentType).toContain('text/event-stream');
    expect((await stream.next())?.data?.events).toMatchObject({ sequence: '1', type: 'partner.created' });
    // Committed after the replay was delivered: it can only come live.
    await createPartner(token, 'live');
    const live = await stream.next();
    expect(live?.data?.events).toMatchObject({ sequence: '2', type: 'partner.created' });
    expect(JSON.parse(live!.data!.events.payload)).toMatchObject({ externalId: 'live' });
    await stream.close();
  });

  it('deliver only the credential’s workspace and mode', async () => {
    const a = await server.workspace('A');
    const b = await server.workspace('B');
    const stream = await sse<Events>(EVENTS, { after: eventCursor(0n) }, a.keys.test.secret);
    await createPartner(b.keys.test.secret, 'other-workspace');
    await createPartner(a.keys.live.secret, 'other-mode');
    await createPartner(a.keys.test.secret, 'mine');
    const next = await stream.next();
    expect(next?.data?.events.sequence).toBe('1');
    expect(JSON.parse(next!.data!.events.payload)).toMatchObject({ externalId: 'mine' });
    await stream.close();
  });

  it('push conversions with the resolved subject (conversionRecorded)', async () => {
    const ws = await server.workspace();
    const token = ws.keys.test.secret;
    const program = await server.gql<{ createProgram: { program: { id: string } } }>(
      'mutation { createProgram(input: { name: "SSE", type: REFERRAL, currency: "USD" }) { program { id } } }',
      {},
      token,
    );
    const programId = program.data!.createProgram.program.id;
    const partner = await server.gql<{ createPartner: { partner: { links: Array<{ code: string }> } } }>(
      'mutation($p: ID!) { createPartner(input: { externalId: "ann", name: "Ann", programIds: [$p] }) { partner { links { code } } } }',
      { p: programId },
      token,
    );
    const code = partner.data!.createPartner.partner.links[0]!.code;
    const stream = await sse<{ conversionRecorded: { id: string; partner: { name: string } } }>(
      'subscription($p: ID) { conversionRecorded(programId: $p) { id partner { name } } }',
      { p: programId },
      token,
    );
    // Live-only, and an SSE client cannot tell when the subscription has started: record until one arrives.
    const recorded: string[] = [];
    let got: Result<{ conversionRecorded: { id: string; partner: { name: string } } }> | null = null;
    while (!got) {
      expect(recorded.length, 'no conversion arrived over SSE').toBeLessThan(10);
      const res = await server.gql<{ recordConversion: { conversion: { id: string } } }>(
        'mutation($k: String!, $c: String!) { recordConversion(input: { type: SIGNUP, idempotencyKey: $k, referredExternalId: $k, code: $c }) { conversion { id } } }',
        { k: `sse-${recorded.length}`, c: code },
        token,
      );
      recorded.push(res.data!.recordConversion.conversion.id);
      got = await stream.next(1000).catch(() => null);
    }
    expect(got.data?.conversionRecorded.partner).toEqual({ name: 'Ann' });
    expect(recorded).toContain(got.data?.conversionRecorded.id);
    await stream.close();
  });

  it('refuse a request without a credential with UNAUTHENTICATED', async () => {
    const stream = await sse<Events>(EVENTS, {}, null);
    const result = await stream.next();
    expect(result?.data ?? null).toBeNull();
    expect(result?.errors).toMatchObject([{ extensions: { code: 'UNAUTHENTICATED' } }]);
    expect(await stream.next()).toBeNull(); // and the stream completes
  });

  it('refuse an unknown key with UNAUTHENTICATED and the reason', async () => {
    const stream = await sse<Events>(EVENTS, {}, 'rg_test_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB');
    const result = await stream.next();
    expect(result?.errors).toMatchObject([
      { message: expect.stringContaining('Unknown secret key'), extensions: { code: 'UNAUTHENTICATED' } },
    ]);
  });

  it('refuse a program-wide stream to a PARTNER token', async () => {
    const ws = await server.workspace();
    const created = await server.gql<{ createPartner: { partner: { id: string } } }>(
      'mutation { createPartner(input: { externalId: "p" }) { partner { id } } }',
      {},
      ws.keys.test.secret,
    );
    const token = await server.gql<{ createPartnerToken: { token: string } }>(
      'mutation($id: ID!) { createPartnerToken(input: { partnerId: $id }) { token } }',
      { id: created.data!.createPartner.partner.id },
      ws.keys.test.secret,
    );
    const stream = await sse('subscription { conversionRecorded { id } }', {}, token.data!.createPartnerToken.token);
    expect((await stream.next())?.errors).toMatchObject([{ extensions: { code: 'FORBIDDEN_FOR_ROLE' } }]);
  });
});
