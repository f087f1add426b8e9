import { hash, verify } from '@node-rs/argon2';
import { DomainError } from '../../domain/errors.js';

/** Shortest and longest password accepted (characters). */
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 256;

/**
 * argon2id (the library's defaults, OWASP's first recommendation: 19 MiB of memory, 2 passes,
 * 1 lane; a 16-byte random salt), stored as the PHC string, which carries its parameters: hashes
 * made with other parameters later still verify.
 */
const OPTIONS = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** A password's slow hash (PHC string). */
export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

let dummy: Promise<string> | null = null;

/**
 * Whether `password` matches `passwordHash`. Without a hash (an unknown email) a dummy hash is
 * verified anyway, so an unknown email costs the same time as a wrong password.
 */
export async function checkPassword(passwordHash: string | null, password: string): Promise<boolean> {
  if (!passwordHash) {
    dummy ??= hashPassword('refgraph: no such member, no such password');
    await verify(await dummy, password).catch(() => false);
    return false;
  }
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

/** A new password, checked: 12 to 256 characters (VALIDATION on `field` otherwise). */
export function checkNewPassword(password: string, field: string[]): string {
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH) {
    throw new DomainError(
      'VALIDATION',
      `A password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters long (got ${length}): a few unrelated words make a good one.`,
      field,
    );
  }
  return password;
}
