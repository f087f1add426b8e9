import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Mode } from '../../generated/prisma/enums.js';

/** A new secret key: `rg_test_…` or `rg_live_…` followed by 192 random bits. */
export function generateSecretKey(mode: Mode): string {
  return `rg_${mode.toLowerCase()}_${randomBytes(24).toString('base64url')}`;
}

/** The public half of a key pair, used with the secret by issueAccessToken. */
export function generateAccessKeyId(mode: Mode): string {
  return `rgk_${mode.toLowerCase()}_${randomBytes(9).toString('hex')}`;
}

/** Secrets are long random strings, so a plain SHA-256 is the right hash (no salt or stretching needed). */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Constant-time equality of two hex digests. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The mode a secret key claims by its prefix, or null if it is not shaped like one. */
export function secretKeyMode(secret: string): Mode | null {
  const match = /^rg_(test|live)_[A-Za-z0-9_-]{20,}$/.exec(secret);
  return match ? (match[1] === 'test' ? 'TEST' : 'LIVE') : null;
}

/** Shown in key lists so a person can tell keys apart without the secret. */
export function secretHint(secret: string): string {
  return `${secret.slice(0, 12)}…`;
}
