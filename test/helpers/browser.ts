// Browser tests with Debian's headless Chromium through playwright-core. One browser per test
// file (`useBrowser`), a fresh context (empty storage) and page per `open`, and a watch on each page
// that fails the test on any request to another origin than those allowed, any Content-Security-
// Policy violation, any console error and any uncaught page error. Without Chromium the suites
// skip, saying why, except with CI=true, where they fail.
//
//   const browser = useBrowser(() => [server.url]);
//   describeBrowser('the portal', () => {
//     it('shows the link', async () => {
//       const page = await browser.open();
//       await page.goto(`${server.url}/portal/#token=${token}`);
//       await expect(page.getByRole('heading', { name: 'Ada' })).toBeVisible();
//       await screenshot(page, 'portal-desktop');
//     });
//   });
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe } from 'vitest';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const chromiumPresent = fs.existsSync(CHROMIUM);
const ci = ['true', '1'].includes((process.env.CI ?? '').toLowerCase());

/** Why the browser suites skip here, or null when they run (always with CI=true: a missing Chromium fails). */
export const browserSkipReason =
  chromiumPresent || ci
    ? null
    : `${CHROMIUM} is not installed (apt-get install chromium, or set CHROMIUM_PATH; with CI=true this fails)`;

/** `describe` for browser tests: skipped (with the reason in its name) when Chromium is missing outside CI. */
export function describeBrowser(name: string, suite: () => void): void {
  if (browserSkipReason) {
    console.warn(`${name}: skipped: ${browserSkipReason}`);
    describe.skip(`${name} (skipped: ${browserSkipReason})`, suite);
  } else describe(name, suite);
}

/** Desktop and phone viewports the pages must render well at. */
export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

export interface OpenOptions {
  /** Default: DESKTOP. */
  viewport?: { width: number; height: number };
  /** Origins the page may reach besides those given to useBrowser (e.g. a host page's own server). */
  alsoAllow?: string[];
  /** Console errors that are expected (e.g. the browser's own line for a 401 the test provokes). */
  expectedConsoleErrors?: RegExp[];
  /** Passed to browser.newContext (e.g. `permissions: ['clipboard-read', 'clipboard-write']`). */
  context?: BrowserContextOptions;
}

export interface BrowserPages {
  /** A new page in a fresh context, watched: see the file's comment. Closed after the test. */
  open(options?: OpenOptions): Promise<Page>;
  /** What the watch found so far on the pages of the current test (read it to assert mid-test). */
  problems(): string[];
}

/**
 * Launches Chromium once for the file (beforeAll; closed in afterAll) and gives pages whose
 * problems fail the test they were opened in (checked in afterEach). `origins` are the origins
 * the pages may reach (read when a page opens: the server's URL is known by then).
 */
export function useBrowser(origins: () => string[]): BrowserPages {
  let browser: Browser | undefined;
  let open: Array<{ page: Page; problems: string[] }> = [];

  beforeAll(async () => {
    if (browserSkipReason) return;
    if (!chromiumPresent)
      throw new Error(
        `${CHROMIUM} is not installed (CI is set, so the browser tests may not be skipped): apt-get install chromium`,
      );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  });
  afterEach(async () => {
    const found = open.flatMap((entry) => entry.problems);
    await Promise.all(open.map((entry) => entry.page.context().close()));
    open = [];
    if (found.length > 0) throw new Error(`the page had problems:\n${found.join('\n')}`);
  });
  afterAll(async () => {
    await browser?.close();
  });

  return {
    problems: () => open.flatMap((entry) => entry.problems),
    async open(options: OpenOptions = {}): Promise<Page> {
      if (!browser) throw new Error('useBrowser: the browser is launched in beforeAll');
      const allowed = new Set([...origins(), ...(options.alsoAllow ?? [])].map((url) => new URL(url).origin));
      const context = await browser.newContext({
        viewport: options.viewport ?? DESKTOP,
        serviceWorkers: 'block',
        ...options.context,
      });
      const problems: string[] = [];
      const expected = options.expectedConsoleErrors ?? [];
      await context.route('**/*', async (route) => {
        const url = route.request().url();
        if (url.startsWith('data:') || url.startsWith('blob:') || allowed.has(new URL(url).origin))
          return route.continue();
        problems.push(`request to another host: ${url}`);
        return route.abort('blockedbyclient');
      });
      // The browser logs a violation to the console too; the event also names the directive.
      await context.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (event) => {
          console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || 'inline'}`);
        });
      });
      const page = await context.newPage();
      page.setDefaultTimeout(10_000);
      page.on('websocket', (socket) => {
        if (!allowed.has(new URL(socket.url().replace(/^ws/, 'http')).origin))
          problems.push(`WebSocket to another host: ${socket.url()}`);
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      page.on('console', (message) => {
        const text = message.text();
        if (message.type() === 'error' && !expected.some((re) => re.test(text)))
          problems.push(`console error: ${text}`);
        else if (/Content.Security.Policy|CSP violation/i.test(text))
          problems.push(`console ${message.type()}: ${text}`);
      });
      open.push({ page, problems });
      return page;
    },
  };
}

const ARTIFACTS = path.resolve(import.meta.dirname, '../artifacts');

/** Writes test/artifacts/<name>.png (the whole page) in CI or with SCREENSHOTS=1; otherwise does nothing. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (!ci && process.env.SCREENSHOTS !== '1') return;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** The page's document is no wider than its viewport (nothing scrolls sideways). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

/**
 * Text on the page whose contrast with the background behind it is below `minimum` (WCAG AA:
 * 4.5:1 for body text), as "text — ratio (color on background)". The background is the nearest
 * opaque one among the element and its ancestors (white at the top); text drawn on a canvas is
 * not checked. Disabled controls and visually hidden text are left out, as WCAG does.
 */
export async function lowContrast(page: Page, minimum = 4.5): Promise<string[]> {
  return page.evaluate((min) => {
    const parse = (color: string): [number, number, number, number] => {
      const [r = 0, g = 0, b = 0, a = 1] = (color.match(/[\d.]+/g) ?? []).map(Number);
      return [r, g, b, color.startsWith('rgba') ? a : 1];
    };
    const luminance = ([r, g, b]: number[]) => {
      const channel = (v: number) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r!) + 0.7152 * channel(g!) + 0.0722 * channel(b!);
    };
    const background = (element: Element | null): number[] => {
      for (let e = element; e; e = e.parentElement ?? (e.getRootNode() as ShadowRoot).host ?? null) {
        const [r, g, b, a] = parse(getComputedStyle(e).backgroundColor);
        if (a >= 0.99) return [r, g, b];
      }
      return [255, 255, 255];
    };
    const found: string[] = [];
    const visit = (root: Document | ShadowRoot) => {
      for (const element of root.querySelectorAll('*')) {
        if (element.shadowRoot) visit(element.shadowRoot);
        const own = [...element.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent?.trim());
        const field = element instanceof HTMLInputElement && element.value;
        if (!own && !field) continue;
        if ((element as HTMLButtonElement).disabled) continue;
        const style = getComputedStyle(element);
        const box = element.getBoundingClientRect();
        if (style.visibility === 'hidden' || style.display === 'none' || box.width <= 1 || box.height <= 1) continue;
        const fg = parse(style.color);
        const bg = background(element);
        const blended = fg.slice(0, 3).map((c, i) => c * fg[3]! + bg[i]! * (1 - fg[3]!));
        const [hi, lo] = [luminance(blended), luminance(bg)].sort((x, y) => y - x) as [number, number];
        const ratio = (hi + 0.05) / (lo + 0.05);
        if (ratio < min)
          found.push(
            `${(element.textContent ?? '').trim().slice(0, 40)} — ${ratio.toFixed(2)} (${style.color} on rgb(${bg.join(', ')}))`,
          );
      }
    };
    visit(document);
    return found;
  }, minimum);
}
