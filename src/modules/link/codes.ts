import { randomInt } from 'node:crypto';

/** Characters of generated codes: no 0/O, 1/I/L, so a code read aloud or from paper survives. */
export const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
export const GENERATED_CODE_LENGTH = 8;

export const VANITY_CODE_MIN = 3;
export const VANITY_CODE_MAX = 32;
const VANITY_CHARSET = /^[A-Za-z0-9_-]*$/;

/**
 * Codes that would read as a part of the product rather than someone's link (paths of this server,
 * common service names). Compared case-insensitively.
 */
export const RESERVED_CODES: ReadonlySet<string> = new Set([
  'admin',
  'api',
  'app',
  'assets',
  'auth',
  'dashboard',
  'graphiql',
  'graphql',
  'health',
  'healthz',
  'help',
  'login',
  'logout',
  'r',
  'readyz',
  'refgraph',
  'root',
  'signin',
  'signup',
  'static',
  'support',
  'system',
  'www',
]);

/** The uniqueness key of a code: codes are unique ignoring case. */
export function normalizeCode(code: string): string {
  return code.toLowerCase();
}

export function isReservedCode(code: string): boolean {
  return RESERVED_CODES.has(normalizeCode(code));
}

/** A random code of GENERATED_CODE_LENGTH characters from CODE_ALPHABET (crypto randomness). */
export function generateCode(): string {
  let code = '';
  for (let i = 0; i < GENERATED_CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return code;
}

/** What is wrong with a vanity code, one message per broken rule; empty when it is acceptable. */
export function vanityCodeProblems(code: string): string[] {
  const problems: string[] = [];
  if (code.length < VANITY_CODE_MIN) problems.push(`A code must be at least ${VANITY_CODE_MIN} characters long.`);
  if (code.length > VANITY_CODE_MAX) problems.push(`A code must be at most ${VANITY_CODE_MAX} characters long.`);
  if (!VANITY_CHARSET.test(code)) problems.push('A code may contain only letters A–Z and a–z, digits, "_" and "-".');
  else if (isReservedCode(code)) problems.push(`"${code}" is a reserved word and cannot be used as a code.`);
  return problems;
}
