import type { Program } from '../../generated/prisma/client.js';
import { builder } from '../../graphql/builder.js';
import { FRAUD_SIGNAL_TYPES, type FraudSignal, MAX_CONVERSIONS_PER_HOUR } from './fraud-rules.js';

// The GraphQL shapes of fraud rules and signals, shared by the program module (Program.fraudRules
// and the program inputs) and the review module (signals of conversions and review items).

export const FraudSignalTypeEnum = builder.enumType('FraudSignalType', {
  description: 'What a fraud signal says matched (see `FraudRules` for when each is raised).',
  values: Object.fromEntries(
    FRAUD_SIGNAL_TYPES.map((type) => [
      type,
      {
        description: {
          SELF_REFERRAL_EMAIL_DOMAIN:
            'The referred email is on the partner’s own email domain (common webmail domains never match).',
          SAME_IP_AS_PARTNER: 'The referred person’s IP address is one the partner used for their own signup.',
          VELOCITY: 'The partner had more accepted conversions in the program within an hour than the program allows.',
          DISPOSABLE_EMAIL: 'The referred email is on a disposable-email domain.',
          MANUAL: 'An admin flagged the conversion by hand (flagConversion); `detail` is their note.',
        }[type],
      },
    ]),
  ) as Record<FraudSignal['type'], { description: string }>,
});

export const FraudSignalRef = builder.objectRef<FraudSignal>('FraudSignal').implement({
  description:
    'One reason a conversion waits for review: what matched, in words. Never contains an IP address (IPs are compared as keyed hashes).',
  fields: (t) => ({
    type: t.field({ type: FraudSignalTypeEnum, resolve: (s) => s.type }),
    detail: t.string({
      description:
        'What matched, for a person: e.g. the email domain and that it is the partner’s, or the count and the limit.',
      resolve: (s) => s.detail,
    }),
  }),
});

export const FraudRulesRef = builder.objectRef<Program>('FraudRules').implement({
  description:
    'A program’s fraud rules. An ACCEPTED conversion that trips one is still recorded and attributed (nothing is lost), with its `signals`, but its rewards wait in an OPEN review item (`reviewQueue`): the approval job never approves them until an admin approves the item (`resolveReviewItems`). The cheap checks are on by default; the velocity rule is off until set. Discarded conversions are not checked (they earn nothing).',
  fields: (t) => ({
    sameIpAsPartner: t.boolean({
      description:
        'SAME_IP_AS_PARTNER: the referred person’s IP (recordConversion `ip`) is one the partner used for their own signup — a conversion of this workspace and mode whose `referredExternalId` is the partner’s `externalId` (their own signup as a customer, attributed or not), recorded with an `ip`. Compared as keyed hashes. Only checked when the conversion gives an `ip`. Default true.',
      resolve: (p) => p.fraudSameIp,
    }),
    selfReferralEmailDomain: t.boolean({
      description:
        'SELF_REFERRAL_EMAIL_DOMAIN: the referred email (the conversion’s, else the referral’s) is on the same domain as the partner’s email (exactly, ignoring case: a subdomain is another domain), unless it is a common webmail domain (gmail.com, outlook.com, …) or a disposable one. The same address is a self-referral, discarded unless `allowSelfReferral`. Default true.',
      resolve: (p) => p.fraudEmailDomain,
    }),
    disposableEmail: t.boolean({
      description:
        'DISPOSABLE_EMAIL: the referred email is on a disposable-email domain (a maintained list, updated with refgraph’s releases). Default true.',
      resolve: (p) => p.fraudDisposableEmail,
    }),
    maxConversionsPerPartnerPerHour: t.int({
      nullable: true,
      description:
        'VELOCITY: a conversion is flagged when, with it, the partner has more than this many ACCEPTED conversions (refunds not counted) in this program that occurred within the hour up to its `occurredAt` (both ends included): with 5, the sixth in an hour is flagged. Null (the default): off.',
      resolve: (p) => p.fraudMaxConversionsPerHour,
    }),
  }),
});

export const FraudRulesInputRef = builder.inputType('FraudRulesInput', {
  description:
    'Fraud rules to set (see `FraudRules` for each). Creating: an omitted rule takes its default. Updating: only the rules given change; a boolean cannot be null; `maxConversionsPerPartnerPerHour: null` turns the velocity rule off.',
  fields: (t) => ({
    sameIpAsPartner: t.boolean({ description: 'Default true.' }),
    selfReferralEmailDomain: t.boolean({ description: 'Default true.' }),
    disposableEmail: t.boolean({ description: 'Default true.' }),
    maxConversionsPerPartnerPerHour: t.int({
      description: `${MAX_CONVERSIONS_PER_HOUR.min}–${MAX_CONVERSIONS_PER_HOUR.max}, or null for off (the default).`,
    }),
  }),
});
