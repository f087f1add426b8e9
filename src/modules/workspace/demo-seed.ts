import { randomBytes } from 'node:crypto';
import type { PrismaClient } from '../../generated/prisma/client.js';
import type { Mode } from '../../generated/prisma/enums.js';
import { createWorkspace } from './workspace.service.js';

export interface DemoSeedResult {
  workspace: { id: string; name: string };
  keys: { test: string; live: string };
  counts: { programs: number; rewardRules: number; partners: number; links: number };
}

const PARTNERS = [
  ['ada', 'Ada Lovelace', 'ada@example.com'],
  ['grace', 'Grace Hopper', 'grace@example.com'],
  ['alan', 'Alan Turing', 'alan@example.com'],
  ['edsger', 'Edsger Dijkstra', 'edsger@example.com'],
  ['barbara', 'Barbara Liskov', 'barbara@example.com'],
] as const;

/** A demo workspace: in TEST mode a referral and an affiliate program with rules, five partners and their links. */
export async function seedDemo(prisma: PrismaClient): Promise<DemoSeedResult> {
  const created = await createWorkspace(prisma, `Demo ${new Date().toISOString().slice(0, 10)}`);
  const workspaceId = created.workspace.id;
  const mode: Mode = 'TEST';
  const suffix = randomBytes(3).toString('hex');
  const counts = await prisma.$transaction(async (tx) => {
    const referral = await tx.program.create({
      data: { workspaceId, mode, name: 'Refer a friend', type: 'REFERRAL', currency: 'USD', destinationUrl: 'https://example.com/signup' },
    });
    const affiliate = await tx.program.create({
      data: { workspaceId, mode, name: 'Affiliates', type: 'AFFILIATE', currency: 'EUR', holdDays: 30, destinationUrl: 'https://example.com/pricing' },
    });
    const rules = [
      { programId: referral.id, trigger: 'SIGNUP', recipient: 'REFERRED', kind: 'CREDIT', amountType: 'FIXED', fixedAmount: 1000n, fixedCurrency: 'USD' },
      { programId: referral.id, trigger: 'PURCHASE', recipient: 'REFERRER', kind: 'CASH', amountType: 'FIXED', fixedAmount: 2500n, fixedCurrency: 'USD' },
      { programId: affiliate.id, trigger: 'SUBSCRIPTION', recipient: 'REFERRER', kind: 'CASH', amountType: 'PERCENTAGE', percentageBasisPoints: 2000, maxRewardsPerReferral: 12 },
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
            workspaceId, mode, enrollmentId: enrollment.id, programId: program.id, partnerId: partner.id,
            code, codeNormalized: code.toLowerCase(), isDefault: true,
          },
        });
        links++;
      }
    }
    return { programs: 2, rewardRules: rules.length, partners: PARTNERS.length, links };
  });
  return {
    workspace: created.workspace,
    keys: { test: created.keys.test.secret, live: created.keys.live.secret },
    counts,
  };
}
