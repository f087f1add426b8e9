// /widget.js: a partner's referral link (with a copy button) and their counters, rendered into a
// Shadow DOM on a company's page from a partner token:
//
//   <script src="https://refgraph.example/widget.js" data-token="<partner token>" async></script>
//
// It renders after the script tag (or into `data-target="#id"`), and calls /graphql on the
// script's own origin with the token as a Bearer credential (CORS, no cookies). The page's CSS
// cannot reach inside the shadow root and the widget's cannot leak out. Also callable:
// `RefgraphWidget.render({ token, target, origin })`. Plain DOM, no framework: it stays small.
import { formatCount, formatMoneyList } from '../lib/format.js';
import css from './widget.css?inline';

export interface RenderOptions {
  /** A partner token (createPartnerToken). */
  token: string;
  /** Where to render: an element or a selector. Default: a new element after the script tag. */
  target?: Element | string | null;
  /** The refgraph server; default: where widget.js was loaded from. */
  origin?: string;
}

interface WidgetData {
  viewer: {
    partner: {
      name: string | null;
      links: Array<{ url: string; disabled: boolean }>;
      stats: { clicks: number; totalReferrals: number; totalRewards: Array<{ amount: string; currency: string }> };
    } | null;
  };
}

// Checked against the schema by the browser test (test/portal.browser.test.ts).
const QUERY =
  'query RefgraphWidget { viewer { partner { name links(first: 100) { url disabled } stats { clicks totalReferrals totalRewards { amount currency } } } } }';

const script = document.currentScript as HTMLScriptElement | null;
const scriptOrigin = script?.src ? new URL(script.src).origin : location.origin;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Record<string, unknown> = {},
  ...children: Node[]
): HTMLElementTagNameMap[K] {
  const element: HTMLElementTagNameMap[K] = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}

function styleRoot(root: ShadowRoot): void {
  if ('adoptedStyleSheets' in root && 'replaceSync' in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css); // constructed, not a <style> element: a strict style-src on the page does not block it
    root.adoptedStyleSheets = [sheet];
  } else root.append(el('style', { textContent: css }));
}

function stat(label: string, value: string): HTMLElement {
  return el('div', {}, el('dt', { textContent: label }), el('dd', { textContent: value }));
}

/** Renders the widget for `token` into `target`; resolves once it shows the link or a message. */
export async function render(options: RenderOptions): Promise<void> {
  let host: Element | null =
    typeof options.target === 'string' ? document.querySelector(options.target) : (options.target ?? null);
  if (!host) {
    host = el('div');
    if (script?.parentNode && script.parentNode !== document.head) script.after(host);
    else document.body.append(host);
  }
  const root = host.shadowRoot ?? host.attachShadow({ mode: 'open' });
  styleRoot(root);
  const card = el('div', { className: 'card' }, el('p', { className: 'message', textContent: 'Loading…' }));
  card.setAttribute('role', 'region');
  card.setAttribute('aria-label', 'Your referral link');
  root.replaceChildren(card);
  const message = (text: string) => card.replaceChildren(el('p', { className: 'message error', textContent: text }));

  let data: WidgetData | undefined;
  try {
    const response = await fetch(new URL('/graphql', options.origin ?? scriptOrigin), {
      method: 'POST',
      credentials: 'omit',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${options.token}` },
      body: JSON.stringify({ query: QUERY }),
    });
    const body = (await response.json()) as { data?: WidgetData; errors?: Array<{ extensions?: { code?: string } }> };
    if (body.errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED'))
      return message('This referral link has expired: reload the page, or ask us for a new one.');
    data = body.data;
  } catch {
    return message('Your referral link could not be loaded. Please try again later.');
  }
  const partner = data?.viewer.partner;
  const link = partner?.links.find((l) => !l.disabled);
  if (!partner || !link) return message('You have no referral link yet.');

  const input = el('input', { readOnly: true, value: link.url });
  input.setAttribute('aria-label', 'Your referral link');
  const button = el('button', { type: 'button', textContent: 'Copy' });
  const status = el('span');
  status.setAttribute('role', 'status');
  status.style.position = 'absolute'; // visually hidden, read by screen readers (CSSOM, not a style attribute in markup)
  status.style.clipPath = 'inset(50%)';
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(link.url);
    } catch {
      input.select(); // no clipboard access: the link is selected, ready to copy by hand
      return;
    }
    button.textContent = 'Copied';
    button.className = 'copied';
    status.textContent = 'Copied to the clipboard';
    setTimeout(() => {
      button.textContent = 'Copy';
      button.className = '';
      status.textContent = '';
    }, 2000);
  });
  const { stats } = partner;
  card.replaceChildren(
    el('p', { className: 'title', textContent: 'Your referral link' }),
    el('div', { className: 'row' }, input, button, status),
    el(
      'dl',
      {},
      stat('Clicks', formatCount(stats.clicks)),
      stat('Referrals', formatCount(stats.totalReferrals)),
      stat('Rewards', formatMoneyList(stats.totalRewards)),
    ),
  );
}

const token = script?.dataset['token'];
if (token) void render({ token, target: script?.dataset['target'] ?? null });
