// Values that are not of their input type (DateTime, Decimal) are the client's mistake: a request
// error with code BAD_USER_INPUT that names the variable, HTTP 400 under
// application/graphql-response+json and 200 under application/json (GraphQL over HTTP), an SSE
// error event, a graphql-ws `error` message — never a 500 or "Unexpected error.". And a
// conversion's occurredAt must fall in the domain's range (VALIDATION, nothing stored).
import { describe, expect, it } from 'vitest';
import { parseDateTime } from '../src/lib/datetime.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { rawSocket } from './helpers/ws.js';

const fixture = useTwoWorkspaces({ names: ['Input values', 'Other'] });

interface Body {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; locations?: unknown; path?: unknown; extensions?: Record<string, unknown> }>;
}

async function post(
  body: unknown,
  accept: string,
): Promise<{ status: number; contentType: string | null; body: Body }> {
  const res = await fetch(`${fixture.server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept, authorization: `Bearer ${fixture.admin}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, contentType: res.headers.get('content-type'), body: (await res.json()) as Body };
}

const GRAPHQL_RESPONSE = 'application/graphql-response+json';
const JSON_TYPE = 'application/json';

const FILTERED =
  'query Filtered($at: DateTime) { conversions(first: 1, filter: { occurredFrom: $at }) { totalCount } }';
const RECORD =
  'mutation Record($input: RecordConversionInput!) { recordConversion(input: $input) { conversion { id occurredAt } userErrors { code field message } } }';

const counts = async () => {
  const where = { workspaceId: fixture.ws.workspace.id };
  const prisma = fixture.server.testDb.db.prisma;
  return { conversions: await prisma.conversion.count({ where }), events: await prisma.event.count({ where }) };
};

describe('the DateTime scalar', () => {
  it('accepts ISO 8601 instants with Z or an offset, fractional seconds, and dates alone', () => {
    const accepted: Array<[string, string]> = [
      ['2026-01-31T12:00:00Z', '2026-01-31T12:00:00.000Z'],
      ['2026-01-31T12:00:00.000Z', '2026-01-31T12:00:00.000Z'],
      ['2026-03-01T10:00:00.123Z', '2026-03-01T10:00:00.123Z'],
      ['2026-03-01T10:00:00.1234567Z', '2026-03-01T10:00:00.123Z'],
      ['2026-03-01T10:00:00.5Z', '2026-03-01T10:00:00.500Z'],
      ['2026-01-31T14:00:00+02:00', '2026-01-31T12:00:00.000Z'],
      ['2026-01-31T00:30:00-05:30', '2026-01-31T06:00:00.000Z'],
      ['2026-01-31T12:00:00-00:00', '2026-01-31T12:00:00.000Z'],
      ['2026-01-31T12:00Z', '2026-01-31T12:00:00.000Z'],
      ['2026-01-31t12:00:00z', '2026-01-31T12:00:00.000Z'],
      ['2026-01-31 12:00:00Z', '2026-01-31T12:00:00.000Z'],
      ['2026-01-31', '2026-01-31T00:00:00.000Z'],
      ['2024-02-29', '2024-02-29T00:00:00.000Z'],
      ['2000-02-29T23:59:59Z', '2000-02-29T23:59:59.000Z'],
      ['1970-01-01T00:00:00Z', '1970-01-01T00:00:00.000Z'],
      ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
    ];
    for (const [text, iso] of accepted) {
      const parsed = parseDateTime(text);
      expect('date' in parsed ? parsed.date.toISOString() : parsed.problem, text).toBe(iso);
    }
  });

  it('refuses dates that do not exist, times without a zone, and instants outside 1970–9999, saying why', () => {
    const refused: Array<[string, RegExp]> = [
      ['2026-02-30', /February 2026 has 28 days/],
      ['2026-02-29T00:00:00Z', /February 2026 has 28 days/],
      ['1900-02-29', /February 1900 has 28 days/],
      ['2026-04-31T00:00:00Z', /April 2026 has 30 days/],
      ['2026-13-01', /no month 13/],
      ['2026-00-10', /no month 0/],
      ['2026-01-00', /January 2026 has 31 days/],
      ['2026-01-31T24:00:00Z', /time of day/],
      ['2026-01-31T12:60:00Z', /time of day/],
      ['2026-01-31T23:59:60Z', /time of day/],
      ['2026-01-31T12:00:00+24:00', /offset/],
      ['2026-01-31T12:00:00', /no time zone/],
      ['2026-01-31T12:00:00.000', /no time zone/],
      ['0000-01-01T00:00:00Z', /out of range/],
      ['1969-12-31T23:59:59.999Z', /out of range/],
      ['1970-01-01T00:30:00+01:00', /out of range/],
      ['9999-12-31T23:00:00-05:00', /out of range/],
      ['+010000-01-01T00:00:00Z', /ISO 8601/],
      ['-000001-01-01T00:00:00Z', /ISO 8601/],
      ['nope', /ISO 8601/],
      ['', /ISO 8601/],
      ['2026-1-31', /ISO 8601/],
      ['2026-01-31T12:00:00+0200', /ISO 8601/],
      ['2026-01-31T12:00:00.Z', /ISO 8601/],
      ['2026-01-31T12:00:00.1234567890Z', /ISO 8601/],
      ['Sat, 31 Jan 2026 12:00:00 GMT', /ISO 8601/],
      [' 2026-01-31', /ISO 8601/],
      ['2026-01-31\n', /ISO 8601/],
      ['1769860800000', /ISO 8601/],
    ];
    for (const [text, problem] of refused) {
      const parsed = parseDateTime(text);
      expect('problem' in parsed ? parsed.problem : parsed.date.toISOString(), JSON.stringify(text)).toMatch(problem);
    }
  });
});

describe('a variable its type refuses', () => {
  it('is a request error naming the variable: HTTP 400 with graphql-response+json, 200 with application/json, nothing executed', async () => {
    const cases: Array<{ query: string; variables: Record<string, unknown>; variable: string; problem: RegExp }> = [
      { query: FILTERED, variables: { at: 'nope' }, variable: '$at', problem: /ISO 8601/ },
      { query: FILTERED, variables: { at: '2026-02-30' }, variable: '$at', problem: /February 2026 has 28 days/ },
      { query: FILTERED, variables: { at: '0000-01-01T00:00:00Z' }, variable: '$at', problem: /out of range/ },
      { query: FILTERED, variables: { at: '1969-12-31T23:59:59Z' }, variable: '$at', problem: /out of range/ },
      { query: FILTERED, variables: { at: 1769860800000 }, variable: '$at', problem: /must be a string/ },
      {
        query: RECORD,
        variables: {
          input: {
            type: 'PURCHASE',
            idempotencyKey: 'decimal-1e5',
            referredExternalId: 'u',
            amount: { amount: '1e5', currency: 'USD' },
          },
        },
        variable: '$input',
        problem: /Decimal must be a string such as "12.50"/,
      },
      {
        query: RECORD,
        variables: {
          input: {
            type: 'PURCHASE',
            idempotencyKey: 'decimal-number',
            referredExternalId: 'u',
            amount: { amount: 12.5, currency: 'USD' },
          },
        },
        variable: '$input',
        problem: /Decimal must be a string/,
      },
      {
        query: RECORD,
        variables: {
          input: {
            type: 'PURCHASE',
            idempotencyKey: 'decimal-long',
            referredExternalId: 'u',
            amount: { amount: '9'.repeat(100_000), currency: 'USD' },
          },
        },
        variable: '$input',
        problem: /Decimal .* got "9999.*\(100002 characters\)/,
      },
      {
        query: RECORD,
        variables: {
          input: {
            type: 'SIGNUP',
            idempotencyKey: 'year-zero',
            referredExternalId: 'u',
            occurredAt: '0000-01-01T00:00:00Z',
          },
        },
        variable: '$input',
        problem: /out of range/,
      },
    ];
    const before = await counts();
    for (const c of cases) {
      for (const [accept, status] of [
        [GRAPHQL_RESPONSE, 400],
        [JSON_TYPE, 200],
      ] as const) {
        const res = await post({ query: c.query, variables: c.variables }, accept);
        const label = `${accept} ${JSON.stringify(c.variables).slice(0, 120)}: ${JSON.stringify(res.body).slice(0, 300)}`;
        expect(res.status, label).toBe(status);
        expect(res.contentType, label).toContain(accept);
        expect(res.body.data, label).toBeUndefined(); // a request error: execution never started
        expect(res.body.errors, label).toHaveLength(1);
        const [error] = res.body.errors!;
        expect(error!.message, label).toContain(`Variable "${c.variable}" got invalid value`);
        expect(error!.message, label).toMatch(c.problem);
        expect(error!.extensions, label).toEqual({ code: 'BAD_USER_INPUT' }); // no internals (Yoga's `http`), no request id
      }
    }
    expect(await counts()).toEqual(before);
  });

  it('in an inline literal is a validation error at the literal', async () => {
    const res = await post(
      { query: '{ conversions(first: 1, filter: { occurredFrom: "2026-02-30" }) { totalCount } }' },
      GRAPHQL_RESPONSE,
    );
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual([
      {
        message: expect.stringContaining('February 2026 has 28 days'),
        locations: [{ line: 1, column: 49 }],
        extensions: { code: 'BAD_USER_INPUT' },
      },
    ]);
    const decimal = await post(
      {
        query:
          'mutation { recordConversion(input: { type: PURCHASE, idempotencyKey: "lit", referredExternalId: "u", amount: { amount: 1e5, currency: "USD" } }) { userErrors { code } } }',
      },
      JSON_TYPE,
    );
    expect(decimal.status).toBe(200);
    expect(decimal.body.errors?.[0]?.message).toMatch(/Decimal must be a string such as "12.50".*got 100000/);
  });

  it('is an SSE error event, not a 500', async () => {
    const res = await fetch(`${fixture.server.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${fixture.admin}`,
      },
      body: JSON.stringify({ query: FILTERED, variables: { at: 'nope' } }),
    });
    expect(res.status).toBe(200); // as Yoga answers a validation error over SSE: the error is in the stream
    const text = await res.text();
    expect(text).toContain('Variable \\"$at\\" got invalid value');
    expect(text).toContain('BAD_USER_INPUT');
    expect(text).not.toContain('Unexpected error');

    const subscription = await fetch(`${fixture.server.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        authorization: `Bearer ${fixture.admin}`,
      },
      body: JSON.stringify({
        query: 'subscription($types: [String!]) { events(types: $types) { sequence } }',
        variables: { types: [1, { a: 2 }] },
      }),
    });
    expect(subscription.status).toBe(200);
    expect(await subscription.text()).toContain('Variable \\"$types\\" got invalid value');
  });

  it('is a graphql-ws `error` message naming the variable; the socket stays usable', async () => {
    const socket = await rawSocket(fixture.server.url, fixture.admin);
    try {
      socket.send({ id: 'q1', type: 'subscribe', payload: { query: FILTERED, variables: { at: '2026-02-30' } } });
      const error = await socket.next('q1');
      expect(error.type).toBe('error');
      expect(error.payload).toEqual([
        {
          message: expect.stringMatching(
            /^Variable "\$at" got invalid value "2026-02-30"; .*February 2026 has 28 days/,
          ),
          locations: [{ line: 1, column: 16 }],
          extensions: { code: 'BAD_USER_INPUT' },
        },
      ]);
      socket.send({
        id: 's1',
        type: 'subscribe',
        payload: {
          query: 'subscription($after: String) { events(after: $after) { sequence } }',
          variables: { after: 42 },
        },
      });
      expect(await socket.next('s1')).toMatchObject({
        type: 'error',
        payload: [{ message: expect.stringContaining('Variable "$after" got invalid value 42') }],
      });

      socket.send({
        id: 'q2',
        type: 'subscribe',
        payload: { query: FILTERED, variables: { at: '2026-02-28T00:00:00Z' } },
      });
      expect(await socket.next('q2')).toMatchObject({
        type: 'next',
        payload: { data: { conversions: { totalCount: expect.any(Number) } } },
      });
    } finally {
      socket.close();
    }
  });
});

describe('recordConversion occurredAt', () => {
  it('must be from 2000 on and at most 5 minutes ahead: VALIDATION at ["input","occurredAt"], nothing stored', async () => {
    const before = await counts();
    for (const occurredAt of [
      '1999-12-31T23:59:59.999Z',
      '1970-01-01T00:00:00Z',
      new Date(Date.now() + 86_400_000).toISOString(),
    ]) {
      const res = await fixture.gql(
        RECORD,
        { input: { type: 'SIGNUP', idempotencyKey: `range-${occurredAt}`, referredExternalId: 'someone', occurredAt } },
        fixture.admin,
      );
      expect(res.errors, occurredAt).toBeUndefined();
      expect(res.data?.['recordConversion'], occurredAt).toEqual({
        conversion: null,
        userErrors: [
          { code: 'VALIDATION', field: ['input', 'occurredAt'], message: expect.stringContaining('occurredAt is') },
        ],
      });
    }
    expect(await counts()).toEqual(before);

    const ok = await fixture.gql(
      RECORD,
      {
        input: { type: 'SIGNUP', idempotencyKey: 'range-ok', referredExternalId: 'someone', occurredAt: '2000-01-01' },
      },
      fixture.admin,
    );
    expect(ok.data?.['recordConversion']).toMatchObject({
      conversion: { occurredAt: '2000-01-01T00:00:00.000Z' },
      userErrors: [],
    });
  });
});
