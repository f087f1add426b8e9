import { randomBytes } from 'node:crypto';
import type { Database } from '../../db.js';
import type { Mode } from '../../generated/prisma/enums.js';
import type { Tenant } from '../../domain/tenant.js';
import { recordConversion } from '../conversion/record.service.js';
import { createPayout } from '../payout/payout.service.js';
import { UuidV7Generator, formatUuid } from '../../lib/uuid.js';
import { updateRewardStatuses } from '../reward/lifecycle.js';
import { createWorkspace } from './workspace.service.js';
import { createActiveMember } from '../member/member.service.js';

export interface DemoSeedResult {
  workspace: { id: string; name: string };
  keys: { test: string; live: string };
  /** A demo ADMIN member to sign in to the dashboard with (the password is shown this once). */
  member: { email: string; password: string };
  counts: {
    programs: number;
    rewardRules: number;
    partners: number;
    links: number;
    clicks: number;
    conversions: number;
    rewards: number;
    payouts: number;
  };
}

const PARTNERS = [
  ['ada', 'Ada Lovelace', 'ada@example.com'],
  ['grace', 'Grace Hopper', 'grace@example.com'],
  ['alan', 'Alan Turing', 'alan@example.com'],
  ['edsger', 'Edsger Dijkstra', 'edsger@example.com'],
  ['barbara', 'Barbara Liskov', 'barbara@example.com'],
] as const;

/** A demo workspace: in TEST mode a referral and an affiliate program with rules, five partners and their links. */
export async function seedDemo(db: Database): Promise<DemoSeedResult> {
  const { prisma } = db;
  const created = await createWorkspace(prisma, `Demo ${new Date().toISOString().slice(0, 10)}`);
  const workspaceId = created.workspace.id;
  const mode: Mode = 'TEST';
  const suffix = randomBytes(3).toString('hex');
  const counts = await prisma.$transaction(async (tx) => {
    const referral = await tx.program.create({
      data: {
        workspaceId,
        mode,
        name: 'Refer a friend',
        type: 'REFERRAL',
        currency: 'USD',
        destinationUrl: 'https://example.com/signup',
      },
    });
    const affiliate = await tx.program.create({
      data: {
        workspaceId,
        mode,
        name: 'Affiliates',
        type: 'AFFILIATE',
        currency: 'EUR',
        holdDays: 30,
        destinationUrl: 'https://example.com/pricing',
      },
    });
    const rules = [
      {
        programId: referral.id,
        trigger: 'SIGNUP',
        recipient: 'REFERRED',
        kind: 'CREDIT',
        amountType: 'FIXED',
        fixedAmount: 1000n,
        fixedCurrency: 'USD',
      },
      {
        programId: referral.id,
        trigger: 'PURCHASE',
        recipient: 'REFERRER',
        kind: 'CASH',
        amountType: 'FIXED',
        fixedAmount: 2500n,
        fixedCurrency: 'USD',
      },
      {
        programId: affiliate.id,
        trigger: 'SUBSCRIPTION',
        recipient: 'REFERRER',
        kind: 'CASH',
        amountType: 'PERCENTAGE',
        percentageBasisPoints: 2000,
        maxRewardsPerReferral: 12,
      },
    ] as const;
    for (const rule of rules) {
      const lineageId = crypto.randomUUID();
      await tx.rewardRule.create({ data: { id: lineageId, lineageId, workspaceId, mode, ...rule } });
    }
    let links = 0;
    for (const [externalId, name, email] of PARTNERS) {
      const partner = await tx.partner.create({ data: { workspaceId, mode, externalId, name, email } });
      for (const program of [referral, affiliate]) {
        const enrollment = await tx.enrollment.create({
          data: { workspaceId, mode, programId: program.id, partnerId: partner.id, status: 'APPROVED' },
        });
        const code = `${externalId}-${program.type === 'REFERRAL' ? 'friends' : 'aff'}-${suffix}`;
        await tx.referralLink.create({
          data: {
            workspaceId,
            mode,
            enrollmentId: enrollment.id,
            programId: program.id,
            partnerId: partner.id,
            code,
            codeNormalized: code.toLowerCase(),
            isDefault: true,
          },
        });
        links++;
      }
    }
    return { programs: 2, rewardRules: rules.length, partners: PARTNERS.length, links };
  });
  const activity = await seedActivity(db, { workspaceId, mode });
  // demo@example.com, unless an earlier demo took it (a sign-in without a workspace picks the
  // email's oldest membership): then demo+<suffix>@example.com.
  const taken = await prisma.member.count({ where: { email: 'demo@example.com' } });
  const email = taken === 0 ? 'demo@example.com' : `demo+${suffix}@example.com`;
  const password = `demo-${randomBytes(9).toString('base64url')}`;
  await createActiveMember(prisma, workspaceId, { email, name: 'Demo Admin', role: 'ADMIN', password });
  return {
    workspace: created.workspace,
    keys: { test: created.keys.test.secret, live: created.keys.live.secret },
    member: { email, password },
    counts: { ...counts, ...activity },
  };
}

/**
 * Traffic through the real services: clicks on every link, signups and purchases attributed by
 * code (rewards from the rules), the referrer rewards approved, and one partner paid out.
 */
async function seedActivity(
  db: Database,
  tenant: Tenant,
): Promise<{ clicks: number; conversions: number; rewards: number; payouts: number }> {
  const { prisma } = db;
  const links = await prisma.referralLink.findMany({
    where: tenant,
    include: { program: true },
    orderBy: { code: 'asc' },
  });
  const now = Date.now();
  const clickIds = new UuidV7Generator();
  const clicks = links.flatMap((link, i) =>
    Array.from({ length: 20 + i * 7 }, (_, n) => ({
      id: formatUuid(clickIds.next(now - (n + 1) * 3_600_000).bytes),
      ...tenant,
      linkId: link.id,
      programId: link.programId,
      partnerId: link.partnerId,
      occurredAt: new Date(now - (n + 1) * 3_600_000),
      userAgent: 'Mozilla/5.0 (demo)',
    })),
  );
  await prisma.click.createMany({ data: clicks });

  const options = { actor: 'system:seed', decodeClick: () => null, hashIp: () => null };
  const rewardIds: string[] = [];
  let conversions = 0;
  for (const [i, link] of links.entries()) {
    for (let n = 0; n < 1 + (i % 3); n++) {
      const customer = `customer-${link.code}-${n}`;
      const amount = { amount: `${49 + i * 10}.00`, currency: link.program.currency };
      const signup = await recordConversion(
        db,
        tenant,
        { type: 'SIGNUP', idempotencyKey: `seed-signup-${customer}`, referredExternalId: customer, code: link.code },
        options,
      );
      const paid = await recordConversion(
        db,
        tenant,
        {
          type: link.program.type === 'REFERRAL' ? 'PURCHASE' : 'SUBSCRIPTION',
          idempotencyKey: `seed-pay-${customer}`,
          referredExternalId: customer,
          amount,
        },
        options,
      );
      conversions += 2;
      rewardIds.push(
        ...[...signup.rewards, ...paid.rewards].filter((r) => r.recipient === 'REFERRER').map((r) => r.id),
      );
    }
  }
  await updateRewardStatuses(prisma, tenant, {
    ids: rewardIds.map((id) => ({ given: id, rowId: id })),
    status: 'APPROVED',
    actor: 'system:seed',
  });
  const first = links[0];
  let payouts = 0;
  if (first) {
    await createPayout(prisma, tenant, { partnerId: first.partnerId, currency: first.program.currency });
    payouts = 1;
  }
  const rewards = await prisma.reward.count({ where: tenant });
  return { clicks: clicks.length, conversions, rewards, payouts };
}
