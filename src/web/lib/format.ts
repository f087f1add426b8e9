// Formatting shared by the dashboard, the portal and the widget. Money arrives as a Decimal string
// in major units ("12.50") with its ISO 4217 currency: it is shown as it came, never through a
// float, grouped and with the currency's symbol where the browser knows one.

/** "1234.50", "EUR" → "€1,234.50" (in the browser's locale). */
export function formatMoney(amount: string, currency: string, locale?: string): string {
  const negative = amount.startsWith('-');
  const [whole = '0', fraction] = amount.replace(/^[-+]/, '').split('.');
  const parts = new Intl.NumberFormat(locale, { style: 'currency', currency, currencyDisplay: 'narrowSymbol' })
    .formatToParts(0)
    .map((part) => {
      if (part.type === 'integer') return groupDigits(whole, locale);
      if (part.type === 'fraction') return fraction ?? '';
      if (part.type === 'decimal') return fraction ? part.value : '';
      return part.value;
    });
  return `${negative ? '−' : ''}${parts.join('')}`;
}

function groupDigits(digits: string, locale?: string): string {
  const separator =
    new Intl.NumberFormat(locale).formatToParts(1000).find((part) => part.type === 'group')?.value ?? ',';
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, separator);
}

/** A list of amounts in several currencies: "€12.00 · £3.50", or "—" when empty. */
export function formatMoneyList(list: readonly { amount: string; currency: string }[], locale?: string): string {
  return list.length === 0 ? '—' : list.map((money) => formatMoney(money.amount, money.currency, locale)).join(' · ');
}

/** An integer with grouping: 12345 → "12,345". */
export function formatCount(value: number, locale?: string): string {
  return new Intl.NumberFormat(locale).format(value);
}

/** An ISO date-time as the browser's local date and time. */
export function formatDateTime(iso: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}
