import { formatMinor, type Money } from '../lib/money.js';
import { builder } from './builder.js';

export const MoneyRef = builder.objectRef<Money>('Money').implement({
  description:
    'An exact amount of money. `amount` carries exactly the currency’s minor digits ("5.00", "1500" for JPY).',
  fields: (t) => ({
    amount: t.field({ type: 'Decimal', resolve: (m) => formatMinor(m.amount, m.currency) }),
    currency: t.string({ description: 'ISO 4217 code, e.g. "USD".', resolve: (m) => m.currency }),
  }),
});

export const MoneyInputRef = builder.inputType('MoneyInput', {
  description: 'An amount in major units as a decimal string ("12.50") and an ISO 4217 currency code.',
  fields: (t) => ({
    amount: t.field({ type: 'Decimal', required: true }),
    currency: t.string({ required: true }),
  }),
});
