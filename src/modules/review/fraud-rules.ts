import { disposableEmailBlocklist } from 'disposable-email-domains-js';

// The fraud rules of a program and the signals a conversion trips (README.md next to this file).
// Everything here is pure: the facts that need the database (whether the IP is one the partner
// used, how many conversions the partner had in the hour) are loaded by recordConversion's
// attribution statement (conversion/attribution-facts.ts `fraudColumns`), only for rules that are on.

/** What a signal says matched: stable names, in the contract's `FraudSignalType`. */
export type FraudSignalType =
  | 'SELF_REFERRAL_EMAIL_DOMAIN'
  | 'SAME_IP_AS_PARTNER'
  | 'VELOCITY'
  | 'DISPOSABLE_EMAIL'
  | 'MANUAL';

export const FRAUD_SIGNAL_TYPES: readonly FraudSignalType[] = [
  'SELF_REFERRAL_EMAIL_DOMAIN',
  'SAME_IP_AS_PARTNER',
  'VELOCITY',
  'DISPOSABLE_EMAIL',
  'MANUAL',
];

/** One reason a conversion waits for review, with what matched in words (never an IP address). */
export interface FraudSignal {
  type: FraudSignalType;
  detail: string;
}

/** A program's fraud rules, as the Program row stores them. */
export interface FraudRules {
  sameIp: boolean;
  emailDomain: boolean;
  disposableEmail: boolean;
  /** More than this many accepted conversions of a partner in the program within an hour trips VELOCITY; null: off. */
  maxConversionsPerHour: number | null;
}

/** The defaults of a new program: the cheap checks on, the velocity rule (a count) off. */
export const DEFAULT_FRAUD_RULES: FraudRules = {
  sameIp: true,
  emailDomain: true,
  disposableEmail: true,
  maxConversionsPerHour: null,
};

export const MAX_CONVERSIONS_PER_HOUR = { min: 1, max: 100_000 } as const;

/**
 * Common webmail domains: two people with addresses there share a provider, not an employer, so
 * the email-domain rule ignores them. A short list on purpose (the big providers and their
 * country variants); a disposable domain is never "the partner's domain" either (it has a rule of
 * its own).
 */
export const WEBMAIL_DOMAINS: ReadonlySet<string> = new Set([
  'gmail.com',
  'googlemail.com',
  'outlook.com',
  'hotmail.com',
  'hotmail.co.uk',
  'hotmail.fr',
  'hotmail.de',
  'hotmail.it',
  'hotmail.es',
  'live.com',
  'live.co.uk',
  'msn.com',
  'yahoo.com',
  'yahoo.co.uk',
  'yahoo.fr',
  'yahoo.de',
  'yahoo.co.jp',
  'ymail.com',
  'rocketmail.com',
  'aol.com',
  'icloud.com',
  'me.com',
  'mac.com',
  'proton.me',
  'protonmail.com',
  'protonmail.ch',
  'pm.me',
  'tutanota.com',
  'tuta.io',
  'fastmail.com',
  'hey.com',
  'zoho.com',
  'gmx.com',
  'gmx.net',
  'gmx.de',
  'web.de',
  't-online.de',
  'mail.com',
  'orange.fr',
  'free.fr',
  'laposte.net',
  'libero.it',
  'yandex.ru',
  'yandex.com',
  'mail.ru',
  'qq.com',
  '163.com',
  '126.com',
  'naver.com',
  'comcast.net',
  'att.net',
  'verizon.net',
]);

/** The maintained list of disposable-email domains (package `disposable-email-domains-js`), loaded once. */
let disposable: ReadonlySet<string> | null = null;
function disposableDomains(): ReadonlySet<string> {
  disposable ??= new Set(disposableEmailBlocklist().map((domain) => domain.toLowerCase()));
  return disposable;
}

/** The domain of an email address, lower case; null when there is none. */
export function emailDomain(email: string | null | undefined): string | null {
  if (!email) return null;
  const at = email.lastIndexOf('@');
  const domain =
    at >= 0
      ? email
          .slice(at + 1)
          .trim()
          .toLowerCase()
      : '';
  return domain.length > 0 ? domain : null;
}

export function isDisposableDomain(domain: string): boolean {
  return disposableDomains().has(domain);
}

export function isWebmailDomain(domain: string): boolean {
  return WEBMAIL_DOMAINS.has(domain);
}

/** What the rules decide on, for one conversion attributed to one partner in one program. */
export interface FraudFacts {
  rules: FraudRules;
  /** The partner the conversion is attributed to. */
  partner: { externalId: string; email: string | null };
  /** The referred person's email: the conversion's, else their referral's. */
  referredEmail: string | null;
  /**
   * Whether the conversion's hashed IP is one the partner used for their own signup (a conversion
   * whose referred person was the partner); null when not checked (rule off, or no IP given).
   */
  ipMatchesPartner: boolean | null;
  /**
   * The partner's accepted conversions in the program that occurred in the hour up to this
   * conversion's occurredAt (this one not included), counted up to the rule's limit (so at most
   * the limit); null when not counted (rule off).
   */
  recentConversions: number | null;
}

/**
 * The signals a conversion trips, in a fixed order (the contract's FraudSignalType order); empty
 * when none. Each `detail` says what matched, in words, and never contains an IP address.
 */
export function evaluateFraud(facts: FraudFacts): FraudSignal[] {
  const { rules } = facts;
  const signals: FraudSignal[] = [];
  const referredDomain = emailDomain(facts.referredEmail);
  const partnerDomain = emailDomain(facts.partner.email);
  if (
    rules.emailDomain &&
    referredDomain !== null &&
    referredDomain === partnerDomain &&
    !isWebmailDomain(referredDomain) &&
    !isDisposableDomain(referredDomain)
  ) {
    signals.push({
      type: 'SELF_REFERRAL_EMAIL_DOMAIN',
      detail: `The referred email is on "${referredDomain}", the domain of the partner’s own email address.`,
    });
  }
  if (rules.sameIp && facts.ipMatchesPartner === true) {
    signals.push({
      type: 'SAME_IP_AS_PARTNER',
      detail:
        'The referred person’s IP address is one the partner used for their own signup (a conversion whose referred person was the partner, ' +
        `externalId "${facts.partner.externalId}"); compared as keyed hashes, the address itself is not stored.`,
    });
  }
  const max = rules.maxConversionsPerHour;
  if (max !== null && facts.recentConversions !== null && facts.recentConversions >= max) {
    signals.push({
      type: 'VELOCITY',
      detail: `With this one, the partner has more than ${max} accepted conversions in this program that occurred within an hour; the program allows ${max} per hour.`,
    });
  }
  if (rules.disposableEmail && referredDomain !== null && isDisposableDomain(referredDomain)) {
    signals.push({
      type: 'DISPOSABLE_EMAIL',
      detail: `The referred email is on "${referredDomain}", a disposable-email domain.`,
    });
  }
  return signals;
}

/** Signals as stored (a JSON array of { type, detail }); anything else in the column is skipped. */
export function signalsOf(value: unknown): FraudSignal[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((entry) => {
    if (!entry || typeof entry !== 'object') return [];
    const { type, detail } = entry as Record<string, unknown>;
    return FRAUD_SIGNAL_TYPES.includes(type as FraudSignalType) && typeof detail === 'string'
      ? [{ type: type as FraudSignalType, detail }]
      : [];
  });
}
