// conversions(filter: { idempotencyKey, referredExternalId }) (issue 14, item 2): find a
// conversion by the company's own ids, within the caller's workspace, mode and partner scope.
import { beforeAll, describe, expect, it } from 'vitest';
import { factories, gid } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';
import { partnerToken } from './helpers/money.js';

const fixture = useTwoWorkspaces({ names: ['Filters A', 'Filters B'] });

const QUERY = `query($filter: ConversionFilter) { conversions(first: 50, filter: $filter) { totalCount edges { node { id } } } }`;
const ids: Record<string, string> = {};
let alice = '';
let bob = '';

beforeAll(async () => {
  const f = factories(fixture.server.testDb.db.prisma, fixture.tenant);
  const program = await f.program();
  alice = (await f.partner()).id;
  bob = (await f.partner()).id;
  const rows = await f.conversions([
    { idempotencyKey: 'order-1', referredExternalId: 'cust-1', programId: program.id, partnerId: alice },
    { idempotencyKey: 'order-2', referredExternalId: 'cust-1', programId: program.id, partnerId: alice },
    { idempotencyKey: 'order-3', referredExternalId: 'cust-2', programId: program.id, partnerId: bob },
  ]);
  rows.forEach((r) => {
    ids[r.idempotencyKey] = gid('Conversion', r.id);
  });
  // The same keys and person in the other workspace and in LIVE: never found from here.
  for (const tenant of [fixture.otherTenant, { ...fixture.tenant, mode: 'LIVE' as const }]) {
    await factories(fixture.server.testDb.db.prisma, tenant).conversions([
      { idempotencyKey: 'order-1', referredExternalId: 'cust-1' },
    ]);
  }
});

async function found(filter: Record<string, unknown>, token?: string): Promise<string[]> {
  const res = await fixture.gql<{ conversions: { edges: Array<{ node: { id: string } }> } }>(
    QUERY,
    { filter },
    token ?? fixture.admin,
  );
  expect(res.errors).toBeUndefined();
  return res.data!.conversions.edges.map((e) => e.node.id).sort();
}

describe('conversions(filter)', () => {
  it('finds a conversion by its idempotencyKey, and a person’s conversions by referredExternalId', async () => {
    expect(await found({ idempotencyKey: 'order-2' })).toEqual([ids['order-2']]);
    expect(await found({ idempotencyKey: 'order-9' })).toEqual([]);
    expect(await found({ referredExternalId: '  cust-1 ' })).toEqual([ids['order-1'], ids['order-2']].sort());
    expect(await found({ referredExternalId: 'cust-1', idempotencyKey: 'order-3' })).toEqual([]);
  });

  it('never reaches another workspace or the other mode; PARTNER tokens are refused', async () => {
    expect(await found({ idempotencyKey: 'order-1' }, fixture.otherAdmin)).toHaveLength(1);
    expect(await found({ idempotencyKey: 'order-1' }, fixture.otherAdmin)).not.toContain(ids['order-1']);
    expect(await found({ referredExternalId: 'cust-1' }, fixture.liveAdmin)).not.toContain(ids['order-1']);
    // Query.conversions is a workspace-wide read: a PARTNER token is refused whatever the filter.
    const bobs = await partnerToken(fixture.server, fixture.admin, bob);
    const res = await fixture.gql(QUERY, { filter: { idempotencyKey: 'order-3' } }, bobs);
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN_FOR_ROLE');
    expect(alice).not.toBe('');
  });
});
