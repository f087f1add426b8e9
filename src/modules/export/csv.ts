import { type Stringifier, stringify } from 'csv-stringify';

/**
 * The first characters that make a spreadsheet (Excel, LibreOffice, Google Sheets, Numbers) read a
 * cell as a formula — OWASP's "CSV injection" list, with the full-width forms Numbers normalizes.
 */
const FORMULA_START = new Set(['=', '+', '-', '@', '\t', '\r', '\uFF1D', '\uFF0B', '\uFF0D', '\uFF20']);

/**
 * A cell of text that a client wrote (an external id, an idempotency key, a note), made inert for
 * spreadsheets: when it starts like a formula, a `'` is put in front (`=HYPERLINK(…)` →
 * `'=HYPERLINK(…)`), which spreadsheets show as text. Cells refgraph formats itself (money such as
 * `-12.35`, ids, times, enum values) are never changed: they cannot carry a formula.
 */
export function guardFormula(text: string): string {
  return text.length > 0 && FORMULA_START.has(text[0]!) ? `'${text}` : text;
}

/**
 * RFC 4180 output: fields with a comma, a double quote, CR or LF are quoted and their quotes
 * doubled; records end with CRLF; null cells are empty. No byte-order mark (the charset is in the
 * Content-Type; a BOM would become part of the first header name for most CSV readers).
 */
export function csvStringifier(): Stringifier {
  // quote_record_delimiter: a lone CR or LF in a field is quoted too (with a record delimiter set,
  // csv-stringify would only quote the CRLF pair), or readers would end the record there.
  return stringify({ record_delimiter: 'windows', quote_record_delimiter: true, bom: false, eof: true });
}
