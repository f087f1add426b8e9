// Rules limited to products (issue 16, item 3): createRewardRule(productIds) and
// recordConversion(productId) through the API; a rule with none rewards every product.
import { beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.js';
import { factories, gid } from './helpers/factories.js';
import { useTwoWorkspaces } from './helpers/fixture.js';

const fixture = useTwoWorkspaces({ names: ['Products A', 'Products B'] });

const CREATE_RULE = graphql(`
  mutation RP_CreateRule($input: CreateRewardRuleInput!) {
    createRewardRule(input: $input) { rewardRule { id productIds } userErrors { code field message } }
  }
`);
const UPDATE_RULE = graphql(`
  mutation RP_UpdateRule($input: UpdateRewardRuleInput!) {
    updateRewardRule(input: $input) { rewardRule { id version productIds } userErrors { code field message } }
  }
`);
const RECORD = graphql(`
  mutation RP_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion { productId rewards { rule { id } } skippedRules { rule { id } reason message } }
      userErrors { code field message }
    }
  }
`);

let program = '';
let code = '';
beforeAll(async () => {
  const f = factories(fixture.server.testDb.db.prisma, fixture.tenant);
  const p = await f.program();
  program = gid('Program', p.id);
  const partner = await f.partner();
  code = (await f.link(await f.enrollment({ programId: p.id, partnerId: partner.id }))).code;
});

const rule = (productIds?: string[] | null) =>
  fixture.gql(
    CREATE_RULE,
    {
      input: {
        programId: program,
        trigger: 'PURCHASE',
        kind: 'CASH',
        amountType: 'FIXED',
        fixedAmount: { amount: '5.00', currency: 'USD' },
        ...(productIds === undefined ? {} : { productIds }),
      },
    },
    fixture.admin,
  );

let n = 0;
const purchase = async (productId?: string) => {
  const res = await fixture.gql(
    RECORD,
    {
      input: {
        type: 'PURCHASE',
        idempotencyKey: `rp-${++n}`,
        referredExternalId: `rp-${n}`,
        code,
        amount: { amount: '10.00', currency: 'USD' },
        ...(productId === undefined ? {} : { productId }),
      },
    },
    fixture.admin,
  );
  expect(res.data!.recordConversion.userErrors).toEqual([]);
  return res.data!.recordConversion.conversion!;
};

describe('rules limited to products', () => {
  let limited = '';
  let open = '';

  it('stores productIds trimmed, once each; [] or none means every product', async () => {
    const res = await rule([' pro ', 'team', 'pro', '']);
    expect(res.data!.createRewardRule.rewardRule!.productIds).toEqual(['pro', 'team']);
    limited = res.data!.createRewardRule.rewardRule!.id;
    const all = await rule();
    expect(all.data!.createRewardRule.rewardRule!.productIds).toBeNull();
    open = all.data!.createRewardRule.rewardRule!.id;
    const tooMany = await rule(Array.from({ length: 101 }, (_, i) => `p${i}`));
    expect(tooMany.data!.createRewardRule.userErrors).toEqual([
      expect.objectContaining({ code: 'VALIDATION', field: ['input', 'productIds'] }),
    ]);
  });

  it('a conversion of a listed product earns from both rules; another product or none only from the open one', async () => {
    const pro = await purchase('pro');
    expect(pro.productId).toBe('pro');
    expect(pro.rewards.map((r) => r.rule.id).sort()).toEqual([limited, open].sort());
    for (const productId of ['basic', undefined]) {
      const other = await purchase(productId);
      expect(other.rewards.map((r) => r.rule.id)).toEqual([open]);
      expect(other.skippedRules).toEqual([
        { rule: { id: limited }, reason: 'PRODUCT_MISMATCH', message: expect.stringContaining('"pro", "team"') },
      ]);
    }
  });

  it('an edit of productIds makes the next version; the same list again changes nothing', async () => {
    const same = await fixture.gql(UPDATE_RULE, { input: { id: limited, productIds: ['pro', 'team'] } }, fixture.admin);
    expect(same.data!.updateRewardRule.rewardRule!.version).toBe(1);
    const edited = await fixture.gql(UPDATE_RULE, { input: { id: limited, productIds: ['basic'] } }, fixture.admin);
    expect(edited.data!.updateRewardRule.rewardRule).toMatchObject({ version: 2, productIds: ['basic'] });
    const basic = await purchase('basic');
    expect(basic.rewards).toHaveLength(2);
    const cleared = await fixture.gql(UPDATE_RULE, { input: { id: limited, productIds: null } }, fixture.admin);
    expect(cleared.data!.updateRewardRule.rewardRule).toMatchObject({ version: 3, productIds: null });
  });
});
