// The partner portal (/portal/#token=…) and the embeddable widget (/widget.js) in headless
// Chromium, on the demo data: what a partner sees, a reward recorded through the API arriving
// live, the copy button, a phone's width, and the widget on another origin's page. Every page is
// watched (test/helpers/browser.ts): a request to another host, a CSP violation or a console
// error fails the test.
import http from 'node:http';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seedDemo, type DemoSeedResult } from '../src/modules/workspace/demo-seed.js';
import { formatMoney, formatMoneyList } from '../src/web/lib/format.js';
import { graphql } from './gql/index.js';
import {
  DESKTOP,
  describeBrowser,
  horizontalOverflow,
  lowContrast,
  PHONE,
  screenshot,
  useBrowser,
} from './helpers/browser.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const MINT = graphql(`
  mutation Portal_Mint($input: CreatePartnerTokenInput!) {
    createPartnerToken(input: $input) {
      token
      userErrors {
        message
      }
    }
  }
`);
const RECORD = graphql(`
  mutation Portal_Record($input: RecordConversionInput!) {
    recordConversion(input: $input) {
      conversion {
        status
        rewards {
          amount {
            amount
            currency
          }
        }
      }
      userErrors {
        message
      }
    }
  }
`);
const CREATE_KEY = graphql(`
  mutation Portal_CreateKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      apiKey {
        id
      }
      secret
    }
  }
`);
const REVOKE_KEY = graphql(`
  mutation Portal_RevokeKey($input: RevokeApiKeyInput!) {
    revokeApiKey(input: $input) {
      userErrors {
        message
      }
    }
  }
`);
const PARTNER = graphql(`
  query Portal_Partner($id: ID!) {
    node(id: $id) {
      ... on Partner {
        stats {
          totalRewards {
            amount
            currency
          }
        }
      }
    }
  }
`);

/** Where the links point (never fetched by the pages: a link is followed only when clicked). */
const PUBLIC_URL = 'https://go.refgraph.example';

let server: TestServer;
let demo: DemoSeedResult;
/** A demo partner who has been paid out: every section of the portal has something to show. */
let partner: { id: string; globalId: string; name: string; externalId: string; code: string; url: string };

beforeAll(async () => {
  server = await startTestServer({ PUBLIC_URL });
  demo = await seedDemo(server.testDb.db);
  const prisma = server.testDb.db.prisma;
  const payout = await prisma.payout.findFirstOrThrow({ where: { workspaceId: demo.workspace.id, mode: 'TEST' } });
  const row = await prisma.partner.findUniqueOrThrow({ where: { id: payout.partnerId } });
  const link = await prisma.referralLink.findFirstOrThrow({
    where: { partnerId: row.id, program: { type: 'REFERRAL' } },
  });
  const globalId = Buffer.from(`Partner:${row.id}`).toString('base64');
  partner = {
    id: row.id,
    globalId,
    name: row.name!,
    externalId: row.externalId,
    code: link.code,
    url: `${PUBLIC_URL}/r/${link.code}`,
  };
});
afterAll(async () => {
  await server?.close();
});

const browser = useBrowser(() => [server.url]);

async function mint(key: string = demo.keys.test): Promise<string> {
  const res = await server.gql(MINT, { input: { partnerExternalId: partner.externalId } }, key);
  expect(res.data?.createPartnerToken.userErrors).toEqual([]);
  return res.data!.createPartnerToken.token!;
}

/** The portal as the partner opens it from the company's link. */
async function openPortal(page: Page, token: string): Promise<void> {
  await page.goto(`${server.url}/portal/#token=${encodeURIComponent(token)}`);
  await page.getByRole('heading', { level: 1, name: partner.name }).waitFor();
}

let purchases = 0;
async function recordPurchase(): Promise<{ amount: string; currency: string }> {
  const res = await server.gql(
    RECORD,
    {
      input: {
        type: 'PURCHASE',
        code: partner.code,
        referredExternalId: `portal-customer-${++purchases}`,
        idempotencyKey: `portal-purchase-${purchases}`,
        amount: { amount: '80.00', currency: 'USD' },
      },
    },
    demo.keys.test,
  );
  expect(res.data?.recordConversion.userErrors).toEqual([]);
  expect(res.data?.recordConversion.conversion?.status).toBe('ACCEPTED');
  return res.data!.recordConversion.conversion!.rewards[0]!.amount;
}

async function totalRewards(): Promise<string> {
  const res = await server.gql(PARTNER, { id: partner.globalId }, demo.keys.test);
  const node = res.data?.node as { stats: { totalRewards: Array<{ amount: string; currency: string }> } };
  return formatMoneyList(node.stats.totalRewards, 'en-US');
}

describeBrowser('the partner portal in headless Chromium', () => {
  it('shows the partner their name, links, results, balance and payouts, and takes the token out of the address bar', async () => {
    const page = await browser.open({ context: { locale: 'en-US' } });
    const token = await mint();
    await openPortal(page, token);
    // The token left the address bar (and the history entry) but is kept for this tab.
    expect(page.url()).toBe(`${server.url}/portal/`);
    expect(await page.evaluate(() => sessionStorage.getItem('refgraph.portal.token'))).toBe(token);

    await page.locator('.link-url', { hasText: partner.url }).waitFor();
    await page.locator('[data-stat="rewards"]', { hasText: await totalRewards() }).waitFor();
    const balances = page.getByRole('table', { name: 'Your balance in each currency' });
    await balances.getByRole('rowheader', { name: 'USD' }).waitFor();
    await page
      .getByTestId('payouts')
      .getByText(/pending|paid/i)
      .first()
      .waitFor();
    await page.locator('.chart canvas').first().waitFor();

    // Every piece of text reads at 4.5:1 or better.
    expect(await lowContrast(page)).toEqual([]);

    // A reload finds the token in this tab's storage.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: partner.name }).waitFor();
    await screenshot(page, 'portal-desktop');
  });

  it('shows a new reward in the live feed and the counters within 2 s, without a reload', async () => {
    // The earlier tests' pages are closed: once the server has let go of their subscriptions, the
    // one subscription it holds is this page's, live (it joins the feed in the turn it starts).
    const executions = server.app.subscriptionExecution;
    await expect.poll(() => executions.active, { timeout: 10_000 }).toBe(0);
    const page = await browser.open({ context: { locale: 'en-US' } });
    await openPortal(page, await mint());
    await page.getByText('New clicks, referrals and rewards appear here as they happen.').waitFor();
    await expect.poll(() => executions.active, { timeout: 10_000 }).toBe(1);

    const reward = await recordPurchase();
    const expectedTotal = await totalRewards();
    await page
      .getByTestId('feed')
      .locator('li', { hasText: `New reward: ${formatMoney(reward.amount, reward.currency, 'en-US')}` })
      .waitFor({ timeout: 2000 });
    await page.locator('[data-stat="rewards"]', { hasText: expectedTotal }).waitFor({ timeout: 2000 });
    await page.locator('[data-stat="conversions"]').waitFor();
    await screenshot(page, 'portal-live');
  });

  it('copies a link with the copy button, saying so', async () => {
    const page = await browser.open({
      context: { locale: 'en-US', permissions: ['clipboard-read', 'clipboard-write'] },
    });
    await openPortal(page, await mint());
    const button = page.getByRole('button', { name: `Copy link ${partner.code}` });
    // Reached with the keyboard (Tab, from the link it copies), with a visible focus ring, pressed with Enter.
    await page.getByRole('link', { name: partner.url }).focus();
    await page.keyboard.press('Tab');
    expect(await button.evaluate((b) => b === document.activeElement)).toBe(true);
    expect(await button.evaluate((b) => b.matches(':focus-visible') && getComputedStyle(b).outlineStyle)).toBe('solid');
    await page.keyboard.press('Enter');
    await button.filter({ hasText: 'Copied' }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(partner.url);
    await page.getByRole('status').filter({ hasText: 'Copied to the clipboard' }).waitFor({ state: 'attached' });
  });

  it('creates a link in a program the partner is approved in', async () => {
    const page = await browser.open({ context: { locale: 'en-US' } });
    await openPortal(page, await mint());
    const form = page.locator('form', { has: page.getByRole('heading', { name: 'Create a link' }) });
    await form.getByLabel('Program').selectOption({ label: 'Refer a friend' });
    const code = `${partner.externalId}-portal`;
    await form.getByLabel(/^Code/).fill(code);
    await form.getByRole('button', { name: 'Create link' }).click();
    await form
      .getByRole('status')
      .filter({ hasText: `Created ${PUBLIC_URL}/r/${code}` })
      .waitFor();
    await page.locator('.link-meta code', { hasText: code }).waitFor();
    // A code that is taken: the API's message, and nothing created.
    await form.getByLabel(/^Code/).fill(code);
    await form.getByRole('button', { name: 'Create link' }).click();
    await form.locator('.form-message.error').waitFor();
  });

  it('renders on a phone without sideways scrolling', async () => {
    const page = await browser.open({ viewport: PHONE, context: { locale: 'en-US', isMobile: true, hasTouch: true } });
    await openPortal(page, await mint());
    await page.locator('.chart canvas').first().waitFor();
    await page.locator('.link-url', { hasText: partner.url }).waitFor();
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
    expect(await lowContrast(page)).toEqual([]);
    await screenshot(page, 'portal-phone');
  });

  it('asks for a new link when the token is missing, expired or unknown', async () => {
    const page = await browser.open({ expectedConsoleErrors: [/status of 401/] });
    await page.goto(`${server.url}/portal/`);
    await page.getByRole('alert').filter({ hasText: 'ask the company for a new link' }).waitFor();
    await page.getByText('This portal link is incomplete.').waitFor();

    await page.goto(`${server.url}/portal/#token=not-a-real-token`);
    await page.getByText('This portal link has expired or is no longer valid.').waitFor();
    await page.getByRole('alert').filter({ hasText: 'ask the company for a new link' }).waitFor();
    expect(page.url()).toBe(`${server.url}/portal/`);
    expect(await page.evaluate(() => sessionStorage.getItem('refgraph.portal.token'))).toBeNull(); // forgotten
  });

  it('asks for a new link, without a reload, when the key that minted the token is revoked', async () => {
    const created = await server.gql(CREATE_KEY, { input: { name: 'portal links', role: 'ADMIN' } }, demo.keys.test);
    const key = created.data!.createApiKey;
    const page = await browser.open({ expectedConsoleErrors: [/status of 401/] });
    await openPortal(page, await mint(key.secret!));
    await expect.poll(() => server.app.subscriptionExecution.active, { timeout: 10_000 }).toBeGreaterThanOrEqual(1); // the socket is open
    const revoked = await server.gql(REVOKE_KEY, { input: { id: key.apiKey!.id } }, demo.keys.test);
    expect(revoked.data?.revokeApiKey.userErrors).toEqual([]);
    // The server closes the token's socket with 4403: the portal says so.
    await page.getByText('This portal link has expired or is no longer valid.').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('refgraph.portal.token'))).toBeNull();
  });

  it('is laid out for a desktop at 1280 px', async () => {
    const page = await browser.open({ viewport: DESKTOP });
    await openPortal(page, await mint());
    expect(await horizontalOverflow(page)).toBeLessThanOrEqual(0);
  });
});

/** A company's page on another origin than refgraph's, embedding the widget; its own CSS tries to break it. */
function hostPage(html: (refgraph: string) => string): Promise<{ url: string; close(): Promise<void> }> {
  const page = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html(server.url));
  });
  return new Promise((resolve) =>
    page.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(page.address() as { port: number }).port}`,
        close: () => new Promise<void>((done) => page.close(() => done())),
      }),
    ),
  );
}

const HOSTILE_CSS =
  '<style>* { color: #f0f !important; font-size: 40px } button, input { display: none !important }</style>';

describeBrowser('the widget on a company’s page in headless Chromium', () => {
  it('renders the partner’s link and counters from data-token into a Shadow DOM, calling refgraph across origins', async () => {
    const token = await mint();
    const host = await hostPage(
      (refgraph) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>${HOSTILE_CSS}</head>
<body><h1>Welcome back</h1><p>Invite your friends:</p><div id="refer"></div>
<script src="${refgraph}/widget.js" data-token="${token}" data-target="#refer" async></script></body></html>`,
    );
    try {
      const page = await browser.open({
        alsoAllow: [host.url],
        context: { locale: 'en-US', permissions: ['clipboard-read', 'clipboard-write'] },
      });
      const widgetRequest = page.waitForRequest(`${server.url}/widget.js`);
      const apiCall = page.waitForRequest((r) => r.url() === `${server.url}/graphql` && r.method() === 'POST');
      await page.goto(host.url);
      expect((await widgetRequest).url()).toBe(`${server.url}/widget.js`);
      const call = await apiCall;
      expect(call.headers()['authorization']).toBe(`Bearer ${token}`);
      expect(call.headers()['cookie']).toBeUndefined();

      const widget = page.locator('#refer');
      const input = widget.getByRole('textbox', { name: 'Your referral link' });
      await input.waitFor();
      expect(await input.inputValue()).toBe(partner.url);
      await widget.getByText(await totalRewards()).waitFor();
      // The host page's own magenta text (3.1:1 on white) is its business, and shows the check works;
      // none of the widget's text is below 4.5:1.
      const low = await lowContrast(page);
      expect(low).toEqual([
        expect.stringMatching(/^Welcome back — 3\.1/),
        expect.stringMatching(/^Invite your friends/),
      ]);
      // The page's CSS does not reach inside: the button shows, in the widget's own size.
      const button = widget.getByRole('button', { name: 'Copy' });
      await button.waitFor({ state: 'visible' });
      expect(await button.evaluate((b) => getComputedStyle(b).fontSize)).toBe('15px');
      expect(await page.evaluate(() => document.querySelector('#refer')?.shadowRoot?.mode)).toBe('open');
      await button.click();
      await widget.getByRole('button', { name: 'Copied' }).waitFor();
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(partner.url);
      await screenshot(page, 'widget');
    } finally {
      await host.close();
    }
  });

  it('renders after its script tag without data-target, and says so when the token has expired', async () => {
    const token = await mint();
    const host = await hostPage(
      (refgraph) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><section id="good"><script src="${refgraph}/widget.js" data-token="${token}"></script></section>
<section id="bad"><script src="${refgraph}/widget.js" data-token="expired-or-unknown"></script></section></body></html>`,
    );
    try {
      const page = await browser.open({ alsoAllow: [host.url], expectedConsoleErrors: [/status of 401/] });
      await page.goto(host.url);
      expect(await page.locator('#good').getByRole('textbox', { name: 'Your referral link' }).inputValue()).toBe(
        partner.url,
      );
      await page.locator('#bad').getByText('This referral link has expired').waitFor();
    } finally {
      await host.close();
    }
  });
});
