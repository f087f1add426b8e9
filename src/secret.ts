import { randomBytes } from 'node:crypto';
import type { Database } from './db.js';

const SETTING_KEY = 'installation_secret';

/**
 * The installation secret signs tokens and keys IP hashes. REFGRAPH_SECRET wins; otherwise one is
 * generated on first start and kept in the database, so every instance on the same database
 * agrees on it (the first writer wins, the others read it back).
 */
export async function loadInstallationSecret(db: Database, configured: string | undefined): Promise<string> {
  if (configured) return configured;
  await db.prisma.setting.createMany({
    data: [{ key: SETTING_KEY, value: randomBytes(48).toString('base64url') }],
    skipDuplicates: true,
  });
  const row = await db.prisma.setting.findUniqueOrThrow({ where: { key: SETTING_KEY } });
  return row.value;
}
